"""The training loop: seeded, checkpointed, resumable, early-stopped on validation ROC-AUC.

One epoch: a permutation of the training patches (or, with ``balance = "sampler"``, a draw
with replacement weighted by inverse class frequency), the shared preprocessing
(:func:`inference.imaging.transforms.preprocess`) on each batch, the augmentations per patch,
BCE-with-logits (with ``pos_weight = negatives / positives`` under ``balance =
"loss_weights"``), AdamW, and a cosine learning-rate schedule stepped per batch. On CUDA the
forward pass runs under autocast (float16) with a gradient scaler; on CPU in float32.

**Reproducible and resumable.** Every random source is re-seeded from ``(seed, epoch)`` at the
start of each epoch (the permutation's generator, MONAI's augmentation state, torch's global
generator), and ``torch.use_deterministic_algorithms(True)`` is set. A checkpoint
(``OUTPUT/checkpoints/last.pt``: weights, optimiser, schedule, best weights, early-stopping
state, history) is written after every epoch; a run that finds one for the same config resumes
after its epoch, and on CPU ends with the same weights as an uninterrupted run.

After the loop the best weights (highest validation ROC-AUC) are calibrated on the validation
patients (:mod:`training.calibrate`), the OOD guard is fitted on the training patches, and the
bundle is exported (:mod:`training.export`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from inference.imaging.network import build_network, network_def
from inference.imaging.transforms import apply, augment, preprocess, to_tensor
from training.config import Config
from training.data import PatchArrays, assign_splits, discover, load_split
from training.errors import ConfigError, DataError
from training.pretrained import load_pretrained, package_weights_path

if TYPE_CHECKING:
    import torch
    from torch import nn

#: ``progress(event, fields)``: the CLI prints a bar or one JSON line per event.
ProgressFn = Callable[[str, dict[str, Any]], None]
CHECKPOINT = "checkpoints/last.pt"


def _quiet(event: str, fields: dict[str, Any]) -> None:
    return None


@dataclass
class LoopState:
    epoch: int = 0  # epochs completed
    best_auc: float = -1.0
    best_epoch: int = 0
    stale_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


@dataclass(frozen=True)
class TrainedModel:
    network: nn.Module
    definition: dict[str, Any]
    state: LoopState
    config_sha256: str
    determinism: dict[str, Any]


def config_fingerprint(config: Config) -> str:
    """sha256 of the config minus what may change between a run and its resumption."""
    data = config.model_dump(mode="json")
    data["train"].pop("epochs", None)
    data["train"].pop("max_steps_per_epoch", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def seed_everything(seed: int, epoch: int) -> int:
    """Seed torch's global generator for this epoch; returns the epoch seed."""
    import torch

    epoch_seed = (seed * 100_003 + epoch) % (2**31 - 1)
    torch.manual_seed(epoch_seed)
    return epoch_seed


def predict_logits(
    network: nn.Module, images: NDArray[np.uint8], *, device: torch.device, batch_size: int
) -> NDArray[np.float32]:
    """Eval-mode logits of uint8 patches, with the shared preprocessing."""
    import torch

    transform = preprocess()
    network.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = apply(transform, to_tensor(images[start : start + batch_size]))
            out.append(network(batch.to(device)).reshape(-1).float().cpu())
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(0, np.float32)


