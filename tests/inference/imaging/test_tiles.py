"""Tissue detection, tiling coordinates, blur measure and heatmaps (inference.imaging.tiles).

Images: the real IDC patches (tests/data/idc, CC0) and scikit-image's immunohistochemistry
sample; blank tiles are made here. These tests check the machinery, not any diagnostic claim.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from skimage import data
from skimage.filters import threshold_otsu

from inference.imaging import tiles as t

IDC = sorted((Path(__file__).resolve().parents[2] / "data" / "idc").rglob("*.png"))


def ihc() -> np.ndarray:
    return np.asarray(data.immunohistochemistry(), dtype=np.uint8)


def idc_patch(i: int) -> np.ndarray:
    with Image.open(IDC[i]) as image:
        return np.asarray(image.convert("RGB"))


def test_otsu_matches_scikit_image_on_the_ihc_saturation() -> None:
    sat = t.saturation(ihc())
    ours = t.otsu_threshold(sat)
    reference = float(threshold_otsu(sat, nbins=256))
    assert abs(ours - reference) <= 1 / 256 + 1e-6


def test_blank_glass_has_no_tissue_tiles() -> None:
    rng = np.random.default_rng(1)
    glass = np.clip(rng.normal(238, 3, size=(200, 200, 3)), 0, 255).astype(np.uint8)
    result = t.tile_image(glass, patch_size=50)
    assert result.tiles_total == 16
    assert len(result) == 0
    assert result.patches.shape == (0, 50, 50, 3)


def test_black_border_is_not_tissue() -> None:
    assert t.tile_image(np.zeros((100, 100, 3), np.uint8), patch_size=50).tiles == ()


def test_tissue_tiles_are_kept_and_glass_beside_them_is_skipped() -> None:
    tissue = ihc()[:256, :256]
    slide = np.full((256, 512, 3), 242, dtype=np.uint8)
    slide[:, :256] = tissue
    result = t.tile_image(slide, patch_size=64)
    assert (result.grid_rows, result.grid_cols) == (4, 8)
    assert len(result) >= 12  # the IHC crop is almost all tissue (4x4 cells)
    assert all(tile.x < 256 for tile in result.tiles), "glass tiles must be skipped"
    assert result.tissue_threshold == pytest.approx(np.clip(result.tissue_threshold, 0.05, 0.2))


@pytest.mark.parametrize("index", [0, 1])
def test_real_idc_patch_is_one_tissue_tile(index: int) -> None:
    patch = idc_patch(index)
    result = t.tile_image(patch, patch_size=50)
    assert len(result) == 1
    assert np.array_equal(result.patches[0], patch)
    assert result.tiles[0].tissue_fraction > 0.5


def test_tile_coordinates_and_patches_match_the_image() -> None:
    image = ihc()[:150, :250]
    result = t.tile_image(image, patch_size=50, min_tissue_fraction=0.0)
    assert (result.grid_rows, result.grid_cols) == (3, 5)
    assert [(tile.row, tile.col) for tile in result.tiles][:6] == [
        (0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0),
    ]  # fmt: skip
    for tile, patch in zip(result.tiles, result.patches, strict=True):
        assert (tile.x, tile.y) == (tile.col * 50, tile.row * 50)
        assert np.array_equal(patch, image[tile.y : tile.y + 50, tile.x : tile.x + 50])


def test_partial_edge_tiles_are_not_cut() -> None:
    result = t.tile_image(ihc()[:120, :170], patch_size=50, min_tissue_fraction=0.0)
    assert (result.grid_rows, result.grid_cols) == (2, 3)
    assert len(result) == 6


def test_tiling_resamples_to_the_target_spacing() -> None:
    image = ihc()[:200, :400]
    result = t.tile_image(
        image, patch_size=50, source_spacing_mm=0.0005, target_spacing_mm=0.001,
        min_tissue_fraction=0.0,
    )  # fmt: skip
    assert result.scale == 0.5
    assert (result.width, result.height) == (200, 100)
    assert (result.grid_rows, result.grid_cols) == (2, 4)
    last = result.tiles[-1]
    assert (last.x, last.y, last.source_x, last.source_y) == (150, 50, 300, 100)
    # A box-filtered 2x reduction is the mean of each 2x2 block.
    block = image[:100, :100].reshape(50, 2, 50, 2, 3).mean(axis=(1, 3))
    assert np.abs(result.patches[0].astype(float) - block).max() <= 1.0


def test_laplacian_variance_separates_sharp_from_blurred() -> None:
    sharp = ihc()[:200, :200]
    blurred = np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(4)))
    assert t.laplacian_variance(sharp) > 10 * t.laplacian_variance(blurred)
    assert t.laplacian_variance(np.full((50, 50, 3), 200, np.uint8)) == 0.0


def _decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_heatmap_png_has_the_expected_size_colours_and_threshold_mark() -> None:
    slide = np.full((200, 300, 3), 240, dtype=np.uint8)
    slide[:100, :100] = ihc()[:100, :100]
    slide[100:200, 200:300] = ihc()[100:200, 100:200]
    tiled = t.tile_image(slide, patch_size=100)
    assert [(tile.row, tile.col) for tile in tiled.tiles] == [(0, 0), (1, 2)]
    png = t.render_heatmap(slide, tiled, [1.0, 0.0], threshold=0.25, alpha=1.0)
    image = _decode(png)
    assert image.shape == (200, 300 + 96, 3)  # thumbnail + the 96 px colour-bar area
    assert tuple(image[50, 50]) == (253, 231, 37)  # probability 1: viridis yellow
    assert tuple(image[150, 250]) == (68, 1, 84)  # probability 0: viridis purple
    assert tuple(image[50, 250]) == (240, 240, 240)  # glass: no colour
    bar = image[:, 300:]
    red_rows = np.nonzero((bar[:, :, 0] > 200) & (bar[:, :, 1] < 40) & (bar[:, :, 2] < 40))[0]
    # bar from y=12 (1.0) to y=188 (0.0): threshold 0.25 sits at 188 - 0.25 * 176 = 144.
    assert 142 <= red_rows.min() <= 146


def test_heatmap_is_scaled_down_to_max_side() -> None:
    image = ihc()
    tiled = t.tile_image(image, patch_size=64)
    png = t.render_heatmap(image, tiled, [0.5] * len(tiled), threshold=0.5, max_side=256)
    assert _decode(png).shape == (256, 256 + 96, 3)


def test_heatmap_refuses_a_probability_count_unlike_the_tiles() -> None:
    tiled = t.tile_image(ihc()[:100, :100], patch_size=50)
    with pytest.raises(ValueError, match="one probability per tile"):
        t.render_heatmap(ihc()[:100, :100], tiled, [0.1], threshold=0.5)
