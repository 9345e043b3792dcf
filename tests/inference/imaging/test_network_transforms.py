"""The network factory's allowlist and the shared preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from inference.errors import ModelBundleError
from inference.imaging.network import build_network, network_def
from inference.imaging.transforms import apply, augment, preprocess, to_tensor


def test_only_allowlisted_networks_are_built() -> None:
    with pytest.raises(ModelBundleError, match="not an allowed network"):
        build_network({"_target_": "os.system", "command": "true"})
    with pytest.raises(ModelBundleError, match="refused its arguments"):
        build_network({"_target_": "monai.networks.nets.ResNet", "no_such_argument": 1})
    with pytest.raises(ValueError, match="download"):
        network_def("efficientnet-b0", {"pretrained": True})
    with pytest.raises(ValueError, match="unknown network"):
        network_def("vgg")


def test_presets_build_a_one_logit_2d_network() -> None:
    import torch

    net = build_network(
        network_def("resnet", {"layers": [1, 1, 1, 1], "block_inplanes": [4, 8, 16, 32]})
    )
    with torch.inference_mode():
        out = net.eval()(torch.zeros(2, 3, 50, 50))
    assert tuple(out.shape) == (2, 1)


def test_preprocess_maps_0_255_to_minus_one_one_and_batches_like_single_patches() -> None:
    import torch

    rng = np.random.default_rng(0)
    patches = rng.integers(0, 256, (3, 50, 50, 3), dtype=np.uint8)
    patches[0, 0, 0] = (0, 128, 255)
    batch = apply(preprocess(), to_tensor(patches))
    assert type(batch) is torch.Tensor  # not a MetaTensor
    assert tuple(batch.shape) == (3, 3, 50, 50)
    assert batch[0, :, 0, 0].tolist() == pytest.approx([-1.0, 128 / 127.5 - 1, 1.0], abs=1e-6)
    single = apply(preprocess(), to_tensor(patches[1]))
    assert torch.equal(single, batch[1])


def test_augment_keeps_shape_and_is_seeded() -> None:
    import torch

    x = apply(preprocess(), to_tensor(np.full((50, 50, 3), 120, dtype=np.uint8)))
    x[:, 0, 0] = 1.0
    a, b = augment(), augment()
    a.set_random_state(seed=4)
    b.set_random_state(seed=4)
    out_a = [apply(a, x) for _ in range(5)]
    out_b = [apply(b, x) for _ in range(5)]
    assert all(torch.equal(p, q) for p, q in zip(out_a, out_b, strict=True))
    assert all(tuple(p.shape) == (3, 50, 50) for p in out_a)
    assert not all(torch.equal(p, x) for p in out_a)
