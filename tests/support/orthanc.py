"""A real Orthanc PACS for tests: Debian's ``orthanc`` 1.10 with the ``orthanc-dicomweb`` plugin.

``make system-deps`` installs ``orthanc``, ``orthanc-dicomweb`` and ``orthanc-wsi`` (the WSI
DICOMizer). Each :class:`OrthancServer` runs ``/usr/sbin/Orthanc`` on a free port with a
temporary storage directory and a generated JSON configuration:

- HTTP only; the DICOM (C-STORE/C-FIND) listener and WebDAV are switched off. Orthanc 1.10 has
  no bind-address option, so the HTTP port listens on every interface, with
  ``RemoteAccessAllowed: false``: Orthanc refuses any client that is not on loopback.
- only the DICOMweb plugin is loaded (root ``/dicom-web/``);
- ``auth="basic"``: Orthanc's own HTTP basic authentication (``RegisteredUsers``);
  ``auth="bearer"``: a Lua ``IncomingHttpRequestFilter`` (Orthanc's documented hook for
  accepting or refusing every HTTP request) lets through only ``Authorization: Bearer <token>``.
  Orthanc answers 403 to a refused filter and 401 to failed basic authentication.

Usage::

    with OrthancServer.start(tmp_path, auth="bearer", token="t0k") as pacs:
        uid = pacs.upload(dicom_bytes)["ParentStudy"]
        pacs.dicomweb_url      # http://127.0.0.1:PORT/dicom-web

or the session fixture ``orthanc`` (bearer-protected, shared by the imaging tests).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import pytest

from tests.support.processes import free_port

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMIZER = shutil.which("OrthancWSIDicomizer") or "/usr/bin/OrthancWSIDicomizer"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
START_TIMEOUT_S = 30.0

Auth = Literal["none", "basic", "bearer"]

_BEARER_FILTER = """
-- Orthanc Lua hook: called for every HTTP request; true lets it through, false answers 403.
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  return httpHeaders['authorization'] == 'Bearer %s'
end
"""


def require_orthanc() -> None:
    """Fail (never skip) without the Debian packages: ``make system-deps`` installs them."""
    missing = [p for p in (ORTHANC, DICOMIZER, str(DICOMWEB_PLUGIN)) if not Path(p).exists()]
    if missing:
        pytest.fail(f"Orthanc not installed ({', '.join(missing)}); run `make system-deps`")


@dataclass
class OrthancServer:
    """A running Orthanc: its URLs, the credential it demands, and a REST helper."""

    root: str
    process: subprocess.Popen[bytes]
    workdir: Path
    auth: Auth
    username: str = "pacs-user"
    password: str = "pacs-pass"
    token: str = "pacs-token"
    _log: Any = field(default=None, repr=False)

    @property
    def dicomweb_url(self) -> str:
        return f"{self.root}/dicom-web"

    @property
    def host_port(self) -> str:
        return self.root.removeprefix("http://")

    def headers(self) -> dict[str, str]:
        """The Authorization header this server accepts (none when unauthenticated)."""
        if self.auth == "basic":
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if self.auth == "bearer":
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    def rest(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        response = httpx.request(
            method, f"{self.root}{path}", headers=headers, timeout=60.0, **kwargs
        )
        response.raise_for_status()
        return response

    def upload(self, dicom: bytes) -> dict[str, Any]:
        """POST one DICOM Part 10 file to ``/instances``; Orthanc's answer (IDs, status)."""
        result: dict[str, Any] = self.rest(
            "POST", "/instances", content=dicom, headers={"Content-Type": "application/dicom"}
        ).json()
        return result

    def study_uid(self, orthanc_study_id: str) -> str:
        tags = self.rest("GET", f"/studies/{orthanc_study_id}").json()["MainDicomTags"]
        uid: str = tags["StudyInstanceUID"]
        return uid

    def dicomize(self, image: Path, **options: str) -> list[str]:
        """Convert ``image`` with ``OrthancWSIDicomizer`` and upload it to this server.

        ``options`` become ``--name=value`` arguments (e.g. ``tile_width="256"``). Returns the
        Orthanc ids of the instances created (the DICOMizer uploads through the REST API).
        """
        before = set(self.rest("GET", "/instances").json())
        args = [DICOMIZER, str(image), f"--orthanc={self.root}/"]
        if self.auth == "basic":
            args += [f"--username={self.username}", f"--password={self.password}"]
        elif self.auth == "bearer":
            # The DICOMizer speaks basic auth only; it writes files and we upload them.
            out = self.workdir / f"dicomized-{image.stem}"
            out.mkdir()
            args = [DICOMIZER, str(image), f"--folder={out}"]
        args += [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
        result = subprocess.run(args, capture_output=True, timeout=300, check=False)
        if result.returncode != 0:
            pytest.fail(f"OrthancWSIDicomizer failed: {result.stderr.decode()[-2000:]}")
        if self.auth == "bearer":
            for path in sorted(out.glob("*.dcm")):
                self.upload(path.read_bytes())
        after = self.rest("GET", "/instances").json()
        return [i for i in after if i not in before]

    def upload_slide(
        self, pixels: Any, *, spacing_mm: float, jpeg_quality: int = 95, name: str = "slide"
    ) -> tuple[str, str]:
        """Upload ``pixels`` (RGB, height x width x 3) as a whole-slide image: the DICOMizer's
        three-level pyramid of 256 px JPEG tiles, ``spacing_mm`` per base-level pixel.

        Returns the slide's study and series instance UIDs.
        """
        from PIL import Image

        source = self.workdir / f"{name}.png"
        Image.fromarray(pixels).save(source)
        height, width = pixels.shape[:2]
        created = self.dicomize(
            source,
            tile_width="256",
            tile_height="256",
            pyramid="1",
            levels="3",
            compression="jpeg",
            jpeg_quality=str(jpeg_quality),
            imaged_width=str(width * spacing_mm),
            imaged_height=str(height * spacing_mm),
        )
        if not created:
            pytest.fail("OrthancWSIDicomizer created no instance")
        tags = self.rest("GET", f"/instances/{created[0]}/simplified-tags").json()
        return str(tags["StudyInstanceUID"]), str(tags["SeriesInstanceUID"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        workdir: Path,
        *,
        auth: Auth = "none",
        lua_scripts: tuple[Path, ...] = (),
        env: dict[str, str] | None = None,
        port: int | None = None,
        **credentials: str,
    ) -> Iterator[Any]:
        """Start Orthanc in ``workdir`` (storage, configuration, log); stop it on exit.

        ``lua_scripts`` are loaded after the bearer filter (e.g. OncoCDS's ``orthanc.lua``);
        ``env`` is added to Orthanc's environment (what those scripts read); ``port`` is the
        HTTP port when the caller had to know it in advance (a free one otherwise).
        """
        require_orthanc()
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        server = cls(
            root=f"http://127.0.0.1:{port}",
            process=None,  # type: ignore[arg-type]  # set below, once started
            workdir=workdir,
            auth=auth,
            **credentials,
        )
        config: dict[str, Any] = {
            "Name": "oncocds-test",
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "storage"),
            "HttpServerEnabled": True,
            "HttpPort": port,
            "RemoteAccessAllowed": False,
            "DicomServerEnabled": False,
            "WebDavEnabled": False,
            "HttpDescribeErrors": False,
            "HttpCompressionEnabled": False,
            "ConcurrentJobs": 1,
            "StableAge": 1,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "AuthenticationEnabled": auth == "basic",
            "RegisteredUsers": {server.username: server.password} if auth == "basic" else {},
            "LuaScripts": [],
        }
        if auth == "bearer":
            script = workdir / "bearer-filter.lua"
            script.write_text(_BEARER_FILTER % server.token)
            config["LuaScripts"] = [str(script)]
        config["LuaScripts"] += [str(path) for path in lua_scripts]
        config_path = workdir / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=2))
        log = (workdir / "orthanc.log").open("wb")
        server._log = log
        server.process = subprocess.Popen(
            [ORTHANC, str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, **(env or {})},
        )
        try:
            server._wait_ready()
            yield server
        finally:
            server.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                response = httpx.get(f"{self.root}/system", headers=self.headers(), timeout=2.0)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        log = (self.workdir / "orthanc.log").read_text(errors="replace")[-3000:]
        pytest.fail(f"Orthanc did not start on {self.root}: {log}")


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """One bearer-protected Orthanc for the session (tests upload what they need)."""
    with OrthancServer.start(tmp_path_factory.mktemp("orthanc"), auth="bearer") as server:
        yield server


T = TypeVar("T")


def wait_for_study_result(
    database_url: str,
    study_uid: str,
    read: Callable[[Any, Any], T],
    *,
    timeout_s: float = 240.0,
) -> tuple[Any, T]:
    """Poll OncoCDS's database until the imaging result of a PACS study is done or failed (a
    deadline on progress, no timing asserted).

    Returns the result row and what ``read(connection, row)`` takes in the same connection
    (its images, an audit record).
    """
    from sqlalchemy import create_engine, select

    from cds_service.models.imaging import ImagingResult

    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                row = conn.execute(
                    select(ImagingResult).where(
                        ImagingResult.source_key == f"dicom-study:{study_uid}"
                    )
                ).first()
                if row is not None and row.status in {"done", "failed"}:
                    return row, read(conn, row)
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise AssertionError(f"no finished result for the study within {timeout_s:.0f} s")
