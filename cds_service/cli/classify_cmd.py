"""``oncocds classify FILE...``: the histopathology model on local image files (issue #15 §1).

Each file (PNG, JPEG, TIFF, or a DICOM Part 10 file; the type is read from its first bytes) is
decoded with the imaging fetchers' guards (:mod:`integrations.imaging.raster`: byte and pixel
limits checked before decoding, Pillow held to the one format the bytes announce), analysed by
:func:`inference.imaging.analysis.analyse_image` with the installed bundle
(``ONCOCDS_IMAGING__BUNDLE_PATH``, or ``--bundle``), and printed as text, JSON or a FHIR
Bundle. ``--heatmap OUT.png`` writes the heatmap (``OUT-2.png``, ... for further files).

**Audit (issue #15 §6: every classification is audited).** Unlike ``analyze``, which prints
and stores nothing, a classification is a model run on what may be a patient's image, so each
file gets one ``imaging.classify`` record (identifiers only: the file's sha256, its DICOM
study/series/instance UIDs when it has them, the model name, version and bundle hash, the
outcome or the refusal reason; never the file name, which may name the patient). The records
are written before anything is printed: when the audit trail cannot be written the command
fails and shows no result.

Output is model-generated and says so; it is for a pathologist's review, not a diagnosis.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cds_service.cli.common import operator_id as _operator
from cds_service.errors import BadRequestError, OncoCDSError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from cds_service.audit.service import AuditEntity
    from cds_service.settings import Settings
    from inference.imaging.predictor import Predictor
    from inference.imaging.results import ImageAnalysis

DISCLAIMER: Final = "AI-generated; requires pathologist review (not a diagnosis)"
#: Largest file read (bytes) and decoded image (pixels): the fetchers' default limits.
MAX_FILE_BYTES: Final = 256 * 1024 * 1024
MAX_PIXELS: Final = 64_000_000
_MAX_FILES: Final = 256


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "classify",
        help="run the histopathology model on PNG/JPEG/TIFF/DICOM images (AI-generated)",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="image files")
    parser.add_argument("--format", dest="output", choices=["text", "json", "fhir"], default="text")
    parser.add_argument("--heatmap", type=Path, metavar="OUT.png", help="write the heatmap PNG")
    parser.add_argument(
        "--bundle", type=Path, help="model bundle (default: ONCOCDS_IMAGING__BUNDLE_PATH)"
    )
    parser.add_argument(
        "--patient", default=None, help="FHIR Patient reference (audit; required by --format fhir)"
    )
    parser.add_argument(
        "--derived-from",
        action="append",
        default=[],
        metavar="REF",
        help="with --format fhir, once per FILE in order: the ImagingStudy, DocumentReference or "
        "Media the image came from (Observation.derivedFrom)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class _Image:
    path: Path
    sha256: str
    pixels: NDArray[Any]
    spacing_mm: float | None
    study_uid: str | None
    series_uid: str | None
    instance_uid: str | None


def _content_type(data: bytes) -> str:
    from integrations.imaging.raster import DICOM_TYPE

    if data[128:132] == b"DICM":
        return DICOM_TYPE
    for content_type, magic in (
        ("image/png", (b"\x89PNG\r\n\x1a\n",)),
        ("image/jpeg", (b"\xff\xd8\xff",)),
        ("image/tiff", (b"II*\x00", b"MM\x00*")),
    ):
        if data.startswith(magic):
            return content_type
    raise BadRequestError("not a PNG, JPEG, TIFF or DICOM Part 10 file")


def _read(path: Path) -> _Image:
    """Read and decode one file under the fetchers' limits (ImagingError on bad input)."""
    from integrations.imaging.errors import ImageTooLargeError
    from integrations.imaging.raster import (
        DICOM_TYPE,
        check_signature,
        decode_part10,
        decode_raster,
        read_part10,
    )
    from integrations.imaging.wsi import pixel_spacing_mm

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageTooLargeError(f"file has {size} bytes, over the {MAX_FILE_BYTES} limit")
        data = path.read_bytes()
    except OSError as exc:
        raise BadRequestError(f"cannot read ({exc.strerror})") from exc
    content_type = _content_type(data)
    check_signature(data, content_type)
    digest = hashlib.sha256(data).hexdigest()
    if content_type != DICOM_TYPE:
        pixels = decode_raster(data, content_type, MAX_PIXELS)
        return _Image(path, digest, pixels, None, None, None, None)
    ds = read_part10(data)
    pixels = decode_part10(ds, MAX_PIXELS)

    def uid(name: str) -> str | None:
        return str(ds.get(name, "")) or None

    return _Image(
        path,
        digest,
        pixels,
        pixel_spacing_mm(ds),
        uid("StudyInstanceUID"),
        uid("SeriesInstanceUID"),
        uid("SOPInstanceUID"),
    )


