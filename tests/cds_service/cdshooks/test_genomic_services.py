"""The genomic CDS services end to end: signed hook calls, real variant data, cards checked.

The patient's variants are the PCGR T001-COAD tumour (real TCGA calls, tests/data/vcf) written as
Genomics Reporting Variant Observations by a small mapper in this file (independent of the
intake under test), in the prefetch of a signed CDS Hooks call, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from cds_service.cdshooks.services import BUILTIN_SERVICES
from cds_service.cdshooks.services import genomic_common as common
from inference.genomics.model import Evidence, GenomeBuild, GenomicPosition, Variant
from integrations.fhir.genomics_profiles import check_resource
from integrations.fhir.resources import DiagnosticReport, MedicationRequest
from integrations.readers import read_variants
from tests.cds_service.cdshooks.conftest import CdsClient

VCF = Path(__file__).resolve().parents[2] / "data" / "vcf"
LOINC = "http://loinc.org"
ASSEMBLY = {"GRCh37": "LA14029-5", "GRCh38": "LA26806-2"}
#: GRCh38 chromosome accessions (NCBI RefSeq), how Variant Observations name the sequence.
NC_GRCH38 = {
    "1": "NC_000001.11", "2": "NC_000002.12", "3": "NC_000003.12", "4": "NC_000004.12",
    "5": "NC_000005.10", "6": "NC_000006.12", "7": "NC_000007.14", "8": "NC_000008.11",
    "9": "NC_000009.12", "10": "NC_000010.11", "11": "NC_000011.10", "12": "NC_000012.12",
    "13": "NC_000013.11", "14": "NC_000014.9", "15": "NC_000015.10", "16": "NC_000016.10",
    "17": "NC_000017.11", "18": "NC_000018.10", "19": "NC_000019.10", "20": "NC_000020.11",
    "21": "NC_000021.9", "22": "NC_000022.11", "X": "NC_000023.11", "Y": "NC_000024.10",
}  # fmt: skip


def _cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def variant_observation(variant: Variant, index: int, patient: str) -> dict[str, Any]:
    """A Variant Observation per Genomics Reporting STU3 §Variant, as an EHR would hold it."""
    assert variant.position is not None
    pos = variant.position
    components: list[dict[str, Any]] = [
        {
            "code": _cc(LOINC, "62374-4"),
            "valueCodeableConcept": _cc(LOINC, ASSEMBLY[pos.build.value]),
        },
        {
            "code": _cc(LOINC, "48013-7"),
            "valueCodeableConcept": _cc("http://www.ncbi.nlm.nih.gov/refseq", NC_GRCH38[pos.chrom]),
        },
        {"code": _cc(LOINC, "92822-6"), "valueCodeableConcept": _cc(LOINC, "LA30102-0")},
        {"code": _cc(LOINC, "81254-5"), "valueRange": {"low": {"value": pos.pos}}},
        {"code": _cc(LOINC, "69547-8"), "valueString": pos.ref},
        {"code": _cc(LOINC, "69551-0"), "valueString": pos.alt},
        {"code": _cc(LOINC, "48002-0"), "valueCodeableConcept": _cc(LOINC, "LA6684-0", "Somatic")},
    ]
    if variant.allele_frequency is not None:
        components.append(
            {
                "code": _cc(LOINC, "81258-6"),
                "valueQuantity": {
                    "value": variant.allele_frequency,
                    "system": "http://unitsofmeasure.org",
                    "code": "1",
                },
            }
        )
    return {
        "resourceType": "Observation",
        "id": f"v{index}",
        "status": "final",
        "category": [
            _cc("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory"),
            _cc("http://terminology.hl7.org/CodeSystem/v2-0074", "GE"),
        ],
        "code": _cc(LOINC, "69548-6", "Genetic variant assessment"),
        "subject": {"reference": patient},
        "valueCodeableConcept": _cc(LOINC, "LA9633-4", "Present"),
        "component": components,
    }


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


@cache
def coad_observations() -> tuple[dict[str, Any], ...]:
    variants = read_variants(VCF / "pcgr_T001-COAD.grch38.vcf.gz").alterations
    return tuple(
        variant_observation(v, i, "Patient/p1")
        for i, v in enumerate(variants)
        if isinstance(v, Variant) and v.position is not None and v.position.chrom in NC_GRCH38
    )


def condition(system: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
        "code": _cc(system, code),
        "subject": {"reference": "Patient/p1"},
    }


COLORECTAL = condition("http://hl7.org/fhir/sid/icd-10-cm", "C18.9")


def genotype_observation(gene: str, diplotype: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"g-{gene}",
        "status": "final",
        "code": _cc(LOINC, "84413-4", "Genotype display name"),
        "subject": {"reference": "Patient/p1"},
        "valueCodeableConcept": {"text": diplotype},
        "component": [
            {
                "code": _cc(LOINC, "48018-6"),
                "valueCodeableConcept": _cc("http://www.genenames.org", "HGNC:3012", gene),
            }
        ],
    }


def medication_request(rid: str, name: str, status: str = "draft") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"text": name},
        "subject": {"reference": "Patient/p1"},
    }


def patient_view(
    *,
    observations: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    conditions: list[dict[str, Any]],
    medications: list[dict[str, Any]] | None = None,
    genotypes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "gender": "female"},
            "conditions": searchset(conditions),
            "variants": searchset(list(observations)),
            "panels": None,
            "genotypes": searchset(genotypes or []),
            "medications": searchset(medications or []),
        },
    }


def order_sign(
    orders: list[dict[str, Any]],
    *,
    observations: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    conditions: list[dict[str, Any]],
    genotypes: list[dict[str, Any]] | None = None,
    hook: str = "order-sign",
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "userId": "Practitioner/dr1",
        "patientId": "p1",
        "draftOrders": searchset(orders) | {"type": "collection"},
    }
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{o['id']}" for o in orders]
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1"},
            "conditions": searchset(conditions),
            "variants": searchset(list(observations)),
            "panels": None,
            "genotypes": searchset(genotypes or []),
        },
    }


@pytest.fixture
def genomic_cds(make_cds_client: Callable[..., CdsClient], database_url: str) -> CdsClient:
    return make_cds_client(
        services=BUILTIN_SERVICES, database_url=database_url, max_body_bytes=16 * 1024 * 1024
    )


def test_discovery_lists_the_genomic_services(genomic_cds: CdsClient) -> None:
    services = {s["id"]: s for s in genomic_cds.discovery().json()["services"]}
    assert services["oncology-genomics"]["hook"] == "patient-view"
    assert services["targeted-therapy-check"]["hook"] == "order-sign"
    assert services["targeted-therapy-check-select"]["hook"] == "order-select"
    for service in services.values():
        assert service["usageRequirements"]
        assert "variants" in service["prefetch"]


def test_patient_view_coad_braf_tier_one_card_with_citations(genomic_cds: CdsClient) -> None:
    response = genomic_cds.call(
        "oncology-genomics", patient_view(observations=coad_observations(), conditions=[COLORECTAL])
    )
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    braf = cards[0]
    assert braf["indicator"] == "warning"
    assert "BRAF V600E" in braf["summary"]
    assert "Tier I" in braf["summary"]
    assert "encorafenib" in braf["summary"]
    assert "cetuximab" in braf["summary"]
    assert len(braf["summary"]) < 140
    assert "https://civicdb.org/evidence/9851" in braf["detail"] or "EID9851" in braf["detail"]
    assert "FDA" in braf["detail"]
    assert braf["source"]["topic"]["code"] == "actionable-finding"
    assert braf["overrideReasons"]
    assert braf["uuid"]

    report = next(c for c in cards if c["source"]["topic"]["code"] == "genomic-report")
    link = report["links"][0]
    assert link["type"] == "absolute"
    assert "/reports/" in link["url"]
    assert "p1" not in link["url"].split("?")[0]  # the link names no patient
    action = report["suggestions"][0]["actions"][0]
    assert action["type"] == "create"
    resource = action["resource"]
    DiagnosticReport.model_validate(resource)
    assert check_resource(resource) == []
    assert resource["code"]["coding"][0]["code"] == "51969-4"

    page = genomic_cds.http.get(link["url"].replace(genomic_cds.settings.base_url, ""))
    assert page.status_code == 200
    assert "BRAF" in page.text

    events = [r.event_type for r in genomic_cds.audit_rows()]
    assert "analysis.create" in events
    assert any(e.startswith("cds-hooks") for e in events)


def _report_analysis_id(response: Any) -> str:
    assert response.status_code == 200, response.text
    report = next(
        c for c in response.json()["cards"] if c["source"]["topic"]["code"] == "genomic-report"
    )
    path = report["links"][0]["url"].split("?")[0]
    return str(path.rsplit("/", 1)[1])


def _analysis_entities(rows: list[Any]) -> list[str]:
    return [e["id"] for r in rows for e in r.entities if e["type"] == "Analysis"]


def test_chart_opened_again_links_the_stored_analysis(genomic_cds: CdsClient) -> None:
    """Same patient, same results: the second call links the analysis the first stored (one
    analysis.create), each call's audit record names it, and its link opens the report."""
    observations = coad_observations()
    first = _report_analysis_id(
        genomic_cds.call(
            "oncology-genomics", patient_view(observations=observations, conditions=[COLORECTAL])
        )
    )
    second_response = genomic_cds.call(
        "oncology-genomics", patient_view(observations=observations, conditions=[COLORECTAL])
    )
    assert _report_analysis_id(second_response) == first
    created = genomic_cds.audit_rows("analysis.create")
    assert _analysis_entities(created) == [first]
    calls = genomic_cds.audit_rows("cds-hooks.call")
    assert _analysis_entities(calls) == [first, first]
    report = next(
        c
        for c in second_response.json()["cards"]
        if c["source"]["topic"]["code"] == "genomic-report"
    )
    page = genomic_cds.http.get(
        report["links"][0]["url"].replace(genomic_cds.settings.base_url, "")
    )
    assert page.status_code == 200
    assert "BRAF" in page.text