def _batches(
    labels: NDArray[np.int64], *, batch_size: int, balance: str, generator: torch.Generator
) -> list[torch.Tensor]:
    import torch

    n = len(labels)
    if balance == "sampler":
        counts = np.bincount(labels, minlength=2).astype(np.float64)
        weights = torch.as_tensor(1.0 / counts[labels])
        order = torch.multinomial(weights, n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


class _Session:
    """The network, optimiser, schedule and loss of one run, and its checkpoint."""

    def __init__(self, config: Config, train: PatchArrays) -> None:
        import torch

        cfg = config.train
        self.config = config
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"train.device: {cfg.device} requested but CUDA is not available")
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        torch.use_deterministic_algorithms(True, warn_only=self.device.type != "cpu")
        self.determinism: dict[str, Any] = {
            "seed": cfg.seed,
            "torch.use_deterministic_algorithms": True,
            "per_epoch_reseed": True,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
        }
        torch.manual_seed(cfg.seed)
        self.definition = network_def(config.network.name, config.network.params)
        self.network = build_network(self.definition)
        weights = config.network.pretrained_weights
        if config.network.pretrained_package is not None:
            weights = package_weights_path(config.network.pretrained_package)
        if weights is not None:
            self.determinism["pretrained_tensors"] = load_pretrained(
                self.network, weights, network_name=config.network.name
            )
            self.determinism["pretrained_from"] = {
                "file": weights.name,
                "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                "package": config.network.pretrained_package,
            }
        self.network.to(self.device)
        steps = math.ceil(len(train.labels) / cfg.batch_size)
        self.steps = min(steps, cfg.max_steps_per_epoch or steps)
        self.optimiser = torch.optim.AdamW(
            self.network.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimiser, T_max=cfg.epochs * self.steps
        )
        positives = int(train.labels.sum())
        pos_weight = torch.tensor([(len(train.labels) - positives) / max(positives, 1)])
        self.loss_fn = torch.nn.BCEWithLogitsLoss(
            pos_weight=pos_weight.to(self.device) if cfg.balance == "loss_weights" else None
        )
        self.use_amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.fingerprint = config_fingerprint(config)
        self.checkpoint = config.output.dir / CHECKPOINT
        self.state = LoopState()
        self.best_weights = copy.deepcopy(self.network.state_dict())

    def resume(self) -> bool:
        import torch

        if not self.checkpoint.is_file():
            return False
        saved = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        if saved.get("config_sha256") != self.fingerprint:
            raise ConfigError(
                f"{self.checkpoint}: a checkpoint of a different config; "
                "use another output.dir or delete the checkpoint"
            )
        self.network.load_state_dict(saved["model"])
        self.optimiser.load_state_dict(saved["optimiser"])
        self.schedule.load_state_dict(saved["schedule"])
        self.best_weights = saved["best_model"]
        self.state = LoopState(**saved["loop"])
        return True

    def save(self) -> None:
        import torch

        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        partial = self.checkpoint.with_suffix(".tmp")
        torch.save(
            {
                "config_sha256": self.fingerprint,
                "model": self.network.state_dict(),
                "optimiser": self.optimiser.state_dict(),
                "schedule": self.schedule.state_dict(),
                "best_model": self.best_weights,
                "loop": self.state.__dict__,
            },
            partial,
        )
        partial.replace(self.checkpoint)

    def epoch(self, epoch: int, train: PatchArrays, progress: ProgressFn) -> float:
        """One pass; returns the mean training loss."""
        import torch

        cfg = self.config.train
        epoch_seed = seed_everything(cfg.seed, epoch)
        augmentation = augment(colour_jitter=cfg.colour_jitter)
        augmentation.set_random_state(seed=epoch_seed)
        transform = preprocess()
        generator = torch.Generator().manual_seed(epoch_seed)
        batches = _batches(
            train.labels, batch_size=cfg.batch_size, balance=cfg.balance, generator=generator
        )[: self.steps]
        labels = torch.as_tensor(train.labels, dtype=torch.float32)
        self.network.train()
        total = 0.0
        progress("epoch_start", {"epoch": epoch, "steps": len(batches)})
        for step, index in enumerate(batches, start=1):
            batch = apply(transform, to_tensor(train.images[index.numpy()]))
            batch = torch.stack([apply(augmentation, patch) for patch in batch])
            target = labels[index].to(self.device)
            self.optimiser.zero_grad(set_to_none=True)
            with torch.autocast(
                device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp
            ):
                loss = self.loss_fn(self.network(batch.to(self.device)).reshape(-1), target)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimiser)
            self.scaler.update()
            self.schedule.step()
            total += float(loss.item())
            progress("step", {"epoch": epoch, "step": step, "steps": len(batches)})
        return total / max(len(batches), 1)


