"""The demo patient's data and the demo's terminal rendering.

The variant rows are checked against the real PCGR T001-COAD VCF in tests/data/vcf; the
resources are validated as FHIR R4 and read back by the service's own intake (independently of
how the demo built them); prefetch answers are compared with a plain filter written here.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from cds_service.cli import demo_patient
from cds_service.cli.demo_render import card_lines, inline, markdown_text
from inference.genomics.model import Variant
from integrations.fhir.resources import Condition, MedicationRequest, Observation, Patient
from integrations.fhir.variant_intake import read_fhir_variants

VCF = Path(__file__).resolve().parents[2] / "data" / "vcf" / "pcgr_T001-COAD.grch38.vcf.gz"


def _vcf_rows() -> dict[tuple[str, int, str, str], dict[str, str]]:
    rows = {}
    with gzip.open(VCF, "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            chrom, pos, vid, ref, alt, _q, _f, info = line.split("\t")[:8]
            fields = dict(item.split("=", 1) for item in info.split(";") if "=" in item)
            rows[(chrom, int(pos), ref, alt)] = {"id": vid, **fields}
    return rows


def test_every_demo_variant_is_a_call_of_the_t001_coad_tumour() -> None:
    rows = _vcf_rows()
    for _gene, _hgnc, chrom, pos, ref, alt, vaf, depth, _p in demo_patient.VARIANTS:
        row = rows[(chrom, pos, ref, alt)]
        assert float(row["TVAF"]) == pytest.approx(vaf, abs=0.0005)
        assert int(row["TDP"]) == depth


def test_the_dpyd_genotype_is_what_the_callset_holds() -> None:
    """rs3918290 (DPYD *2A) is called heterozygous in the tumour-normal pair: *1/*2A."""
    row = next(r for r in _vcf_rows().values() if r["id"] == "rs3918290")
    assert 0.4 < float(row["TVAF"]) < 0.6
    assert demo_patient.DPYD_DIPLOTYPE == "*1/*2A"


def test_resources_are_valid_fhir_r4_and_read_back_by_the_intake() -> None:
    chart = demo_patient.resources()
    models = {
        "Patient": Patient,
        "Condition": Condition,
        "Observation": Observation,
        "MedicationRequest": MedicationRequest,
    }
    for resource in [*chart, demo_patient.draft_order()]:
        models[resource["resourceType"]].model_validate(resource)
    observations = [r for r in chart if r["resourceType"] == "Observation" and "variant" in r["id"]]
    result = read_fhir_variants(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": o} for o in observations],
        },
        build=None,
        strict=True,
        name="demo",
    )
    read = {
        (v.position.chrom, v.position.pos, v.position.ref, v.position.alt)
        for v in result.alterations
        if isinstance(v, Variant) and v.position is not None
    }
    assert read == {(c, p, r, a) for _g, _h, c, p, r, a, *_ in demo_patient.VARIANTS}


def test_prefetch_answers_match_a_plain_filter_of_the_chart() -> None:
    chart = demo_patient.resources()
    context = {"patientId": demo_patient.PATIENT_ID, "userId": demo_patient.PRACTITIONER}
    templates = {
        "patient": "Patient/{{context.patientId}}",
        "variants": "Observation?patient={{context.patientId}}&code=http://loinc.org|69548-6",
        "genotypes": "Observation?patient={{context.patientId}}&code=http://loinc.org|84413-4",
        "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
        "stopped": "MedicationRequest?patient={{context.patientId}}&status=stopped",
        "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
        "unknown-param": "Observation?patient={{context.patientId}}&date=ge2020-01-01",
        "unknown-token": "Observation?patient={{context.encounterId}}",
        "missing": "Patient/nobody",
    }
    prefetch = demo_patient.prefetch_for(templates, context)

    def ids(key: str) -> list[str]:
        return [e["resource"]["id"] for e in prefetch[key]["entry"]]

    def plain(rtype: str, code: str | None = None) -> list[str]:
        return [
            r["id"]
            for r in chart
            if r["resourceType"] == rtype
            and (code is None or r["code"]["coding"][0]["code"] == code)
        ]

    assert prefetch["patient"]["id"] == demo_patient.PATIENT_ID
    assert ids("variants") == plain("Observation", "69548-6")
    assert len(ids("variants")) == len(demo_patient.VARIANTS)
    assert ids("genotypes") == plain("Observation", "84413-4")
    assert ids("medications") == plain("MedicationRequest")
    assert ids("stopped") == []
    assert ids("conditions") == plain("Condition")
    # CDS Hooks 2.0 §Prefetch: what a client cannot answer is left out; a read that finds
    # nothing is null.
    assert "unknown-param" not in prefetch
    assert "unknown-token" not in prefetch
    assert prefetch["missing"] is None


# ------------------------------------------------------------------------------ rendering


def test_inline_markdown_becomes_text() -> None:
    assert inline("**DPYD \\*2A/\\*2A**: poor metabolizer") == "DPYD *2A/*2A: poor metabolizer"
    assert inline("see [CIViC EID9851](https://civicdb.org/x) and `code`") == (
        "see CIViC EID9851 and code"
    )
    assert inline("_Decision support_, not a *diagnosis*") == "Decision support, not a diagnosis"
    assert inline("BRCA1 c.68\\_69delAG in a\\|b") == "BRCA1 c.68_69delAG in a|b"
    assert inline("snake_case_name stays") == "snake_case_name stays"


def test_a_table_is_aligned_when_it_fits_and_listed_when_it_does_not() -> None:
    table = "| Tier | Therapy |\n|---|---|\n| I | a + b |\n| II | c \\| d |"
    assert markdown_text(table, width=80, indent="") == [
        "Tier  Therapy",
        "----  -------",
        "I     a + b",
        "II    c | d",
    ]
    wide = "| Tier | Evidence |\n|---|---|\n| I | " + "x " * 60 + "|"
    lines = markdown_text(wide, width=50, indent="  ")
    assert lines[0].startswith("  - Tier: I; Evidence: x x")
    assert all(len(line) <= 50 for line in lines)


def test_a_card_shows_indicator_summary_detail_suggestions_and_links() -> None:
    card = {
        "summary": "DPYD *1/*2A: reduce capecitabine",
        "indicator": "critical",
        "source": {"label": "OncoCDS"},
        "detail": "**DPYD \\*1/\\*2A**: intermediate metabolizer.",
        "suggestions": [
            {
                "label": "Remove the draft order",
                "isRecommended": True,
                "actions": [{"type": "delete", "description": "Remove it"}],
            }
        ],
        "links": [{"label": "Report", "url": "http://x/reports/1?t=2", "type": "absolute"}],
    }
    plain = card_lines(card, width=80, colour=False)
    assert plain[0] == "[CRITICAL] DPYD *1/*2A: reduce capecitabine"
    assert "    DPYD *1/*2A: intermediate metabolizer." in plain
    assert "      * Remove the draft order (recommended)" in plain
    assert "          delete: Remove it" in plain
    assert "      * Report: http://x/reports/1?t=2" in plain
    coloured = card_lines(card, width=80, colour=True)
    assert coloured[0].startswith("\x1b[1;31m[CRITICAL]\x1b[0m ")
