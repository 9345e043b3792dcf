"""Out-of-distribution and quality guard: patches the model must not be trusted on.

A patch is flagged, with a reason, when it is

- ``blank``: less than ``min_tissue_fraction`` of it is tissue (:func:`tiles.tissue_mask`,
  the same detector the tiler uses);
- ``blurred``: the variance of its Laplacian (:func:`tiles.laplacian_variance`) is below
  ``min_laplacian_variance``, half the 0.5th percentile of the training patches;
- ``colour``: its colour statistics (:func:`colour_features`: mean RGB, and the mean
  chromaticity of its tissue pixels) lie further from the training patches' than any but
  the most extreme 0.1 % of training patches, times a margin of 1.5. The distance is
  Mahalanobis (P. C. Mahalanobis, Proc Natl Inst Sci India 2:49-55, 1936) under the training
  covariance, shrunk towards its diagonal so a small training set still gives an invertible
  matrix. Immunohistochemistry (brown DAB on
  blue haematoxylin) or an unstained slide sits far from H&E's pink and purple.

The statistics are fitted on the training split by ``training`` and stored in the bundle
(:class:`inference.imaging.bundle.OodStatistics`); the predictor applies them. numpy only.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from inference.imaging.bundle import OodStatistics
from inference.imaging.tiles import laplacian_variances, tissue_masks

BLANK: Final = "blank"
BLURRED: Final = "blurred"
COLOUR: Final = "colour"
_SHRINK: Final = 0.1
_RIDGE: Final = 1e-6


def colour_features(patches: NDArray[np.uint8]) -> NDArray[np.float64]:
    """``(N, 6)``: mean R, G, B (0..1) of each patch, then the mean chromaticity
    ``(R, G, B) / (R + G + B)`` of its tissue pixels (all pixels when under 10 are tissue).

    Chromaticity is the stain's hue without its darkness: H&E tissue is pink to purple (green
    the weakest channel), DAB brown has blue the weakest.
    """
    if patches.ndim != 4 or patches.shape[-1] != 3 or patches.dtype != np.uint8:
        raise ValueError("expected RGB uint8 patches shaped (N, H, W, 3)")
    return _colour_features(patches, tissue_masks(patches))


def _colour_features(patches: NDArray[np.uint8], masks: NDArray[np.bool_]) -> NDArray[np.float64]:
    """:func:`colour_features` given each patch's tissue mask, for all patches at once."""
    count = patches.shape[0]
    out = np.zeros((count, 6), dtype=np.float64)
    if count == 0:
        return out
    pixels = patches.reshape(count, -1, 3).astype(np.float64) / 255.0
    tissue = masks.reshape(count, -1)
    # Tissue pixels only, or every pixel where fewer than 10 are tissue.
    chosen = np.where((tissue.sum(axis=1) >= 10)[:, None], tissue, True)
    chroma = pixels / np.maximum(pixels.sum(axis=2, keepdims=True), 1e-6)
    out[:, :3] = pixels.mean(axis=1)
    out[:, 3:] = (chroma * chosen[:, :, None]).sum(axis=1) / chosen.sum(axis=1)[:, None]
    return out


def _distances(
    features: NDArray[np.float64], mean: NDArray[np.float64], inverse: NDArray[np.float64]
) -> NDArray[np.float64]:
    centred = features - mean
    squared = np.einsum("ij,jk,ik->i", centred, inverse, centred)
    distances: NDArray[np.float64] = np.sqrt(np.maximum(squared, 0.0)).astype(np.float64)
    return distances


def fit_ood(
    patches: NDArray[np.uint8],
    *,
    min_tissue_fraction: float = 0.1,
    quantile: float = 0.999,
    margin: float = 1.5,
) -> OodStatistics:
    """Fit the guard on training patches ``(N, H, W, 3)`` (N ≥ 2)."""
    if len(patches) < 2:
        raise ValueError("the OOD guard needs at least two training patches")
    features = colour_features(patches)
    mean = features.mean(axis=0)
    covariance = np.cov(features, rowvar=False)
    shrunk = (1 - _SHRINK) * covariance + _SHRINK * np.diag(np.diag(covariance))
    inverse = np.linalg.pinv(shrunk + _RIDGE * np.eye(len(mean))).astype(np.float64)
    distances = _distances(features, mean, inverse)
    blur = laplacian_variances(patches)
    return OodStatistics(
        mean=[float(v) for v in mean],
        inverse_covariance=[[float(v) for v in row] for row in inverse],
        max_distance=float(np.quantile(distances, quantile) * margin) or 1.0,
        min_tissue_fraction=min_tissue_fraction,
        min_laplacian_variance=float(np.quantile(blur, 0.005) / 2),
    )


def ood_reasons(patches: NDArray[np.uint8], stats: OodStatistics) -> list[str | None]:
    """Per patch, why it is out of distribution (``blank``, ``blurred``, ``colour``) or None."""
    if len(patches) == 0:
        return []
    # Whole batches at once (tiles.tissue_masks / laplacian_variances): per patch, the same
    # numbers as tissue_mask(patch) and laplacian_variance(patch), an order of magnitude faster.
    masks = tissue_masks(patches)
    distances = _distances(
        _colour_features(patches, masks),
        np.asarray(stats.mean, dtype=np.float64),
        np.asarray(stats.inverse_covariance, dtype=np.float64),
    )
    fractions = masks.reshape(len(patches), -1).mean(axis=1)
    blur = laplacian_variances(patches)
    reasons: list[str | None] = []
    for fraction, variance, distance in zip(fractions, blur, distances, strict=True):
        if fraction < stats.min_tissue_fraction:
            reasons.append(BLANK)
        elif variance < stats.min_laplacian_variance:
            reasons.append(BLURRED)
        elif distance > stats.max_distance:
            reasons.append(COLOUR)
        else:
            reasons.append(None)
    return reasons
