"""What the model must answer: pydantic models whose JSON Schema (with bounded strings and
arrays) is sent to Ollama as ``format``, and that validate the answer.

The bounds are hard limits on what is stored and shown; the model is told the same schema, and
the test server enforces it as a grammar.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from inference.llm.findings import Kind

SUMMARY_MAX: Final = 1600
PARAGRAPH_MAX: Final = 900
SECTION_MAX: Final = 900
STEP_MAX: Final = 300
MAX_STEPS: Final = 3

Summary = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SUMMARY_MAX)
]
Paragraph = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=PARAGRAPH_MAX)
]
Section = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SECTION_MAX)
]
Step = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=STEP_MAX)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientParagraph(_Strict):
    finding_id: Annotated[str, StringConstraints(pattern=r"^F[1-9][0-9]?$", max_length=3)]
    text: Paragraph


class GenomicExplanation(_Strict):
    """A clinician summary and one patient-facing paragraph per actionable finding."""

    clinician_summary: Summary
    patient_paragraphs: list[PatientParagraph] = Field(max_length=8)


class HistopathologyExplanation(_Strict):
    """Findings, interpretation and next steps for one analysed image."""

    findings: Section
    interpretation: Section
    next_steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)


Explanation = GenomicExplanation | HistopathologyExplanation
_MODELS: Final[dict[str, type[GenomicExplanation] | type[HistopathologyExplanation]]] = {
    "genomic": GenomicExplanation,
    "histopathology": HistopathologyExplanation,
}


def output_model(kind: Kind) -> type[GenomicExplanation] | type[HistopathologyExplanation]:
    return _MODELS[kind]


@functools.cache
def json_schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema sent as Ollama's ``format`` (every string and array bounded)."""
    return output_model(kind).model_json_schema()


def texts(explanation: Explanation) -> list[str]:
    """Every free text of an explanation (what the grounding checker reads)."""
    if isinstance(explanation, GenomicExplanation):
        return [explanation.clinician_summary, *(p.text for p in explanation.patient_paragraphs)]
    return [explanation.findings, explanation.interpretation, *explanation.next_steps]
