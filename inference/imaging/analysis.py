"""One image in, one :class:`~inference.imaging.results.ImageAnalysis` out (issue #15 §3).

The pipeline, per image (a PNG/JPEG patch, a DICOM frame, a whole-slide level):

1. **Tiles at the model's magnification.** The image is resampled from its pixel spacing to
   the bundle's (``preprocessing.pixel_spacing_mm``; either unknown: taken as already at the
   model's scale) and cut into ``patch_size`` squares on a grid from the top-left, as
   :func:`inference.imaging.tiles.tile_image` does; partial edge cells are not tiled.
2. **Tissue only.** A cell is a tissue tile when at least ``min_tissue_fraction`` of its
   pixels are tissue under :mod:`~inference.imaging.tiles`' rule (HSV saturation above Otsu's
   threshold of the *whole image's* saturation, clamped to [0.05, 0.20]). Background cells
   never reach the network.
3. **The network**, batched, under ``torch.inference_mode()``, through
   :meth:`Predictor.logits <inference.imaging.predictor.Predictor.logits>` (the training
   transforms of :mod:`inference.imaging.transforms`, imported, never re-written).
4. **Calibration**: ``sigmoid(logit / T)`` with the bundle's temperature ``T``
   (:func:`~inference.imaging.predictor.calibrated_probability`).
5. **The OOD guard** (:mod:`inference.imaging.ood`) per tissue tile: a flagged tile is set
   aside (``tiles_indeterminate``) and takes no part in the image's figures.
6. **Per image**: the share of the analysed tissue *area* (tiles weighted by their tissue
   fraction) at or above the bundle's threshold, the maximum and the mean probability.

**When an image is indeterminate (our decision).** With no tissue tile: ``"no tissue"``. When
the OOD guard flags at least :data:`INDETERMINATE_SHARE` of the tissue area (blank, blurred,
not H&E-like): those reasons, most frequent first. A few flagged tiles (a fold, a pen mark)
are only set aside; a mostly flagged image says nothing trustworthy about the rest.

**Bounded memory for whole slides.** :func:`analyse_regions` takes the image as an iterable of
:class:`Region` (decoded frames, in row order, as a WSI level is read frame by frame) and keeps
only the frames that overlap the current row of tiles, one batch of patches, a thumbnail and a
few numbers per tile. Otsu's threshold needs the whole image's saturation, which is not known
until the last frame: every cell whose tissue share is high enough at the lowest threshold
the clamp allows (0.05; the real threshold is never lower) is scored as a *candidate*, with a
1024-bin histogram of its saturation; at the end the image's threshold is taken from the
accumulated 256-bin histogram (:func:`~inference.imaging.tiles.otsu_from_histogram`), and
each candidate's tissue share at that threshold is read from its histogram (exact at Otsu's
thresholds, which are bin edges; within one 1/1024 bin at the clamp bounds). A candidate that
is not tissue after all is dropped (:mod:`inference.imaging.scan`). :func:`analyse_image` is
the same code over one region.

Nothing here is a diagnosis: the probabilities are a model's output for a pathologist to
review, and every consumer labels them as AI-generated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from inference.imaging.predictor import calibrated_probability
from inference.imaging.results import ImageAnalysis, ModelIdentity, Outcome, TileScore
from inference.imaging.scan import (
    REASONS,
    Candidate,
    Region,
    RegionScan,
    check_rgb,
    clamped_otsu,
    regions_of,
    saturation_histogram,
)
from inference.imaging.tiles import TileSet, render_heatmap

#: The heatmap thumbnail's longest side (pixels). Its cost is that of encoding the PNG, in
#: proportion to its pixels (~0.3 ms per 50 px patch at 1,024 px, a quarter of it at 512):
#: 512 keeps the end-to-end overhead against the raw forward within 20 % (python -m bench
#: imaging), and the heatmap is read beside the report, not zoomed (the tiles are 8-10 px).
HEATMAP_MAX_SIDE = 512

if TYPE_CHECKING:
    from inference.imaging.bundle import BundleInfo
    from inference.imaging.predictor import Predictor

RGB = NDArray[np.uint8]

#: Share of the tissue area the OOD guard must flag for the whole image to be indeterminate.
INDETERMINATE_SHARE: Final = 0.5
NO_TISSUE: Final = "no tissue"

#: The thread count :func:`configure_threads` applied in this process (a per-process fact).
_APPLIED: dict[str, int] = {}


def configure_threads(threads: int) -> None:
    """Set torch's intra-op thread count for this process, once.

    Call it at worker start-up (before the first inference), not per image: changing torch's
    thread pool while work runs costs a pool rebuild. A second call with the same count does
    nothing; another count is applied (a process reconfigured on purpose).
    """
    if threads < 1:
        raise ValueError("threads must be at least 1")
    if _APPLIED.get("threads") == threads:
        return
    import torch

    torch.set_num_threads(threads)
    _APPLIED["threads"] = threads


def model_identity(info: BundleInfo) -> ModelIdentity:
    """Which model a result comes from (the FHIR Device and the reuse key)."""
    meta = info.metadata
    target = str(info.inference["network_def"]["_target_"])
    return ModelIdentity(
        name=meta.name,
        version=meta.version,
        bundle_sha256=info.bundle_sha256,
        weights_sha256=info.weights_sha256,
        network=target.rpartition(".")[2],
        patch_size=meta.preprocessing.patch_size,
        spacing_mm=meta.preprocessing.pixel_spacing_mm,
        temperature=meta.calibration.temperature,
        threshold=meta.calibration.threshold,
    )


def analyse_image(
    predictor: Predictor,
    pixels: RGB,
    *,
    spacing_mm: float | None = None,
    batch_size: int | None = None,
    heatmap: bool = True,
    keep_tiles: bool = True,
    min_tissue_fraction: float = 0.5,
    heatmap_max_side: int = HEATMAP_MAX_SIDE,
) -> ImageAnalysis:
    """Analyse a decoded RGB image (``height x width x 3`` uint8) held in memory.

    Args:
        predictor: the loaded bundle (one per worker process).
        pixels: the image.
        spacing_mm: its pixel spacing (mm/px), or ``None`` when unknown (taken to be at the
            model's scale).
        batch_size: patches per forward pass (default: the predictor's).
        heatmap: render the heatmap PNG over a thumbnail.
        keep_tiles: return per-tile scores (``ImageAnalysis.tiles``).
        min_tissue_fraction: share of a cell's pixels that must be tissue.
        heatmap_max_side: the thumbnail's longest side (pixels; see ``HEATMAP_MAX_SIDE``).
    """
    check_rgb(pixels)
    height, width = pixels.shape[:2]
    target = predictor.info.metadata.preprocessing.pixel_spacing_mm
    threshold = None
    if not (spacing_mm and target) or abs(spacing_mm / target - 1.0) < 1e-6:
        # At the model's scale already: the scan's own threshold, known before it starts, so
        # only tissue cells are scored (same result; no candidates scored and then dropped).
        threshold = clamped_otsu(saturation_histogram(pixels))
    return analyse_regions(
        predictor,
        [Region(0, 0, pixels)],
        width=width,
        height=height,
        tissue_threshold=threshold,
        spacing_mm=spacing_mm,
        batch_size=batch_size,
        heatmap=heatmap,
        keep_tiles=keep_tiles,
        min_tissue_fraction=min_tissue_fraction,
        heatmap_max_side=heatmap_max_side,
    )


def analyse_regions(
    predictor: Predictor,
    regions: Iterable[Region],
    *,
    width: int,
    height: int,
    spacing_mm: float | None = None,
    tissue_threshold: float | None = None,
    batch_size: int | None = None,
    heatmap: bool = True,
    keep_tiles: bool = True,
    min_tissue_fraction: float = 0.5,
    heatmap_max_side: int = HEATMAP_MAX_SIDE,
) -> ImageAnalysis:
    """Analyse an image given as regions in row order (``y`` never decreases), in bounded memory.

    Regions may overlap nothing or leave gaps (a sparse whole-slide level): uncovered pixels
    are white glass. ``width``/``height`` are the image's (the level's total pixel matrix).
    ``tissue_threshold`` (saturation, 0..1), when the caller knows it (e.g. from a coarser
    pyramid level), replaces Otsu's threshold of the scanned pixels and spares scoring cells
    that turn out not to be tissue.

    Raises:
        ValueError: a region out of row order, outside the image, or not RGB uint8.
    """
    if width <= 0 or height <= 0:
        raise ValueError("image width and height must be positive")
    if not 0 <= min_tissue_fraction <= 1:
        raise ValueError("min_tissue_fraction must lie in [0, 1]")
    run = RegionScan(
        predictor,
        width,
        height,
        spacing_mm,
        batch_size,
        heatmap_max_side,
        min_fraction=max(min_tissue_fraction, 1e-9),  # as tiles.tile_image: some tissue needed
        known_threshold=tissue_threshold,
    )
    for region in regions:
        run.add(region)
    run.finish()
    return _summarise(run, run.tissue(), heatmap=heatmap, keep_tiles=keep_tiles)


def _summarise(
    run: RegionScan, tissue: list[Candidate], *, heatmap: bool, keep_tiles: bool
) -> ImageAnalysis:
    predictor = run.predictor
    identity = model_identity(predictor.info)
    logits = np.array([c.logit for c in tissue], dtype=np.float32)
    probabilities = calibrated_probability(logits, predictor.temperature)
    weights = np.array([c.tile.tissue_fraction for c in tissue], dtype=np.float64)
    flagged = np.array([c.reason is not None for c in tissue], dtype=bool)
    analysed = ~flagged
    reasons: tuple[str, ...] = ()
    if not tissue:
        reasons = (NO_TISSUE,)
    elif weights[flagged].sum() >= INDETERMINATE_SHARE * weights.sum():
        counts: dict[str, int] = {}
        for c in tissue:
            if c.reason:
                counts[c.reason] = counts.get(c.reason, 0) + 1
        reasons = tuple(sorted(counts, key=lambda r: (-counts[r], r)))
    positive_fraction = 0.0
    max_p: float | None = None
    mean_p: float | None = None
    if analysed.any():
        probs = probabilities[analysed].astype(np.float64)
        w = weights[analysed]
        positive_fraction = float(w[probs >= predictor.threshold].sum() / w.sum())
        max_p, mean_p = float(probs.max()), float(probs.mean())
    outcome: Outcome = (
        "indeterminate" if reasons else "positive" if positive_fraction > 0 else "negative"
    )
    png = _heatmap(run, tissue, probabilities, analysed) if heatmap else None
    scores = (
        tuple(
            TileScore(
                row=c.tile.row,
                col=c.tile.col,
                source_x=c.tile.source_x,
                source_y=c.tile.source_y,
                probability=float(p),
                indeterminate=c.reason,
            )
            for c, p in zip(tissue, probabilities, strict=True)
        )
        if keep_tiles
        else ()
    )
    return ImageAnalysis(
        model=identity,
        outcome=outcome,
        positive_fraction=positive_fraction,
        max_probability=max_p,
        mean_probability=mean_p,
        tiles_total=run.rows * run.cols,
        tiles_tissue=len(tissue),
        tiles_indeterminate=int(flagged.sum()),
        width=run.width,
        height=run.height,
        reasons=reasons,
        heatmap_png=png,
        tiles=scores,
    )


def _heatmap(
    run: RegionScan,
    tissue: list[Candidate],
    probabilities: NDArray[np.float32],
    analysed: NDArray[np.bool_],
) -> bytes:
    """The heatmap over the thumbnail: analysed tiles only (flagged tiles stay uncoloured)."""
    shown = [c.tile for c, keep in zip(tissue, analysed, strict=True) if keep]
    grid = TileSet(
        patches=np.zeros((0, run.patch, run.patch, 3), dtype=np.uint8),
        tiles=tuple(shown),
        patch_size=run.patch,
        grid_rows=run.rows,
        grid_cols=run.cols,
        width=run.tiled_w,
        height=run.tiled_h,
        scale=run.scale,
        tissue_threshold=run.tissue_threshold(),
        tiles_total=run.rows * run.cols,
    )
    values = [float(p) for p, keep in zip(probabilities, analysed, strict=True) if keep]
    return render_heatmap(
        run.thumbnail,
        grid,
        values,
        threshold=run.predictor.threshold,
        max_side=max(run.thumbnail.shape[:2]),
    )


__all__ = [
    "HEATMAP_MAX_SIDE",
    "INDETERMINATE_SHARE",
    "NO_TISSUE",
    "REASONS",
    "Region",
    "analyse_image",
    "analyse_regions",
    "configure_threads",
    "model_identity",
    "regions_of",
]
