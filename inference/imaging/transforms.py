"""Patch preprocessing and training augmentations (MONAI transforms), defined once.

Training (``training.data``) and serving (:class:`inference.imaging.predictor.Predictor`) both
import :func:`preprocess`, so the network sees the same numbers in both. Patches arrive as RGB
``uint8`` arrays, ``(H, W, 3)`` for one patch or ``(N, H, W, 3)`` for a batch. :func:`to_tensor`
moves the channel axis first (``(3, H, W)`` / ``(N, 3, H, W)``, float32), and :func:`preprocess`
maps 0..255 to -1..1 with MONAI's ``ScaleIntensityRange``, an element-wise transform that works
the same on one patch and on a batch.

Augmentations (training only, on one preprocessed patch): flips on both axes and 90° rotations
(tissue has no orientation), and colour jitter as a per-channel scale and shift, which stands in
for stain variation between laboratories (Tellez et al., Med Image Anal 58:101544, 2019,
doi:10.1016/j.media.2019.101544, found colour augmentation the most useful single step).
torch and MONAI are imported when a function is called, not when this module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import torch
    from monai.transforms.compose import Compose

INPUT_RANGE: Final = (0.0, 255.0)
OUTPUT_RANGE: Final = (-1.0, 1.0)


def to_tensor(patches: NDArray[np.uint8]) -> torch.Tensor:
    """``(H, W, 3)`` or ``(N, H, W, 3)`` uint8 to a channel-first float32 tensor (0..255)."""
    import torch

    if patches.dtype != np.uint8 or patches.ndim not in (3, 4) or patches.shape[-1] != 3:
        raise ValueError("expected RGB uint8 patches shaped (H, W, 3) or (N, H, W, 3)")
    tensor = torch.from_numpy(np.ascontiguousarray(patches))
    order = (2, 0, 1) if patches.ndim == 3 else (0, 3, 1, 2)
    return tensor.permute(*order).contiguous().float()


def preprocess() -> Compose:
    """0..255 → -1..1, element-wise (one patch or a batch); the serving and training input."""
    from monai.transforms.compose import Compose
    from monai.transforms.intensity.array import ScaleIntensityRange

    return Compose(
        [
            ScaleIntensityRange(
                a_min=INPUT_RANGE[0],
                a_max=INPUT_RANGE[1],
                b_min=OUTPUT_RANGE[0],
                b_max=OUTPUT_RANGE[1],
                clip=True,
            )
        ]
    )


def apply(transform: Compose, tensor: torch.Tensor) -> torch.Tensor:
    """Run a MONAI transform and return a plain tensor (MONAI wraps results in MetaTensor,
    whose metadata tracking would slow every later operation on a training or serving path)."""
    from monai.data.meta_tensor import MetaTensor

    out = transform(tensor)
    if isinstance(out, MetaTensor):
        return out.as_tensor()
    assert isinstance(out, type(tensor))
    return out


def augment(*, colour_jitter: float = 0.1) -> Compose:
    """Training augmentations for one preprocessed ``(3, H, W)`` patch."""
    from monai.transforms.compose import Compose
    from monai.transforms.intensity.array import RandScaleIntensity, RandShiftIntensity
    from monai.transforms.spatial.array import RandFlip, RandRotate90

    return Compose(
        [
            RandFlip(prob=0.5, spatial_axis=0),
            RandFlip(prob=0.5, spatial_axis=1),
            RandRotate90(prob=0.5, max_k=3, spatial_axes=(0, 1)),
            RandScaleIntensity(factors=colour_jitter, prob=0.8, channel_wise=True),
            RandShiftIntensity(offsets=colour_jitter, prob=0.8, channel_wise=True),
        ]
    )
