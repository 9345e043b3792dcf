"""A tiny real training run exports a bundle that verifies, loads and predicts; tampering fails.

Uses the session's training run (``conftest.trained_run``: real IDC patches, real IHC tiles,
synthetic textures over invented patients). Machinery only: no accuracy is asserted.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.errors import ModelBundleError
from inference.imaging import bundle as layout
from inference.imaging.predictor import Predictor
from tests.training.conftest import TrainedRun

ONCOCDS = str(Path(sys.executable).parent / "oncocds")


def _copy(run: TrainedRun, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run.bundle, tmp_path / "bundle"))


def test_bundle_has_the_monai_layout_and_verifies(trained_run: TrainedRun) -> None:
    info = layout.verify_bundle(trained_run.bundle)
    for name in (layout.METADATA, layout.INFERENCE, layout.WEIGHTS, layout.MODEL_CARD):
        assert (trained_run.bundle / name).is_file()
    # checksums.sha256 is sha256sum's format: the system tool agrees.
    check = subprocess.run(
        ["sha256sum", "--check", "--quiet", layout.CHECKSUMS],
        cwd=trained_run.bundle,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    meta = json.loads((trained_run.bundle / layout.METADATA).read_text())
    for key in ("version", "monai_version", "pytorch_version", "network_data_format"):
        assert key in meta  # MONAI Bundle spec's required metadata keys
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [50, 50]
    assert 0 < info.metadata.calibration.threshold <= 1
    assert info.metadata.calibration.temperature > 0
    assert info.metadata.training_data.duplicates_removed == 1
    card = (trained_run.bundle / layout.MODEL_CARD).read_text()
    assert "Not for clinical use until validated locally" in card


def test_manifest_lists_every_file_once_and_no_patient_in_two_splits(
    trained_run: TrainedRun,
) -> None:
    with (trained_run.bundle / layout.DATA_MANIFEST).open() as handle:
        rows = list(csv.DictReader(handle))
    on_disk = {p.relative_to(trained_run.data).as_posix() for p in trained_run.data.rglob("*.png")}
    listed = {r["path"] for r in rows}
    assert len(listed) == len(rows) == len(on_disk) - 1  # the one duplicate is left out
    sides: dict[str, set[str]] = {}
    for r in rows:
        sides.setdefault(r["patient"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    assert {r["split"] for r in rows} == {"train", "validation", "test"}


def test_predictor_loads_once_in_eval_mode_and_calibrates(trained_run: TrainedRun) -> None:
    predictor = Predictor.load(trained_run.bundle, device="cpu", threads=1)
    assert not predictor.network.training
    images = np.stack(
        [np.asarray(Image.open(p).convert("RGB")) for p in sorted(trained_run.data.rglob("*.png"))]
    )
    result = predictor.predict(images)
    assert len(result) == len(images)
    temperature = predictor.info.metadata.calibration.temperature
    expected = 1 / (1 + np.exp(-result.logits.astype(np.float64) / temperature))
    assert result.probabilities == pytest.approx(expected, abs=1e-6)
    assert list(result.positive) == list(result.probabilities >= predictor.threshold)
    white = np.full((1, 50, 50, 3), 250, dtype=np.uint8)
    assert predictor.predict(white).indeterminate == ("blank",)
    with pytest.raises(ValueError, match="50, 50"):
        predictor.predict(np.zeros((1, 32, 32, 3), dtype=np.uint8))


def test_exported_network_is_exactly_what_the_service_loads(trained_run: TrainedRun) -> None:
    """The contract: the training side's best network and the served one give equal logits."""
    import torch

    from inference.imaging.network import build_network, network_def
    from training.config import load_config
    from training.train import CHECKPOINT, predict_logits

    config = load_config(trained_run.config)
    saved = torch.load(trained_run.output / CHECKPOINT, weights_only=True)
    network = build_network(network_def(config.network.name, config.network.params))
    network.load_state_dict(saved["best_model"])
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 256, (8, 50, 50, 3), dtype=np.uint8)
    ours = predict_logits(network, patches, device=torch.device("cpu"), batch_size=4)
    served = Predictor.load(trained_run.bundle).logits(patches)
    assert np.array_equal(ours, served)