def _bundle_path(args: argparse.Namespace, settings: Settings) -> Path:
    path = args.bundle or settings.imaging.bundle_path
    if path is None:
        raise OncoCDSError(
            "no imaging model bundle: give --bundle or set ONCOCDS_IMAGING__BUNDLE_PATH"
        )
    return Path(path)


def _load(path: Path, threads: int) -> Predictor:
    from inference.errors import ModelBundleError
    from inference.imaging.analysis import configure_threads
    from inference.imaging.predictor import Predictor

    configure_threads(threads)
    try:
        return Predictor.load(path, device="cpu")
    except ModelBundleError as exc:
        raise OncoCDSError(f"bundle {path}: {exc.message}") from exc
    except OSError as exc:
        raise OncoCDSError(f"bundle {path}: cannot read ({exc.strerror})") from exc
    except ImportError as exc:
        raise OncoCDSError("classify needs the [ml] extra (torch, MONAI)") from exc


def _entities(image: _Image | None, sha256: str | None) -> list[AuditEntity]:
    entities: list[AuditEntity] = [{"type": "image-sha256", "id": sha256}] if sha256 else []
    if image is not None:
        for kind, value in (
            ("dicom-study", image.study_uid),
            ("dicom-series", image.series_uid),
            ("dicom-instance", image.instance_uid),
        ):
            if value:
                entities.append({"type": kind, "id": value[:64]})
    return entities


def run(args: argparse.Namespace) -> int:
    from cds_service.settings import Settings

    if len(args.files) > _MAX_FILES:
        raise BadRequestError(f"at most {_MAX_FILES} files per call")
    if args.threads < 1:
        raise BadRequestError("--threads must be at least 1")
    for path in args.files:
        if not path.is_file():
            raise BadRequestError(f"{path}: no such file")
    if args.output == "fhir" and (not args.patient or len(args.derived_from) != len(args.files)):
        raise BadRequestError(
            "--format fhir needs --patient Patient/ID and one --derived-from REF per FILE"
        )
    settings = Settings()
    predictor = _load(_bundle_path(args, settings), args.threads)
    results = _classify_all(args, settings, predictor)
    _write_heatmaps(args, results)
    if args.output == "json":
        _print_json(results)
    elif args.output == "fhir":
        _print_fhir(args, results)
    else:
        _print_text(results)
    return 0


def _classify_all(
    args: argparse.Namespace, settings: Settings, predictor: Predictor
) -> list[tuple[_Image, ImageAnalysis]]:
    """Decode and analyse every file, auditing each; the first bad file stops the run."""
    from cds_service.audit import AuditTrail
    from cds_service.audit.service import Outcome
    from cds_service.db.engine import make_engine
    from inference.imaging.analysis import analyse_image, model_identity
    from integrations.imaging.errors import ImagingError

    identity = model_identity(predictor.info)
    model = {
        "model": identity.name,
        "modelVersion": identity.version,
        "bundleSha256": identity.bundle_sha256,
    }
    engine = make_engine(settings.database_url, pool_size=1)
    trail = AuditTrail(engine, source_observer=settings.instance_id)
    results: list[tuple[_Image, ImageAnalysis]] = []
    try:
        for index, path in enumerate(args.files, start=1):
            image: _Image | None = None
            try:
                image = _read(path)
                analysis = analyse_image(
                    predictor, image.pixels, spacing_mm=image.spacing_mm, heatmap=bool(args.heatmap)
                )
            except (ImagingError, BadRequestError) as exc:
                reason = exc.message if isinstance(exc, BadRequestError) else exc.reason
                trail.record(
                    action="E",
                    event_type="imaging.classify",
                    outcome=Outcome.MINOR_FAILURE,
                    outcome_desc=reason[:200],
                    agent_who=_operator(),
                    agent_type="user",
                    patient_id=args.patient,
                    entities=_entities(image, image.sha256 if image else None),
                    details={**model, "file": index},
                )
                raise BadRequestError(f"{path}: {reason}") from exc
            trail.record(
                action="E",
                event_type="imaging.classify",
                agent_who=_operator(),
                agent_type="user",
                patient_id=args.patient,
                entities=_entities(image, image.sha256),
                details={
                    **model,
                    "file": index,
                    "outcome": analysis.outcome,
                    "tissueTiles": analysis.tiles_tissue,
                },
            )
            results.append((image, analysis))
    finally:
        engine.dispose()
    return results


