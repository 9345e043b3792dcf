"""FHIR Genomics Reporting intake on hand-written IG-shaped fixtures (tests/data/fhir/README.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from inference.genomics.model import (
    Biomarker,
    BiomarkerKind,
    GenomeBuild,
    Genotype,
    Origin,
    Variant,
    Zygosity,
)
from integrations.errors import IntakeError
from integrations.fhir.variant_intake import read_fhir_variants

DATA = Path(__file__).resolve().parents[2] / "data" / "fhir"


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def _by_ref(items: list[Any]) -> dict[str, Any]:
    return {item.source_ref: item for item in items}


def test_stu3_braf_v600e_from_the_ig_example() -> None:
    result = read_fhir_variants(_load("stu3_braf_report_bundle.json"))
    assert result.problems == []
    assert result.records_read == 2  # the Variant and the TherapeuticImplication
    (braf,) = result.alterations
    assert isinstance(braf, Variant)
    assert braf.gene is not None
    assert (braf.gene.symbol, braf.gene.hgnc_id) == ("BRAF", "HGNC:1097")
    assert (braf.hgvs_c, braf.transcript) == ("c.1799T>A", "NM_004333.6")
    assert (braf.hgvs_p, braf.protein_change) == ("p.Val600Glu", "V600E")
    # 0-based interval [140753335, 140753336) is VCF POS 140753336.
    assert braf.position is not None
    assert braf.position.key == "GRCh38:7:140753336:A:T"
    assert braf.origin is Origin.SOMATIC
    assert braf.allele_frequency == pytest.approx(0.31)
    assert braf.source_ref == "Observation/braf-v600e"


def test_stu3_mixed_findings() -> None:
    result = read_fhir_variants(_load("stu3_mixed_findings_bundle.json"))
    assert result.problems == []
    assert result.records_read == 8
    found = _by_ref(result.alterations)
    assert set(found) == {
        "Observation/pik3ca-h1047r",
        "Observation/brca1-germline",
        "Observation/erbb2-amp",
        "Observation/eml4-alk",
        "Observation/tmb",
        "Observation/msi",
    }  # the Absent KRAS is not an alteration

    pik3ca = found["Observation/pik3ca-h1047r"]
    assert pik3ca.position.key == "GRCh37:3:178952085:A:G"  # 1-based, build from NC_000003.11
    assert (pik3ca.protein_change, pik3ca.allele_frequency, pik3ca.depth) == ("H1047R", 0.42, 74)

    brca1 = found["Observation/brca1-germline"]
    assert (brca1.origin, brca1.zygosity, brca1.hgvs_c) == (
        Origin.GERMLINE,
        Zygosity.HETEROZYGOUS,
        "c.68_69del",
    )
    assert brca1.position is None

    erbb2 = found["Observation/erbb2-amp"]
    assert isinstance(erbb2, Biomarker)
    assert (erbb2.kind, erbb2.gene.symbol, erbb2.copy_number) == (  # type: ignore[union-attr]
        BiomarkerKind.AMPLIFICATION,
        "ERBB2",
        8,
    )
    fusion = found["Observation/eml4-alk"]
    assert fusion.label == "EML4::ALK fusion"
    assert found["Observation/tmb"].tmb == 12.5
    assert found["Observation/msi"].kind is BiomarkerKind.MSI_HIGH

    (dpyd,) = result.genotypes
    assert dpyd == Genotype(
        gene=dpyd.gene, diplotype="*1/*2A", source_ref="Observation/dpyd-genotype"
    )
    assert (dpyd.gene.symbol, dpyd.gene.hgnc_id) == ("DPYD", "HGNC:3012")


def test_stu1_report_shape_and_an_invalid_observation() -> None:
    result = read_fhir_variants(_load("stu1_genomics_report_bundle.json"))
    (braf,) = result.alterations
    assert isinstance(braf, Variant)
    assert braf.position is not None
    assert braf.position.key == "GRCh37:7:140453136:A:T"  # bare low: 1-based (81247-9 panel)
    assert braf.gene is not None
    assert braf.gene.hgnc_id == "HGNC:1097"
    assert braf.transcript == "NM_004333.4"
    assert [p.location for p in result.problems] == ["Observation/broken-1"]
    assert "status" in result.problems[0].reason
    with pytest.raises(IntakeError) as raised:
        read_fhir_variants(_load("stu1_genomics_report_bundle.json"), strict=True)
    assert [p.location for p in raised.value.problems] == ["Observation/broken-1"]


def test_one_and_three_letter_protein_forms_meet() -> None:
    stu3 = read_fhir_variants(_load("stu3_braf_report_bundle.json")).alterations[0]
    stu1 = read_fhir_variants(_load("stu1_genomics_report_bundle.json")).alterations[0]
    assert isinstance(stu3, Variant)
    assert isinstance(stu1, Variant)
    assert (stu3.hgvs_p, stu1.hgvs_p) == ("p.Val600Glu", "p.V600E")
    assert stu3.protein_change == stu1.protein_change == "V600E"


def _variant_bundle() -> dict[str, Any]:
    bundle = _load("stu3_braf_report_bundle.json")
    return copy.deepcopy(bundle["entry"][0]["resource"])  # type: ignore[no-any-return]


def _component(resource: dict[str, Any], code: str) -> dict[str, Any]:
    for component in resource["component"]:
        if component["code"]["coding"][0]["code"] == code:
            return component  # type: ignore[no-any-return]
    raise AssertionError(code)


def test_assembly_contradicting_refseq_is_a_problem() -> None:
    variant = _variant_bundle()
    _component(variant, "62374-4")["valueCodeableConcept"]["coding"][0]["code"] = "LA14029-5"
    with pytest.raises(IntakeError) as raised:
        read_fhir_variants([variant])
    assert "contradicts RefSeq NC_000007.14" in raised.value.problems[0].reason


def test_coordinates_without_build_use_the_argument_or_are_reported() -> None:
    variant = _variant_bundle()
    variant["component"] = [
        c
        for c in variant["component"]
        if c["code"]["coding"][0]["code"] not in {"62374-4", "48013-7"}
    ]
    variant["component"].append(
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "48000-4"}]},
            "valueCodeableConcept": {"coding": [{"code": "LA21260-7"}]},
        }
    )
    given = read_fhir_variants([variant], build="GRCh38")
    assert given.alterations[0].position.key == "GRCh38:7:140753336:A:T"  # type: ignore[union-attr]
    unknown = read_fhir_variants([variant])
    assert unknown.alterations[0].position is None  # type: ignore[union-attr]
    assert unknown.alterations[0].protein_change == "V600E"  # type: ignore[union-attr]
    assert "without a genome build" in unknown.problems[0].reason


def test_variant_without_identity_is_a_problem_and_others_survive() -> None:
    empty = {
        "resourceType": "Observation",
        "id": "empty",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "69548-6"}]},
        "valueCodeableConcept": {"coding": [{"code": "LA9633-4"}]},
    }
    result = read_fhir_variants([empty, _variant_bundle(), "not a resource"])
    assert len(result.alterations) == 1
    assert [p.location for p in result.problems] == ["Observation/empty", "[2]"]


def test_msi_stable_is_no_finding_and_unknown_codes_are_skipped() -> None:
    stable = {
        "resourceType": "Observation",
        "id": "mss",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "81695-9"}]},
        "valueCodeableConcept": {"coding": [{"code": "LA14122-8", "display": "Stable"}]},
    }
    other = {
        "resourceType": "Observation",
        "id": "hb",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
    }
    result = read_fhir_variants([stable, other, _variant_bundle()])
    assert result.problems == []
    assert [a.source_ref for a in result.alterations] == ["Observation/braf-v600e"]
    assert result.alterations[0].position.build is GenomeBuild.GRCH38  # type: ignore[union-attr]


def test_spdi_variation_code_as_genomics_operations_sends_it() -> None:
    variant = {
        "resourceType": "Observation",
        "id": "ops-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "69548-6"}]},
        "valueCodeableConcept": {"coding": [{"code": "LA9633-4"}]},
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]},
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://www.genenames.org/geneId",
                            "code": "HGNC:1097",
                            "display": "BRAF",
                        }
                    ]
                },
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "81252-9"}]},
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "https://api.ncbi.nlm.nih.gov/variation/v0/",
                            "code": "NC_000007.14:140753335:A:T",
                        }
                    ]
                },
            },
        ],
    }
    (braf,) = read_fhir_variants([variant]).alterations
    assert braf.position.key == "GRCh38:7:140753336:A:T"  # type: ignore[union-attr]


def test_observations_contained_in_a_report_are_read() -> None:
    variant = _variant_bundle()
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "51969-4"}]},
        "contained": [variant],
        "result": [{"reference": "#braf-v600e"}],
    }
    (braf,) = read_fhir_variants(report).alterations
    assert braf.source_ref == "Observation/braf-v600e"


def _fixture_observations() -> list[dict[str, Any]]:
    from integrations.fhir.clinical_context import iter_resources

    found = []
    for path in sorted(DATA.glob("*.json")):
        found += [
            r
            for r in iter_resources(json.loads(path.read_text()))
            if r.get("resourceType") == "Observation"
        ]
    return found


def _whole_resource_problem(resource: dict[str, Any]) -> str | None:
    import pydantic

    from integrations.fhir.resources import Observation
    from integrations.fhir.variant_intake_validation import validation_reason

    try:
        Observation.model_validate(resource)
    except pydantic.ValidationError as exc:
        return validation_reason(exc)
    return None


def _broken_variants(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Invalid copies of a valid Observation: in a component (bad value, bad code, not an object,
    no code), in the repeating top-level elements (status, value) and in the per-result ones
    (subject, id, two effective[x] at once, a contained resource, a primitive's extension)."""
    broken = []
    for mutate in (
        lambda c: c[0].__setitem__("valueQuantity", {"value": "not a number"}),
        lambda c: c[-1].__setitem__("code", {"coding": "not a list"}),
        lambda c: c.append("not an object"),
        lambda c: c.append({"valueString": "a component without its code"}),
    ):
        copy_ = copy.deepcopy(resource)
        mutate(copy_["component"])
        broken.append(copy_)
    for key, value in (
        ("status", 42),
        ("valueQuantity", {"value": "not a number"}),  # beside valueCodeableConcept
        ("subject", "Patient/not-a-reference-object"),
        ("id", "not a valid id!"),
        ("effectivePeriod", {"start": "2024-01-01"}),  # beside effectiveDateTime
        ("contained", [{"resourceType": "Patient", "gender": 7}]),
        ("_issued", {"extension": "not a list"}),
    ):
        copy_ = copy.deepcopy(resource)
        copy_.setdefault("effectiveDateTime", "2024-01-01")
        copy_.setdefault("issued", "2024-01-02T00:00:00Z")
        copy_[key] = value
        broken.append(copy_)
    return broken