def test_tampered_weights_fail_verification_and_loading(
    trained_run: TrainedRun, tmp_path: Path
) -> None:
    copy = _copy(trained_run, tmp_path)
    weights = copy / layout.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelBundleError, match=r"models/model.pt: sha256 does not match"):
        layout.verify_bundle(copy)
    with pytest.raises(ModelBundleError, match="altered"):
        Predictor.load(copy)
    out = subprocess.run(
        [ONCOCDS, "model", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert "models/model.pt: sha256 does not match" in out.stderr


def test_weights_short_of_a_tensor_are_refused_even_with_fresh_checksums(
    trained_run: TrainedRun, tmp_path: Path
) -> None:
    """The Predictor builds the network on ``meta`` and assigns the weights: a tensor the file
    lacks must fail loudly, never stay uninitialised."""
    import torch

    copy = _copy(trained_run, tmp_path)
    state = torch.load(copy / layout.WEIGHTS, weights_only=True)
    del state[next(k for k in state if k.endswith("running_mean"))]
    torch.save(state, copy / layout.WEIGHTS)
    layout.write_checksums(copy)
    layout.verify_bundle(copy)  # the bytes are as listed; the network cannot take them
    with pytest.raises(ModelBundleError, match=r"models/model.pt: does not fit network_def"):
        Predictor.load(copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: (b / "extra.bin").write_bytes(b"x"), "extra.bin: present but not listed"),
        (lambda b: (b / layout.MODEL_CARD).unlink(), "docs/README.md: listed in"),
        (lambda b: (b / layout.CHECKSUMS).unlink(), "no checksums.sha256"),
    ],
)
def test_incomplete_or_padded_bundles_fail(
    trained_run: TrainedRun, tmp_path: Path, change: object, message: str
) -> None:
    copy = _copy(trained_run, tmp_path)
    change(copy)  # type: ignore[operator]
    with pytest.raises(ModelBundleError, match=message):
        layout.verify_bundle(copy)


def test_metadata_breaking_the_contract_fails_even_with_fresh_checksums(
    trained_run: TrainedRun, tmp_path: Path
) -> None:
    copy = _copy(trained_run, tmp_path)
    meta = json.loads((copy / layout.METADATA).read_text())
    meta["calibration"]["temperature"] = -1
    (copy / layout.METADATA).write_text(json.dumps(meta))
    layout.write_checksums(copy)
    with pytest.raises(ModelBundleError, match=r"calibration.temperature"):
        layout.verify_bundle(copy)


def test_model_verify_and_info_commands(trained_run: TrainedRun) -> None:
    ok = subprocess.run(
        [ONCOCDS, "model", "verify", str(trained_run.bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: test-idc 0.0.1")
    info = subprocess.run(
        [ONCOCDS, "model", "info", str(trained_run.bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert info.returncode == 0, info.stderr
    assert "threshold" in info.stdout
    assert "Not for clinical use until validated locally" in info.stdout


def test_evaluate_writes_metrics_plots_and_card(trained_run: TrainedRun, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = subprocess.run(
        [
            ONCOCDS,
            "evaluate",
            str(trained_run.bundle),
            str(trained_run.data),
            "--split",
            "test",
            "--bootstrap",
            "20",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "metrics.json").read_text())
    with (trained_run.bundle / layout.DATA_MANIFEST).open() as handle:
        test_patients = {r["patient"] for r in csv.DictReader(handle) if r["split"] == "test"}
    assert {r["patient"] for r in report["per_patient"]} == test_patients
    for name in ("roc_auc", "pr_auc", "balanced_accuracy", "ece", "brier", "calibration_slope"):
        assert name in report["metrics"]
    for png in ("roc", "pr", "reliability", "confidence_histogram", "confusion_matrix"):
        with Image.open(out / f"{png}.png") as image:
            assert image.format == "PNG"
    assert "95 % CI" in (out / "model_card.md").read_text()


def test_model_commands_and_cli_start_up_do_not_import_torch(trained_run: TrainedRun) -> None:
    """``oncocds model verify`` reads bytes and JSON only; the API runs without torch."""
    probe = (
        "import contextlib, io, sys\n"
        "from cds_service.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(['model', 'verify', sys.argv[1]])\n"
        "print(code, sorted({'torch', 'monai', 'sklearn'} & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(trained_run.bundle)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "0 []"
