"""Tissue detection, tiling at a patch size and pixel spacing, and heatmaps (issue #15 §3).

Pure computation on RGB ``uint8`` arrays (``height x width x 3``): no I/O. numpy throughout;
Pillow (imported lazily) only resamples images and encodes the heatmap PNG in memory.

**Tissue detection.** Brightfield slides are stained tissue on colourless glass, so tissue is
*saturated* and background is not. Per pixel, HSV saturation ``(max - min) / max`` (0 where the
pixel is near black, ``max < 20``, so dark borders and pen marks are not tissue); Otsu's
threshold (N. Otsu, IEEE Trans SMC 9(1):62-66, 1979, doi:10.1109/TSMC.1979.4310076) over the
whole image's saturation separates the two, as in CLAM's segmentation (Lu et al., Nat Biomed
Eng 5:555-570, 2021, doi:10.1038/s41551-020-00682-w, Otsu on the saturation channel). Our
choice on top: the threshold is clamped to ``[0.05, 0.20]``. An image that is all tissue (an
IDC patch) is not bimodal, and unclamped Otsu would cut pale stroma off at ~0.3; an image that
is all glass would get a threshold inside its noise. A tile is kept when at least
``min_tissue_fraction`` of its pixels are tissue.

**Tiling.** The image is resampled from its pixel spacing to the model's (Pillow ``BOX``
filter when shrinking: each output pixel averages the input pixels it covers), then cut into
non-overlapping ``patch_size`` squares on a grid from the top-left; the partial row and column
at the right and bottom edges are not tiled. :class:`Tile` keeps each tile's grid cell and
pixel position, in the resampled image and in the source image, for heatmaps and reports.

**Blur.** :func:`laplacian_variance` is the variance of the 4-neighbour Laplacian of the grey
image (Pech-Pacheco et al., ICPR 2000, doi:10.1109/ICPR.2000.903548): low values mean few edges,
i.e. out of focus or blank. It is a measure only; the bundle's OOD guard decides.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

RGB = NDArray[np.uint8]

MIN_THRESHOLD: Final = 0.05
MAX_THRESHOLD: Final = 0.20
_DARK: Final = 20
#: The heatmap's colour bar area, right of the image (pixels), and its smallest height.
BAR_AREA_WIDTH: Final = 96
MIN_HEATMAP_HEIGHT: Final = 160
#: Viridis (matplotlib's default, perceptually uniform) at 0, 0.25, 0.5, 0.75, 1.
_VIRIDIS: Final = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))


def _check_rgb(image: RGB) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("expected an RGB uint8 array of shape (height, width, 3)")


def saturation(image: RGB) -> NDArray[np.float32]:
    """HSV saturation in [0, 1]; 0 for near-black pixels."""
    _check_rgb(image)
    # Element-wise max/min of the three channel views: numpy's reduction over a last axis of
    # length 3 (image.max(axis=2)) is ~10x slower on a whole slide level.
    red, green, blue = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    high = np.maximum(np.maximum(red, green), blue)
    low = np.minimum(np.minimum(red, green), blue)
    out = np.zeros(high.shape, dtype=np.float32)
    np.divide((high - low).astype(np.float32), high, out=out, where=high >= _DARK, casting="unsafe")
    return out


def otsu_threshold(values: NDArray[np.floating], bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: maximises the between-class variance."""
    hist, _ = np.histogram(values, bins=bins, range=(0.0, 1.0))
    return otsu_from_histogram(hist)


def otsu_from_histogram(hist: NDArray[np.integer]) -> float:
    """Otsu's threshold from a histogram of values in [0, 1] over equal-width bins.

    The threshold is a bin edge; what :func:`otsu_threshold` computes from the values. Used
    where the values are seen a piece at a time (a whole slide read tile by tile) and only
    their histogram is kept.
    """
    return float(otsu_from_histograms(hist[None, :])[0])


