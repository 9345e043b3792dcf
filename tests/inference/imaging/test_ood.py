"""The OOD guard: blank and IHC patches flagged; H&E-like patches from the fitted source pass.

Fitted on the two real IDC patches (CC0) and synthetic H&E-like textures
(:mod:`tests.training.patches`); the IHC tiles are real tissue from scikit-image's
immunohistochemistry sample (DAB brown on haematoxylin blue), which is not H&E.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.imaging.ood import BLANK, BLURRED, COLOUR, colour_features, fit_ood, ood_reasons
from inference.imaging.tiles import tissue_mask
from tests.training.patches import IDC, ihc_tiles, synthetic_patch


def _he_patches(seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    patches = [synthetic_patch(rng, i % 2, rng.normal(0, 10, 3)) for i in range(count)]
    real = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(IDC.glob("8863/*/*.png"))]
    return np.stack(patches + real)


def test_blank_ihc_and_blurred_are_flagged_he_passes() -> None:
    stats = fit_ood(_he_patches(0, 200))
    held_out = _he_patches(1, 100)[:100]
    passed = sum(r is None for r in ood_reasons(held_out, stats))
    assert passed >= 95
    white = np.full((1, 50, 50, 3), 245, dtype=np.uint8)
    assert ood_reasons(white, stats) == [BLANK]
    tissue = [t for t in ihc_tiles() if tissue_mask(t).fraction >= 0.5]
    assert len(tissue) >= 20
    reasons = ood_reasons(np.stack(tissue), stats)
    assert all(r in (COLOUR, BLURRED) for r in reasons), reasons
    # An H&E patch flattened to its mean colour keeps its tint but loses every edge.
    flat = np.broadcast_to(held_out[:1].mean(axis=(1, 2), keepdims=True), (1, 50, 50, 3))
    assert ood_reasons(flat.astype(np.uint8), stats) == [BLURRED]


def test_colour_features_by_hand() -> None:
    # 4x4 patch: the top row pure red (saturated: tissue), the rest grey 128 (not tissue).
    # Fewer than 10 tissue pixels, so chromaticity is over all 16: red rows (1, 0, 0) x 4,
    # grey (1/3, 1/3, 1/3) x 12 -> (4 + 4) / 16 = 0.5 for R, 4 / 16 = 0.25 for G and B.
    patch = np.full((1, 4, 4, 3), 128, dtype=np.uint8)
    patch[0, 0, :] = (255, 0, 0)
    features = colour_features(patch)[0]
    grey = 128 / 255
    expected = [(255 / 255 + 3 * grey) / 4, 3 * grey / 4, 3 * grey / 4, 0.5, 0.25, 0.25]
    assert features == pytest.approx(expected)