def test_changed_results_store_a_new_analysis(genomic_cds: CdsClient) -> None:
    observations = coad_observations()
    first = _report_analysis_id(
        genomic_cds.call(
            "oncology-genomics", patient_view(observations=observations, conditions=[COLORECTAL])
        )
    )
    fewer = _report_analysis_id(
        genomic_cds.call(
            "oncology-genomics",
            patient_view(observations=observations[:-1], conditions=[COLORECTAL]),
        )
    )
    assert fewer != first
    assert len(genomic_cds.audit_rows("analysis.create")) == 2


def test_same_variants_in_another_tumour_type_are_interpreted_again(
    genomic_cds: CdsClient,
) -> None:
    """Results are reused only for identical inputs: the same Observations with a melanoma
    Condition give melanoma therapies, not the colorectal ones computed a call earlier."""
    observations = coad_observations()
    crc = genomic_cds.call(
        "oncology-genomics", patient_view(observations=observations, conditions=[COLORECTAL])
    ).json()["cards"][0]
    melanoma = genomic_cds.call(
        "oncology-genomics",
        patient_view(
            observations=observations,
            conditions=[condition("http://hl7.org/fhir/sid/icd-10-cm", "C43.9")],
        ),
    ).json()["cards"][0]
    assert "cetuximab" in crc["summary"]
    assert "BRAF V600E" in melanoma["summary"]
    assert "cetuximab" not in melanoma["summary"]
    assert "trametinib" in melanoma["detail"]


