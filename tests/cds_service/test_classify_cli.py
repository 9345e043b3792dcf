"""``oncocds classify``: formats, heatmap file, DICOM input, one-line errors, and the audit.

The bundle is ``he_bundle`` (tests/inference/imaging/conftest.py: a real ``oncocds train``
run on the real IDC patches, CC0, and synthetic H&E-like textures). Images: those IDC patches,
a field of them on glass, a DICOM Secondary Capture built at test time. Plumbing only: no test
claims anything about the model's accuracy. The audit tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cds_service.audit import AuditTrail
from cds_service.cli import main
from cds_service.db.engine import make_engine
from tests.inference.imaging.conftest import train_he_bundle
from tests.integrations.imaging.dicom_factory import secondary_capture, to_bytes
from tests.training.patches import IDC

IDC_PNG = sorted(IDC.glob("8863/*/*.png"))


@pytest.fixture(scope="session")
def he_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_he_bundle(tmp_path_factory)


@pytest.fixture
def cli(
    database_url: str, he_bundle: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., tuple[int, str, str]]:
    """``oncocds ...`` in process, with the database and the installed bundle in the env."""
    monkeypatch.setenv("ONCOCDS_DATABASE_URL", database_url)
    monkeypatch.setenv("ONCOCDS_IMAGING__BUNDLE_PATH", str(he_bundle))
    monkeypatch.chdir(tmp_path)

    def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        code = main(["classify", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def audit_rows(database_url: str) -> list[dict[str, Any]]:
    engine = make_engine(database_url, pool_size=1)
    try:
        trail = AuditTrail(engine, source_observer="test")
        with engine.connect() as conn:
            return [r for r in trail.iter_rows(conn) if r["event_type"] == "imaging.classify"]
    finally:
        engine.dispose()


def field_png(tmp_path: Path) -> Path:
    """Both IDC patches side by side in the lower grid row of a 150 x 100 field of glass."""
    canvas = np.full((100, 150, 3), 240, dtype=np.uint8)
    for i, path in enumerate(IDC_PNG):
        with Image.open(path) as image:
            canvas[50:100, i * 50 : i * 50 + 50] = np.asarray(image.convert("RGB"))
    path = tmp_path / "field.png"
    Image.fromarray(canvas).save(path)
    return path


def test_text_output_is_labelled_ai_generated_and_audited(
    cli: Any, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    code, out, err = cli(str(IDC_PNG[0]), str(IDC_PNG[1]), "--patient", "Patient/7", capsys=capsys)
    assert code == 0, err
    assert out.startswith("OncoCDS histopathology classification: AI-generated; requires "
                          "pathologist review")  # fmt: skip
    assert "model: test-idc 0.0.1 (ResNet)" in out
    for path in IDC_PNG:
        line = next(line for line in out.splitlines() if line.startswith(str(path)))
        assert line.split(": ")[1].split(" ")[0] in {"POSITIVE", "NEGATIVE", "INDETERMINATE"}
    rows = audit_rows(database_url)
    assert len(rows) == 2
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in IDC_PNG]
    for row, digest in zip(rows, digests, strict=True):
        assert row["action"] == "E"
        assert row["outcome"] == 0
        assert row["patient_id"] == "Patient/7"
        assert row["entities"] == [{"type": "image-sha256", "id": digest}]
        assert row["details"]["model"] == "test-idc"
        assert row["details"]["outcome"] in {"positive", "negative", "indeterminate"}
        # The file name may name a patient: it never reaches the audit trail.
        assert "8863" not in json.dumps(row, default=str)


def test_json_output_is_the_stored_form(
    cli: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = field_png(tmp_path)
    code, out, err = cli(str(path), "--format", "json", capsys=capsys)
    assert code == 0, err
    document = json.loads(out)
    assert document["modelGenerated"] is True
    assert "AI-generated" in document["disclaimer"]
    (image,) = document["images"]
    assert image["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    analysis = image["analysis"]
    assert (analysis["width"], analysis["height"]) == (150, 100)
    assert analysis["tiles_total"] == 6  # 100 // 50 x 150 // 50
    assert analysis["model"]["name"] == "test-idc"
    assert analysis["tiles_tissue"] == 2
    assert {(t["row"], t["col"]) for t in analysis["tiles"]} == {(1, 0), (1, 1)}


def test_heatmap_file_is_a_png_of_the_thumbnail_size(
    cli: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = field_png(tmp_path)
    out_png = tmp_path / "heat.png"
    code, _, err = cli(str(path), str(IDC_PNG[0]), "--heatmap", str(out_png), capsys=capsys)
    assert code == 0, err
    # 150 x 100 image: 150 + 96 px colour bar, at least 160 high; a 50 x 50 patch: 146 x 160.
    for written, size in ((out_png, (246, 160)), (tmp_path / "heat-2.png", (146, 160))):
        with Image.open(io.BytesIO(written.read_bytes()), formats=["PNG"]) as image:
            assert image.size == size


def test_dicom_secondary_capture_is_read_and_its_uids_audited(
    cli: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, database_url: str
) -> None:
    with Image.open(IDC_PNG[1]) as image:
        pixels = np.asarray(image.convert("RGB"))
    ds = secondary_capture(pixels, study_uid="1.2.826.0.1.99.1", series_uid="1.2.826.0.1.99.2")
    path = tmp_path / "patch.dcm"
    path.write_bytes(to_bytes(ds))
    code, out, err = cli(str(path), "--format", "json", capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["images"][0]["analysis"]["width"] == 50
    (row,) = audit_rows(database_url)
    kinds = {e["type"]: e["id"] for e in row["entities"]}
    assert kinds["dicom-study"] == "1.2.826.0.1.99.1"
    assert kinds["dicom-series"] == "1.2.826.0.1.99.2"
    assert kinds["dicom-instance"] == str(ds.SOPInstanceUID)


def _one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("oncocds: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_a_file_that_is_not_an_image_fails_in_one_line_and_is_audited(
    cli: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    line = _one_line_error(*cli(str(path), capsys=capsys))
    assert "not a PNG, JPEG, TIFF or DICOM" in line
    (row,) = audit_rows(database_url)
    assert row["outcome"] == 4  # minor failure: refused input
    assert "not a PNG" in row["outcome_desc"]


def test_truncated_png_fails_in_one_line(
    cli: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(IDC_PNG[0].read_bytes()[:300])
    line = _one_line_error(*cli(str(path), capsys=capsys))
    assert "PNG" in line


def test_missing_file_and_fhir_format_fail_in_one_line(
    cli: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert "no such file" in _one_line_error(*cli(str(tmp_path / "nope.png"), capsys=capsys))
    line = _one_line_error(*cli(str(IDC_PNG[0]), "--format", "fhir", capsys=capsys))
    assert "fhir" in line


def test_no_bundle_or_a_broken_bundle_fails_in_one_line(
    cli: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("ONCOCDS_IMAGING__BUNDLE_PATH")
    line = _one_line_error(*cli(str(IDC_PNG[0]), capsys=capsys))
    assert "ONCOCDS_IMAGING__BUNDLE_PATH" in line
    line = _one_line_error(*cli(str(IDC_PNG[0]), "--bundle", str(tmp_path), capsys=capsys))
    assert "checksums.sha256" in line
