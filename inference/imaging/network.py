"""The classifier network, built from a MONAI ``network_def`` (``_target_`` form).

A bundle's ``configs/inference.json`` holds ``network_def`` as the MONAI Bundle spec writes it
(``{"_target_": "monai.networks.nets.ResNet", ...}``). We build it ourselves rather than with
``monai.bundle.ConfigParser``, so a bundle can only name the classes in :data:`ALLOWED_TARGETS`
(``_target_`` would otherwise import any callable). The network has one output, the logit of
the positive class (IDC); the calibrated probability is ``sigmoid(logit / temperature)``.
"""

from __future__ import annotations

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
}


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
