"""Write the trained network as a MONAI bundle (layout: :mod:`inference.imaging.bundle`).

The bundle is written to ``OUTPUT/bundle.partial``, checked with the same
:func:`inference.imaging.bundle.verify_bundle` the service uses, and only then moved to
``OUTPUT/bundle``: a failed export never leaves a half bundle where a service would load it.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.imaging import bundle as layout
from inference.imaging.ood import fit_ood
from inference.imaging.predictor import calibrated_probability
from inference.imaging.transforms import INPUT_RANGE, OUTPUT_RANGE
from training.calibrate import choose_threshold, fit_temperature
from training.config import Config
from training.data import summarise, write_manifest
from training.metrics import sensitivity_specificity
from training.report import evaluation_report, model_card

if TYPE_CHECKING:
    from training.train import Prepared, TrainedModel

INTENDED_USE = (
    "Decision support for pathologists: flags 50x50 px patches of H&E-stained breast tissue "
    "that may contain invasive ductal carcinoma (IDC). Research use; not for clinical use "
    "until validated locally; every output requires pathologist review."
)


def _versions() -> dict[str, str]:
    import monai
    import torch

    return {
        "monai_version": str(monai.__version__),
        "pytorch_version": str(torch.__version__),
        "numpy_version": np.__version__,
    }


def build_metadata(
    config: Config,
    data: Prepared,
    trained: TrainedModel,
    *,
    calibration: dict[str, float],
    ood: dict[str, Any],
    test_report: dict[str, Any] | None,
) -> dict[str, Any]:
    """``configs/metadata.json`` (MONAI Bundle spec keys + this project's contract)."""
    size = config.data.patch_size
    summary = summarise(data.records)
    split = (
        f"given lists ({config.split.lists.name})"
        if config.split.lists is not None
        else (
            f"by patient, seeded (seed {config.split.seed}, validation "
            f"{config.split.validation_fraction}, test {config.split.test_fraction})"
        )
    )
    eval_metrics: dict[str, float | None] = {
        "validation_roc_auc_best_epoch": trained.state.best_auc,
    }
    if test_report is not None:
        for name, entry in test_report["metrics"].items():
            eval_metrics[f"test_{name}"] = entry["value"]
    return {
        "schema": layout.SCHEMA,
        "name": config.output.name,
        "version": config.output.version,
        **_versions(),
        "optional_packages_version": {"python": platform.python_version()},
        "task": "Binary classification of H&E breast histopathology patches: IDC vs non-IDC",
        "description": "MONAI 2-D classifier trained with oncocds train.",
        "authors": "OncoCDS (trained by the deploying site)",
        "copyright": "Weights: the deploying site; training data: see training_data.licence",
        "intended_use": INTENDED_USE,
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "RGB",
                    "num_channels": 3,
                    "spatial_shape": [size, size],
                    "dtype": "float32",
                    "value_range": list(OUTPUT_RANGE),
                    "is_patch_data": True,
                    "channel_def": {"0": "R", "1": "G", "2": "B"},
                }
            },
            "outputs": {
                "pred": {
                    "type": "logit",
                    "format": "logit of class 1 (IDC); calibrated p = sigmoid(logit / T)",
                    "num_channels": 1,
                    "spatial_shape": [1],
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": False,
                    "channel_def": {"0": "IDC"},
                }
            },
        },
        "class_names": ["non-IDC", "IDC"],
        "preprocessing": {
            "patch_size": size,
            "pixel_spacing_mm": None,
            "input_range": list(INPUT_RANGE),
            "output_range": list(OUTPUT_RANGE),
        },
        "calibration": calibration,
        "ood": ood,
        "training_data": {
            "source": config.data.source,
            "licence": config.data.licence,
            **summary,
            "duplicates_removed": data.duplicates_removed,
            "split": split,
        },
        "eval_metrics": eval_metrics,
        "seed": config.train.seed,
        "network": trained.definition,
        "training": {
            "epochs_run": trained.state.epoch,
            "best_epoch": trained.state.best_epoch,
            "stopped_early": trained.state.stopped_early,
            "history": trained.state.history,
            "determinism": trained.determinism,
            "config_sha256": trained.config_sha256,
            "wrong_size_patches_skipped": data.wrong_size,
        },
    }


def export_bundle(config: Config, data: Prepared, trained: TrainedModel) -> Path:
    """Calibrate, fit the OOD guard, evaluate on test (if held out) and write the bundle."""
    import torch

    from training.train import predict_logits

    device = torch.device(config.train.device)
    batch = config.train.batch_size
    val = data.validation
    val_logits = predict_logits(trained.network, val.images, device=device, batch_size=batch)
    temperature = fit_temperature(val_logits, val.labels)
    val_p = calibrated_probability(val_logits, temperature)
    target = config.calibration.target_sensitivity
    threshold = choose_threshold(val_p, val.labels, target)
    sensitivity, specificity = sensitivity_specificity(val.labels, val_p, threshold)
    calibration = {
        "temperature": temperature,
        "threshold": threshold,
        "target_sensitivity": target,
        "validation_sensitivity": sensitivity,
        "validation_specificity": specificity,
    }
    ood = fit_ood(data.train.images).model_dump()
    test_report = None
    if len(data.test.labels) and len(np.unique(data.test.labels)) == 2:
        test = data.test
        test_p = calibrated_probability(
            predict_logits(trained.network, test.images, device=device, batch_size=batch),
            temperature,
        )
        test_report = evaluation_report(
            test.labels,
            test_p,
            test.patients,
            threshold=threshold,
            split="test",
            resamples=config.evaluation.bootstrap_resamples,
            seed=config.split.seed,
        )
    metadata = build_metadata(
        config, data, trained, calibration=calibration, ood=ood, test_report=test_report
    )
    final = config.output.dir / "bundle"
    staging = config.output.dir / "bundle.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "configs").mkdir(parents=True)
    (staging / "models").mkdir()
    (staging / "docs").mkdir()
    inference_config = {
        "imports": ["$import monai"],
        "network_def": trained.definition,
        "device": "cpu",
        "preprocessing": "inference.imaging.transforms.preprocess",
        "postprocessing": "sigmoid(logit / metadata.calibration.temperature)",
    }
    (staging / layout.METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
    (staging / layout.INFERENCE).write_text(json.dumps(inference_config, indent=2) + "\n")
    state = {k: v.detach().cpu() for k, v in trained.network.state_dict().items()}
    torch.save(state, staging / layout.WEIGHTS)
    (staging / layout.MODEL_CARD).write_text(model_card(metadata, test_report))
    write_manifest(staging / layout.DATA_MANIFEST, data.records)
    if test_report is not None:
        (staging / "docs" / "test_metrics.json").write_text(json.dumps(test_report, indent=2))
    layout.write_checksums(staging)
    layout.verify_bundle(staging)
    if final.exists():
        shutil.rmtree(final)
    staging.replace(final)
    return final