def train_network(
    config: Config,
    train: PatchArrays,
    validation: PatchArrays,
    *,
    progress: ProgressFn = _quiet,
    stop_after: int | None = None,
) -> TrainedModel:
    """Train (or resume) and return the best network by validation ROC-AUC.

    torch's determinism flag and thread count are process-wide: they are restored on return,
    so a caller in the same process (a test session, a notebook) gets its own settings back.
    """
    import torch

    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    try:
        return _train_network(config, train, validation, progress=progress, stop_after=stop_after)
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_num_threads(threads)


def _train_network(
    config: Config,
    train: PatchArrays,
    validation: PatchArrays,
    *,
    progress: ProgressFn,
    stop_after: int | None,
) -> TrainedModel:
    from sklearn.metrics import roc_auc_score

    session = _Session(config, train)
    if session.resume():
        progress("resume", {"epoch": session.state.epoch})
    state = session.state
    run_epochs = 0
    while (
        state.epoch < config.train.epochs
        and not state.stopped_early
        and (stop_after is None or run_epochs < stop_after)
    ):
        epoch = state.epoch + 1
        loss = session.epoch(epoch, train, progress)
        val_logits = predict_logits(
            session.network,
            validation.images,
            device=session.device,
            batch_size=config.train.batch_size,
        )
        val_auc = float(roc_auc_score(validation.labels, val_logits))
        record = {"epoch": epoch, "loss": loss, "val_auc": val_auc}
        state.history.append(record)
        state.epoch = epoch
        if val_auc > state.best_auc:
            state.best_auc, state.best_epoch, state.stale_epochs = val_auc, epoch, 0
            session.best_weights = copy.deepcopy(session.network.state_dict())
        else:
            state.stale_epochs += 1
            state.stopped_early = state.stale_epochs >= config.train.early_stopping_patience
        session.save()
        progress("epoch_end", record)
        run_epochs += 1
    session.network.load_state_dict(session.best_weights)
    session.network.eval()
    return TrainedModel(
        session.network, session.definition, state, session.fingerprint, session.determinism
    )


@dataclass(frozen=True)
class Prepared:
    root: Path
    records: tuple[Any, ...]
    duplicates_removed: int
    wrong_size: int
    train: PatchArrays
    validation: PatchArrays
    test: PatchArrays


def prepare_data(config: Config) -> Prepared:
    """Discover, deduplicate, split by patient and decode the patches."""
    found = discover(config.data)
    records = assign_splits(found, config.split)
    root = config.data.root
    train = load_split(root, records, "train")
    validation = load_split(root, records, "validation")
    test = load_split(root, records, "test")
    if len(train.labels) == 0:
        raise DataError("the train split is empty")
    return Prepared(
        root, records, found.duplicates_removed, found.wrong_size, train, validation, test
    )


def run(config: Config, *, progress: ProgressFn = _quiet, stop_after: int | None = None) -> Path:
    """Train, calibrate, fit the OOD guard and export; returns the bundle directory.

    ``stop_after`` ends this session after that many epochs (the checkpoint lets a later run
    resume); the bundle is exported only when training is complete.
    """
    from training.export import export_bundle

    data = prepare_data(config)
    trained = train_network(
        config, data.train, data.validation, progress=progress, stop_after=stop_after
    )
    if not (trained.state.stopped_early or trained.state.epoch >= config.train.epochs):
        progress("paused", {"epoch": trained.state.epoch})
        return config.output.dir / CHECKPOINT
    bundle = export_bundle(config, data, trained)
    progress("exported", {"bundle": str(bundle)})
    return bundle
