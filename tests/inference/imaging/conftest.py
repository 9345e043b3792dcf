"""A bundle exported by a real ``oncocds train`` run, once per test session, for the pipeline.

The training set is :func:`tests.training.patches.build_patch_set` without its IHC tiles: the
real IDC patches (CC0) and synthetic H&E-like textures over invented patients, so the bundle's
OOD guard is fitted on H&E-like patches only and an IHC image lies outside it. A few steps of
a 4-8-16-32 channel ResNet: the tests using it check the plumbing, **never accuracy**.

:func:`bundle_variant` copies the bundle with metadata changed (temperature, pixel spacing)
and re-writes its sha256 manifest, as a site re-exporting a bundle would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from inference.imaging import bundle as layout
from tests.training.patches import build_patch_set, write_config


@pytest.fixture(scope="session")
def he_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_he_bundle(tmp_path_factory)


def train_he_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train and export the bundle (for a session fixture elsewhere, e.g. the CLI tests)."""
    from training.__main__ import main

    base = tmp_path_factory.mktemp("he-bundle")
    data = build_patch_set(base / "data", ihc_per_patient=0, duplicate=False)
    config = write_config(base / "train.toml", data, base / "out", epochs=1)
    assert main(["train", str(config), "--progress", "none"]) == 0
    return base / "out" / "bundle"


def bundle_variant(source: Path, target: Path, **changes: Any) -> Path:
    """A copy of ``source`` with ``calibration``/``preprocessing`` keys set, re-checksummed."""
    shutil.copytree(source, target)
    path = target / layout.METADATA
    meta = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        section = "calibration" if key in ("temperature", "threshold") else "preprocessing"
        meta[section][key] = value
    path.write_text(json.dumps(meta), encoding="utf-8")
    layout.write_checksums(target)
    return target
