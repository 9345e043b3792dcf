"""Fixed imaging results for the FHIR builder and report-section tests (no model is run).

The numbers are invented plumbing values, not model outputs; nothing here claims accuracy.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Final

from inference.imaging.results import ImageAnalysis, ModelIdentity, TileScore
from integrations.fhir.imaging_report import ImagingItem

ISSUED: Final = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
SUBJECT: Final = "Patient/p-imaging-1"
REPORT_ID: Final = "imaging-report-0001"
MODEL_CARD_URL: Final = "https://oncocds.example.org/models/idc-resnet18/card"

#: An 8 x 8 RGB PNG (fixed bytes, built once with zlib; a red/blue diagonal): stands in for a
#: heatmap. Fixed bytes keep the golden file independent of the Pillow/zlib version.
TINY_PNG: Final = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAALElEQVR42mOQ0ziBFTFgFb2jIceAVRSL"
    "BEQUXQIuiiKBLIqQQBOFSmCKAhEA3A5Fsbw+bhwAAAAASUVORK5CYII="
)

MODEL: Final = ModelIdentity(
    name="idc-resnet18",
    version="2026.11.1",
    bundle_sha256="a" * 64,
    weights_sha256="b" * 64,
    network="ResNet18",
    patch_size=50,
    spacing_mm=0.0025,
    temperature=1.7,
    threshold=0.5,
)


def analysis(
    outcome: str,
    *,
    max_probability: float | None,
    positive_fraction: float = 0.0,
    mean_probability: float | None = None,
    reasons: tuple[str, ...] = (),
    heatmap: bytes | None = None,
    model: ModelIdentity = MODEL,
) -> ImageAnalysis:
    return ImageAnalysis(
        model=model,
        outcome=outcome,  # type: ignore[arg-type]
        positive_fraction=positive_fraction,
        max_probability=max_probability,
        mean_probability=mean_probability,
        tiles_total=120,
        tiles_tissue=80,
        tiles_indeterminate=4 if outcome != "indeterminate" else 80,
        width=600,
        height=500,
        reasons=reasons,
        heatmap_png=heatmap,
        tiles=(TileScore(0, 0, 0, 0, max_probability or 0.0),),
    )


def items() -> list[ImagingItem]:
    """Three images: positive (served heatmap), negative (inline heatmap), indeterminate."""
    return [
        ImagingItem(
            analysis=analysis(
                "positive",
                max_probability=0.93125,
                positive_fraction=0.275,
                mean_probability=0.41,
                heatmap=TINY_PNG,
            ),
            derived_from="ImagingStudy/study-1",
            label="Slide 1, series 1.2.826.0.1.3680043.8.498.1",
            study_uid="1.2.826.0.1.3680043.8.498.10",
            instance_uid="1.2.826.0.1.3680043.8.498.11",
            heatmap_url="/api/v1/imaging-analyses/an-1/heatmap.png",
        ),
        ImagingItem(
            analysis=analysis(
                "negative",
                max_probability=0.12,
                positive_fraction=0.0,
                mean_probability=0.05,
                heatmap=TINY_PNG,
            ),
            derived_from="DocumentReference/doc-7",
            label="Attachment 1",
        ),
        ImagingItem(
            analysis=analysis(
                "indeterminate", max_probability=None, reasons=("blurred", "not H&E-like")
            ),
            derived_from="DocumentReference/doc-8",
            label="Attachment 2",
        ),
    ]
