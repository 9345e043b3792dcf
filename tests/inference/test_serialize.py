"""Interpretation ↔ JSON round trip, and clear errors for bad documents."""

from __future__ import annotations

import json

import pytest

from inference.genomics.model import (
    Biomarker,
    BiomarkerKind,
    DiagnosticFinding,
    Gene,
    HereditaryRiskFinding,
    Origin,
    PatientContext,
    Tier,
    TierAssignment,
)
from inference.genomics.serialize import (
    SCHEMA,
    SerializationError,
    interpretation_from_json,
    interpretation_to_json,
)
from tests.genomics_examples import (
    CIVIC_EID9851,
    braf_crc_interpretation,
    braf_variant,
    dpyd_interpretation,
)


def _rich_interpretation():  # type: ignore[no-untyped-def]
    from dataclasses import replace

    base = braf_crc_interpretation()
    fusion = Biomarker(
        kind=BiomarkerKind.FUSION, gene=Gene("ALK", "HGNC:427"), fusion_partner=Gene("EML4")
    )
    tmb = Biomarker(kind=BiomarkerKind.TMB, tmb=12.5)
    brca = braf_variant(gene=Gene("BRCA1", "HGNC:1100"), origin=Origin.GERMLINE)
    return replace(
        base,
        alterations=(*base.alterations, fusion, tmb, brca),
        context=PatientContext(
            tumour_type=base.context.tumour_type, clinical_context=frozenset({"HER2-", "HR+"})
        ),
        diagnostic=(
            DiagnosticFinding(
                alteration_id=fusion.id,
                kind="diagnostic",
                statement="s",
                disease="d",
                tier=TierAssignment(Tier.II),
                evidence=(CIVIC_EID9851,),
            ),
        ),
        hereditary=(
            HereditaryRiskFinding(
                alteration_id=brca.id,
                gene=Gene("BRCA1", "HGNC:1100"),
                classification="pathogenic",
                condition="hereditary breast and ovarian cancer",
                recommendation="genetic counselling",
                evidence=(CIVIC_EID9851,),
            ),
        ),
        warnings=("w1",),
    )


@pytest.mark.parametrize(
    "factory", [braf_crc_interpretation, dpyd_interpretation, _rich_interpretation]
)
def test_round_trip_through_json_text(factory) -> None:  # type: ignore[no-untyped-def]
    original = factory()
    text = json.dumps(interpretation_to_json(original))
    assert interpretation_from_json(json.loads(text)) == original


def test_document_shape_is_plain_json() -> None:
    doc = interpretation_to_json(braf_crc_interpretation())
    assert doc["schema"] == SCHEMA
    assert doc["alterations"][0]["type"] == "variant"
    assert doc["alterations"][0]["position"] == {
        "build": "GRCh38",
        "chrom": "7",
        "pos": 140753336,
        "ref": "A",
        "alt": "T",
    }
    assert doc["therapeutic"][0]["tier"] == {"tier": "I", "level": "A"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema="other/9"), r"\$\.schema"),
        (lambda d: d["alterations"][0].update(type="mystery"), r"alterations\[0\]\.type"),
        (lambda d: d["therapeutic"][0]["tier"].update(tier="V"), r"tier\.tier"),
        (lambda d: d["alterations"][0].update(allele_frequency="high"), "allele_frequency"),
        (lambda d: d["alterations"][0].update(colour="red"), "unknown field 'colour'"),
        (lambda d: d.pop("context"), r"\$\.context: missing"),
    ],
)
def test_bad_documents_name_the_path(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = interpretation_to_json(braf_crc_interpretation())
    mutate(doc)
    with pytest.raises(SerializationError, match=message):
        interpretation_from_json(doc)