def _forget_validations() -> None:
    from integrations.fhir import variant_intake

    caches = variant_intake.VALIDATION_CACHES
    for cache in (caches.problems, caches.shells, caches.components):
        cache.clear()


def test_component_wise_validation_agrees_with_whole_resource_validation() -> None:
    """Components and the repeating and per-result parts are validated apart (the first two
    once per content); the verdict and the reason reported must be the ones validating the whole
    Observation at once gives, valid or not, with the part caches cold or warm."""
    from integrations.fhir import variant_intake
    from integrations.fhir.variant_intake_validation import validation_problem

    caches = variant_intake.VALIDATION_CACHES

    observations = _fixture_observations()
    with_components = [o for o in observations if o.get("component")]
    assert len(with_components) >= 5
    edges = []  # whatever whole-resource validation says of these, the parts must say too
    for components in ([], None, {"code": {"text": "not in a list"}}):
        edge = copy.deepcopy(with_components[0])
        edge["component"] = components
        edges.append(edge)
    without = copy.deepcopy(with_components[0])
    del without["component"]
    edges.append(without)
    cases = observations + edges + [b for o in with_components[:5] for b in _broken_variants(o)]
    invalid = 0
    for resource in cases:
        expected = _whole_resource_problem(resource)
        _forget_validations()
        assert validation_problem(resource, caches) == expected
        # Again with its parts known (another patient's copy of the same result).
        caches.problems.clear()
        assert validation_problem(copy.deepcopy(resource), caches) == expected
        invalid += expected is not None
    assert invalid >= 5 * 11  # every broken copy really is invalid


