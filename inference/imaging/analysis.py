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
is not tissue after all is dropped. :func:`analyse_image` is the same code over one region.

Nothing here is a diagnosis: the probabilities are a model's output for a pathologist to
review, and every consumer labels them as AI-generated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from inference.imaging import ood
from inference.imaging.predictor import calibrated_probability
from inference.imaging.results import ImageAnalysis, ModelIdentity, Outcome, TileScore
from inference.imaging.tiles import (
    MAX_THRESHOLD,
    MIN_THRESHOLD,
    Tile,
    TileSet,
    otsu_from_histogram,
    render_heatmap,
    saturation,
)

if TYPE_CHECKING:
    from inference.imaging.bundle import BundleInfo
    from inference.imaging.predictor import Predictor

RGB = NDArray[np.uint8]

#: Share of the tissue area the OOD guard must flag for the whole image to be indeterminate.
INDETERMINATE_SHARE: Final = 0.5
#: The readable reason (``ImageAnalysis.reasons``, ``TileScore.indeterminate``) per OOD code.
REASONS: Final = {ood.BLANK: "blank", ood.BLURRED: "blurred", ood.COLOUR: "not H&E-like"}
NO_TISSUE: Final = "no tissue"
_COARSE_BINS: Final = 256  # the image's Otsu histogram (as tiles.tissue_mask)
_FINE_BINS: Final = 1024  # per-candidate histogram (a multiple of 256: Otsu's edges are exact)

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


@dataclass(frozen=True, slots=True)
class Region:
    """Decoded pixels of part of an image: top-left ``(x, y)`` in the image's pixel matrix."""

    x: int
    y: int
    pixels: RGB


