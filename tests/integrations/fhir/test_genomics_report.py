"""The Genomics Reporting STU3 transaction Bundle: golden files, profile rules, stable ids."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from inference.genomics.model import EvidenceLevel, Tier, TierAssignment
from integrations.errors import FhirMappingError
from integrations.fhir.genomics_profiles import check_bundle
from integrations.fhir.genomics_report import (
    build_genomic_report_bundle,
    report_with_contained,
)
from integrations.fhir.resources import Bundle, DiagnosticReport
from tests.genomics_examples import (
    braf_crc_interpretation,
    braf_variant,
    dpyd_interpretation,
    report_context,
    rich_interpretation,
)
from tests.support import golden

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "fhir_golden"
CASES = {
    "braf_v600e_crc.json": braf_crc_interpretation,
    "dpyd_2a_capecitabine.json": dpyd_interpretation,
}


def _golden(name: str) -> Any:
    return golden.load_golden(GOLDEN / name)


def _resources(bundle: dict[str, Any], profile_suffix: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if any(
            p.endswith("/" + profile_suffix)
            for p in e["resource"].get("meta", {}).get("profile", [])
        )
    ]


def _component(resource: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [
        c for c in resource["component"] if any(cd["code"] == code for cd in c["code"]["coding"])
    ]


def matches_golden(actual: dict[str, Any], name: str) -> bool:
    """Compare as parsed JSON (tests/support/golden.py)."""
    return golden.matches_golden(actual, GOLDEN / name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bundle_matches_golden_file(name: str) -> None:
    bundle = build_genomic_report_bundle(CASES[name](), report_context())
    # ONCOCDS_REGENERATE_GOLDEN=1 rewrites the file and fails the test (review the diff).
    golden.assert_matches_golden(bundle, GOLDEN / name)
    assert matches_golden(bundle, name)


def test_golden_comparison_fails_on_a_changed_tier() -> None:
    wrong = braf_crc_interpretation(tier=TierAssignment(Tier.II, EvidenceLevel.C))
    assert not matches_golden(
        build_genomic_report_bundle(wrong, report_context()), "braf_v600e_crc.json"
    )


def test_golden_comparison_fails_on_a_missing_category() -> None:
    bundle = build_genomic_report_bundle(braf_crc_interpretation(), report_context())
    broken = copy.deepcopy(bundle)
    broken["entry"][0]["resource"]["category"].pop()
    assert not matches_golden(broken, "braf_v600e_crc.json")
    assert any("GE missing" in p for p in check_bundle(broken))


def test_golden_files_pass_the_profile_checker_and_fhir_resources() -> None:
    for name in CASES:
        golden = _golden(name)
        assert check_bundle(golden) == []
        Bundle.model_validate(golden)


def test_braf_bundle_says_what_the_ig_requires() -> None:
    """Facts written by hand from the IG and the sources, not read back from the builder."""
    bundle = build_genomic_report_bundle(braf_crc_interpretation(), report_context())
    assert bundle["type"] == "transaction"
    assert all(e["request"]["method"] == "POST" for e in bundle["entry"])
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])

    braf = next(v for v in _resources(bundle, "variant") if "HGNC:1097" in json.dumps(v))
    interval = _component(braf, "81254-5")[0]["valueRange"]
    assert (interval["low"]["value"], interval["high"]["value"]) == (140753335, 140753336)
    assert (
        _component(braf, "92822-6")[0]["valueCodeableConcept"]["coding"][0]["code"] == "LA30100-4"
    )
    assert (
        _component(braf, "62374-4")[0]["valueCodeableConcept"]["coding"][0]["code"] == "LA26806-2"
    )
    assert (
        _component(braf, "48000-4")[0]["valueCodeableConcept"]["coding"][0]["code"] == "LA21260-7"
    )
    assert _component(braf, "48004-6")[0]["valueCodeableConcept"]["coding"][0]["code"] == (
        "NM_004333.6:c.1799T>A"
    )
    assert _component(braf, "48002-0")[0]["valueCodeableConcept"]["coding"][0]["code"] == "LA6684-0"
    assert _component(braf, "81258-6")[0]["valueQuantity"] == {
        "value": 0.31,
        "system": "http://unitsofmeasure.org",
        "code": "1",
    }

    (tx,) = _resources(bundle, "therapeutic-implication")
    assert "valueCodeableConcept" not in tx
    drugs = [c["valueCodeableConcept"]["coding"][0]["code"] for c in _component(tx, "51963-7")]
    assert drugs == ["2049106", "318341"]
    assert _component(tx, "93044-6")[0]["valueCodeableConcept"]["text"] == "Tier I - Level A"
    assert (
        _component(tx, "therapeutic-implication")[0]["valueCodeableConcept"]["coding"][0]["code"]
        == "LA6677-4"
    )
    braf_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is braf)
    assert tx["derivedFrom"] == [{"reference": braf_url}]
    cited = {x["valueRelatedArtifact"]["url"] for x in tx["extension"]}
    assert "https://civicdb.org/links/evidence_items/9851" in cited
    assert "https://pubmed.ncbi.nlm.nih.gov/31566309/" in cited
    assert any("ApplNo=210496" in url for url in cited)

    (report,) = _resources(bundle, "genomic-report")
    assert report["code"]["coding"][0]["code"] == "51969-4"
    observation_urls = {
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    }
    assert {r["reference"] for r in report["result"]} == observation_urls
    assert "encorafenib + cetuximab" in report["conclusion"]

    (prov,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"
    ]
    assert "OncoCDS 0.1.0" in prov["agent"][0]["who"]["display"]
    assert "civic-2024-08-01" in prov["agent"][0]["who"]["display"]


def test_dpyd_bundle_has_genotype_and_poor_metabolizer_implication() -> None:
    bundle = build_genomic_report_bundle(dpyd_interpretation(), report_context())
    (genotype,) = _resources(bundle, "genotype")
    assert genotype["code"]["coding"][0]["code"] == "84413-4"
    assert genotype["valueCodeableConcept"]["text"] == "DPYD *2A/*2A"
    (pgx,) = _resources(bundle, "therapeutic-implication")
    phenotype = _component(pgx, "therapeutic-implication")[0]["valueCodeableConcept"]
    assert phenotype["coding"][0]["code"] == "LA9657-3"
    assert _component(pgx, "51963-7")[0]["valueCodeableConcept"]["coding"][0]["code"] == "194000"
    genotype_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is genotype)
    assert pgx["derivedFrom"] == [{"reference": genotype_url}]


def test_ids_are_stable_across_runs_and_change_with_content() -> None:
    first = build_genomic_report_bundle(braf_crc_interpretation(), report_context())
    second = build_genomic_report_bundle(braf_crc_interpretation(), report_context())
    ids = [(e["fullUrl"], e["resource"]["id"]) for e in first["entry"]]
    assert ids == [(e["fullUrl"], e["resource"]["id"]) for e in second["entry"]]
    assert len({url for url, _ in ids}) == len(ids)

    changed_af = braf_crc_interpretation(variant=braf_variant(allele_frequency=0.45))
    third = build_genomic_report_bundle(changed_af, report_context())
    assert third["entry"][0]["resource"]["id"] != first["entry"][0]["resource"]["id"]
    other_patient = build_genomic_report_bundle(
        braf_crc_interpretation(), report_context("Patient/p2")
    )
    # Everything about the patient changes; the Device (OncoCDS + KB versions) is shared.
    patient_urls = {
        e["fullUrl"] for e in other_patient["entry"] if e["resource"]["resourceType"] != "Device"
    }
    assert patient_urls.isdisjoint({url for url, _ in ids})


def test_finding_without_its_alteration_is_refused() -> None:
    interp = braf_crc_interpretation()
    orphan = replace(interp, alterations=interp.alterations[1:])
    with pytest.raises(FhirMappingError, match="not in the interpretation"):
        build_genomic_report_bundle(orphan, report_context())


def test_contained_report_for_a_card_suggestion_validates() -> None:
    bundle = build_genomic_report_bundle(braf_crc_interpretation(), report_context())
    report = report_with_contained(bundle)
    DiagnosticReport.model_validate(report)
    contained_ids = {f"#{r['id']}" for r in report["contained"]}
    assert {r["reference"] for r in report["result"]} == contained_ids
    for resource in report["contained"]:
        for ref in resource.get("derivedFrom", []):
            assert ref["reference"] in contained_ids


def test_creates_are_conditional_on_the_content_identifier() -> None:
    """A retried write-back must not duplicate the report (conditional create)."""
    bundle = build_genomic_report_bundle(braf_crc_interpretation(), report_context())
    for entry in bundle["entry"]:
        resource, request = entry["resource"], entry["request"]
        if resource["resourceType"] == "Provenance":  # R4 Provenance has no identifier
            assert "ifNoneExist" not in request
            continue
        assert resource["identifier"] == [
            {"system": "urn:ietf:rfc:3986", "value": entry["fullUrl"]}
        ]
        assert request["ifNoneExist"] == f"identifier=urn:ietf:rfc:3986|{entry['fullUrl']}"


def test_every_finding_kind_maps_and_passes_the_checker() -> None:
    bundle = build_genomic_report_bundle(rich_interpretation(), report_context())
    assert check_bundle(bundle) == []
    Bundle.model_validate(bundle)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}

    (tmb,) = [
        r
        for r in _resources(bundle, "molecular-biomarker")
        if r["code"]["coding"][0]["code"] == "94076-7"
    ]
    assert tmb["valueQuantity"]["code"] == "1/1000000"
    assert tmb["valueQuantity"]["value"] == 12.5
    (msi,) = [
        r
        for r in _resources(bundle, "molecular-biomarker")
        if r["code"]["coding"][0]["code"] == "81695-9"
    ]
    assert msi["valueCodeableConcept"]["coding"][0]["code"] == "LA26203-2"

    fusion = next(v for v in _resources(bundle, "variant") if "EML4" in json.dumps(v))
    genes = [c["valueCodeableConcept"] for c in _component(fusion, "48018-6")]
    assert genes == [
        {"coding": [{"system": "http://www.genenames.org", "code": "HGNC:427", "display": "ALK"}]},
        {"text": "EML4"},
    ]
    assert _component(fusion, "conclusion-string")[0]["valueString"] == "EML4::ALK fusion"

    implications = _resources(bundle, "diagnostic-implication")
    hereditary = next(r for r in implications if _component(r, "53037-8"))
    assert (
        _component(hereditary, "53037-8")[0]["valueCodeableConcept"]["coding"][0]["code"]
        == "LA6668-3"
    )
    germline = by_url[hereditary["derivedFrom"][0]["reference"]]
    assert (
        _component(germline, "48002-0")[0]["valueCodeableConcept"]["coding"][0]["code"]
        == "LA6683-2"
    )
    assert not _component(germline, "81254-5")  # no position, so no coordinates
    diagnostic = next(r for r in implications if not _component(r, "53037-8"))
    assert by_url[diagnostic["derivedFrom"][0]["reference"]] is fusion


@pytest.mark.parametrize(
    "factory", [braf_crc_interpretation, dpyd_interpretation, rich_interpretation]
)
def test_unvalidated_build_is_identical_to_the_validated_one(factory) -> None:  # type: ignore[no-untyped-def]
    """The request path skips fhir.resources validation; it must not change a single byte."""
    validated = build_genomic_report_bundle(factory(), report_context())
    fast = build_genomic_report_bundle(factory(), report_context(), validate=False)
    assert json.dumps(fast, sort_keys=True) == json.dumps(validated, sort_keys=True)

    contained = report_with_contained(validated)
    assert json.dumps(report_with_contained(validated, validate=False), sort_keys=True) == (
        json.dumps(contained, sort_keys=True)
    )
