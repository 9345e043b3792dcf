"""Errors of the training package.

::

    TrainingError               base; one readable line, printed by ``python -m training``
    ├── ConfigError             the config file is missing, not TOML, or a field is wrong
    └── DataError               the patches cannot make the requested split or are unreadable

Messages name files and fields, never patient data beyond the pseudonymous patient ids the
dataset's own folder names carry.
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base of the training package's errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(TrainingError):
    """The config file is missing, unreadable, or a field is wrong."""


class DataError(TrainingError):
    """The data cannot be read or cannot make the requested split."""