def test_reuse_can_be_switched_off(
    make_cds_client: Callable[..., CdsClient], database_url: str
) -> None:
    cds = make_cds_client(
        services=BUILTIN_SERVICES,
        database_url=database_url,
        max_body_bytes=16 * 1024 * 1024,
        cds_hooks={"recent_reports": 0},
    )
    body = patient_view(observations=coad_observations(), conditions=[COLORECTAL])
    first = _report_analysis_id(cds.call("oncology-genomics", body))
    again = _report_analysis_id(
        cds.call("oncology-genomics", {**body, "hookInstance": str(uuid.uuid4())})
    )
    assert again != first
    assert len(cds.audit_rows("analysis.create")) == 2


def test_order_sign_panitumumab_is_critical_with_alternatives(genomic_cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr1", "Panitumumab 20 MG/ML Injectable Solution")],
        observations=coad_observations(),
        conditions=[COLORECTAL],
    )
    response = genomic_cds.call("targeted-therapy-check", body)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    critical = cards[0]
    assert critical["indicator"] == "critical"
    assert "panitumumab" in critical["summary"]
    assert "BRAF V600E" in critical["summary"]
    labels = [s["label"] for s in critical["suggestions"]]
    assert any("encorafenib" in label and "cetuximab" in label for label in labels)
    first = critical["suggestions"][0]["actions"]
    assert first[0] == {
        "type": "delete",
        "description": "Remove the draft panitumumab order",
        "resourceId": "MedicationRequest/mr1",
    }
    assert critical["selectionBehavior"] == "at-most-one"
    assert all(r["display"] for r in critical["overrideReasons"])


