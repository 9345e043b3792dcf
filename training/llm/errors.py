"""Errors of the LLM fine-tuning pipeline (all under :class:`training.errors.TrainingError`, so
``python -m training llm …`` prints them as one line, ``training: error: …``, exit code 2).

::

    TrainingError
    ├── UncitedFactError    a knowledge-base fact without a citation: never made into a pair
    ├── BaseModelError      the configured base model path is missing or not a local model
    └── LlmConfigError      the fine-tuning config is missing, not TOML, or a field is wrong
"""

from __future__ import annotations

from training.errors import ConfigError, TrainingError


class UncitedFactError(TrainingError):
    """A fact lacks a citation (label URL, CIViC EID, guideline URL); it is refused."""


class BaseModelError(TrainingError):
    """The base model cannot be read from the configured local path (nothing is downloaded)."""


class LlmConfigError(ConfigError):
    """The fine-tuning config is missing, unreadable, or a field is wrong."""
