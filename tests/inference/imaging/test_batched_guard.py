"""The OOD guard's batched measures give each patch's own per-patch numbers.

``tiles.tissue_masks`` / ``tiles.laplacian_variances`` (and through them ``ood.colour_features``
and ``ood.ood_reasons``) work on a whole batch at once; they must agree with the per-patch
definitions (``tiles.tissue_mask``, ``tiles.laplacian_variance``) and a per-patch loop written
here. Patches: the real IDC patches (tests/data/idc, CC0), scikit-image's IHC tiles, synthetic
H&E-like textures, glass and a flat colour. Machinery only, no diagnostic claim.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.imaging import ood
from inference.imaging import tiles as t
from tests.training.patches import IDC, ihc_tiles, synthetic_patch


def _patches() -> np.ndarray:
    rng = np.random.default_rng(11)
    real = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(IDC.glob("8863/*/*.png"))]
    synthetic = [synthetic_patch(rng, i % 2, rng.normal(0, 10, 3)) for i in range(12)]
    glass = np.clip(rng.normal(240, 2, (50, 50, 3)), 0, 255).astype(np.uint8)
    flat = np.full((50, 50, 3), (200, 120, 180), dtype=np.uint8)
    half = glass.copy()
    half[:, :25] = synthetic[0][:, :25]
    return np.stack(real + synthetic + ihc_tiles()[:12] + [glass, flat, half])


def _features_by_loop(patches: np.ndarray) -> np.ndarray:
    out = []
    for patch in patches:
        pixels = patch.reshape(-1, 3).astype(np.float64) / 255.0
        tissue = t.tissue_mask(patch).mask.reshape(-1)
        chosen = pixels[tissue] if tissue.sum() >= 10 else pixels
        chroma = chosen / np.maximum(chosen.sum(axis=1, keepdims=True), 1e-6)
        out.append([*pixels.mean(axis=0), *chroma.mean(axis=0)])
    return np.array(out)


def test_batched_tissue_masks_equal_per_patch_masks() -> None:
    patches = _patches()
    masks = t.tissue_masks(patches)
    for patch, mask in zip(patches, masks, strict=True):
        assert np.array_equal(mask, t.tissue_mask(patch).mask)
    assert t.tissue_masks(patches[:0]).shape == (0, 50, 50)


def test_batched_laplacian_variances_equal_per_patch() -> None:
    patches = _patches()
    expected = [t.laplacian_variance(p) for p in patches]
    assert t.laplacian_variances(patches) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_colour_features_equal_a_per_patch_loop() -> None:
    patches = _patches()
    assert ood.colour_features(patches) == pytest.approx(_features_by_loop(patches), abs=1e-12)


def test_ood_reasons_equal_per_patch_rules() -> None:
    patches = _patches()
    stats = ood.fit_ood(patches[:14])
    features = _features_by_loop(patches)
    mean = np.asarray(stats.mean)
    inverse = np.asarray(stats.inverse_covariance)
    expected: list[str | None] = []
    for patch, feature in zip(patches, features, strict=True):
        distance = float(np.sqrt(max((feature - mean) @ inverse @ (feature - mean), 0.0)))
        if t.tissue_mask(patch).fraction < stats.min_tissue_fraction:
            expected.append(ood.BLANK)
        elif t.laplacian_variance(patch) < stats.min_laplacian_variance:
            expected.append(ood.BLURRED)
        elif distance > stats.max_distance:
            expected.append(ood.COLOUR)
        else:
            expected.append(None)
    assert ood.ood_reasons(patches, stats) == expected
    assert {ood.BLANK, ood.BLURRED, ood.COLOUR} & set(expected), "the set must exercise the rules"
