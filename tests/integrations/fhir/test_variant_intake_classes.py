"""Genomics Reporting IG STU3 Variant Observations carrying the classes text lists carry (issue
12 §4), germline origin (48002-0, §8) and the genes studied (issue 13: one FHIR reading).

Observations are hand-written in the IG's shapes (reference note §1.4: gene-studied 48018-6 with
the HGNC id as code and the symbol as display, DNA change type 48019-4 from Sequence Ontology,
copy number 82155-3, genomic source class 48002-0 from LL378-1); the fusion with a change in it
follows mCODE's ``genomic-variant-fusion`` example (BCR::ABL1 with ``molecular-consequence``
SO:0001565). Expected values are written by hand."""

from __future__ import annotations

from typing import Any

import pytest

from inference.genomics import interpret
from inference.genomics.model import (
    Biomarker,
    BiomarkerKind,
    Gene,
    Origin,
    PatientContext,
    Significance,
    Variant,
    VariantClass,
)
from integrations.errors import IntakeError
from integrations.fhir.variant_intake import genes_studied, read_fhir_variants

LOINC = "http://loinc.org"


def _cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _component(code: str, value: dict[str, Any], system: str = LOINC) -> dict[str, Any]:
    return {"code": _cc(system, code), **value}


def _gene(hgnc: str, symbol: str) -> dict[str, Any]:
    return _component(
        "48018-6", {"valueCodeableConcept": _cc("http://www.genenames.org", hgnc, symbol)}
    )


def _variant(oid: str, *components: dict[str, Any], present: str = "LA9633-4") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            _cc("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
        ],
        "code": _cc(LOINC, "69548-6", "Genetic variant assessment"),
        "valueCodeableConcept": _cc(LOINC, present),
        "component": list(components),
    }


def _so(code: str, display: str) -> dict[str, Any]:
    return {"valueCodeableConcept": _cc("http://www.sequenceontology.org", code, display)}


SOMATIC = _component("48002-0", {"valueCodeableConcept": _cc(LOINC, "LA6684-0", "Somatic")})
GERMLINE = _component("48002-0", {"valueCodeableConcept": _cc(LOINC, "LA6683-2", "Germline")})


def test_fusion_copy_number_and_itd_in_the_igs_shapes() -> None:
    bundle = [
        _variant(
            "fusion",
            _gene("HGNC:3205", "EML4"),
            _gene("HGNC:427", "ALK"),
            _component("48019-4", _so("SO:0001565", "gene_fusion")),
            SOMATIC,
        ),
        _variant(
            "amp",
            _gene("HGNC:3430", "ERBB2"),
            _component("48019-4", _so("SO:0001742", "copy_number_gain")),
            _component(
                "82155-3",
                {
                    "valueQuantity": {
                        "value": 14,
                        "system": "http://unitsofmeasure.org",
                        "code": "1",
                    }
                },
            ),
        ),
        _variant(
            "loss",
            _gene("HGNC:1787", "CDKN2A"),
            _component("48019-4", _so("SO:0001743", "copy_number_loss")),
        ),
        _variant(
            "itd",
            _gene("HGNC:3765", "FLT3"),
            _component("48019-4", _so("SO:1000173", "tandem_duplication")),
        ),
    ]
    result = read_fhir_variants(bundle)
    assert result.problems == []
    assert result.alterations == [
        Biomarker(
            kind=BiomarkerKind.FUSION,
            gene=Gene("ALK", "HGNC:427"),
            fusion_partner=Gene("EML4", "HGNC:3205"),
            source_ref="Observation/fusion",
        ),
        Biomarker(
            kind=BiomarkerKind.AMPLIFICATION,
            gene=Gene("ERBB2", "HGNC:3430"),
            copy_number=14.0,
            source_ref="Observation/amp",
        ),
        Biomarker(
            kind=BiomarkerKind.DELETION,
            gene=Gene("CDKN2A", "HGNC:1787"),
            source_ref="Observation/loss",
        ),
        Variant(
            gene=Gene("FLT3", "HGNC:3765"),
            variant_class=VariantClass.ITD,
            source_ref="Observation/itd",
        ),
    ]


def test_fusion_with_its_kinase_domain_change_gives_both() -> None:
    observation = _variant(
        "bcr-abl1",
        _gene("HGNC:1014", "BCR"),
        _gene("HGNC:76", "ABL1"),
        _component(
            "molecular-consequence",
            _so("SO:001565", "gene_fusion"),
            "http://loinc.org-requested-cs",
        ),
        _component(
            "48005-3",
            {"valueCodeableConcept": _cc("http://varnomen.hgvs.org", "NP_005148.2:p.Thr315Ile")},
        ),
        SOMATIC,
    )
    fusion, change = read_fhir_variants([observation]).alterations
    assert fusion == Biomarker(
        kind=BiomarkerKind.FUSION,
        gene=Gene("ABL1", "HGNC:76"),
        fusion_partner=Gene("BCR", "HGNC:1014"),
        source_ref="Observation/bcr-abl1",
    )
    assert change == Variant(
        gene=Gene("ABL1", "HGNC:76"),
        hgvs_p="p.Thr315Ile",
        transcript=None,
        protein_change="T315I",
        origin=Origin.SOMATIC,
        source_ref="Observation/bcr-abl1",
    )


