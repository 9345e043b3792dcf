"""OncoCDS service: the composition root (settings, app factory, DB, audit, security, CLI).

This is the only package that reads the environment; ``inference`` and ``integrations`` receive
their configuration as arguments.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("oncocds")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
