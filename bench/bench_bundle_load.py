"""Cold load of an exported bundle's network: ``models/model.pt`` against a TorchScript export.

Question (issue 14, item 4): does a TorchScript copy of the network load faster than the
state_dict the bundle ships? Both sides load the same network's weights, from files written in
this run, each in a **fresh Python process** (so nothing is warm but the OS page cache, which
both sides share equally):

- **state_dict** (what :class:`inference.imaging.predictor.Predictor` did before this bench):
  read ``models/model.pt``, build the network from ``network_def`` (MONAI class, randomly
  initialised), ``torch.load(..., weights_only=True)``, ``load_state_dict(strict=True)``;
- **state_dict, meta build**: the same, but the network is built on the ``meta`` device (no
  random initialisation, no memory) and the loaded tensors are assigned
  (``load_state_dict(..., assign=True)``);
- **TorchScript**: ``torch.jit.load`` of ``torch.jit.trace`` of the same network (eval), then
  ``eval()``.

Per side: time to import torch and monai (both sides pay it: the Predictor's preprocessing is
MONAI transforms), time to load, time of the first batch (64 preprocessed 50x50 patches; for
TorchScript this includes the profiling executor's first-run optimisation), and of the second
batch. Best of ``ROUNDS`` interleaved rounds. Networks: the ``resnet18`` preset (the default)
and ``efficientnet-b0``. CPU, 2 threads.

Run: ``nice python -m bench bundle_load`` (a few minutes on 2 shared cores: 2 x 18 fresh processes).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROUNDS = 5
BATCH = 64
THREADS = 2
NETWORKS = ("resnet18", "efficientnet-b0")
KINDS = ("state_dict", "meta", "torchscript")

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch, monai  # noqa: F401
torch.set_num_threads(int(sys.argv[3]))
t1 = time.perf_counter()
kind, root = sys.argv[1], sys.argv[2]
if kind in ("state_dict", "meta"):
    import io
    from inference.imaging.network import build_network
    definition = json.load(open(root + "/configs/inference.json"))["network_def"]
    data = open(root + "/models/model.pt", "rb").read()
    if kind == "meta":
        with torch.device("meta"):
            net = build_network(definition)
    else:
        net = build_network(definition)
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True, assign=kind == "meta")
else:
    net = torch.jit.load(root + "/models/model.ts", map_location="cpu")
net.eval()
t2 = time.perf_counter()
x = torch.load(root + "/batch.pt", weights_only=True)
t3 = time.perf_counter()
with torch.inference_mode():
    first = net(x)
t4 = time.perf_counter()
with torch.inference_mode():
    net(x)
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t4 - t3, "second": t5 - t4,
                  "sum": float(first.sum())}))
"""


def _export(root: Path, name: str) -> None:
    import torch

    from inference.imaging.network import build_network, network_def

    torch.manual_seed(0)
    definition = network_def(name)
    net = build_network(definition).eval()
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "inference.json").write_text(json.dumps({"network_def": definition}))
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, root / "models/model.pt")
    example = torch.rand(BATCH, 3, 50, 50) * 2 - 1
    with torch.no_grad():
        traced = torch.jit.trace(net, example[:2])  # type: ignore[no-untyped-call]
    torch.jit.save(traced, str(root / "models" / "model.ts"))
    torch.save(example, root / "batch.pt")


def _child(kind: str, root: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(root), str(THREADS)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _bench(root: Path, name: str) -> None:
    _export(root, name)
    sizes = {s: (root / "models" / f"model.{s}").stat().st_size / 1e6 for s in ("pt", "ts")}
    best: dict[str, dict[str, float]] = {}
    sums: dict[str, float] = {}
    for kind in KINDS:  # warm the page cache for every file, once
        _child(kind, root)
    for _ in range(ROUNDS):
        for kind in KINDS:
            run = _child(kind, root)
            sums[kind] = run.pop("sum")
            side = best.setdefault(kind, {})
            for key, value in run.items():
                side[key] = min(side.get(key, float("inf")), value)
    sd, meta, ts = best["state_dict"], best["meta"], best["torchscript"]
    print(
        f"{name}: model.pt {sizes['pt']:.1f} MB, model.ts {sizes['ts']:.1f} MB; "
        f"best of {ROUNDS} fresh processes, batch {BATCH}, {THREADS} threads"
    )
    print("  ms                     import    load  1st batch  2nd batch  load+1st")
    for label, side in (
        ("state_dict (model.pt)", sd),
        ("meta build + assign", meta),
        ("TorchScript (model.ts)", ts),
    ):
        print(
            f"  {label:22s} {1e3 * side['import']:7.0f} {1e3 * side['load']:7.1f} "
            f"{1e3 * side['first']:10.1f} {1e3 * side['second']:10.1f} "
            f"{1e3 * (side['load'] + side['first']):9.1f}"
        )
    print(
        f"  ratio TorchScript/state_dict: load {ts['load'] / sd['load']:.2f}, "
        f"1st batch {ts['first'] / sd['first']:.2f}, "
        f"load+1st {(ts['load'] + ts['first']) / (sd['load'] + sd['first']):.2f}"
    )
    print(
        f"  ratio TorchScript/meta build: load {ts['load'] / meta['load']:.2f}, "
        f"load+1st {(ts['load'] + ts['first']) / (meta['load'] + meta['first']):.2f}"
    )
    same = max(abs(sums[k] - sums["state_dict"]) for k in KINDS) < 1e-3
    print(f"  same outputs: {same}")


def main() -> None:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in NETWORKS:
            _bench(Path(tmp) / name, name)


if __name__ == "__main__":
    main()