def _brca2(source_class: dict[str, Any]) -> dict[str, Any]:
    return _variant(
        "brca2",
        _gene("HGNC:1101", "BRCA2"),
        _component(
            "48004-6",
            {"valueCodeableConcept": _cc("http://varnomen.hgvs.org", "NM_000059.4:c.5946del")},
        ),
        _component(
            "48005-3",
            {
                "valueCodeableConcept": _cc(
                    "http://varnomen.hgvs.org", "NP_000050.3:p.Ser1982ArgfsTer22"
                )
            },
        ),
        _component("53037-8", {"valueCodeableConcept": _cc(LOINC, "LA6668-3", "Pathogenic")}),
        source_class,
    )


def test_germline_source_class_fills_the_hereditary_section() -> None:
    (germline,) = read_fhir_variants([_brca2(GERMLINE)]).alterations
    assert isinstance(germline, Variant)
    assert (germline.origin, germline.protein_change, germline.hgvs_c) == (
        Origin.GERMLINE,
        "S1982fs",
        "c.5946del",
    )
    assert germline.classification is Significance.PATHOGENIC
    hereditary = interpret([germline], PatientContext()).hereditary
    assert [h.gene.symbol for h in hereditary] == ["BRCA2"]
    (somatic,) = read_fhir_variants([_brca2(SOMATIC)]).alterations
    assert interpret([somatic], PatientContext()).hereditary == ()


def test_genes_studied_include_absent_results() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": _variant("egfr-negative", _gene("HGNC:3236", "EGFR"), present="LA9634-2")},
            {"resource": _brca2(GERMLINE)},
            {"resource": {"resourceType": "Patient", "id": "p"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "region",
                    "status": "final",
                    "code": _cc(LOINC, "53041-0", "DNA region of interest panel"),
                    "component": [
                        _component("48018-6", {"valueCodeableConcept": {"text": "kras"}}),
                        _component("48018-6", {"valueCodeableConcept": {"text": "not a gene!"}}),
                    ],
                }
            },
        ],
    }
    assert genes_studied(bundle) == {"EGFR", "BRCA2", "KRAS"}
    # The reader itself reports no alteration for the negative EGFR result.
    assert [a.gene.symbol for a in read_fhir_variants(bundle).alterations if a.gene] == ["BRCA2"]


def test_chromosome_accession_of_neither_build_is_a_problem() -> None:
    """The one accession table (issue 13 §4): NC_000007.12 (GRCh36) cannot be placed."""
    observation = _variant(
        "old-build",
        _gene("HGNC:1097", "BRAF"),
        _component(
            "48013-7",
            {"valueCodeableConcept": _cc("http://www.ncbi.nlm.nih.gov/refseq", "NC_000007.12")},
        ),
        _component("62374-4", {"valueCodeableConcept": _cc(LOINC, "LA26806-2", "GRCh38")}),
        _component("48000-4", {"valueCodeableConcept": _cc(LOINC, "LA21260-7", "Chromosome 7")}),
        _component("69547-8", {"valueString": "A"}),
        _component("69551-0", {"valueString": "T"}),
        _component("81254-5", {"valueRange": {"low": {"value": 140753335}}}),
        _component(
            "48005-3", {"valueCodeableConcept": _cc("http://varnomen.hgvs.org", "p.Val600Glu")}
        ),
    )
    result = read_fhir_variants([observation, _brca2(GERMLINE)])
    assert [a.source_ref for a in result.alterations] == ["Observation/brca2"]
    (problem,) = result.problems
    assert problem.location == "Observation/old-build"
    assert "NC_000007.12 is not a GRCh37 or GRCh38 chromosome accession" in problem.reason


def _status(
    oid: str, code: dict[str, Any], value: dict[str, Any], *components: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": code,
        **value,
        "component": list(components),
    }


def test_hrd_status_by_the_labs_local_code() -> None:
    hrd_code = {"coding": [{"system": "urn:lab:local", "code": "HRD-GIS", "display": "HRD status"}]}
    score = _component("gis", {"valueQuantity": {"value": 48}}, "urn:lab:local")
    positive = _status(
        "hrd-pos",
        hrd_code,
        {"valueCodeableConcept": _cc("http://snomed.info/sct", "10828004", "Positive")},
        score,
    )
    negative = _status("hrd-neg", hrd_code, {"valueCodeableConcept": {"text": "Negative"}})
    score_only = _status("hrd-score", hrd_code, {"valueString": "48"})
    result = read_fhir_variants([positive, negative, score_only])
    assert result.alterations == [
        Biomarker(kind=BiomarkerKind.HRD, score=48.0, source_ref="Observation/hrd-pos")
    ]
    (problem,) = result.problems
    assert problem.location == "Observation/hrd-score"
    assert problem.reason == "HRD status not understood (expected positive or negative)"


def test_msi_status_not_understood_says_what_was_expected() -> None:
    msi = _status("msi", _cc(LOINC, "81695-9"), {"valueString": "equivocal"})
    with pytest.raises(IntakeError) as raised:
        read_fhir_variants([msi])
    assert raised.value.problems[0].reason == (
        "microsatellite status not understood (expected MSI-H or stable)"
    )
