"""Training and inference throughput of the IDC patch classifier, each against bare torch.

Network: MONAI ResNet-18 (2-D, one logit; the ``resnet18`` preset), 50x50 RGB patches (tiles
of scikit-image's IHC sample, repeated), CPU, torch threads = 2.

- **training**: one epoch of ``training.train`` (shared MONAI preprocessing per batch, MONAI
  augmentations per patch, BCE with class weights, AdamW, cosine schedule) against a bare loop
  over the same network architecture (same seed) and the same patches already as float tensors
  (forward, loss, backward, AdamW step; nothing else). Figure: patches/s; overhead = 1 - ratio.
- **inference**: ``Predictor.predict`` on a bundle exported from the same network (uint8 →
  tensor, preprocessing, batched forward under ``inference_mode``, calibration, threshold, OOD
  guard) and ``Predictor.logits`` (no OOD guard), against the raw network forward on the same
  patches already as a preprocessed float tensor under ``inference_mode``.

Run: ``nice python -m bench training`` (a few minutes on 2 shared cores). Figures are the best
of 3 interleaved rounds.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

TRAIN_PATCHES = 128
INFER_PATCHES = 512
BATCH = 64
ROUNDS = 3
THREADS = 2


def _patches(n: int) -> np.ndarray:
    from skimage import data

    ihc = np.asarray(data.immunohistochemistry(), dtype=np.uint8)
    tiles = [ihc[y : y + 50, x : x + 50] for y in range(0, 500, 50) for x in range(0, 500, 50)]
    return np.stack([tiles[i % len(tiles)] for i in range(n)])


def _interleaved(*fns: Callable[[], None], rounds: int = ROUNDS) -> list[float]:
    """Best time of each function over ``rounds`` rounds, run in turn within each round (the
    machine is shared: interleaving exposes every side to the same load)."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _training(tmp: Path) -> None:
    import torch

    from inference.imaging.network import build_network, network_def
    from inference.imaging.transforms import apply, preprocess, to_tensor
    from training.config import Config, DataConfig, NetworkConfig, OutputConfig, TrainConfig
    from training.data import PatchArrays
    from training.train import _Session

    images = _patches(TRAIN_PATCHES)
    labels = np.arange(TRAIN_PATCHES, dtype=np.int64) % 2
    arrays = PatchArrays((), images, labels, np.array(["x"] * TRAIN_PATCHES))
    config = Config(
        data=DataConfig(root=tmp),
        network=NetworkConfig(name="resnet18"),
        train=TrainConfig(epochs=ROUNDS + 2, batch_size=BATCH, threads=THREADS),
        output=OutputConfig(dir=tmp / "out"),
    )
    session = _Session(config, arrays)
    epoch = [0]

    def ours() -> None:
        epoch[0] += 1
        session.epoch(epoch[0], arrays, lambda event, fields: None)

    torch.manual_seed(0)
    net = build_network(network_def("resnet18"))
    net.train()
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = apply(preprocess(), to_tensor(images))
    y = torch.as_tensor(labels, dtype=torch.float32)

    def bare() -> None:
        for start in range(0, TRAIN_PATCHES, BATCH):
            optimiser.zero_grad()
            loss = loss_fn(net(x[start : start + BATCH]).reshape(-1), y[start : start + BATCH])
            loss.backward()
            optimiser.step()

    bare()  # warm-up both
    ours()
    t_bare, t_ours = _interleaved(bare, ours)
    r_bare, r_ours = TRAIN_PATCHES / t_bare, TRAIN_PATCHES / t_ours
    print(f"training  ResNet-18, {TRAIN_PATCHES} patches/epoch, batch {BATCH}, {THREADS} threads")
    print(f"  bare torch loop : {r_bare:8.1f} patches/s")
    print(f"  oncocds epoch   : {r_ours:8.1f} patches/s")
    print(f"  ratio {r_ours / r_bare:.3f}  (overhead {100 * (1 - r_ours / r_bare):.1f} %)")


def _inference(tmp: Path) -> None:
    import torch

    from inference.imaging import bundle as layout
    from inference.imaging.network import build_network, network_def
    from inference.imaging.ood import fit_ood
    from inference.imaging.predictor import Predictor
    from inference.imaging.transforms import apply, preprocess, to_tensor

    images = _patches(INFER_PATCHES)
    torch.manual_seed(0)
    definition = network_def("resnet18")
    net = build_network(definition).eval()
    # A minimal bundle of this network, through the real writer and verifier.
    root = tmp / "bundle"
    for sub in ("configs", "models", "docs"):
        (root / sub).mkdir(parents=True)
    torch.save(net.state_dict(), root / layout.WEIGHTS)
    (root / layout.INFERENCE).write_text(json.dumps({"network_def": definition}))
    (root / layout.MODEL_CARD).write_text("bench bundle\n")
    (root / layout.METADATA).write_text(json.dumps(_metadata(fit_ood(images[:200]))))
    layout.write_checksums(root)
    predictor = Predictor.load(root, device="cpu", threads=THREADS, batch_size=BATCH)
    x = apply(preprocess(), to_tensor(images))

    def raw() -> None:
        with torch.inference_mode():
            for start in range(0, INFER_PATCHES, BATCH):
                net(x[start : start + BATCH])

    raw()
    predictor.predict(images)
    t_raw, t_logits, t_predict = _interleaved(
        raw, lambda: predictor.logits(images), lambda: predictor.predict(images)
    )
    r_raw, r_log, r_pred = (INFER_PATCHES / t for t in (t_raw, t_logits, t_predict))
    print(f"inference ResNet-18, {INFER_PATCHES} patches, batch {BATCH}, {THREADS} threads")
    print(f"  raw forward (preprocessed tensor) : {r_raw:8.1f} patches/s")
    print(
        f"  Predictor.logits (uint8 in)       : {r_log:8.1f} patches/s  ratio {r_log / r_raw:.3f}"
    )
    print(
        f"  Predictor.predict (+calib, OOD)   : {r_pred:8.1f} patches/s  ratio {r_pred / r_raw:.3f}"
    )


def _metadata(ood: object) -> dict[str, object]:
    fmt = {
        "type": "image",
        "format": "RGB",
        "num_channels": 3,
        "spatial_shape": [50, 50],
        "dtype": "float32",
        "value_range": [-1, 1],
    }
    return {
        "schema": "oncocds-imaging-bundle/1",
        "name": "bench",
        "version": "0.0.0",
        "monai_version": "-",
        "pytorch_version": "-",
        "numpy_version": "-",
        "task": "bench",
        "description": "bench",
        "authors": "bench",
        "copyright": "bench",
        "intended_use": "benchmark only",
        "network_data_format": {"inputs": {"image": fmt}, "outputs": {"pred": fmt}},
        "class_names": ["non-IDC", "IDC"],
        "preprocessing": {"patch_size": 50, "input_range": [0, 255], "output_range": [-1, 1]},
        "calibration": {"temperature": 1.5, "threshold": 0.5, "target_sensitivity": 0.9},
        "ood": ood.model_dump(),  # type: ignore[attr-defined]
        "training_data": {
            "source": "none",
            "licence": "none",
            "patients": {},
            "patches": {},
            "positives": {},
            "duplicates_removed": 0,
            "split": "none",
        },
        "seed": 0,
    }


def main() -> None:
    import sys

    import torch

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # long run, often piped: a line at a time

    torch.set_num_threads(THREADS)
    with tempfile.TemporaryDirectory() as tmp:
        _training(Path(tmp))
        _inference(Path(tmp))


if __name__ == "__main__":
    main()