def test_order_select_checks_only_the_selection(genomic_cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr1", "panitumumab")],
        observations=coad_observations(),
        conditions=[COLORECTAL],
        hook="order-select",
    )
    response = genomic_cds.call("targeted-therapy-check-select", body)
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["indicator"] == "critical"


def test_order_sign_capecitabine_dpyd_poor_metabolizer(genomic_cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr2", "capecitabine 500 MG Oral Tablet")],
        observations=[],
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*2A/*2A")],
    )
    response = genomic_cds.call("targeted-therapy-check", body)
    assert response.status_code == 200, response.text
    card = response.json()["cards"][0]
    assert card["indicator"] == "critical"
    assert "DPYD" in card["summary"]
    assert "poor metabolizer" in card["summary"].lower()
    assert "Avoid fluorouracil and capecitabine" in card["detail"]
    assert "cpicpgx.org" in card["detail"]
    assert card["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/mr2"


def test_missing_dpyd_genotype_is_a_warning_with_a_test_order(genomic_cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr3", "capecitabine")], observations=[], conditions=[COLORECTAL]
    )
    cards = genomic_cds.call("targeted-therapy-check", body).json()["cards"]
    warning = next(c for c in cards if c["source"]["topic"]["code"] == "missing-biomarker-test")
    assert warning["indicator"] == "warning"
    assert "DPYD" in warning["summary"]
    order = warning["suggestions"][0]["actions"][0]["resource"]
    assert order["resourceType"] == "ServiceRequest"
    assert order["subject"] == {"reference": "Patient/p1"}


def test_missing_egfr_result_before_osimertinib(genomic_cds: CdsClient) -> None:
    lung = condition("http://snomed.info/sct", "254637007")
    body = order_sign(
        [medication_request("mr4", "osimertinib")], observations=[], conditions=[lung]
    )
    cards = genomic_cds.call("targeted-therapy-check", body).json()["cards"]
    kinds = [c["source"]["topic"]["code"] for c in cards]
    assert "missing-biomarker-test" in kinds
    warning = cards[kinds.index("missing-biomarker-test")]
    assert "EGFR" in warning["summary"]


def test_supported_biomarker_is_info(genomic_cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr5", "encorafenib")],
        observations=coad_observations(),
        conditions=[COLORECTAL],
    )
    cards = genomic_cds.call("targeted-therapy-check", body).json()["cards"]
    assert cards[0]["indicator"] == "info"
    assert "BRAF V600E" in cards[0]["summary"]


def test_no_actionable_finding_gives_no_cards(genomic_cds: CdsClient) -> None:
    only_unknown = [o for o in coad_observations() if o["id"] != "v0"][:5]
    response = genomic_cds.call(
        "oncology-genomics", patient_view(observations=only_unknown, conditions=[COLORECTAL])
    )
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_current_medication_resistance_is_critical_on_patient_view(genomic_cds: CdsClient) -> None:
    body = patient_view(
        observations=coad_observations(),
        conditions=[COLORECTAL],
        medications=[medication_request("m1", "cetuximab", status="active")],
    )
    cards = genomic_cds.call("oncology-genomics", body).json()["cards"]
    assert cards[0]["indicator"] == "critical"
    assert "cetuximab" in cards[0]["summary"]


def test_unreadable_observations_give_a_warning_not_an_error(genomic_cds: CdsClient) -> None:
    broken = [{**coad_observations()[0], "component": []}]
    response = genomic_cds.call(
        "oncology-genomics", patient_view(observations=broken, conditions=[COLORECTAL])
    )
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert card["indicator"] == "warning"
    assert "could not be read" in card["summary"]
    assert "Observation/v0" in card["detail"]


# ------------------------------------------------------------------ cards state only what is true
# (issue 12 item 5, issue 13 item 3). The demo patient: colorectal cancer with the T001-COAD
# variants (BRAF V600E), whose only active medication is capecitabine, DPYD *1/*2A.

_DOUBLED_WORD = re.compile(r"\b(\w[\w-]*) \1\b", re.IGNORECASE)
EGFR_T790M = {"chrom": "7", "pos": 55181378, "ref": "C", "alt": "T"}
LUNG = condition("http://snomed.info/sct", "254637007")


def _demo_patient_view() -> dict[str, Any]:
    return patient_view(
        observations=coad_observations(),
        conditions=[COLORECTAL],
        medications=[medication_request("m1", "capecitabine", status="active")],
        genotypes=[genotype_observation("DPYD", "*1/*2A")],
    )


def _t790m_observations() -> list[dict[str, Any]]:
    t790m = Variant(
        gene=None,
        position=GenomicPosition(GenomeBuild.GRCH38, **EGFR_T790M),  # type: ignore[arg-type]
    )
    return [variant_observation(t790m, 0, "Patient/p1")]


def _table_rows(detail: str) -> list[str]:
    return [line for line in detail.splitlines() if line.startswith("| ") and "---" not in line][1:]


def _by_topic(cards: list[dict[str, Any]], topic: str) -> list[dict[str, Any]]:
    return [c for c in cards if c["source"]["topic"]["code"] == topic]


def test_demo_patient_on_capecitabine_gets_no_regimen_resistance_card(
    genomic_cds: CdsClient,
) -> None:
    """Capecitabine alone is not bevacizumab + capecitabine + oxaliplatin (the evidence)."""
    cards = genomic_cds.call("oncology-genomics", _demo_patient_view()).json()["cards"]
    assert _by_topic(cards, "actionable-finding")  # the BRAF card is there
    assert not _by_topic(cards, "resistance-current-medication")
    assert not any("bevacizumab" in c["summary"] for c in cards)
    (pgx,) = _by_topic(cards, "pharmacogenomic-risk")
    assert pgx["indicator"] == "critical"
    assert pgx["summary"].startswith("Current medication affected: DPYD intermediate metabolizer")


def test_demo_patient_cards_have_no_doubled_words_and_escaped_markdown(
    genomic_cds: CdsClient,
) -> None:
    cards = genomic_cds.call("oncology-genomics", _demo_patient_view()).json()["cards"]
    for card in cards:
        for text in (card["summary"], card.get("detail") or ""):
            assert not _DOUBLED_WORD.search(text), text
    (pgx,) = _by_topic(cards, "pharmacogenomic-risk")
    assert "**DPYD \\*1/\\*2A**" in pgx["detail"]  # renders as *1/*2A, not as emphasis
    assert "[CPIC DPYD-fluoropyrimidines](" in pgx["detail"]
    (braf,) = _by_topic(cards, "actionable-finding")
    assert "[FDA BRAFTOVI-COADREAD-BRAF-V600E-1L (level FDA label)](" in braf["detail"]
    assert "FDA FDA" not in braf["detail"]


def test_braf_card_is_short_leads_with_the_approved_option_and_links_the_rest(
    genomic_cds: CdsClient,
) -> None:
    cards = genomic_cds.call("oncology-genomics", _demo_patient_view()).json()["cards"]
    (braf,) = _by_topic(cards, "actionable-finding")
    rows = _table_rows(braf["detail"])
    assert 1 < len(rows) <= 5
    assert rows[0].startswith("| cetuximab + encorafenib | sensitive | Tier I - Level A | ")
    assert "| FDA-approved for this tumour type |" in rows[0]
    # The decisive resistance next: anti-EGFR monotherapy (label/guideline rule, cited).
    assert rows[1].startswith("| cetuximab | resistant | Tier I")
    assert "RES-BRAF-V600E-CRC-ANTI-EGFR-MONO" in rows[1]
    for row in rows:
        assert "preclinical" not in row
        assert "Level D" not in row
    more = re.search(r"(\d+) more in the report\.", braf["detail"])
    assert more is not None
    (report,) = _by_topic(cards, "genomic-report")
    assert braf["links"] == [
        {
            "label": f"{more.group(1)} more in the report",
            "url": report["links"][0]["url"],
            "type": "absolute",
        }
    ]


def test_report_chart_counts_variants_as_the_report_card_does(genomic_cds: CdsClient) -> None:
    cards = genomic_cds.call("oncology-genomics", _demo_patient_view()).json()["cards"]
    (report,) = _by_topic(cards, "genomic-report")
    stated = re.search(
        r"(\d+) variant\(s\): (\d+) Tier I, (\d+) Tier II, (\d+) Tier III, (\d+) not in",
        report["summary"],
    )
    assert stated is not None, report["summary"]
    page = genomic_cds.http.get(
        report["links"][0]["url"].replace(genomic_cds.settings.base_url, "")
    )
    assert "Variants by tier" in page.text
    bars = dict(re.findall(r'data-label="([^"]+)" data-value="(\d+)"', page.text))
    assert bars["Tier I"] == stated.group(2) == "1"  # BRAF V600E, once (not one per row)
    assert bars["Tier II"] == stated.group(3)
    assert bars["Tier III"] == stated.group(4)
    assert bars["Unknown"] == stated.group(5)
    assert sum(int(v) for v in bars.values()) == int(stated.group(1))


def test_t790m_card_resolves_conflicts_and_marks_investigational(genomic_cds: CdsClient) -> None:
    cards = genomic_cds.call(
        "oncology-genomics", patient_view(observations=_t790m_observations(), conditions=[LUNG])
    ).json()["cards"]
    (egfr,) = _by_topic(cards, "actionable-finding")
    rows = _table_rows(egfr["detail"])
    assert len(rows) <= 5
    assert rows[0].startswith("| osimertinib | sensitive | Tier I - Level A |")
    therapies = {tuple(r.split(" | ")[:2]) for r in rows}
    assert ("| erlotinib + pemetrexed", "sensitive") not in therapies
    assert ("| afatinib", "sensitive") not in therapies
    assert ("| afatinib", "resistant") in therapies
    assert egfr["detail"].count("Conflicting evidence for afatinib resolved") == 1
    assert "[CIViC EID" in egfr["detail"].split("Conflicting evidence for afatinib")[1]
    (rociletinib,) = [r for r in rows if r.startswith("| rociletinib |")]
    assert "| investigational (not FDA-approved) |" in rociletinib
    assert "staurosporine" not in egfr["detail"]  # preclinical: report only
    report = _by_topic(cards, "genomic-report")[0]
    page = genomic_cds.http.get(
        report["links"][0]["url"].replace(genomic_cds.settings.base_url, "")
    ).text
    assert "Preclinical evidence only" in page
    assert "staurosporine" in page


def test_order_sign_normal_dpyd_metabolizer_gets_no_card(genomic_cds: CdsClient) -> None:
    body = order_sign(
        [medication_request("mr7", "capecitabine")],
        observations=coad_observations(),
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*1/*1")],
    )
    assert genomic_cds.call("targeted-therapy-check", body).json() == {"cards": []}
    carrier = order_sign(
        [medication_request("mr7", "capecitabine")],
        observations=coad_observations(),
        conditions=[COLORECTAL],
        genotypes=[genotype_observation("DPYD", "*1/*2A")],
    )
    (card,) = genomic_cds.call("targeted-therapy-check", carrier).json()["cards"]
    assert card["source"]["topic"]["code"] == "pharmacogenomic-risk"
    assert card["summary"].startswith("DPYD *1/*2A (intermediate metabolizer)")


def test_order_sign_regimen_evidence_is_not_a_claim_about_one_drug(
    genomic_cds: CdsClient,
) -> None:
    dpyd = [genotype_observation("DPYD", "*1/*1")]
    alone = order_sign(
        [medication_request("mr8", "capecitabine")],
        observations=coad_observations(),
        conditions=[COLORECTAL],
        genotypes=dpyd,
    )
    assert not genomic_cds.call("targeted-therapy-check", alone).json()["cards"]
    regimen = order_sign(
        [
            medication_request("mr8", "capecitabine"),
            medication_request("mr9", "bevacizumab"),
            medication_request("mr10", "oxaliplatin"),
        ],
        observations=coad_observations(),
        conditions=[COLORECTAL],
        genotypes=dpyd,
    )
    cards = genomic_cds.call("targeted-therapy-check", regimen).json()["cards"]
    capecitabine = next(c for c in cards if c["summary"].endswith("resistance to capecitabine"))
    assert capecitabine["indicator"] == "critical"
    assert "bevacizumab + capecitabine + oxaliplatin, all of it ordered" in capecitabine["detail"]
    for suggestion in capecitabine["suggestions"]:
        for action in suggestion["actions"]:
            if action["type"] == "create":
                MedicationRequest.model_validate(action["resource"])
                assert action["resource"]["subject"] == {"reference": "Patient/p1"}


def test_order_sign_one_drug_of_a_supported_regimen_is_named_as_such(
    genomic_cds: CdsClient,
) -> None:
    body = order_sign(
        [medication_request("mr11", "encorafenib")],
        observations=coad_observations(),
        conditions=[COLORECTAL],
    )
    (card,) = genomic_cds.call("targeted-therapy-check", body).json()["cards"]
    assert card["indicator"] == "info"
    assert "not encorafenib alone" in card["summary"]
    assert "FDA-approved for this tumour type" in card["detail"]


def test_markdown_and_doubled_word_helpers() -> None:
    assert common.md("CYP2D6 *4/*4 a_b | c") == "CYP2D6 \\*4/\\*4 a\\_b \\| c"
    assert common.summary("DPYD DPYD poor metabolizer") == "DPYD poor metabolizer"
    assert Evidence("FDA", "FDA-BRAFTOVI-CRC", "https://x").label == "FDA-BRAFTOVI-CRC"
    assert Evidence("CPIC", "CPIC DPYD-x", "https://x").label == "CPIC DPYD-x"
    assert Evidence("CIViC", "EID9851", "https://x").label == "CIViC EID9851"
