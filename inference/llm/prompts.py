"""Versioned prompts: ``prompts/<kind>-v<N>.txt``, read from the package, never edited in place.

A change of wording is a new file (``genomic-v2.txt``); the version that wrote an explanation
is stored with it, and the prompt's sha256 is part of the cache key, so an edited file can never
be mistaken for the one that produced a stored text.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from inference.llm.findings import Kind

PROMPT_DIR: Final = Path(__file__).resolve().parent / "prompts"
#: The prompt version each kind uses now.
CURRENT: Final[dict[str, int]] = {"genomic": 1, "histopathology": 1}
_NAME = re.compile(r"^(genomic|histopathology)-v(\d+)\.txt$")


@dataclass(frozen=True, slots=True)
class Prompt:
    kind: str
    number: int
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def version(self) -> str:
        """``genomic-v1+3f2a…`` (name and the first 12 hex digits of the file's sha256)."""
        return f"{self.kind}-v{self.number}+{self.sha256[:12]}"


@functools.cache
def load_prompt(kind: Kind, number: int | None = None) -> Prompt:
    """The prompt of ``kind`` (the current version unless ``number`` is given).

    Raises:
        FileNotFoundError: no such prompt version.
    """
    number = CURRENT[kind] if number is None else number
    path = PROMPT_DIR / f"{kind}-v{number}.txt"
    assert _NAME.match(path.name)
    return Prompt(kind, number, path.read_text(encoding="utf-8"))
