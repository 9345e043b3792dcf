"""What one image's analysis returns (issue #15 §3): the contract between the inference
pipeline, the imaging service's storage, the FHIR report builder and the report page.

Plain frozen dataclasses, no torch: the service, the FHIR builder and the report page import
this module without the ``ml`` extra. The pipeline (:mod:`inference.imaging.analysis`) fills
them; :meth:`ImageAnalysis.to_json` / :meth:`ImageAnalysis.from_json` are the stored form.

Nothing here is a diagnosis: the probability is a calibrated model output that a pathologist
reviews, and every consumer labels it as AI-generated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["positive", "negative", "indeterminate"]


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """Which model produced a result: enough for the FHIR Device and for reuse keys.

    Attributes:
        name: the bundle's model name (``metadata.json`` ``name``).
        version: the bundle's version string.
        bundle_sha256: :attr:`inference.imaging.bundle.BundleInfo.bundle_sha256`.
        weights_sha256: sha256 of ``models/model.pt``.
        network: the network class named in ``network_def`` (``DenseNet121``, ...).
        patch_size: pixels per patch side the network takes.
        spacing_mm: the magnification the model was trained at (mm per pixel), if known.
        temperature / threshold: the calibration applied.
    """

    name: str
    version: str
    bundle_sha256: str
    weights_sha256: str
    network: str
    patch_size: int
    spacing_mm: float | None
    temperature: float
    threshold: float


@dataclass(frozen=True, slots=True)
class TileScore:
    """One tissue tile: its grid cell, top-left in source pixels, calibrated probability."""

    row: int
    col: int
    source_x: int
    source_y: int
    probability: float
    indeterminate: str | None = None  # the OOD guard's reason for this tile, if any


@dataclass(frozen=True, slots=True)
class ImageAnalysis:
    """The analysis of one image (a DICOM instance, a WSI level, an attachment).

    Attributes:
        outcome: ``positive`` when ``positive_fraction`` is above zero and the image is not
            indeterminate, ``indeterminate`` when the OOD guard fired for the image (blank,
            blurred, non-H&E; ``reasons`` says which), else ``negative``.
        positive_fraction: fraction of the analysed tissue area whose calibrated probability is
            at or above the bundle's threshold (0..1).
        max_probability: the highest calibrated tile probability (``None`` with no tissue).
        mean_probability: mean calibrated probability over tissue tiles (``None`` with none).
        tiles_total / tiles_tissue / tiles_indeterminate: grid cells, tissue tiles analysed,
            tissue tiles the OOD guard set aside.
        reasons: PHI-free reasons for ``indeterminate`` (``"blank"``, ``"blurred"``,
            ``"not H&E-like"``, ``"no tissue"``).
        heatmap_png: the heatmap over a thumbnail (PNG bytes), or ``None``.
        tiles: per tile scores (may be empty when not kept).
    """

    model: ModelIdentity
    outcome: Outcome
    positive_fraction: float
    max_probability: float | None
    mean_probability: float | None
    tiles_total: int
    tiles_tissue: int
    tiles_indeterminate: int
    width: int
    height: int
    reasons: tuple[str, ...] = ()
    heatmap_png: bytes | None = field(default=None, repr=False)
    tiles: tuple[TileScore, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        """The stored form (JSON-safe; the heatmap is stored apart, so it is left out)."""
        data = asdict(self)
        data.pop("heatmap_png")
        data["reasons"] = list(self.reasons)
        data["tiles"] = [asdict(t) for t in self.tiles]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, heatmap_png: bytes | None = None) -> ImageAnalysis:
        return cls(
            model=ModelIdentity(**data["model"]),
            outcome=data["outcome"],
            positive_fraction=float(data["positive_fraction"]),
            max_probability=data["max_probability"],
            mean_probability=data["mean_probability"],
            tiles_total=int(data["tiles_total"]),
            tiles_tissue=int(data["tiles_tissue"]),
            tiles_indeterminate=int(data["tiles_indeterminate"]),
            width=int(data["width"]),
            height=int(data["height"]),
            reasons=tuple(data.get("reasons", ())),
            heatmap_png=heatmap_png,
            tiles=tuple(TileScore(**t) for t in data.get("tiles", ())),
        )
