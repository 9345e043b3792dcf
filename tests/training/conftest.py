"""One tiny real training run per test session, shared by the bundle and evaluation tests.

The run trains a 4-8-16-32 channel MONAI ResNet for two epochs on CPU over the small mixed set
of :mod:`tests.training.patches` (real IDC patches, real IHC tissue tiles, synthetic textures,
invented patients). It checks the machinery; no test asserts accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.training.patches import build_patch_set, write_config


@dataclass(frozen=True)
class TrainedRun:
    data: Path
    config: Path
    output: Path
    bundle: Path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    from training.__main__ import main

    base = tmp_path_factory.mktemp("trained")
    data = build_patch_set(base / "data")
    config = write_config(base / "train.toml", data, base / "out", epochs=2)
    assert main(["train", str(config), "--progress", "none"]) == 0
    return TrainedRun(data, config, base / "out", base / "out" / "bundle")