def otsu_from_histograms(hists: NDArray[np.integer]) -> NDArray[np.float64]:
    """:func:`otsu_from_histogram` of each row of ``(N, bins)`` histograms at once."""
    bins = hists.shape[1]
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = hists.astype(np.float64)
    w0 = np.cumsum(weight, axis=1)
    total = w0[:, -1:]
    w1 = total - w0
    m0 = np.cumsum(weight * centres, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean0 = m0 / w0
        mean1 = (m0[:, -1:] - m0) / w1
        between = w0 * w1 * (mean0 - mean1) ** 2
    between = np.nan_to_num(between[:, :-1], nan=-1.0)
    best = np.argmax(between, axis=1)
    out: NDArray[np.float64] = np.where(
        between.max(axis=1) <= 0, centres[0], edges[best + 1]
    ).astype(np.float64)
    return out


def _histograms(values: NDArray[np.floating], bins: int) -> NDArray[np.int64]:
    """Per row of ``(N, ...)`` values in [0, 1]: ``np.histogram(row, bins, range=(0, 1))``.

    numpy's own bin assignment for equal-width bins (floor of the scaled value, then the
    corrections against the float64 edges), applied to every row in one pass.
    """
    count = values.shape[0]
    flat = values.reshape(count, -1).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.minimum((flat * bins).astype(np.intp), bins - 1)
    index -= flat < edges[index]
    index += (flat >= edges[index + 1]) & (index != bins - 1)
    offsets = np.arange(count, dtype=np.intp)[:, None] * bins
    hist = np.bincount((index + offsets).ravel(), minlength=count * bins)
    return hist.reshape(count, bins)


def tissue_masks(
    patches: NDArray[np.uint8],
    *,
    min_threshold: float = MIN_THRESHOLD,
    max_threshold: float = MAX_THRESHOLD,
) -> NDArray[np.bool_]:
    """:func:`tissue_mask` of each ``(N, H, W, 3)`` patch on its own, vectorised: ``(N, H, W)``.

    Each patch gets its own clamped Otsu threshold, as ``tissue_mask(patch)`` would (patches
    are small, so no subsampling applies).
    """
    if patches.ndim != 4 or patches.shape[-1] != 3 or patches.dtype != np.uint8:
        raise ValueError("expected RGB uint8 patches shaped (N, H, W, 3)")
    if len(patches) == 0:
        return np.zeros(patches.shape[:3], dtype=bool)
    sat = saturation(patches.reshape(-1, patches.shape[2], 3)).reshape(patches.shape[:3])
    thresholds = np.clip(otsu_from_histograms(_histograms(sat, 256)), min_threshold, max_threshold)
    # Compared in float32, as tissue_mask's ``sat > threshold`` compares (a Python float
    # against a float32 array is taken as float32, NEP 50).
    masks: NDArray[np.bool_] = sat > thresholds.astype(np.float32)[:, None, None]
    return masks


@dataclass(frozen=True, slots=True)
class TissueMask:
    mask: NDArray[np.bool_]
    threshold: float

    @property
    def fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0


def tissue_mask(
    image: RGB, *, min_threshold: float = MIN_THRESHOLD, max_threshold: float = MAX_THRESHOLD
) -> TissueMask:
    """Pixels that are tissue (saturation above the clamped Otsu threshold)."""
    sat = saturation(image)
    sample = sat[::2, ::2] if sat.size > 1_000_000 else sat
    threshold = min(max(otsu_threshold(sample), min_threshold), max_threshold)
    return TissueMask(sat > threshold, threshold)


def laplacian_variance(image: RGB) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (0-255 scale)."""
    _check_rgb(image)
    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def laplacian_variances(patches: NDArray[np.uint8]) -> NDArray[np.float64]:
    """:func:`laplacian_variance` of each ``(N, H, W, 3)`` patch, vectorised."""
    if patches.ndim != 4 or patches.shape[-1] != 3 or patches.dtype != np.uint8:
        raise ValueError("expected RGB uint8 patches shaped (N, H, W, 3)")
    if patches.shape[1] < 3 or patches.shape[2] < 3:
        return np.zeros(len(patches), dtype=np.float64)
    grey = patches.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    lap = (
        grey[:, :-2, 1:-1]
        + grey[:, 2:, 1:-1]
        + grey[:, 1:-1, :-2]
        + grey[:, 1:-1, 2:]
        - 4 * grey[:, 1:-1, 1:-1]
    )
    out: NDArray[np.float64] = lap.reshape(len(patches), -1).var(axis=1).astype(np.float64)
    return out


def resample(image: RGB, scale: float) -> RGB:
    """``image`` scaled by ``scale`` (< 1 shrinks with a box filter, > 1 enlarges bilinearly)."""
    _check_rgb(image)
    if abs(scale - 1.0) < 1e-6:
        return image
    from PIL import Image

    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image).resize(size, method), dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: grid cell, top-left in the tiled (resampled) image and in the source image."""

    row: int
    col: int
    x: int
    y: int
    source_x: int
    source_y: int
    tissue_fraction: float


@dataclass(frozen=True, slots=True)
class TileSet:
    """The tissue tiles of one image, their patches and the grid they came from."""

    patches: NDArray[np.uint8]  # (N, patch, patch, 3), in ``tiles`` order
    tiles: tuple[Tile, ...]
    patch_size: int
    grid_rows: int
    grid_cols: int
    width: int  # of the tiled (resampled) image
    height: int
    scale: float  # tiled pixels per source pixel
    tissue_threshold: float
    tiles_total: int  # grid cells, tissue or not

    def __len__(self) -> int:
        return len(self.tiles)


def tile_image(
    image: RGB,
    *,
    patch_size: int,
    source_spacing_mm: float | None = None,
    target_spacing_mm: float | None = None,
    min_tissue_fraction: float = 0.5,
) -> TileSet:
    """Cut the tissue of ``image`` into ``patch_size`` patches at ``target_spacing_mm``.

    When either spacing is unknown the image is taken to be at the target scale already (a
    PNG patch, a secondary capture without Pixel Spacing).
    """
    _check_rgb(image)
    if patch_size <= 0 or not 0 <= min_tissue_fraction <= 1:
        raise ValueError("patch size must be positive and the tissue fraction in [0, 1]")
    scale = 1.0
    if source_spacing_mm and target_spacing_mm:
        scale = source_spacing_mm / target_spacing_mm
    tiled = resample(image, scale)
    mask = tissue_mask(tiled)
    rows, cols = tiled.shape[0] // patch_size, tiled.shape[1] // patch_size
    p = patch_size
    if rows == 0 or cols == 0:
        empty = np.zeros((0, p, p, 3), dtype=np.uint8)
        return TileSet(empty, (), p, rows, cols, tiled.shape[1], tiled.shape[0], scale,
                       mask.threshold, 0)  # fmt: skip
    fractions = mask.mask[: rows * p, : cols * p].reshape(rows, p, cols, p).mean(axis=(1, 3))
    keep_r, keep_c = np.nonzero(fractions >= max(min_tissue_fraction, 1e-9))
    grid = tiled[: rows * p, : cols * p].reshape(rows, p, cols, p, 3)
    patches = np.ascontiguousarray(grid[keep_r, :, keep_c])
    tiles = tuple(
        Tile(
            row=int(r),
            col=int(c),
            x=int(c) * p,
            y=int(r) * p,
            source_x=round(int(c) * p / scale),
            source_y=round(int(r) * p / scale),
            tissue_fraction=float(fractions[r, c]),
        )
        for r, c in zip(keep_r, keep_c, strict=True)
    )
    return TileSet(patches, tiles, p, rows, cols, tiled.shape[1], tiled.shape[0], scale,
                   mask.threshold, rows * cols)  # fmt: skip


def _colour_lut() -> NDArray[np.uint8]:
    anchors = np.array(_VIRIDIS, dtype=np.float64)
    positions = np.linspace(0.0, 1.0, len(anchors))
    steps = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(steps, positions, anchors[:, i]) for i in range(3)]
    return np.stack(channels, axis=1).round().astype(np.uint8)


