"""The evaluation figures on crafted outputs, with the expected counts worked out by hand.

The finding is written here (KRAS G12D in NSCLC, CIViC-style, invented ids); the outputs are the
failure modes issue 16 names: a hallucinated drug (the KRAS G12D → sotorasib of the earlier tool),
an invented gene, a wrong level, a number not in the findings, prose instead of JSON, a citation
the finding does not carry.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from inference.genomics.kb.store import load_knowledge_base
from training.llm.grounding import KbGroundingChecker, Vocabulary
from training.llm.metrics import evaluate_outputs
from training.llm.pairs import Pair
from training.llm.schema import parse_answer

FINDING: dict[str, Any] = {
    "genes": ["KRAS"],
    "alteration": "KRAS G12D",
    "disease": "Non-small Cell Lung Carcinoma",
    "drugs": ["adagrasib"],
    "statement": "resistant",
    "evidence_type": "predictive",
    "evidence_level": "C",
    "evidence": [
        {
            "source": "CIViC",
            "id": "CIViC:EID90001",
            "url": "https://civicdb.org/links/evidence_items/90001",
        },
        {
            "source": "PubMed",
            "id": "PMID:31234567",
            "url": "https://pubmed.ncbi.nlm.nih.gov/31234567/",
        },
    ],
}
GOOD = (
    "KRAS G12D in Non-small Cell Lung Carcinoma: CIViC evidence level C associates it with "
    "resistance to adagrasib."
)


def _pair() -> Pair:
    return Pair(
        id="t#clinician",
        fact_id="t",
        group="t",
        kind="civic-predictive",
        template="clinician",
        instruction="Summarise.",
        input=FINDING,
        answer=GOOD,
        citations=("CIViC:EID90001",),
    )


def _json(answer: str, citations: list[str]) -> str:
    return json.dumps({"answer": answer, "citations": citations})


@pytest.fixture(scope="module")
def checker() -> KbGroundingChecker:
    return KbGroundingChecker(Vocabulary.from_kb(load_knowledge_base()))


def test_the_reference_answer_is_grounded(checker: KbGroundingChecker) -> None:
    assert checker(GOOD, FINDING) == []
    assert checker.unsupported_drugs(GOOD, FINDING) == []


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("KRAS G12D responds to sotorasib.", "drug:sotorasib"),
        ("KRAS G12D responds to Lumakras.", "drug:lumakras"),  # a brand name
        ("KRAS G12D after a sotorasib-based regimen.", "drug:sotorasib"),
        ("KRAS G12D with a STK11 co-mutation.", "gene:STK11"),  # a KB gene not in the finding
        ("KRAS G12D and an FOXZ9 fusion.", "gene:FOXZ9"),  # an invented, HGNC-like symbol
        ("KRAS G12C predicts resistance.", "variant:G12C"),
        ("CIViC evidence level A for KRAS G12D.", "level:A"),
        ("This is a Tier I finding.", "tier:I"),
        ("Resistance in 45% of patients.", "number:45"),
    ],
)
def test_an_entity_the_finding_lacks_fails(
    checker: KbGroundingChecker, text: str, entity: str
) -> None:
    assert checker(text, FINDING) == [entity]


def test_identifiers_inside_words_are_not_numbers(checker: KbGroundingChecker) -> None:
    """The 12 of G12D and the 2 of a gene symbol are not standalone numbers."""
    assert checker("KRAS G12D; adagrasib.", FINDING) == []


def test_schema_validation() -> None:
    assert parse_answer(_json("text", ["CIViC:EID90001"])) is not None
    assert parse_answer(_json("text", [])) is None  # an answer must cite
    assert parse_answer(_json("", ["x"])) is None
    assert parse_answer('{"answer": "text", "citations": ["x"], "extra": 1}') is None
    assert parse_answer('{"answer": "text", "citations": ["x"]') is None  # truncated
    assert parse_answer("KRAS G12D responds to adagrasib.") is None  # prose


def test_figures_over_crafted_outputs(checker: KbGroundingChecker) -> None:
    pair = _pair()
    outputs = [
        # 1. valid, grounded, cites the finding: no failure.
        _json(GOOD, ["CIViC:EID90001"]),
        # 2. prose (schema-invalid) recommending sotorasib: grounding failure, unsupported drug.
        "KRAS G12D: sotorasib is recommended.",
        # 3. valid JSON, grounded text, but cites an id the finding lacks: grounding failure.
        _json(GOOD, ["CIViC:EID1"]),
        # 4. valid JSON naming sotorasib beside the finding's adagrasib: failure, drug.
        _json("KRAS G12D: consider sotorasib or adagrasib.", ["PMID:31234567"]),
        # 5. truncated JSON with nothing ungrounded in it: schema-invalid only.
        '{"answer": "KRAS G12D',
    ]
    result = evaluate_outputs(
        [pair] * 5, outputs, checker=checker, unsupported_drugs=checker.unsupported_drugs
    )
    assert result.pairs == 5
    assert result.schema_valid == 3  # outputs 1, 3, 4
    assert result.grounding_failures == 3  # outputs 2, 3, 4
    assert result.unsupported_drug_outputs == 2  # outputs 2, 4
    assert result.unsupported_drugs == (("sotorasib", 2),)
    figures = result.to_json()
    assert figures["schema_valid_rate"] == 0.6
    assert figures["grounding_failure_rate"] == 0.6
    assert figures["unsupported_drug_rate"] == 0.4


def test_another_checker_plugs_in() -> None:
    """The runtime's checker replaces the default one: the figures follow it, not the KB."""
    calls: list[str] = []

    def strict(text: str, finding: Any) -> list[str]:
        calls.append(text)
        return ["everything"]

    result = evaluate_outputs(
        [_pair()],
        [_json(GOOD, ["CIViC:EID90001"])],
        checker=strict,
        unsupported_drugs=lambda t, f: [],
    )
    assert calls == [GOOD]
    assert result.grounding_failures == 1
    assert result.unsupported_drug_outputs == 0


def test_outputs_must_match_pairs() -> None:
    with pytest.raises(ValueError, match="1 pairs but 2 outputs"):
        evaluate_outputs(
            [_pair()], ["a", "b"], checker=lambda t, f: [], unsupported_drugs=lambda t, f: []
        )
