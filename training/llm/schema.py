"""The answer a fine-tuned explanation model writes: ``{"answer": text, "citations": [ids]}``.

The same bounds serve as the JSON Schema given to Ollama's ``format`` and as the check of the
schema-valid rate (:func:`parse_answer`): one pydantic model, its JSON Schema derived from it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_ANSWER_CHARS: Final = 1200
MAX_CITATIONS: Final = 12

CitationId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Answer(BaseModel):
    """A schema-valid answer: non-empty bounded text, one to twelve citation ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer: str = Field(min_length=1, max_length=MAX_ANSWER_CHARS)
    citations: list[CitationId] = Field(min_length=1, max_length=MAX_CITATIONS)


#: The JSON Schema of :class:`Answer` (for Ollama's ``format`` and the pairs' manifest).
ANSWER_SCHEMA: Final[dict[str, Any]] = Answer.model_json_schema()


def parse_answer(text: str) -> Answer | None:
    """The answer ``text`` holds, or ``None`` when it is not schema-valid JSON."""
    try:
        return Answer.model_validate(json.loads(text))
    except (ValueError, ValidationError):
        return None