def heatmap_size(background: RGB, *, max_side: int = 1024) -> tuple[int, int]:
    """``(width, height)`` of the PNG :func:`render_heatmap` makes over ``background``."""
    height, width = background.shape[:2]
    shrink = min(1.0, max_side / max(height, width))
    w, h = max(1, round(width * shrink)), max(1, round(height * shrink))
    return w + BAR_AREA_WIDTH, max(h, MIN_HEATMAP_HEIGHT)


def render_heatmap(
    background: RGB,
    tiles: TileSet,
    probabilities: Sequence[float],
    *,
    threshold: float,
    max_side: int = 1024,
    alpha: float = 0.45,
) -> bytes:
    """A PNG: per-tile probabilities over ``background``, a colour bar and the threshold.

    ``background`` is the tiled image or any thumbnail of the same field (it is scaled to the
    tile grid). Tiles are coloured by probability (viridis, 0 → 1); the bar on the right is
    marked 0, 0.5, 1 and the threshold with a line and its value. Size: :func:`heatmap_size`.
    """
    from PIL import Image, ImageDraw, ImageFont

    _check_rgb(background)
    if len(probabilities) != len(tiles.tiles):
        raise ValueError("one probability per tile is needed")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must lie in [0, 1]")
    lut = _colour_lut()
    width, height = heatmap_size(background, max_side=max_side)
    thumb_w = width - BAR_AREA_WIDTH
    thumb_h = max(1, round(background.shape[0] * thumb_w / background.shape[1]))
    base = Image.fromarray(background).resize((thumb_w, thumb_h), Image.Resampling.BILINEAR)
    overlay = np.zeros((max(tiles.grid_rows, 1), max(tiles.grid_cols, 1), 4), dtype=np.uint8)
    for tile, prob in zip(tiles.tiles, probabilities, strict=True):
        overlay[tile.row, tile.col, :3] = lut[round(min(max(float(prob), 0.0), 1.0) * 255)]
        overlay[tile.row, tile.col, 3] = round(alpha * 255)
    covered = (
        round(tiles.grid_cols * tiles.patch_size * thumb_w / max(tiles.width, 1)),
        round(tiles.grid_rows * tiles.patch_size * thumb_h / max(tiles.height, 1)),
    )
    layer = Image.new("RGBA", (thumb_w, thumb_h), (0, 0, 0, 0))
    if covered[0] > 0 and covered[1] > 0:
        layer.paste(Image.fromarray(overlay, "RGBA").resize(covered, Image.Resampling.NEAREST))
    image = Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(image, (0, 0))
    _draw_colour_bar(
        ImageDraw.Draw(canvas),
        ImageFont.load_default(),
        left=thumb_w,
        height=height,
        lut=lut,
        threshold=threshold,
    )
    out = io.BytesIO()
    # zlib level 1: on tissue images ~4x faster than Pillow's default 6 for ~5 % more bytes
    # (python -m bench imaging); the heatmap is encoded once per analysed image.
    canvas.save(out, format="PNG", optimize=False, compress_level=1)
    return out.getvalue()


def _draw_colour_bar(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    *,
    left: int,
    height: int,
    lut: NDArray[np.uint8],
    threshold: float,
) -> None:
    top, bottom = 12, height - 12
    x0, x1 = left + 12, left + 30
    span = max(bottom - top, 1)
    for y in range(top, bottom + 1):
        value = (bottom - y) / span
        draw.line([(x0, y), (x1, y)], fill=tuple(int(v) for v in lut[round(value * 255)]))
    draw.rectangle([x0, top, x1, bottom], outline=(0, 0, 0))
    for value in (0.0, 0.5, 1.0):
        y = bottom - round(value * span)
        draw.line([(x1, y), (x1 + 4, y)], fill=(0, 0, 0))
        draw.text((x1 + 6, y - 5), f"{value:.1f}", fill=(0, 0, 0), font=font)
    y = bottom - round(threshold * span)
    draw.line([(x0 - 4, y), (x1 + 4, y)], fill=(220, 0, 0), width=2)
    draw.text((x1 + 6, y + 4), f"t={threshold:.2f}", fill=(220, 0, 0), font=font)