def test_per_result_elements_are_validated_for_every_observation() -> None:
    """The repeating part of a result validated once does not vouch for another copy's own
    elements: the second patient's bad subject is reported."""
    _forget_validations()
    good = _variant_bundle()
    bad = copy.deepcopy(good)
    bad["id"] = "second-patient"
    bad["subject"] = {"reference": 12}
    result = read_fhir_variants([good, bad])
    assert [p.location for p in result.problems] == ["Observation/second-patient"]
    assert "subject" in result.problems[0].reason


def test_a_component_invalid_for_one_patient_is_reported_for_the_next() -> None:
    """An invalid component is remembered as invalid, not skipped: another Observation (another
    patient) carrying it is reported too, and its valid neighbours are still read."""
    variant = _variant_bundle()
    other = copy.deepcopy(variant)
    other["id"] = "braf-other-patient"
    other["subject"] = {"reference": "Patient/other"}
    for resource in (variant, other):
        resource["component"][0]["valueQuantity"] = {"value": "not a number"}
    result = read_fhir_variants([variant, other, _variant_bundle()])
    assert [p.location for p in result.problems] == [
        "Observation/braf-v600e",
        "Observation/braf-other-patient",
    ]
    assert all("component.0" in p.reason for p in result.problems)
    assert len(result.alterations) == 1
