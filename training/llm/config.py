"""The fine-tuning config: one TOML file, validated field by field (extra keys refused).

Relative paths are resolved against the config file's folder. Example (every key shown; all
but ``base_model.path`` and ``output.dir`` have defaults)::

    [base_model]
    path = "models/gemma-3-270m-it"  # a local Hugging Face folder: config, tokenizer, weights.
                                     # Read with local_files_only: nothing is downloaded.
    chat_format = "gemma"            # or "chatml" (training/llm/chat.py)

    [pairs]
    kb = ""                          # compiled KB (default: the one shipped)
    sources = ["FDA", "CIViC", "curated", "CPIC"]
    civic_levels = ["A", "B", "C", "D", "E"]
    held_out_fraction = 0.2          # of fact groups
    seed = 0
    max_train_pairs = 0              # 0: all (a cap takes an even sample, deterministically)

    [lora]
    r = 8
    alpha = 16
    dropout = 0.05
    target_modules = ["q_proj", "k_proj", "v_proj", "o_proj"]

    [train]
    steps = 300
    batch_size = 4
    learning_rate = 2e-4
    max_length = 1024                # tokens per pair (prompt + answer); longer ones are left out
    seed = 0
    threads = 2                      # CPU threads

    [evaluation]
    held_out_pairs = 60              # evaluated before and after (an even sample)
    max_new_tokens = 256             # greedy decoding

    [output]
    dir = "runs/llm"                 # pairs/, adapter/, merged/, Modelfile, evaluation.json
    name = "oncocds-explainer"
    gguf_file = "oncocds-explainer.Q8_0.gguf"   # what the Modelfile's FROM names
    num_ctx = 4096
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from training.config import config_error_line
from training.llm.errors import LlmConfigError
from training.llm.facts import SOURCES


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseModelConfig(_Section):
    path: Path
    chat_format: Literal["gemma", "chatml"] = "gemma"


class PairsConfig(_Section):
    kb: Path | None = None
    sources: tuple[Literal["FDA", "CIViC", "curated", "CPIC"], ...] = SOURCES
    civic_levels: tuple[Literal["A", "B", "C", "D", "E"], ...] = ("A", "B", "C", "D", "E")
    held_out_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0
    max_train_pairs: int = Field(default=0, ge=0)


class LoraConfig(_Section):
    r: int = Field(default=8, ge=1, le=256)
    alpha: int = Field(default=16, ge=1, le=1024)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


class TrainConfig(_Section):
    steps: int = Field(default=300, ge=1, le=1_000_000)
    batch_size: int = Field(default=4, ge=1, le=1024)
    learning_rate: float = Field(default=2e-4, gt=0, le=1)
    max_length: int = Field(default=1024, ge=16, le=32768)
    seed: int = 0
    threads: int = Field(default=2, ge=1, le=256)


class EvaluationConfig(_Section):
    held_out_pairs: int = Field(default=60, ge=1, le=100_000)
    max_new_tokens: int = Field(default=256, ge=1, le=8192)


class OutputConfig(_Section):
    dir: Path
    name: str = Field(default="oncocds-explainer", pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    gguf_file: str = Field(default="oncocds-explainer.Q8_0.gguf", pattern=r"^[\w.-]+\.gguf$")
    num_ctx: int = Field(default=4096, ge=256, le=262144)


class LlmConfig(_Section):
    base_model: BaseModelConfig
    pairs: PairsConfig = PairsConfig()
    lora: LoraConfig = LoraConfig()
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    output: OutputConfig


_PATHS = {"base_model": ("path",), "pairs": ("kb",), "output": ("dir",)}


def load_llm_config(path: Path | str) -> LlmConfig:
    """Read and validate a TOML fine-tuning config.

    Raises:
        LlmConfigError: the file is missing or not TOML, or fields are wrong (each named).
    """
    path = Path(path)
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LlmConfigError(f"{path}: no such config file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LlmConfigError(f"{path}: cannot read ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LlmConfigError(f"{path}: not valid TOML ({exc})") from exc
    base = path.resolve().parent
    for section, keys in _PATHS.items():
        table = raw.get(section)
        if isinstance(table, dict):
            for key in keys:
                value = table.get(key)
                if value == "":
                    table[key] = None
                elif isinstance(value, str):
                    candidate = Path(value).expanduser()
                    table[key] = str(candidate if candidate.is_absolute() else base / candidate)
    try:
        return LlmConfig.model_validate(raw)
    except ValidationError as exc:
        raise LlmConfigError(config_error_line(exc, str(path))) from exc
