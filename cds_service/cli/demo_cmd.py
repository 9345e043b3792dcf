"""``oncocds demo``: see the running service answer a chart, without writing a request by hand.

Against the service ``make run`` starts (``--url``, default ``ONCOCDS_PUBLIC_BASE_URL``, i.e.
http://127.0.0.1:8080), as the development client ``oncocds dev-setup`` created: discovery, then
every ``patient-view`` service for the synthetic demo patient (:mod:`demo_patient`: colorectal
cancer, BRAF V600E and other calls of a real tumour, DPYD ``*1/*2A``, on capecitabine), then
every ``order-sign`` service with a draft cetuximab order. Each call is signed like any CDS
client's (CDS Hooks 2.0 §Trusting CDS Clients: ES384, ``aud`` = the URL called, fresh ``jti``)
and carries the prefetch the service's discovery entry asks for. The cards are printed as text
and the genomic report link last. The service audits every call as it would an EHR's.

Development only. A service that is not running, a missing dev client or a refused token is one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from typing import TYPE_CHECKING, Any, Final

from cds_service.cli import demo_patient
from cds_service.cli.devsetup_cmd import DEV_ISS, PRIVATE_KEY_FILE
from cds_service.errors import OncoCDSError

if TYPE_CHECKING:
    import httpx

    from cds_service.security.signing import SigningKey

DISCOVERY_PATH: Final = "/cds-services"
REPORT_PATH: Final = "/reports/"


class DemoError(OncoCDSError):
    """The demo cannot run (no service, no dev client, a refused call): one line for the user."""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="send signed patient-view and order-sign calls for a synthetic patient to the "
        "running service and print the cards (development only)",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="the service's base URL (default: ONCOCDS_PUBLIC_BASE_URL, where `make run` serves)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per call (default 60)")
    parser.set_defaults(func=run)


def _signing_key() -> tuple[SigningKey, str]:
    from cds_service.security.signing import load_private_key
    from cds_service.settings import Settings

    settings = Settings()
    if settings.is_production:
        raise DemoError("demo is for development only (ONCOCDS_ENVIRONMENT=production)")
    key_file = settings.cds_hooks.dev_dir / PRIVATE_KEY_FILE
    if not key_file.is_file():
        raise DemoError(
            f"no development client in {settings.cds_hooks.dev_dir}: run `oncocds dev-setup` "
            "first (`make run` does)"
        )
    try:
        return load_private_key(key_file), settings.base_url
    except (OSError, ValueError) as exc:
        raise DemoError(
            f"cannot read the development key {key_file}: {type(exc).__name__}"
        ) from exc


class _Caller:
    """Signed calls to one service base URL; every transport failure is a :class:`DemoError`."""

    def __init__(self, http: httpx.Client, base: str, key: SigningKey) -> None:
        self.http = http
        self.base = base
        self.key = key

    def _headers(self, path: str) -> dict[str, str]:
        from cds_service.security.signing import sign_client_jwt

        token = sign_client_jwt(self.key, iss=DEV_ISS, aud=self.base + path)
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import httpx

        try:
            response = self.http.request(
                method, self.base + path, json=body, headers=self._headers(path)
            )
        except httpx.InvalidURL as exc:
            raise DemoError(f"not a usable service URL: {self.base!r}") from exc
        except httpx.UnsupportedProtocol as exc:
            raise DemoError(f"--url must be http:// or https://, not {self.base!r}") from exc
        except httpx.TimeoutException as exc:
            raise DemoError(f"{self.base}{path} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise DemoError(
                f"no OncoCDS service answers at {self.base} ({type(exc).__name__}); start it "
                "with `make run` (or pass --url)"
            ) from exc
        if response.status_code == 401:
            raise DemoError(
                f"{self.base} refused the development client (HTTP 401): the service must trust "
                "the clients file `oncocds dev-setup` wrote (as under `make run`, with no "
                "ONCOCDS_CLIENTS_FILE) and its public URL must be the --url given"
            )
        if response.status_code != 200:
            raise DemoError(f"{method} {path} answered HTTP {response.status_code}{_why(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise DemoError(f"{method} {path} did not answer JSON") from exc


def _why(response: httpx.Response) -> str:
    """The first OperationOutcome issue of an error response, if there is one."""
    try:
        issues = response.json().get("issue") or []
        text = issues[0].get("diagnostics") or issues[0].get("details", {}).get("text")
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
    return f": {str(text)[:200]}" if text else ""


def _call(caller: _Caller, service: dict[str, Any], context: dict[str, Any]) -> list[Any]:
    body = {
        "hook": service["hook"],
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": demo_patient.prefetch_for(service.get("prefetch") or {}, context),
    }
    answer = caller.request("POST", f"{DISCOVERY_PATH}/{service['id']}", body)
    cards = answer.get("cards") if isinstance(answer, dict) else None
    if not isinstance(cards, list):
        raise DemoError(f"{service['id']} answered without a cards array")
    return cards


def _report_links(cards: list[Any], base: str) -> list[str]:
    return [
        str(link["url"])
        for card in cards
        for link in card.get("links") or []
        if str(link.get("url", "")).startswith(base + REPORT_PATH)
    ]


def run(args: argparse.Namespace) -> int:
    import httpx

    from cds_service.cli.demo_render import response_lines

    key, default_base = _signing_key()
    base = str(args.url or default_base).rstrip("/")
    width = min(shutil.get_terminal_size((100, 24)).columns - 2, 110)
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    with httpx.Client(timeout=args.timeout, trust_env=False, follow_redirects=False) as http:
        caller = _Caller(http, base, key)
        discovery = caller.request("GET", DISCOVERY_PATH)
        services = discovery.get("services") if isinstance(discovery, dict) else None
        by_hook = {
            hook: [s for s in services or [] if isinstance(s, dict) and s.get("hook") == hook]
            for hook in ("patient-view", "order-sign")
        }
        if not by_hook["patient-view"] or not by_hook["order-sign"]:
            raise DemoError(f"{base} offers no patient-view or no order-sign service")
        patient = {"userId": demo_patient.PRACTITIONER, "patientId": demo_patient.PATIENT_ID}
        draft = demo_patient.draft_order()
        order = {
            **patient,
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": draft}],
            },
        }
        out = sys.stdout
        out.write(
            f"OncoCDS demo against {base}: synthetic patient {demo_patient.PATIENT_REF} (colon "
            f"adenocarcinoma; BRAF V600E and {len(demo_patient.VARIANTS) - 1} other calls of "
            f"PCGR's T001-COAD tumour; DPYD {demo_patient.DPYD_DIPLOTYPE}; on capecitabine)\n\n"
        )
        reports: list[str] = []
        for hook, context, what in (
            ("patient-view", patient, "the chart is opened"),
            (
                "order-sign",
                order,
                f"a draft {draft['medicationCodeableConcept']['text']} order is signed",
            ),
        ):
            for service in by_hook[hook]:
                cards = _call(caller, service, context)
                reports.extend(_report_links(cards, base))
                title = f"{hook} ({what}): {service.get('title') or service['id']}"
                out.write("\n".join(response_lines(title, cards, width=width, colour=colour)))
                out.write("\n")
    if reports:
        out.write(f"Genomic report: {reports[-1]}\n")
    else:
        out.write("No report link in the cards (no actionable finding was stored).\n")
    out.write("Decision support, not a diagnosis. Every call above is in the audit trail.\n")
    return 0
