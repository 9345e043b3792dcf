"""Plain-language explanations of stored findings by a local language model (issue #16).

The deterministic findings stay the source of truth; a model only phrases them. This package is
pure (no HTTP, no database): it builds the model's input from structured findings only (no
names, identifiers or dates of the patient), holds the versioned prompts and the bounded output
schemas, checks a generated text against the findings (:mod:`inference.llm.grounding`) and
writes the deterministic template explanation that replaces any text that fails.
"""

from inference.llm.findings import (
    ExplanationInput,
    genomic_input,
    histopathology_input,
)
from inference.llm.grounding import GroundingResult, check_grounding
from inference.llm.prompts import Prompt, load_prompt
from inference.llm.schemas import (
    GenomicExplanation,
    HistopathologyExplanation,
    PatientParagraph,
    output_model,
)
from inference.llm.templates import template_explanation

__all__ = [
    "ExplanationInput",
    "GenomicExplanation",
    "GroundingResult",
    "HistopathologyExplanation",
    "PatientParagraph",
    "Prompt",
    "check_grounding",
    "genomic_input",
    "histopathology_input",
    "load_prompt",
    "output_model",
    "template_explanation",
]