def analyse_image(
    predictor: Predictor,
    pixels: RGB,
    *,
    spacing_mm: float | None = None,
    batch_size: int | None = None,
    heatmap: bool = True,
    keep_tiles: bool = True,
    min_tissue_fraction: float = 0.5,
    heatmap_max_side: int = 1024,
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
        heatmap_max_side: the thumbnail's longest side (pixels).
    """
    _check_rgb(pixels)
    height, width = pixels.shape[:2]
    return analyse_regions(
        predictor,
        [Region(0, 0, pixels)],
        width=width,
        height=height,
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
    batch_size: int | None = None,
    heatmap: bool = True,
    keep_tiles: bool = True,
    min_tissue_fraction: float = 0.5,
    heatmap_max_side: int = 1024,
) -> ImageAnalysis:
    """Analyse an image given as regions in row order (``y`` never decreases), in bounded memory.

    Regions may overlap nothing or leave gaps (a sparse whole-slide level): uncovered pixels
    are white glass. ``width``/``height`` are the image's (the level's total pixel matrix).

    Raises:
        ValueError: a region out of row order, outside the image, or not RGB uint8.
    """
    if width <= 0 or height <= 0:
        raise ValueError("image width and height must be positive")
    if not 0 <= min_tissue_fraction <= 1:
        raise ValueError("min_tissue_fraction must lie in [0, 1]")
    run = _Run(
        predictor,
        width,
        height,
        spacing_mm,
        batch_size,
        heatmap_max_side,
        min_fraction=max(min_tissue_fraction, 1e-9),  # as tiles.tile_image: some tissue needed
    )
    for region in regions:
        run.add(region)
    run.finish()
    return run.result(heatmap=heatmap, keep_tiles=keep_tiles)


def _check_rgb(image: RGB) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("expected an RGB uint8 array of shape (height, width, 3)")


@dataclass(slots=True)
class _Candidate:
    tile: Tile
    histogram: NDArray[np.uint16]  # _FINE_BINS counts of the cell's saturation
    logit: float = math.nan
    reason: str | None = None


@dataclass(slots=True)
class _Run:
    """State of one image's analysis while its regions stream in."""

    predictor: Predictor
    width: int
    height: int
    spacing_mm: float | None
    batch_size: int | None
    thumb_side: int
    min_fraction: float = 0.5
    scale: float = field(init=False)
    patch: int = field(init=False)
    tiled_w: int = field(init=False)
    tiled_h: int = field(init=False)
    rows: int = field(init=False)
    cols: int = field(init=False)
    next_row: int = 0
    pending: list[Region] = field(default_factory=list)
    last_y: int = 0
    coarse: NDArray[np.int64] = field(init=False)
    candidates: list[_Candidate] = field(default_factory=list)
    batch: list[RGB] = field(default_factory=list)
    batch_members: list[_Candidate] = field(default_factory=list)
    thumbnail: RGB = field(init=False)
    thumb_scale: float = field(init=False)

    def __post_init__(self) -> None:
        info = self.predictor.info.metadata
        self.patch = info.preprocessing.patch_size
        target = info.preprocessing.pixel_spacing_mm
        self.scale = self.spacing_mm / target if self.spacing_mm and target else 1.0
        # As tiles.resample: the tiled image is round(side * scale) pixels.
        self.tiled_w = max(1, round(self.width * self.scale))
        self.tiled_h = max(1, round(self.height * self.scale))
        self.rows, self.cols = self.tiled_h // self.patch, self.tiled_w // self.patch
        self.coarse = np.zeros(_COARSE_BINS, dtype=np.int64)
        self.thumb_scale = min(1.0, self.thumb_side / max(self.tiled_w, self.tiled_h))
        thumb_w = max(1, round(self.tiled_w * self.thumb_scale))
        thumb_h = max(1, round(self.tiled_h * self.thumb_scale))
        self.thumbnail = np.full((thumb_h, thumb_w, 3), 255, dtype=np.uint8)

    # -- streaming -----------------------------------------------------------------------
    def _band(self, row: int) -> tuple[int, int]:
        """Tiled-image rows ``[start, end)`` of tile row ``row`` (the last band takes the rest)."""
        start = row * self.patch
        end = (row + 1) * self.patch if row < self.rows else self.tiled_h
        return start, end

    def _source_rows(self, start: int, end: int) -> tuple[float, float]:
        per = self.height / self.tiled_h  # source pixels per tiled pixel
        return start * per, end * per

    def add(self, region: Region) -> None:
        _check_rgb(region.pixels)
        h, w = region.pixels.shape[:2]
        if region.x < 0 or region.y < 0 or region.x + w > self.width or region.y + h > self.height:
            raise ValueError("region lies outside the image")
        if region.y < self.last_y:
            raise ValueError("regions must come in row order (y never decreasing)")
        self.last_y = region.y
        self._process_until(region.y)  # every row above this region is complete
        self.pending.append(region)

    def finish(self) -> None:
        self._process_until(self.height)
        self._flush()

    def _bands_total(self) -> int:
        return self.rows + (1 if self.tiled_h > self.rows * self.patch else 0)

    def _process_until(self, complete_to: int) -> None:
        while self.next_row < self._bands_total():
            start, end = self._band(self.next_row)
            _, src_end = self._source_rows(start, end)
            if math.ceil(src_end - 1e-9) > complete_to:
                return
            self._process_band(self.next_row)
            self.next_row += 1
            if self.next_row < self._bands_total():
                src_next, _ = self._source_rows(*self._band(self.next_row))
                keep_from = math.floor(src_next) - 1  # a box filter may read one row above
                self.pending = [r for r in self.pending if r.y + r.pixels.shape[0] > keep_from]

    def _band_pixels(self, row: int) -> RGB:
        """The band at the model's scale: ``(end - start) x tiled_w`` pixels."""
        start, end = self._band(row)
        src_start, src_end = self._source_rows(start, end)
        y0, y1 = math.floor(src_start), min(self.height, math.ceil(src_end - 1e-9))
        canvas = np.full((y1 - y0, self.width, 3), 255, dtype=np.uint8)
        for region in self.pending:
            h, w = region.pixels.shape[:2]
            top, bottom = max(region.y, y0), min(region.y + h, y1)
            if top < bottom:
                canvas[top - y0 : bottom - y0, region.x : region.x + w] = region.pixels[
                    top - region.y : bottom - region.y
                ]
        if self.scale == 1.0:
            return canvas
        from PIL import Image

        method = Image.Resampling.BOX if self.scale < 1 else Image.Resampling.BILINEAR
        box = (0.0, src_start - y0, float(self.width), src_end - y0)
        resized = Image.fromarray(canvas).resize((self.tiled_w, end - start), method, box=box)
        return np.asarray(resized, dtype=np.uint8)

    def _process_band(self, row: int) -> None:
        band = self._band_pixels(row)
        sat = saturation(band)
        self._paste_thumbnail(row, band)
        coarse = np.minimum((sat * _COARSE_BINS).astype(np.int64), _COARSE_BINS - 1)
        self.coarse += np.bincount(coarse.ravel(), minlength=_COARSE_BINS)
        if row >= self.rows or self.cols == 0:
            return  # the partial bottom band: thumbnail and histogram only
        p, cols = self.patch, self.cols
        cells = sat[:p, : cols * p].reshape(p, cols, p)  # (y, col, x)
        loose = (cells > MIN_THRESHOLD).mean(axis=(0, 2))
        chosen = np.nonzero(loose >= self.min_fraction)[0]
        if len(chosen) == 0:
            return
        fine = np.minimum((cells[:, chosen, :] * _FINE_BINS).astype(np.int64), _FINE_BINS - 1)
        offsets = np.arange(len(chosen), dtype=np.int64)[None, :, None] * _FINE_BINS
        counts = np.bincount((fine + offsets).ravel(), minlength=len(chosen) * _FINE_BINS)
        histograms = counts.reshape(len(chosen), _FINE_BINS).astype(np.uint16)
        grid = band[:p, : cols * p].reshape(p, cols, p, 3)
        for index, col in enumerate(chosen.tolist()):
            tile = Tile(
                row=row,
                col=col,
                x=col * p,
                y=row * p,
                source_x=round(col * p / self.scale),
                source_y=round(row * p / self.scale),
                tissue_fraction=float(loose[col]),
            )
            candidate = _Candidate(tile, histograms[index])
            self.candidates.append(candidate)
            self.batch.append(np.ascontiguousarray(grid[:, col]))
            self.batch_members.append(candidate)
        if len(self.batch) >= (self.batch_size or self.predictor.batch_size):
            self._flush()

    def _paste_thumbnail(self, row: int, band: RGB) -> None:
        start, end = self._band(row)
        t0 = round(start * self.thumb_scale)
        t1 = round(end * self.thumb_scale) if row < self._bands_total() - 1 else None
        target = self.thumbnail[t0:t1]
        if target.shape[0] == 0:
            return
        if target.shape[:2] == band.shape[:2]:
            target[:] = band
            return
        from PIL import Image

        small = Image.fromarray(band).resize(
            (target.shape[1], target.shape[0]), Image.Resampling.BOX
        )
        target[:] = np.asarray(small, dtype=np.uint8)

    def _flush(self) -> None:
        if not self.batch:
            return
        patches = np.stack(self.batch)
        size = self.batch_size or self.predictor.batch_size
        logits = self.predictor.logits(patches, batch_size=size)
        reasons = ood.ood_reasons(patches, self.predictor.info.metadata.ood)
        for candidate, logit, reason in zip(self.batch_members, logits, reasons, strict=True):
            candidate.logit = float(logit)
            candidate.reason = REASONS.get(reason, reason) if reason else None
        self.batch, self.batch_members = [], []

    # -- the result ----------------------------------------------------------------------
    def tissue_threshold(self) -> float:
        return min(max(otsu_from_histogram(self.coarse), MIN_THRESHOLD), MAX_THRESHOLD)

    def result(self, *, heatmap: bool, keep_tiles: bool) -> ImageAnalysis:
        threshold = self.tissue_threshold()
        # Pixels above the threshold: the bins that start at or above it (a threshold inside a
        # bin leaves that bin out; Otsu's thresholds are bin edges, so only the clamp's are).
        first_bin = math.ceil(threshold * _FINE_BINS - 1e-6)
        tissue: list[_Candidate] = []
        area = self.patch * self.patch
        for candidate in self.candidates:
            share = float(candidate.histogram[first_bin:].sum()) / area
            if share >= self.min_fraction:
                tile = candidate.tile
                candidate.tile = Tile(
                    tile.row, tile.col, tile.x, tile.y, tile.source_x, tile.source_y, share
                )
                tissue.append(candidate)
        return _summarise(self, tissue, threshold, heatmap=heatmap, keep_tiles=keep_tiles)


def _summarise(
    run: _Run, tissue: list[_Candidate], tissue_threshold: float, *, heatmap: bool, keep_tiles: bool
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
    png = _heatmap(run, tissue, probabilities, analysed, tissue_threshold) if heatmap else None
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
    run: _Run,
    tissue: list[_Candidate],
    probabilities: NDArray[np.float32],
    analysed: NDArray[np.bool_],
    tissue_threshold: float,
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
        tissue_threshold=tissue_threshold,
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


def regions_of(pixels: RGB, *, tile: int = 512) -> Iterator[Region]:
    """An in-memory image as row-ordered regions of ``tile`` pixels (tests and benchmarks)."""
    _check_rgb(pixels)
    height, width = pixels.shape[:2]
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            yield Region(x, y, pixels[y : y + tile, x : x + tile])


__all__ = [
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
