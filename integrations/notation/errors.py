"""The one error of the notation grammar."""

from __future__ import annotations


class LineError(ValueError):
    """A line that is not a readable alteration; its message is the reason shown for that line."""