def _heatmap_paths(target: Path, count: int) -> list[Path]:
    if count == 1:
        return [target]
    return [target] + [
        target.with_name(f"{target.stem}-{i}{target.suffix}") for i in range(2, count + 1)
    ]


def _write_heatmaps(args: argparse.Namespace, results: list[tuple[_Image, ImageAnalysis]]) -> None:
    if not args.heatmap:
        return
    for path, (_, analysis) in zip(
        _heatmap_paths(args.heatmap, len(results)), results, strict=True
    ):
        if analysis.heatmap_png is None:
            continue
        try:
            path.write_bytes(analysis.heatmap_png)
        except OSError as exc:
            raise OncoCDSError(f"{path}: cannot write the heatmap ({exc.strerror})") from exc


def _print_json(results: list[tuple[_Image, ImageAnalysis]]) -> None:
    document = {
        "disclaimer": DISCLAIMER,
        "modelGenerated": True,
        "images": [
            {"file": str(image.path), "sha256": image.sha256, "analysis": analysis.to_json()}
            for image, analysis in results
        ],
    }
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _print_fhir(args: argparse.Namespace, results: list[tuple[_Image, ImageAnalysis]]) -> None:
    """The imaging report as a FHIR collection Bundle (integrations/fhir/imaging_report.py)."""
    from datetime import UTC, datetime

    from integrations.errors import FhirMappingError
    from integrations.fhir.imaging_report import ImagingItem, build_imaging_resources

    items = [
        ImagingItem(
            analysis=analysis,
            derived_from=reference,
            label=f"Image {index}",
            study_uid=image.study_uid,
            instance_uid=image.instance_uid,
        )
        for index, ((image, analysis), reference) in enumerate(
            zip(results, args.derived_from, strict=True), start=1
        )
    ]
    # The same images, model and subject give the same report id (and resource ids).
    seed = "|".join(
        [args.patient, results[0][1].model.bundle_sha256, *(i.sha256 for i, _ in results)]
    )
    try:
        resources = build_imaging_resources(
            subject=args.patient,
            items=items,
            report_id=hashlib.sha256(seed.encode()).hexdigest()[:32],
            issued=datetime.now(UTC),
        )
    except FhirMappingError as exc:
        raise BadRequestError(str(exc)) from exc
    sys.stdout.write(json.dumps(resources.bundle(), indent=2) + "\n")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_text(results: list[tuple[_Image, ImageAnalysis]]) -> None:
    out = sys.stdout
    out.write(f"OncoCDS histopathology classification: {DISCLAIMER}\n")
    model = results[0][1].model
    out.write(
        f"model: {model.name} {model.version} ({model.network}), bundle sha256 "
        f"{model.bundle_sha256[:16]}…; temperature {model.temperature:.3f}, threshold "
        f"{model.threshold:.3f}\n\n"
    )
    for image, analysis in results:
        out.write(f"{image.path}: {analysis.outcome.upper()}")
        if analysis.reasons:
            out.write(f" ({', '.join(analysis.reasons)})")
        out.write(
            f"\n  tissue area at or above threshold: {100 * analysis.positive_fraction:.1f} %"
            f"; max probability {_percent(analysis.max_probability)}"
            f"; mean {_percent(analysis.mean_probability)}\n"
            f"  tiles: {analysis.tiles_tissue} tissue of {analysis.tiles_total}, "
            f"{analysis.tiles_indeterminate} set aside by the quality guard; "
            f"image {analysis.width}x{analysis.height}\n"
        )
