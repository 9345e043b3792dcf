"""Scanning an image given as regions (decoded frames) in row order, in bounded memory.

The streaming half of :mod:`inference.imaging.analysis` (see its docstring for the rules):
:class:`RegionScan` keeps only the regions that overlap the current band of tiles, one batch of
candidate patches, a thumbnail, the image's saturation histogram and, per candidate cell, its
score and a 1024-bin saturation histogram. The analysis module turns what it found into an
:class:`~inference.imaging.results.ImageAnalysis`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from inference.imaging import ood
from inference.imaging.tiles import (
    MAX_THRESHOLD,
    MIN_THRESHOLD,
    Tile,
    otsu_from_histogram,
    saturation,
)

if TYPE_CHECKING:
    from inference.imaging.predictor import Predictor

RGB = NDArray[np.uint8]

#: The readable reason (``ImageAnalysis.reasons``, ``TileScore.indeterminate``) per OOD code.
REASONS: Final = {ood.BLANK: "blank", ood.BLURRED: "blurred", ood.COLOUR: "not H&E-like"}
_COARSE_BINS: Final = 256  # the image's Otsu histogram (as tiles.tissue_mask)
_FINE_BINS: Final = 1024  # per-candidate histogram (a multiple of 256: Otsu's edges are exact)


@dataclass(frozen=True, slots=True)
class Region:
    """Decoded pixels of part of an image: top-left ``(x, y)`` in the image's pixel matrix."""

    x: int
    y: int
    pixels: RGB


def saturation_histogram(image: RGB) -> NDArray[np.int64]:
    """The 256-bin saturation histogram a scan accumulates, of a whole image at once."""
    coarse = np.minimum((saturation(image) * _COARSE_BINS).astype(np.int64), _COARSE_BINS - 1)
    return np.bincount(coarse.ravel(), minlength=_COARSE_BINS)


def clamped_otsu(histogram: NDArray[np.int64]) -> float:
    """The tissue threshold from a saturation histogram: Otsu's, clamped as tiles.tissue_mask."""
    return min(max(otsu_from_histogram(histogram), MIN_THRESHOLD), MAX_THRESHOLD)


def check_rgb(image: RGB) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("expected an RGB uint8 array of shape (height, width, 3)")


@dataclass(slots=True)
class Candidate:
    tile: Tile
    histogram: NDArray[np.uint16]  # _FINE_BINS counts of the cell's saturation
    logit: float = math.nan
    reason: str | None = None


@dataclass(slots=True)
class RegionScan:
    """One image's regions, streamed in: bands at the model's scale, candidate cells, their
    scores (logit and OOD reason), the image's saturation histogram and a thumbnail."""

    predictor: Predictor
    width: int
    height: int
    spacing_mm: float | None
    batch_size: int | None
    thumb_side: int
    min_fraction: float = 0.5
    #: The image's tissue threshold when known before the scan (a whole image in memory, or a
    #: slide's thumbnail): then only tissue cells are scored. ``None``: Otsu at the end.
    known_threshold: float | None = None
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
    candidates: list[Candidate] = field(default_factory=list)
    batch: list[RGB] = field(default_factory=list)
    batch_members: list[Candidate] = field(default_factory=list)
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
        check_rgb(region.pixels)
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
        low = MIN_THRESHOLD if self.known_threshold is None else self.known_threshold
        loose = (cells > np.float32(low)).mean(axis=(0, 2))
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
            candidate = Candidate(tile, histograms[index])
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
        if self.known_threshold is not None:
            return self.known_threshold
        return clamped_otsu(self.coarse)

    def tissue(self) -> list[Candidate]:
        """The candidates that are tissue at the image's threshold, with their tissue share."""
        threshold = self.tissue_threshold()
        # Pixels above the threshold: the bins that start at or above it (a threshold inside a
        # bin leaves that bin out; Otsu's thresholds are bin edges, so only the clamp's are).
        first_bin = math.ceil(threshold * _FINE_BINS - 1e-6)
        tissue: list[Candidate] = []
        area = self.patch * self.patch
        for candidate in self.candidates:
            share = float(candidate.histogram[first_bin:].sum()) / area
            if share >= self.min_fraction:
                tile = candidate.tile
                candidate.tile = Tile(
                    tile.row, tile.col, tile.x, tile.y, tile.source_x, tile.source_y, share
                )
                tissue.append(candidate)
        return tissue


def regions_of(pixels: RGB, *, tile: int = 512) -> Iterator[Region]:
    """An in-memory image as row-ordered regions of ``tile`` pixels (tests and benchmarks)."""
    check_rgb(pixels)
    height, width = pixels.shape[:2]
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            yield Region(x, y, pixels[y : y + tile, x : x + tile])
