"""Histopathology inference end to end, against the raw torch forward of the same network.

Network: MONAI ResNet-18 (the ``resnet18`` preset: 2-D, standard stride-2 stem, one logit),
random weights (throughput does not depend on them), in a bundle written and verified like an
exported one. CPU, torch threads = 2.

- **End to end**: a PNG of ``SIDE x SIDE`` tissue (tiles of scikit-image's IHC sample; every
  50x50 cell is tissue) → :func:`integrations.imaging.raster.decode_raster` (the fetchers'
  guarded decoder) → :func:`inference.imaging.analysis.analyse_image` (tissue detection,
  tiling, MONAI preprocessing, batched forward, calibration, OOD guard, per-tile scores, the
  heatmap PNG). Figure: tissue patches per second, with and without the heatmap (one PNG
  per image, a cost per image rather than per patch).
- **Baseline**: the raw network forward of the same patches, already preprocessed into one
  float tensor, under ``inference_mode`` in the same batch size and the same precision/memory
  format: what the pipeline could do at best with that network configuration. Ratio =
  pipeline / raw; overhead = 1 - ratio (target ≤ 20 %). The float32 raw forward is printed as
  well, so the configurations can be compared with one another.
- **Whole slide**: a level of about 2,000 tissue cells read frame by frame (256 px JPEG frames
  decoded as they arrive, as from a PACS) through :func:`~inference.imaging.analysis.
  analyse_regions`: seconds, and patches/s.
- **CPU time on one thread**: the same comparison in patches per CPU-second, which the other
  tenants of a shared machine disturb far less than wall time.
- **bfloat16 tolerance**: the largest difference of logits and calibrated probabilities between
  float32 and bfloat16 on the same patches (random weights: an indication, not a bound for a
  trained model).

Run: ``nice python -m bench imaging``. Figures are the best of ``ROUNDS`` interleaved rounds
(the machine is shared; interleaving exposes both sides to the same load).
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

SIDE = 1000  # px: 20 x 20 = 400 patches of 50 px
WSI_SIDE = 2900  # px: 58 x 58 = 3,364 cells, ~2,040 of them tissue
FRAME = 256
ROUNDS = 3
THREADS = 2
#: (label, precision, channels_last, batch size)
CONFIGS: tuple[tuple[str, str, bool, int], ...] = (
    ("float32, NCHW, batch 64", "float32", False, 64),
    ("float32, channels_last, batch 256", "float32", True, 256),
    ("bfloat16, channels_last, batch 256", "bfloat16", True, 256),
)


def _tissue(side: int) -> np.ndarray:
    from skimage import data

    ihc = np.asarray(data.immunohistochemistry(), dtype=np.uint8)
    reps = -(-side // ihc.shape[0])
    return np.ascontiguousarray(np.tile(ihc, (reps, reps, 1))[:side, :side])


def _bundle(tmp: Path) -> Path:
    import json

    import torch

    from bench.bench_training import _metadata, _patches
    from inference.imaging import bundle as layout
    from inference.imaging.network import build_network, network_def
    from inference.imaging.ood import fit_ood

    torch.manual_seed(0)
    definition = network_def("resnet18")
    net = build_network(definition).eval()
    root = tmp / "bundle"
    for sub in ("configs", "models", "docs"):
        (root / sub).mkdir(parents=True)
    torch.save(net.state_dict(), root / layout.WEIGHTS)
    (root / layout.INFERENCE).write_text(json.dumps({"network_def": definition}))
    (root / layout.MODEL_CARD).write_text("bench bundle (random weights)\n")
    (root / layout.METADATA).write_text(json.dumps(_metadata(fit_ood(_patches(200)))))
    layout.write_checksums(root)
    return root


def _best(*fns: Callable[[], None], clock: Callable[[], float]) -> list[float]:
    best = [float("inf")] * len(fns)
    for _ in range(ROUNDS):
        for i, fn in enumerate(fns):
            start = clock()
            fn()
            best[i] = min(best[i], clock() - start)
    return best


def _workload() -> tuple[bytes, int, Any]:
    """The ``SIDE x SIDE`` tissue PNG, its tissue patch count, and those patches preprocessed
    into one float tensor (what the raw forward gets)."""
    from PIL import Image

    from inference.imaging.tiles import tile_image
    from inference.imaging.transforms import apply, preprocess, to_tensor

    image = _tissue(SIDE)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    patches = tile_image(image, patch_size=50).patches  # the cells the pipeline scores
    return buffer.getvalue(), len(patches), apply(preprocess(), to_tensor(patches))


def _rates(
    root: Path, png: bytes, count: int, x: Any, clock: Callable[[], float]
) -> Iterator[tuple[str, float, float, float]]:
    """Per configuration, patches per unit of ``clock`` (best of ``ROUNDS``): the raw forward,
    end to end, and end to end without the heatmap."""
    import torch

    from inference.imaging.analysis import analyse_image
    from inference.imaging.predictor import Predictor
    from integrations.imaging.raster import decode_raster

    for label, precision, channels_last, batch in CONFIGS:
        predictor = Predictor.load(
            root,
            device="cpu",
            batch_size=batch,
            precision=precision,  # type: ignore[arg-type]
            channels_last=channels_last,
        )

        def raw(predictor: Predictor = predictor, batch: int = batch) -> None:
            with torch.inference_mode():
                for start in range(0, count, batch):
                    predictor.forward(x[start : start + batch])

        def ours(predictor: Predictor = predictor, heatmap: bool = True) -> None:
            pixels = decode_raster(png, "image/png", 64_000_000)
            result = analyse_image(predictor, pixels, heatmap=heatmap)
            assert result.tiles_tissue == count

        raw()
        ours()
        t_raw, t_ours, t_bare = _best(raw, ours, lambda: ours(heatmap=False), clock=clock)
        yield label, count / t_raw, count / t_ours, count / t_bare


def _end_to_end(root: Path) -> None:
    png, count, x = _workload()
    print(f"end to end: {SIDE}x{SIDE} PNG ({len(png) // 1024} KiB), {count} tissue patches, "
          f"ResNet-18, {THREADS} threads")  # fmt: skip
    raw32: float | None = None
    for label, r_raw, r_ours, r_bare in _rates(root, png, count, x, time.perf_counter):
        raw32 = raw32 or r_raw
        print(f"  {label:<36} raw forward {r_raw:7.1f}/s | end to end {r_ours:7.1f}/s "
              f"ratio {r_ours / r_raw:.3f} (overhead {100 * (1 - r_ours / r_raw):4.1f} %) | "
              f"without heatmap {r_bare:7.1f}/s ratio {r_bare / r_raw:.3f} | "
              f"end to end vs float32 batch-64 raw {r_ours / raw32:.2f}x")  # fmt: skip


def _tolerance(root: Path) -> None:
    from inference.imaging.predictor import Predictor, calibrated_probability
    from inference.imaging.tiles import tile_image

    patches = tile_image(_tissue(500), patch_size=50).patches
    f32 = Predictor.load(root, device="cpu").logits(patches)
    b16 = Predictor.load(root, device="cpu", precision="bfloat16", channels_last=True).logits(
        patches
    )
    p32, p16 = (calibrated_probability(v, 1.5) for v in (f32, b16))
    print(f"bfloat16 vs float32 on {len(patches)} patches (random weights): max |d logit| "
          f"{np.abs(f32 - b16).max():.4f} (logit range {f32.min():.3f}..{f32.max():.3f}), "
          f"max |d p| {np.abs(p32 - p16).max():.4f}")  # fmt: skip


def _frames(level: np.ndarray) -> tuple[list[tuple[int, int, bytes]], int]:
    from PIL import Image

    frames = []
    for y in range(0, level.shape[0], FRAME):
        for x in range(0, level.shape[1], FRAME):
            out = io.BytesIO()
            Image.fromarray(level[y : y + FRAME, x : x + FRAME]).save(out, "JPEG", quality=90)
            frames.append((x, y, out.getvalue()))
    return frames, sum(len(f[2]) for f in frames)


def _whole_slide(root: Path) -> None:
    from PIL import Image

    from inference.imaging.analysis import Region, analyse_regions
    from inference.imaging.predictor import Predictor

    level = _tissue(WSI_SIDE)
    frames, size = _frames(level)

    def regions() -> Iterator[Region]:
        for x, y, data in frames:
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
                yield Region(x, y, np.asarray(image.convert("RGB")))

    print(f"whole slide: {WSI_SIDE}x{WSI_SIDE} level, {len(frames)} JPEG frames of {FRAME} px "
          f"({size // 1024} KiB), read frame by frame")  # fmt: skip
    for label, precision, channels_last, batch in (CONFIGS[0], CONFIGS[2]):
        predictor = Predictor.load(
            root,
            device="cpu",
            batch_size=batch,
            precision=precision,  # type: ignore[arg-type]
            channels_last=channels_last,
        )
        start = time.perf_counter()
        result: Any = analyse_regions(predictor, regions(), width=WSI_SIDE, height=WSI_SIDE)
        seconds = time.perf_counter() - start
        print(f"  {label:<36} {result.tiles_tissue} tissue tiles of {result.tiles_total}: "
              f"{seconds:6.1f} s ({result.tiles_tissue / seconds:.1f} patches/s)")  # fmt: skip


def _cpu_time(root: Path) -> None:
    """Per-patch CPU time on one thread: wall time on a shared machine swings with the other
    tenants' load, the CPU time a single thread spends does much less."""
    import torch

    png, count, x = _workload()
    torch.set_num_threads(1)
    print(f"CPU time on 1 thread ({count} patches; best of {ROUNDS}):")
    try:
        for label, r_raw, r_ours, r_bare in _rates(root, png, count, x, time.process_time):
            print(f"  {label:<36} raw {r_raw:6.1f} | end to end {r_ours:6.1f} ratio "
                  f"{r_ours / r_raw:.3f} | without heatmap {r_bare:6.1f} ratio "
                  f"{r_bare / r_raw:.3f}  patches per CPU-second")  # fmt: skip
    finally:
        torch.set_num_threads(THREADS)


def main() -> None:
    import sys

    from inference.imaging.analysis import configure_threads

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    configure_threads(THREADS)
    with tempfile.TemporaryDirectory() as tmp:
        root = _bundle(Path(tmp))
        _tolerance(root)
        _cpu_time(root)
        _end_to_end(root)
        _whole_slide(root)


if __name__ == "__main__":
    main()
