"""Resume from a checkpoint gives the same weights as an uninterrupted run (CPU, seeded);
a bad config is one line on stderr and a non-zero exit.

The data is the small mixed set of :mod:`tests.training.patches` (machinery only).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.patches import build_patch_set, write_config
from training.__main__ import main

ONCOCDS = str(Path(sys.executable).parent / "oncocds")


def test_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    import torch

    from training.train import CHECKPOINT

    data = build_patch_set(tmp_path / "data", patients=6, per_class=4)
    whole = write_config(tmp_path / "a.toml", data, tmp_path / "a", epochs=2)
    split = write_config(tmp_path / "b.toml", data, tmp_path / "b", epochs=2)
    assert main(["train", str(whole), "--progress", "none"]) == 0
    assert main(["train", str(split), "--progress", "none", "--stop-after", "1"]) == 0
    assert not (tmp_path / "b" / "bundle").exists()  # paused: no bundle yet
    halfway = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)
    assert halfway["loop"]["epoch"] == 1
    assert main(["train", str(split), "--progress", "none"]) == 0
    a = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)
    assert a["loop"]["epoch"] == b["loop"]["epoch"] == 2
    for key in ("model", "best_model"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    # The weights did move in epoch 2: the comparison is not between two untouched networks.
    assert not all(torch.equal(halfway["model"][k], b["model"][k]) for k in b["model"])


def test_a_checkpoint_of_another_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = build_patch_set(tmp_path / "data", patients=6, per_class=4)
    first = write_config(tmp_path / "a.toml", data, tmp_path / "out", epochs=2)
    assert main(["train", str(first), "--progress", "json", "--stop-after", "1"]) == 0
    # Under CI: one JSON object per line, per event (no per-step noise).
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [e["event"] for e in events] == ["epoch_start", "epoch_end", "paused"]
    assert events[1]["epoch"] == 1
    assert 0.0 <= events[1]["val_auc"] <= 1.0
    other = write_config(tmp_path / "b.toml", data, tmp_path / "out", epochs=2)
    other.write_text(other.read_text().replace("learning_rate = 0.003", "learning_rate = 0.01"))
    assert main(["train", str(other), "--progress", "none"]) == 2
    assert "a checkpoint of a different config" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("epochs = 1", "epochs = 0"), "train.epochs: Input should be greater than or equal to 1"),
        (("[train]", "[train]\nlearning_rat = 0.1"), "train.learning_rat: Extra inputs"),
        (('name = "resnet"', 'name = "vgg16"'), "network.name: Input should be"),
        (("test_fraction = 0.25", "test_fraction = 0.8"), "split: Value error"),
        (("[data]", "[data"), "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    config = write_config(tmp_path / "c.toml", tmp_path / "data", tmp_path / "out")
    text = config.read_text()
    assert edit[0] in text
    config.write_text(text.replace(edit[0], edit[1], 1))
    result = subprocess.run(
        [ONCOCDS, "train", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("training: error: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_and_missing_data(tmp_path: Path) -> None:
    missing = subprocess.run(
        [ONCOCDS, "train", str(tmp_path / "none.toml")], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 2
    assert "no such config file" in missing.stderr
    config = write_config(tmp_path / "c.toml", tmp_path / "nowhere", tmp_path / "out")
    assert main(["train", str(config), "--progress", "none"]) == 2


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs CUDA")
def test_the_same_config_trains_on_a_gpu_with_amp(tmp_path: Path) -> None:
    data = build_patch_set(tmp_path / "data", patients=6, per_class=4)
    config = write_config(tmp_path / "c.toml", data, tmp_path / "out")
    config.write_text(config.read_text().replace("threads = 1", 'threads = 1\ndevice = "cuda:0"'))
    assert main(["train", str(config), "--progress", "none"]) == 0
    assert (tmp_path / "out" / "bundle" / "models" / "model.pt").is_file()


def test_cuda_requested_without_cuda_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if _cuda():
        pytest.skip("CUDA is available here")
    data = build_patch_set(tmp_path / "data", patients=6, per_class=4)
    config = write_config(tmp_path / "c.toml", data, tmp_path / "out")
    config.write_text(config.read_text().replace("threads = 1", 'threads = 1\ndevice = "cuda:0"'))
    assert main(["train", str(config), "--progress", "none"]) == 2
    assert "train.device: cuda:0 requested but CUDA is not available" in capsys.readouterr().err
