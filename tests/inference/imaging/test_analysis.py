"""The image pipeline (inference.imaging.analysis): tissue tiles, calibration, OOD, heatmap, WSI.

Bundle: ``he_bundle`` (conftest: a real ``oncocds train`` run on the real IDC patches and
synthetic H&E-like textures). Images: the real IDC patches (tests/data/idc, CC0), scikit-image's
immunohistochemistry sample (real tissue, not H&E), and glass and blur made here. These are
plumbing tests: no test claims anything about the model's accuracy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from inference.imaging import bundle as layout
from inference.imaging.analysis import (
    Region,
    analyse_image,
    analyse_regions,
    model_identity,
    regions_of,
)
from inference.imaging.predictor import Predictor
from inference.imaging.tiles import tile_image, tissue_mask
from tests.inference.imaging.conftest import bundle_variant
from tests.training.patches import IDC, ihc_tiles, synthetic_patch

P = 50  # the bundle's patch size


@pytest.fixture(scope="module")
def predictor(he_bundle: Path) -> Predictor:
    return Predictor.load(he_bundle, device="cpu", threads=1, batch_size=16)


def idc(index: int) -> np.ndarray:
    paths = sorted(IDC.glob("8863/*/*.png"))
    with Image.open(paths[index]) as image:
        return np.asarray(image.convert("RGB"))


def glass(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(240, 2, (height, width, 3)), 0, 255).astype(np.uint8)


def he_field(rows: int, cols: int, seed: int = 5) -> np.ndarray:
    """A field of H&E-like tissue: synthetic textures with the real IDC patches among them."""
    rng = np.random.default_rng(seed)
    cells = [synthetic_patch(rng, i % 2, np.zeros(3)) for i in range(rows * cols)]
    cells[0], cells[-1] = idc(0), idc(1)
    grid = np.stack(cells).reshape(rows, cols, P, P, 3)
    return np.ascontiguousarray(grid.transpose(0, 2, 1, 3, 4).reshape(rows * P, cols * P, 3))


def slide_with_patches() -> tuple[np.ndarray, set[tuple[int, int]]]:
    """Glass (4 x 6 cells) with the two real IDC patches pasted into two cells."""
    slide = glass(4 * P, 6 * P)
    cells = {(1, 1): 0, (2, 4): 1}
    for (row, col), index in cells.items():
        slide[row * P : (row + 1) * P, col * P : (col + 1) * P] = idc(index)
    return slide, set(cells)


def test_background_cells_are_skipped_and_only_tissue_is_scored(
    predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    slide, tissue_cells = slide_with_patches()
    scored: list[int] = []
    logits = predictor.logits

    def counting(patches: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        scored.append(len(patches))
        return logits(patches, batch_size=batch_size)

    monkeypatch.setattr(predictor, "logits", counting)
    result = analyse_image(predictor, slide)
    assert sum(scored) == 2, "glass cells must never reach the network"
    assert result.tiles_total == 24  # 200/50 x 300/50
    assert {(t.row, t.col) for t in result.tiles} == tissue_cells
    assert result.tiles_tissue == 2
    assert {(t.source_x, t.source_y) for t in result.tiles} == {(50, 50), (200, 100)}
    assert (result.width, result.height) == (300, 200)
    # The same cells as the tiler's own (independent) implementation finds.
    reference = tile_image(slide, patch_size=P)
    assert {(t.row, t.col) for t in reference.tiles} == tissue_cells


def test_an_all_glass_image_is_indeterminate_with_no_tissue(predictor: Predictor) -> None:
    result = analyse_image(predictor, glass(150, 200))
    assert result.outcome == "indeterminate"
    assert result.reasons == ("no tissue",)
    assert result.tiles_tissue == 0
    assert result.tiles == ()
    assert result.max_probability is None
    assert result.mean_probability is None
    assert result.tiles_total == 12


def test_h_and_e_tissue_is_analysed_not_indeterminate(predictor: Predictor) -> None:
    image = he_field(3, 4)
    result = analyse_image(predictor, image)
    assert result.outcome in ("positive", "negative")
    assert result.reasons == ()
    assert result.tiles_tissue == 12
    # The toy bundle's guard may set a tile aside (it saw few patches), never half of them.
    assert result.tiles_indeterminate < result.tiles_tissue / 2
    analysed = [t for t in result.tiles if t.indeterminate is None]
    probabilities = [t.probability for t in analysed]
    assert result.max_probability == pytest.approx(max(probabilities))
    assert result.mean_probability == pytest.approx(float(np.mean(probabilities)))
    # The share of tissue *area*: each tile weighted by its tissue pixels, found here with the
    # tiler's whole-image mask (tiles.tissue_mask), not with the pipeline's histograms.
    mask = tissue_mask(image).mask
    weight = {(t.row, t.col): mask[t.source_y : t.source_y + P, t.source_x : t.source_x + P].mean()
              for t in analysed}  # fmt: skip
    above = sum(weight[t.row, t.col] for t in analysed if t.probability >= predictor.threshold)
    assert result.positive_fraction == pytest.approx(above / sum(weight.values()), abs=1e-3)
    assert (result.outcome == "positive") == (above > 0)


def test_a_sharp_image_in_other_stain_colours_is_not_h_and_e_like(predictor: Predictor) -> None:
    # The H&E field with its colour channels rotated (pink/purple -> blue/green): same tissue
    # and edges, another stain's colours.
    recoloured = np.ascontiguousarray(he_field(3, 4)[:, :, [1, 2, 0]])
    result = analyse_image(predictor, recoloured)
    assert result.tiles_tissue == 12
    assert result.outcome == "indeterminate"
    assert result.reasons == ("not H&E-like",), result.reasons


def test_immunohistochemistry_is_indeterminate(predictor: Predictor) -> None:
    tiles = ihc_tiles()[:20]
    image = np.concatenate([np.concatenate(tiles[i : i + 5], axis=1) for i in (0, 5, 10, 15)])
    result = analyse_image(predictor, image)
    assert result.tiles_tissue >= 10
    assert result.outcome == "indeterminate"
    # DAB brown on haematoxylin; its texture also reads as soft next to H&E at this scale.
    assert set(result.reasons) <= {"not H&E-like", "blurred"}
    assert result.reasons
    assert result.tiles_indeterminate >= result.tiles_tissue / 2


def test_a_blurred_h_and_e_image_is_indeterminate_blurred(predictor: Predictor) -> None:
    sharp = he_field(3, 4)
    blurred = np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(6)))
    result = analyse_image(predictor, blurred)
    assert result.tiles_tissue >= 6  # still stained: tissue, but without edges
    assert result.outcome == "indeterminate"
    assert result.reasons[0] == "blurred", result.reasons


def test_heatmap_png_decodes_at_the_thumbnail_size(predictor: Predictor) -> None:
    slide, _ = slide_with_patches()  # 300 x 200: thumbnail as is, 96 px colour bar, min 160 high
    png = analyse_image(predictor, slide).heatmap_png
    assert png is not None
    with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
        assert image.size == (300 + 96, 200)
    large = np.tile(slide, (6, 7, 1))  # 2100 x 1200: shrunk to 512 x 293 (HEATMAP_MAX_SIDE)
    png = analyse_image(predictor, large, keep_tiles=False).heatmap_png
    assert png is not None
    with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
        assert image.size == (512 + 96, 293)
    png = analyse_image(predictor, large, keep_tiles=False, heatmap_max_side=1024).heatmap_png
    assert png is not None
    with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
        assert image.size == (1024 + 96, 585)
    assert analyse_image(predictor, slide, heatmap=False).heatmap_png is None


def test_heatmap_colours_analysed_tissue_cells_only(predictor: Predictor) -> None:
    slide = glass(4 * P, 4 * P)
    slide[P : 3 * P, P : 3 * P] = he_field(2, 2)
    result = analyse_image(predictor, slide)
    assert result.heatmap_png is not None
    with Image.open(io.BytesIO(result.heatmap_png)) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    original = slide.astype(int)
    # Glass keeps its colour (the thumbnail is the image itself at this size) ...
    assert np.abs(pixels[5:45, 5:45] - original[5:45, 5:45]).max() <= 2
    # ... an analysed tissue cell is blended with the colour map; a set-aside one is not.
    for tile in result.tiles:
        y, x = tile.source_y, tile.source_x
        change = np.abs(pixels[y : y + P, x : x + P] - original[y : y + P, x : x + P]).mean()
        assert (change > 10) == (tile.indeterminate is None), (tile, change)
    assert any(t.indeterminate is None for t in result.tiles)


def _logit_by_hand(network: torch.nn.Module, patch: np.ndarray) -> float:
    """The network on one patch, preprocessed here by hand (0..255 -> -1..1)."""
    x = torch.from_numpy(patch.astype(np.float32) / 255.0 * 2.0 - 1.0).permute(2, 0, 1)[None]
    with torch.inference_mode():
        return float(network(x).reshape(-1)[0])


def test_temperature_is_applied_to_every_tile(he_bundle: Path, tmp_path: Path) -> None:
    slide, _ = slide_with_patches()
    results = {}
    for temperature in (0.5, 4.0):
        path = bundle_variant(he_bundle, tmp_path / f"t{temperature}", temperature=temperature)
        predictor = Predictor.load(path, device="cpu", threads=1)
        results[temperature] = analyse_image(predictor, slide, heatmap=False)
        for tile in results[temperature].tiles:
            patch = slide[tile.source_y : tile.source_y + P, tile.source_x : tile.source_x + P]
            logit = _logit_by_hand(predictor.network, patch)
            expected = 1.0 / (1.0 + np.exp(-logit / temperature))
            assert tile.probability == pytest.approx(expected, abs=1e-5)
    cold, warm = results[0.5].tiles, results[4.0].tiles
    # A higher temperature pulls every probability towards 0.5.
    for a, b in zip(cold, warm, strict=True):
        assert abs(b.probability - 0.5) < abs(a.probability - 0.5)
    assert results[0.5].model.temperature == 0.5


def test_model_identity_names_the_bundle(he_bundle: Path, predictor: Predictor) -> None:
    meta = json.loads((he_bundle / layout.METADATA).read_text())
    identity = model_identity(predictor.info)
    assert (identity.name, identity.version) == (meta["name"], meta["version"])
    assert (
        identity.bundle_sha256
        == hashlib.sha256((he_bundle / layout.CHECKSUMS).read_bytes()).hexdigest()
    )
    assert (
        identity.weights_sha256
        == hashlib.sha256((he_bundle / layout.WEIGHTS).read_bytes()).hexdigest()
    )
    assert identity.network == "ResNet"
    assert identity.patch_size == 50
    assert identity.temperature == meta["calibration"]["temperature"]
    assert identity.threshold == meta["calibration"]["threshold"]


def test_stored_form_round_trips(predictor: Predictor) -> None:
    slide, _ = slide_with_patches()
    result = analyse_image(predictor, slide)
    again = type(result).from_json(json.loads(json.dumps(result.to_json())))
    assert again == dataclasses.replace(result, heatmap_png=None)


def test_regions_in_row_order_give_the_whole_image_result(predictor: Predictor) -> None:
    slide = glass(6 * P + 20, 7 * P + 10)
    slide[30 : 30 + 3 * P, 40 : 40 + 4 * P] = he_field(3, 4)
    whole = analyse_image(predictor, slide)
    streamed = analyse_regions(
        predictor, regions_of(slide, tile=64), width=slide.shape[1], height=slide.shape[0]
    )
    assert whole.tiles_tissue > 0
    assert streamed.tiles == whole.tiles
    assert streamed.positive_fraction == whole.positive_fraction
    assert streamed.heatmap_png is not None


def test_regions_at_another_magnification_are_resampled(he_bundle: Path, tmp_path: Path) -> None:
    # The model at 0.002 mm/px, the image at 0.001 mm/px: tiled at half size.
    path = bundle_variant(he_bundle, tmp_path / "spacing", pixel_spacing_mm=0.002)
    predictor = Predictor.load(path, device="cpu", threads=1)
    slide = glass(8 * P + 30, 12 * P)
    slide[: 4 * P, : 6 * P] = he_field(4, 6)
    whole = analyse_image(predictor, slide, spacing_mm=0.001)
    assert whole.tiles_total == 4 * 6  # (430 / 2) // 50 rows x (600 / 2) // 50 columns
    streamed = analyse_regions(
        predictor,
        regions_of(slide, tile=96),
        width=slide.shape[1],
        height=slide.shape[0],
        spacing_mm=0.001,
    )
    assert [(t.row, t.col) for t in streamed.tiles] == [(t.row, t.col) for t in whole.tiles]
    assert {(t.row, t.col) for t in whole.tiles} == {(r, c) for r in range(2) for c in range(3)}
    assert all(t.source_x == 100 * t.col and t.source_y == 100 * t.row for t in whole.tiles)
    for a, b in zip(streamed.tiles, whole.tiles, strict=True):
        assert a.probability == pytest.approx(b.probability, abs=1e-4)


def test_a_slide_read_region_by_region_keeps_few_regions_alive(predictor: Predictor) -> None:
    """Bounded memory: regions already tiled are released while the slide streams in."""
    rows, cols, side = 24, 4, P
    field = he_field(rows, cols)
    alive: list[weakref.ref[np.ndarray]] = []
    peak = [0]

    def frames() -> Iterator[Region]:
        for y in range(0, rows * side, side):
            for x in range(0, cols * side, side):
                pixels = field[y : y + side, x : x + side].copy()  # a freshly decoded frame
                alive.append(weakref.ref(pixels))
                peak[0] = max(peak[0], sum(r() is not None for r in alive))
                yield Region(x, y, pixels)

    result = analyse_regions(
        predictor, frames(), width=cols * side, height=rows * side, heatmap=False
    )
    assert result.tiles_tissue == rows * cols
    assert len(alive) == rows * cols
    assert peak[0] <= 3 * cols, f"{peak[0]} of {rows * cols} frames held at once"


def test_regions_out_of_row_order_are_refused(predictor: Predictor) -> None:
    slide = he_field(2, 2)
    regions = [Region(0, P, slide[P:, :P]), Region(0, 0, slide[:P, :P])]
    with pytest.raises(ValueError, match="row order"):
        analyse_regions(predictor, regions, width=2 * P, height=2 * P)
    with pytest.raises(ValueError, match="outside"):
        analyse_regions(predictor, [Region(P, 0, slide)], width=2 * P, height=2 * P)
