"""The histopathology AI FHIR resources: golden Bundle, AI Transparency shapes, R4 validity, limits.

The analyses are fixed invented numbers (``imaging_examples``): plumbing tests, no accuracy claim.
Expected values are written out by hand here, never computed by the builder.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from integrations.errors import FhirMappingError
from integrations.fhir.imaging_report import (
    MAX_INLINE_HEATMAP_BYTES,
    ImagingItem,
    build_imaging_resources,
)
from integrations.fhir.resources import (
    Bundle,
    Device,
    DiagnosticReport,
    Media,
    Observation,
    Provenance,
)
from tests.integrations.fhir.imaging_examples import (
    ISSUED,
    MODEL,
    MODEL_CARD_URL,
    REPORT_ID,
    SUBJECT,
    TINY_PNG,
    analysis,
    items,
)
from tests.support import golden

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "imaging" / "imaging_report_bundle.json"
AIAST = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "AIAST",
    "display": "Artificial Intelligence asserted",
}
CONFIDENCE = "http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AIconfidence"
LABEL = "AI-generated; requires pathologist review"


def _bundle() -> dict[str, Any]:
    return build_imaging_resources(
        subject=SUBJECT,
        items=items(),
        report_id=REPORT_ID,
        issued=ISSUED,
        model_card_url=MODEL_CARD_URL,
    ).bundle()


def _by_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _coding(concept: dict[str, Any]) -> tuple[str, str]:
    first = concept["coding"][0]
    return first["system"], first["code"]


# ----------------------------------------------------------------------------- golden file


def test_bundle_matches_golden_file() -> None:
    # ONCOCDS_REGENERATE_GOLDEN=1 rewrites the file and fails the test (review the diff).
    golden.assert_matches_golden(_bundle(), GOLDEN)


@pytest.mark.parametrize(
    "break_it",
    [
        # the positive image reported as negative
        lambda b: b["entry"][1]["resource"]["interpretation"][0]["coding"][0].update(code="NEG"),
        # the confidence off in the fourth decimal
        lambda b: b["entry"][1]["resource"]["extension"][0].update(valueDecimal=0.9312),
        # the AI security label dropped from the report
        lambda b: b["entry"][0]["resource"]["meta"].pop("security"),
        # a probability written as a string
        lambda b: b["entry"][1]["resource"]["valueQuantity"].update(value="0.9313"),
    ],
)
def test_golden_comparison_fails_on_a_wrong_output(break_it: Any) -> None:
    broken = copy.deepcopy(_bundle())
    break_it(broken)
    assert not golden.matches_golden(broken, GOLDEN)
    if golden.regenerating():  # never write a broken output to the golden file
        pytest.fail("run without ONCOCDS_REGENERATE_GOLDEN to check the comparison")
    with pytest.raises(AssertionError, match="differs from golden file"):
        golden.assert_matches_golden(broken, GOLDEN)


def test_golden_file_is_valid_r4() -> None:
    document = golden.load_golden(GOLDEN)
    Bundle.model_validate(document)
    classes: dict[str, Any] = {
        "DiagnosticReport": DiagnosticReport,
        "Observation": Observation,
        "Device": Device,
        "Provenance": Provenance,
        "Media": Media,
    }
    kinds = [e["resource"]["resourceType"] for e in document["entry"]]
    assert kinds == [
        "DiagnosticReport",
        "Observation",
        "Observation",
        "Observation",
        "Media",
        "Media",
        "Device",
        "Provenance",
    ]
    for entry in document["entry"]:
        classes[entry["resource"]["resourceType"]].model_validate(entry["resource"])


# ----------------------------------------------------------------------------- content


def test_report_is_a_preliminary_pathology_report_labelled_as_ai() -> None:
    (report,) = _by_type(_bundle(), "DiagnosticReport")
    assert report["status"] == "preliminary"
    assert _coding(report["code"]) == ("http://loinc.org", "60567-5")
    categories = {_coding(c) for c in report["category"]}
    assert categories == {
        ("http://loinc.org", "LP7839-6"),
        ("http://terminology.hl7.org/CodeSystem/v2-0074", "SP"),
    }
    assert report["conclusion"].startswith(LABEL)
    assert "1 positive, 1 negative, 1 indeterminate" in report["conclusion"]
    assert report["meta"]["security"] == [AIAST]
    assert report["subject"] == {"reference": SUBJECT}
    assert report["issued"] == "2026-12-04T14:00:00Z"
    assert {"system": "urn:oncocds:imaging-report", "value": REPORT_ID} in report["identifier"]


def test_observations_carry_value_confidence_interpretation_and_source() -> None:
    bundle = _bundle()
    urls = {e["resource"]["id"]: e["fullUrl"] for e in bundle["entry"]}
    (report,) = _by_type(bundle, "DiagnosticReport")
    (device,) = _by_type(bundle, "Device")
    positive, negative, indeterminate = _by_type(bundle, "Observation")
    assert [r["reference"] for r in report["result"]] == [
        urls[positive["id"]],
        urls[negative["id"]],
        urls[indeterminate["id"]],
    ]
    for obs in (positive, negative, indeterminate):
        assert obs["status"] == "preliminary"
        assert obs["meta"]["security"] == [AIAST]
        assert obs["device"]["reference"] == urls[device["id"]]
        assert LABEL in obs["note"][0]["text"]

    assert positive["valueQuantity"] == {
        "value": 0.9313,
        "unit": "1",
        "system": "http://unitsofmeasure.org",
        "code": "1",
    }
    assert positive["extension"] == [{"url": CONFIDENCE, "valueDecimal": 0.9313}]
    assert _coding(positive["interpretation"][0])[1] == "POS"
    assert positive["derivedFrom"][0]["reference"] == "ImagingStudy/study-1"
    assert positive["derivedFrom"][0]["identifier"] == {
        "system": "urn:dicom:uid",
        "value": "urn:oid:1.2.826.0.1.3680043.8.498.10",
    }
    components = {c["code"]["coding"][0]["code"]: c for c in positive["component"]}
    assert components["threshold"]["valueQuantity"]["value"] == 0.5
    assert components["positive-fraction"]["valueQuantity"]["value"] == 0.275
    assert components["mean-probability"]["valueQuantity"]["value"] == 0.41
    assert components["tiles-total"]["valueInteger"] == 120
    assert components["tiles-tissue"]["valueInteger"] == 80
    assert components["tiles-indeterminate"]["valueInteger"] == 4

    # NEG: confidence in "negative" is 1 - 0.12.
    assert _coding(negative["interpretation"][0])[1] == "NEG"
    assert negative["valueQuantity"]["value"] == 0.12
    assert negative["extension"] == [{"url": CONFIDENCE, "valueDecimal": 0.88}]
    assert negative["derivedFrom"][0]["reference"] == "DocumentReference/doc-7"

    # IND: the reasons are given, and no number is reported as if it meant something.
    assert _coding(indeterminate["interpretation"][0])[1] == "IND"
    assert indeterminate["interpretation"][0]["text"] == "Indeterminate: blurred, not H&E-like"
    assert "valueQuantity" not in indeterminate
    assert "extension" not in indeterminate
    assert indeterminate["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    ind_codes = [c["code"]["coding"][0]["code"] for c in indeterminate["component"]]
    assert "positive-fraction" not in ind_codes
    assert "threshold" in ind_codes


def test_device_is_in_the_ai_device_shape() -> None:
    (device,) = _by_type(_bundle(), "Device")
    assert device["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AI-Device"
    ]
    assert _coding(device["type"]) == (
        "http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS",
        "Artificial-Intelligence",
    )
    assert device["extension"][0]["url"] == (
        "http://hl7.org/fhir/uv/aitransparency/StructureDefinition/aitransparency.AIKind"
    )
    assert device["deviceName"] == [{"name": "idc-resnet18", "type": "model-name"}]
    assert device["version"] == [{"value": "2026.11.1"}]
    assert {"system": "urn:oncocds:model-bundle-sha256", "value": "a" * 64} in device["identifier"]
    assert device["url"] == MODEL_CARD_URL
    assert MODEL_CARD_URL in device["note"][0]["text"]
    assert "security" not in device.get("meta", {})  # the Device is not itself AI output


def test_provenance_is_in_the_ai_provenance_shape() -> None:
    bundle = _bundle()
    urls = {e["resource"]["id"]: e["fullUrl"] for e in bundle["entry"]}
    (provenance,) = _by_type(bundle, "Provenance")
    (device,) = _by_type(bundle, "Device")
    assert provenance["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AI-Provenance"
    ]
    targets = [t["reference"] for t in provenance["target"]]
    expected = [
        urls[r["id"]]
        for kind in ("DiagnosticReport", "Observation", "Media")
        for r in _by_type(bundle, kind)
    ]
    assert targets == expected
    assert provenance["reason"] == [{"coding": [AIAST]}]
    (agent,) = provenance["agent"]
    assert agent["who"]["reference"] == urls[device["id"]]
    assert _coding(agent["role"][0])[1] == "Artificial-Intelligence"
    assert _coding(agent["type"])[1] == "author"
    assert [(e["role"], e["what"]["reference"]) for e in provenance["entity"]] == [
        ("source", "ImagingStudy/study-1"),
        ("source", "DocumentReference/doc-7"),
        ("source", "DocumentReference/doc-8"),
    ]


def test_media_per_heatmap_served_or_inline() -> None:
    bundle = _bundle()
    served, inline = _by_type(bundle, "Media")
    assert served["content"]["url"] == "/api/v1/imaging-analyses/an-1/heatmap.png"
    assert "data" not in served["content"]
    assert base64.b64decode(inline["content"]["data"]) == TINY_PNG
    assert inline["content"]["contentType"] == "image/png"
    assert inline["content"]["size"] == len(TINY_PNG)
    for media in (served, inline):
        assert media["meta"]["security"] == [AIAST]
        assert LABEL in media["note"][0]["text"]
    (report,) = _by_type(bundle, "DiagnosticReport")
    assert len(report["media"]) == 2


def test_every_resource_validates_as_r4b() -> None:
    resources = build_imaging_resources(
        subject=SUBJECT, items=items(), report_id=REPORT_ID, issued=ISSUED
    )
    DiagnosticReport.model_validate(resources.diagnostic_report)
    for obs in resources.observations:
        Observation.model_validate(obs)
    for media in resources.media:
        Media.model_validate(media)
    Device.model_validate(resources.device)
    Provenance.model_validate(resources.provenance)
    Bundle.model_validate(resources.bundle())
    Bundle.model_validate(resources.bundle("transaction"))
    assert "url" not in resources.device  # no model card URL given


def test_ids_are_stable_and_depend_on_the_report_id() -> None:
    assert _bundle() == _bundle()
    other = build_imaging_resources(
        subject=SUBJECT, items=items(), report_id="another", issued=ISSUED
    ).bundle()
    first_ids = {e["resource"]["id"] for e in _bundle()["entry"]}
    other_ids = {e["resource"]["id"] for e in other["entry"]}
    # Only the Device (one per model bundle) is shared.
    assert len(first_ids & other_ids) == 1


def test_transaction_bundle_creates_conditionally() -> None:
    resources = build_imaging_resources(
        subject=SUBJECT, items=items(), report_id=REPORT_ID, issued=ISSUED
    )
    entries = resources.bundle("transaction")["entry"]
    assert all(e["request"]["method"] == "POST" for e in entries)
    conditional = [e["resource"]["resourceType"] for e in entries if "ifNoneExist" in e["request"]]
    assert conditional == [
        "DiagnosticReport",
        "Observation",
        "Observation",
        "Observation",
        "Media",
        "Media",
        "Device",
    ]
    first = entries[0]
    assert first["request"]["ifNoneExist"] == f"identifier=urn:ietf:rfc:3986|{first['fullUrl']}"


# ----------------------------------------------------------------------------- refusals


def _build(**overrides: Any) -> None:
    args: dict[str, Any] = {
        "subject": SUBJECT,
        "items": items(),
        "report_id": REPORT_ID,
        "issued": ISSUED,
    }
    args.update(overrides)
    build_imaging_resources(**args)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"items": []}, "at least one"),
        ({"subject": "Group/1"}, "Patient reference"),
        ({"issued": datetime(2026, 12, 4, 14, 0)}, "timezone-aware"),  # noqa: DTZ001
        ({"report_id": ""}, "report_id"),
    ],
)
def test_bad_arguments_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(FhirMappingError, match=message):
        _build(**overrides)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"derived_from": "Patient/1"}, "derived_from"),
        ({"derived_from": "javascript:alert(1)//ImagingStudy/1"}, "derived_from"),
        ({"label": ""}, "label"),
        ({"study_uid": "1.2.abc"}, "study_uid"),
    ],
)
def test_bad_items_are_refused(change: dict[str, Any], message: str) -> None:
    bad = [replace(items()[0], **change)]
    with pytest.raises(FhirMappingError, match=message):
        _build(items=bad)


def test_images_from_two_model_bundles_are_refused() -> None:
    other = replace(MODEL, bundle_sha256="c" * 64)
    mixed = [
        *items(),
        ImagingItem(
            analysis("negative", max_probability=0.1, model=other),
            "DocumentReference/9",
            "Attachment 3",
        ),
    ]
    with pytest.raises(FhirMappingError, match="same model bundle"):
        _build(items=mixed)


def test_an_inline_heatmap_over_the_limit_is_refused_but_a_served_one_is_not() -> None:
    big = b"\x89PNG" + b"\0" * MAX_INLINE_HEATMAP_BYTES
    item = ImagingItem(
        analysis("negative", max_probability=0.1, heatmap=big), "DocumentReference/9", "A"
    )
    with pytest.raises(FhirMappingError, match="inline limit"):
        _build(items=[item])
    _build(items=[replace(item, heatmap_url="/heatmaps/9.png")])
