"""Deterministic template explanations, built from the same findings document the model sees.

Used whenever the model's text cannot be used (not schema-valid after one retry, cut off, not
grounded, timed out, LLM switched off). Every sentence states what the findings state, in fixed
words; the template is grounded by construction (a test checks it against the checker for the
benchmark's interpretations).
"""

from __future__ import annotations

from typing import Any

from inference.llm.findings import ExplanationInput
from inference.llm.schemas import (
    MAX_STEPS,
    PARAGRAPH_MAX,
    SECTION_MAX,
    SUMMARY_MAX,
    Explanation,
    GenomicExplanation,
    HistopathologyExplanation,
    PatientParagraph,
)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _therapies(item: dict[str, Any]) -> str:
    parts = []
    for therapy in item.get("therapies", ()):
        drugs = " + ".join(therapy["drugs"]) or "an unnamed therapy"
        parts.append(
            f"{therapy['response']} to {drugs} ({therapy['tier']}; {therapy['regulatory_status']}; "
            f"evidence in {therapy['evidence_disease']})"
        )
    return "; ".join(parts)


def _summary_line(item: dict[str, Any]) -> str:
    category = item["category"]
    if category == "therapeutic":
        return f"{item['alteration']} ({item['tier']}): {_therapies(item)}."
    if category == "hereditary":
        return (
            f"{item['alteration']}: {item['classification']}, possibly inherited; "
            f"{item['condition']}. {item['recommendation']}"
        )
    drugs = ", ".join(item["drugs"]) or "the listed drugs"
    return (
        f"{item['gene']} {item['genotype']} ({item['phenotype']}), relevant to {drugs}: "
        f"{item['recommendation']}"
    )


def _patient_text(item: dict[str, Any]) -> str:
    category = item["category"]
    if category == "therapeutic":
        drugs = sorted({d for t in item["therapies"] for d in t["drugs"]})
        return (
            f"The test found a change called {item['alteration']} in the tumour's DNA. "
            f"Published evidence links this change with how tumours respond to "
            f"{', '.join(drugs) or 'some treatments'}. "
            "Whether any of this applies to you is for your care team to decide with you."
        )
    if category == "hereditary":
        return (
            f"The test found a change in the {item['gene']} gene that may run in families. "
            f"It is linked with {item['condition']}. "
            "Your care team can explain what this means for you and your relatives."
        )
    return (
        f"The test looked at the {item['gene']} gene, which affects how the body handles some "
        f"medicines ({', '.join(item['drugs'])}). "
        "Your care team will take this into account when choosing doses or medicines."
    )


def _genomic(source: ExplanationInput) -> GenomicExplanation:
    doc = source.document
    findings: list[dict[str, Any]] = doc["findings"]
    lines = [f"Tumour type: {doc['tumour_type']}."]
    if findings:
        lines += [_summary_line(item) for item in findings]
    else:
        lines.append("No actionable finding in the knowledge base.")
    if doc["findings_total"] > len(findings):
        lines.append(f"Findings in all: {doc['findings_total']}; the report lists each.")
    if doc["alterations_not_in_knowledge_base"]:
        lines.append(
            f"Alterations not in the knowledge base: {doc['alterations_not_in_knowledge_base']} "
            "(reported as unknown, not interpreted)."
        )
    return GenomicExplanation(
        clinician_summary=_fit(" ".join(lines), SUMMARY_MAX),
        patient_paragraphs=[
            PatientParagraph(finding_id=item["id"], text=_fit(_patient_text(item), PARAGRAPH_MAX))
            for item in findings
        ],
    )


def _histopathology(source: ExplanationInput) -> HistopathologyExplanation:
    doc = source.document

    def pct(key: str) -> str:
        value = doc.get(key)
        return "unknown" if value is None else f"{value}%"

    findings = (
        f"Model {doc['model']}: outcome {doc['outcome']}. Positive area "
        f"{pct('positive_area_percent')} of the tissue analysed (threshold "
        f"{pct('threshold_percent')}); highest tile probability "
        f"{pct('highest_tile_probability_percent')}, mean {pct('mean_tile_probability_percent')}; "
        f"{doc['tissue_tiles']} tissue tiles analysed, {doc['tiles_set_aside']} set aside."
    )
    if doc["outcome"] == "indeterminate":
        reasons = ", ".join(doc["indeterminate_reasons"]) or "not stated"
        interpretation = (
            f"The model could not give a result for this image (reasons: {reasons}). "
            "No conclusion can be drawn from it."
        )
    elif doc["outcome"] == "positive":
        interpretation = (
            "The model marked part of the tissue as positive for the class it detects. This is "
            "a model output, not a diagnosis."
        )
    else:
        interpretation = (
            "The model marked no tissue as positive for the class it detects. This is a model "
            "output, not a diagnosis; a negative model result does not rule disease out."
        )
    steps = ["Pathologist review of the image and of the regions the heatmap marks."]
    if doc["outcome"] == "indeterminate":
        steps.append("Consider a new scan or section if the image quality was the reason.")
    return HistopathologyExplanation(
        findings=_fit(findings, SECTION_MAX),
        interpretation=_fit(interpretation, SECTION_MAX),
        next_steps=steps[:MAX_STEPS],
    )


def template_explanation(source: ExplanationInput) -> Explanation:
    """The deterministic explanation of ``source``."""
    if source.kind == "genomic":
        return _genomic(source)
    return _histopathology(source)
