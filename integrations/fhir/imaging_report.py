"""Histopathology AI results → FHIR R4 (issue #15 §5): a DiagnosticReport with one Observation
per image, a Device, a Provenance and a Media per heatmap.

What is emitted (codes and URLs are the constants below, each with its source):

- **DiagnosticReport**: LOINC 60567-5 "Comprehensive pathology report panel", categories LOINC
  LP7839-6 "Pathology" and HL7 v2-0074 ``SP`` "Surgical Pathology", status ``preliminary``
  (a model output that a pathologist has not reviewed), a conclusion that starts with
  "AI-generated; requires pathologist review", ``result`` → the Observations, ``media`` → the
  heatmaps.
- **Observation** per image (status ``preliminary``): the value is the image's *highest
  calibrated tile probability* (``ImageAnalysis.max_probability``, UCUM ``1``), the number the
  outcome turns on (an image is positive when at least one tissue tile reaches the bundle's
  threshold). Components: the threshold, the positive tissue fraction, the mean tile
  probability, and the tile counts. ``interpretation`` is POS / NEG / IND from
  v3-ObservationInterpretation; IND carries the OOD guard's reasons as text, and then the
  Observation has no value and no confidence (the model's number is not meaningful for an image
  the guard rejected: unknown is said as unknown, ``dataAbsentReason`` ``unknown``).
  The AI Transparency IG ``AIconfidence`` extension (``valueDecimal``, a probability 0..1) says
  how confident the model is in the interpretation: for POS the highest tile probability, for
  NEG one minus it (the calibrated probability that even the most suspicious tile is benign).
  ``derivedFrom`` is the ImagingStudy or DocumentReference the image came from; ``device`` is
  the Device.
- **Device** in the AI Transparency IG ``AIDevice`` shape: type ``Artificial-Intelligence``,
  ``AIKind`` ``Deep-Learning-Models``, the model name and version, the bundle's SHA-256 (and the
  weights' SHA-256) as identifiers, the calibration in ``property``, the model card as ``url``
  and a ``note``.
- **Provenance** in the ``AIProvenance`` shape: target = the report, the Observations and the
  Media; ``reason`` AIAST; agent = the Device (type ``author``, role ``Artificial-Intelligence``);
  entity (``source``) = each source image.
- **Media** per heatmap (R4 has Media; R5 moved it to DocumentReference): ``content.url`` when
  the service serves the PNG, else the PNG inline up to :data:`MAX_INLINE_HEATMAP_BYTES`.

Every resource that holds model output (report, Observations, Media) carries the security label
AIAST "Artificial Intelligence asserted" in ``meta.security``. Ids are deterministic (uuid5 over
the caller's ``report_id`` and the resource's role; the Device's over the bundle hash), so the
same input gives the same resources. Every resource is validated with ``fhir.resources`` (R4B)
before it leaves this module.

Nothing here is a diagnosis: it describes a model output for a pathologist to review.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from inference.imaging.results import ImageAnalysis, ModelIdentity
from integrations.errors import FhirMappingError
from integrations.fhir.resources import (
    Bundle,
    Device,
    DiagnosticReport,
    Media,
    Observation,
    Provenance,
)

Json = dict[str, Any]

# --------------------------------------------------------------------------- codes and URLs

LOINC: Final = "http://loinc.org"
#: LOINC 60567-5 "Comprehensive pathology report panel" (https://loinc.org/60567-5/): the
#: order-level code for a pathology report (used for pathology DiagnosticReports by, e.g., the
#: German Medical Informatics Initiative pathology module and NAACCR Vol. V).
REPORT_CODE: Final = ("60567-5", "Comprehensive pathology report panel")
#: LOINC part LP7839-6 "Pathology" (the category the IHE SDC/eCC on FHIR IG gives reports).
CATEGORY_PATHOLOGY: Final = ("LP7839-6", "Pathology")
V2_0074: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"
#: HL7 v2 table 0074 (Diagnostic Service Section ID): SP "Surgical Pathology".
CATEGORY_SURGICAL_PATHOLOGY: Final = ("SP", "Surgical Pathology")
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"

#: AI Transparency on FHIR 1.0.0 (STU1), http://hl7.org/fhir/uv/aitransparency/ :
AI_IG: Final = "http://hl7.org/fhir/uv/aitransparency"
#: Extension "AI Confidence" (valueDecimal = a probability 0..1), context Resource/Element.
AI_CONFIDENCE_URL: Final = f"{AI_IG}/StructureDefinition/AIconfidence"
#: Extension "Specific kind of AI technology" on Device.
AI_KIND_URL: Final = f"{AI_IG}/StructureDefinition/aitransparency.AIKind"
AI_DEVICE_PROFILE: Final = f"{AI_IG}/StructureDefinition/AI-Device"
AI_PROVENANCE_PROFILE: Final = f"{AI_IG}/StructureDefinition/AI-Provenance"
#: CodeSystem AIdeviceTypeCS: AIDevice requires type Artificial-Intelligence; AIProvenance fixes
#: agent[AIagent].role to it.
AI_DEVICE_TYPE_CS: Final = f"{AI_IG}/CodeSystem/AIdeviceTypeCS"

#: HL7 v3 ObservationValue AIAST "Artificial Intelligence asserted": the security label the IG
#: puts on AI-produced resources and the reason AIProvenance requires.
V3_OBSERVATION_VALUE: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
AIAST: Final = {
    "system": V3_OBSERVATION_VALUE,
    "code": "AIAST",
    "display": "Artificial Intelligence asserted",
}

V3_INTERPRETATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
INTERPRETATIONS: Final = {
    "positive": ("POS", "Positive"),
    "negative": ("NEG", "Negative"),
    "indeterminate": ("IND", "Indeterminate"),
}
PROVENANCE_PARTICIPANT: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
V3_DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
DATA_ABSENT: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
MEDIA_TYPE: Final = "http://terminology.hl7.org/CodeSystem/media-type"
UCUM: Final = "http://unitsofmeasure.org"
DICOM_UID: Final = "urn:dicom:uid"

#: OncoCDS's own codes: LOINC has no code for an AI model's IDC probability on a slide image,
#: so the Observation and its components use local codes (with text), never a guessed LOINC.
LOCAL_SYSTEM: Final = "urn:oncocds:imaging-ai"
OBS_CODE: Final = (
    "idc-max-tile-probability",
    "Invasive ductal carcinoma, highest calibrated tile probability (AI model output)",
)
COMPONENT_CODES: Final = {
    "threshold": "Decision threshold of the model bundle (calibrated probability)",
    "positive-fraction": "Fraction of analysed tissue area at or above the threshold",
    "mean-probability": "Mean calibrated tile probability over tissue tiles",
    "tiles-total": "Grid tiles in the image",
    "tiles-tissue": "Tissue tiles analysed",
    "tiles-indeterminate": "Tissue tiles set aside by the out-of-distribution guard",
}
#: RFC 3986 identifiers (the resource's own ``urn:uuid``) make conditional creates possible.
URI_SYSTEM: Final = "urn:ietf:rfc:3986"
REPORT_IDENTIFIER_SYSTEM: Final = "urn:oncocds:imaging-report"
BUNDLE_SHA_SYSTEM: Final = "urn:oncocds:model-bundle-sha256"
WEIGHTS_SHA_SYSTEM: Final = "urn:oncocds:model-weights-sha256"

AI_LABEL: Final = "AI-generated; requires pathologist review"
#: Largest heatmap PNG put inline in a Media (base64 grows it by a third); larger ones need a
#: ``heatmap_url``.
MAX_INLINE_HEATMAP_BYTES: Final = 1024 * 1024
#: Most images in one report (a Bundle is built and validated in memory).
MAX_ITEMS: Final = 500
MAX_LABEL_CHARS: Final = 200
_PROBABILITY_DECIMALS: Final = 4

_REF_TYPES: Final = ("ImagingStudy", "DocumentReference", "Media")
_RELATIVE_REF: Final = re.compile(r"^(ImagingStudy|DocumentReference|Media)/[A-Za-z0-9\-.]{1,64}$")
_UID: Final = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: Namespace of the deterministic resource ids (uuid5).
_NAMESPACE: Final = uuid.UUID("0f8e6f8a-3d0c-5b0e-9d5e-6f2b1c1d15a5")


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True, slots=True)
class ImagingItem:
    """One analysed image and where it came from.

    Attributes:
        analysis: the pipeline's result for the image.
        derived_from: FHIR reference of the source (``ImagingStudy/123``,
            ``DocumentReference/7``, ``Media/4``), relative or absolute.
        label: what a clinician sees ("Slide 2, series 1.2.3…", "Attachment 1").
        study_uid / instance_uid: DICOM Study / SOP Instance UIDs, when the source is DICOM.
        heatmap_url: where the service serves the heatmap PNG, if anywhere.
        thumbnail_url / thumbnail_png: a plain thumbnail of the image for the report page, if
            the service has one (not part of the FHIR output).
    """

    analysis: ImageAnalysis
    derived_from: str
    label: str
    study_uid: str | None = None
    instance_uid: str | None = None
    heatmap_url: str | None = None
    thumbnail_url: str | None = None
    thumbnail_png: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ImagingResources:
    """The validated resources of one imaging report (JSON-ready dicts)."""

    diagnostic_report: Json
    observations: list[Json]
    device: Json
    provenance: Json
    media: list[Json]

    def resources(self) -> list[Json]:
        """All resources, report first."""
        return [
            self.diagnostic_report,
            *self.observations,
            *self.media,
            self.device,
            self.provenance,
        ]

    def bundle(self, kind: Literal["collection", "transaction"] = "collection") -> Json:
        """A FHIR Bundle of all resources; each entry's fullUrl is ``urn:uuid:<id>``.

        ``collection`` (default) is for display and storage. ``transaction`` is for write-back:
        each entry is a ``POST``, the report, Observations and Device are created on condition
        of their identifier (FHIR R4 §3.1.0.8.1 conditional create, ``ifNoneExist``), so a
        retried write-back does not duplicate them.
        """
        entries: list[Json] = []
        for resource in self.resources():
            entry: Json = {"fullUrl": full_url(resource["id"]), "resource": resource}
            if kind == "transaction":
                request: Json = {"method": "POST", "url": resource["resourceType"]}
                conditional = _conditional_identifier(resource)
                if conditional:
                    request["ifNoneExist"] = conditional
                entry["request"] = request
            entries.append(entry)
        document: Json = {"resourceType": "Bundle", "type": kind, "entry": entries}
        result: Json = Bundle.model_validate(document).model_dump(mode="json", exclude_none=True)
        return result


@dataclass(frozen=True, slots=True)
class _Context:
    """What every per-image resource shares."""

    report_id: str
    subject: Json
    device: Json
    issued: str


def full_url(resource_id: str) -> str:
    """The ``urn:uuid`` fullUrl (and reference) of a resource built here."""
    return f"urn:uuid:{resource_id}"


def build_imaging_resources(
    *,
    subject: str,
    items: Sequence[ImagingItem],
    report_id: str,
    issued: datetime,
    model_card_url: str | None = None,
) -> ImagingResources:
    """Build and validate the FHIR resources of one imaging report.

    Args:
        subject: ``Patient/123`` (a reference, never demographics).
        items: the analysed images, in display order (at least one, at most
            :data:`MAX_ITEMS`), all from the same model bundle.
        report_id: the caller's stable id of this report (the DiagnosticReport's identifier and
            the seed of every resource id).
        issued: when the report is issued (timezone-aware).
        model_card_url: where the model card can be read, if anywhere.

    Raises:
        FhirMappingError: the input cannot be expressed (no items, mixed models, a bad
            reference or UID, a naive datetime, an inline heatmap over the limit).
    """
    _check_inputs(subject=subject, items=items, report_id=report_id, issued=issued)
    model = items[0].analysis.model
    issued_text = _instant(issued)
    subject_ref = {"reference": subject}
    device = _device(model, model_card_url)
    device_ref = {"reference": full_url(device["id"]), "display": _model_display(model)}

    ctx = _Context(report_id, subject_ref, device_ref, issued_text)
    observations: list[Json] = []
    media: list[Json] = []
    report_media: list[Json] = []
    for index, item in enumerate(items):
        obs = _observation(item, index, ctx)
        observations.append(obs)
        picture = _media(item, index, ctx)
        if picture is not None:
            media.append(picture)
            report_media.append(
                {
                    "comment": f"Heatmap ({AI_LABEL}): {item.label}",
                    "link": {"reference": full_url(picture["id"])},
                }
            )

    report_rid = _id(report_id, "report")
    report: Json = {
        "resourceType": "DiagnosticReport",
        "id": report_rid,
        "meta": {"security": [dict(AIAST)]},
        "identifier": [
            _uri_identifier(report_rid),
            {"system": REPORT_IDENTIFIER_SYSTEM, "value": report_id},
        ],
        "status": "preliminary",
        "category": [
            _cc(LOINC, *CATEGORY_PATHOLOGY),
            _cc(V2_0074, *CATEGORY_SURGICAL_PATHOLOGY),
        ],
        "code": _cc(LOINC, *REPORT_CODE, text="Histopathology AI analysis (IDC classifier)"),
        "subject": subject_ref,
        "issued": issued_text,
        "result": [
            {"reference": full_url(o["id"]), "display": _obs_display(i)}
            for o, i in zip(observations, items, strict=True)
        ],
        "conclusion": conclusion_text(items),
    }
    if report_media:
        report["media"] = report_media

    targets = [report, *observations, *media]
    provenance: Json = {
        "resourceType": "Provenance",
        "id": _id(report_id, "provenance"),
        "meta": {"profile": [AI_PROVENANCE_PROFILE]},
        "target": [{"reference": full_url(r["id"])} for r in targets],
        "recorded": issued_text,
        "reason": [{"coding": [dict(AIAST)]}],
        "activity": _cc(V3_DATA_OPERATION, "CREATE", "create"),
        "agent": [
            {
                "type": _cc(PROVENANCE_PARTICIPANT, "author", "Author"),
                "role": [
                    _cc(
                        AI_DEVICE_TYPE_CS,
                        "Artificial-Intelligence",
                        "All kinds of Artificial Intelligence",
                    )
                ],
                "who": device_ref,
            }
        ],
        "entity": _source_entities(items),
    }

    return ImagingResources(
        diagnostic_report=_validated(DiagnosticReport, report),
        observations=[_validated(Observation, o) for o in observations],
        device=_validated(Device, device),
        provenance=_validated(Provenance, provenance),
        media=[_validated(Media, m) for m in media],
    )


def conclusion_text(items: Sequence[ImagingItem]) -> str:
    """The report's conclusion: the AI label first, then counts and the model, no diagnosis."""
    counts = dict.fromkeys(INTERPRETATIONS, 0)
    for item in items:
        counts[item.analysis.outcome] += 1
    model = items[0].analysis.model
    noun = "image" if len(items) == 1 else "images"
    parts = [
        f"{AI_LABEL}.",
        f"Invasive ductal carcinoma classifier {model.name} {model.version}: {len(items)} {noun} "
        f"analysed; {counts['positive']} positive, {counts['negative']} negative, "
        f"{counts['indeterminate']} indeterminate (threshold {model.threshold:g} on the "
        "calibrated tile probability).",
        "A model output, not a diagnosis.",
    ]
    return " ".join(parts)


# --------------------------------------------------------------------------- resources


def _observation(item: ImagingItem, index: int, ctx: _Context) -> Json:
    report_id, subject, device, issued = ctx.report_id, ctx.subject, ctx.device, ctx.issued
    analysis = item.analysis
    model = analysis.model
    code, display = INTERPRETATIONS[analysis.outcome]
    interpretation = _cc(V3_INTERPRETATION, code, display)
    if analysis.outcome == "indeterminate":
        reasons = ", ".join(analysis.reasons) or "reason not given"
        interpretation["text"] = f"Indeterminate: {reasons}"
    rid = _id(report_id, f"observation/{index}")
    obs: Json = {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"security": [dict(AIAST)]},
        "identifier": [_uri_identifier(rid)],
        "status": "preliminary",
        "category": [
            _cc(OBSERVATION_CATEGORY, "laboratory", "Laboratory"),
            _cc(LOINC, *CATEGORY_PATHOLOGY),
        ],
        "code": _cc(LOCAL_SYSTEM, *OBS_CODE, text="IDC probability (AI model output)"),
        "subject": subject,
        "issued": issued,
        "device": device,
        "derivedFrom": [_source_reference(item)],
        "interpretation": [interpretation],
        "note": [{"text": f"{AI_LABEL}. Image: {item.label}."}],
    }
    probability = analysis.max_probability
    reportable = analysis.outcome != "indeterminate" and probability is not None
    if reportable and probability is not None:
        obs["valueQuantity"] = _probability(probability)
        confidence = probability if analysis.outcome == "positive" else 1.0 - probability
        obs["extension"] = [{"url": AI_CONFIDENCE_URL, "valueDecimal": _round(confidence)}]
    else:
        obs["dataAbsentReason"] = _cc(DATA_ABSENT, "unknown", "Unknown")
    components = [_component("threshold", {"valueQuantity": _probability(model.threshold)})]
    if reportable:
        components.append(
            _component(
                "positive-fraction", {"valueQuantity": _probability(analysis.positive_fraction)}
            )
        )
        if analysis.mean_probability is not None:
            components.append(
                _component(
                    "mean-probability", {"valueQuantity": _probability(analysis.mean_probability)}
                )
            )
    components += [
        _component("tiles-total", {"valueInteger": analysis.tiles_total}),
        _component("tiles-tissue", {"valueInteger": analysis.tiles_tissue}),
        _component("tiles-indeterminate", {"valueInteger": analysis.tiles_indeterminate}),
    ]
    obs["component"] = components
    return obs


def _media(item: ImagingItem, index: int, ctx: _Context) -> Json | None:
    report_id, subject, device, issued = ctx.report_id, ctx.subject, ctx.device, ctx.issued
    png = item.analysis.heatmap_png
    if item.heatmap_url is None and png is None:
        return None
    content: Json = {"contentType": "image/png", "title": f"Heatmap: {item.label}"}
    if item.heatmap_url is not None:
        content["url"] = item.heatmap_url
    elif png is not None:
        if len(png) > MAX_INLINE_HEATMAP_BYTES:
            raise FhirMappingError(
                f"heatmap {index + 1} is {len(png)} bytes, over the inline limit of "
                f"{MAX_INLINE_HEATMAP_BYTES}; serve it and pass heatmap_url"
            )
        content["data"] = base64.b64encode(png).decode("ascii")
    if png is not None:
        content["size"] = len(png)
        # R4 Attachment.hash: base64 SHA-1 of the data.
        content["hash"] = base64.b64encode(
            hashlib.sha1(png, usedforsecurity=False).digest()
        ).decode("ascii")
    rid = _id(report_id, f"media/{index}")
    return {
        "resourceType": "Media",
        "id": rid,
        "meta": {"security": [dict(AIAST)]},
        "identifier": [_uri_identifier(rid)],
        "status": "completed",
        "type": _cc(MEDIA_TYPE, "image", "Image"),
        "subject": subject,
        "createdDateTime": issued,
        "issued": issued,
        "device": device,
        "content": content,
        "note": [
            {
                "text": f"{AI_LABEL}. Heatmap of calibrated tile probabilities over a thumbnail "
                f"of {item.label}."
            }
        ],
    }


def _device(model: ModelIdentity, model_card_url: str | None) -> Json:
    rid = str(uuid.uuid5(_NAMESPACE, f"device/{model.bundle_sha256}"))
    device: Json = {
        "resourceType": "Device",
        "id": rid,
        "meta": {"profile": [AI_DEVICE_PROFILE]},
        "extension": [
            {
                "url": AI_KIND_URL,
                "valueCodeableConcept": _cc(
                    AI_DEVICE_TYPE_CS, "Deep-Learning-Models", "Deep Learning Models"
                ),
            }
        ],
        "identifier": [
            _uri_identifier(rid),
            {"system": BUNDLE_SHA_SYSTEM, "value": model.bundle_sha256},
            {"system": WEIGHTS_SHA_SYSTEM, "value": model.weights_sha256},
        ],
        "deviceName": [{"name": model.name, "type": "model-name"}],
        "modelNumber": model.network,
        "type": _cc(
            AI_DEVICE_TYPE_CS, "Artificial-Intelligence", "All kinds of Artificial Intelligence"
        ),
        "version": [{"value": model.version}],
        "property": _device_properties(model),
        "note": [{"text": _model_card_note(model, model_card_url)}],
    }
    if model_card_url:
        device["url"] = model_card_url
    return device


def _device_properties(model: ModelIdentity) -> list[Json]:
    props = [
        {
            "type": {"text": "patch size (pixels per side)"},
            "valueQuantity": [{"value": model.patch_size}],
        },
        {
            "type": {"text": "calibration temperature"},
            "valueQuantity": [{"value": model.temperature}],
        },
        {
            "type": {"text": "decision threshold (calibrated probability)"},
            "valueQuantity": [{"value": model.threshold}],
        },
    ]
    if model.spacing_mm is not None:
        props.append(
            {
                "type": {"text": "training magnification (mm per pixel)"},
                "valueQuantity": [
                    {"value": model.spacing_mm, "unit": "mm", "system": UCUM, "code": "mm"}
                ],
            }
        )
    return props


def _model_card_note(model: ModelIdentity, model_card_url: str | None) -> str:
    where = f" Model card: {model_card_url}." if model_card_url else " No model card URL given."
    return (
        f"{model.name} {model.version} ({model.network}, {model.patch_size}-pixel patches), an "
        f"invasive ductal carcinoma tile classifier; bundle SHA-256 {model.bundle_sha256}. "
        f"Outputs are calibrated probabilities (temperature {model.temperature:g}); {AI_LABEL}."
        f"{where}"
    )


def _source_entities(items: Sequence[ImagingItem]) -> list[Json]:
    seen: dict[str, Json] = {}
    for item in items:
        seen.setdefault(item.derived_from, {"role": "source", "what": _source_reference(item)})
    return list(seen.values())


def _source_reference(item: ImagingItem) -> Json:
    ref: Json = {"reference": item.derived_from, "display": item.label}
    if item.study_uid and _ref_type(item.derived_from) == "ImagingStudy":
        # ImagingStudy.identifier holds the Study Instance UID as urn:oid (FHIR R4 ImagingStudy).
        ref["identifier"] = {"system": DICOM_UID, "value": f"urn:oid:{item.study_uid}"}
    return ref


# --------------------------------------------------------------------------- helpers


def _check_inputs(
    *, subject: str, items: Sequence[ImagingItem], report_id: str, issued: datetime
) -> None:
    if not items:
        raise FhirMappingError("an imaging report needs at least one analysed image")
    if len(items) > MAX_ITEMS:
        raise FhirMappingError(f"{len(items)} images, over the limit of {MAX_ITEMS} per report")
    if not re.fullmatch(r"(https?://\S+/)?Patient/[A-Za-z0-9\-.]{1,64}", subject):
        raise FhirMappingError("subject must be a Patient reference")
    if not report_id or len(report_id) > 200 or not report_id.isprintable():
        raise FhirMappingError("report_id must be 1-200 printable characters")
    if issued.tzinfo is None or issued.utcoffset() is None:
        raise FhirMappingError("issued must be timezone-aware")
    bundles = {item.analysis.model.bundle_sha256 for item in items}
    if len(bundles) != 1:
        raise FhirMappingError("all images of one report must come from the same model bundle")
    for number, item in enumerate(items, start=1):
        if _ref_type(item.derived_from) is None:
            raise FhirMappingError(
                f"image {number}: derived_from must reference one of {', '.join(_REF_TYPES)}"
            )
        if not item.label or len(item.label) > MAX_LABEL_CHARS:
            raise FhirMappingError(f"image {number}: label must be 1-{MAX_LABEL_CHARS} characters")
        for name, uid in (("study_uid", item.study_uid), ("instance_uid", item.instance_uid)):
            if uid is not None and (len(uid) > 64 or not _UID.fullmatch(uid)):
                raise FhirMappingError(f"image {number}: {name} is not a DICOM UID")
        if item.analysis.outcome not in INTERPRETATIONS:
            raise FhirMappingError(f"image {number}: unknown outcome")


def _ref_type(reference: str) -> str | None:
    tail = "/".join(reference.rsplit("/", 2)[-2:])
    if not _RELATIVE_REF.fullmatch(tail):
        return None
    if tail != reference and not re.fullmatch(r"https?://\S+", reference):
        return None
    return tail.split("/", 1)[0]


def _id(report_id: str, role: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"imaging-report/{report_id}/{role}"))


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _round(value: float) -> float:
    return round(float(value), _PROBABILITY_DECIMALS)


def _probability(value: float) -> Json:
    return {"value": _round(value), "unit": "1", "system": UCUM, "code": "1"}


def _component(code: str, value: Json) -> Json:
    return {"code": _cc(LOCAL_SYSTEM, code, COMPONENT_CODES[code]), **value}


def _cc(system: str, code: str, display: str, *, text: str | None = None) -> Json:
    concept: Json = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        concept["text"] = text
    return concept


def _model_display(model: ModelIdentity) -> str:
    return f"{model.name} {model.version} (AI model)"


def _obs_display(item: ImagingItem) -> str:
    return f"{item.label}: {item.analysis.outcome} ({AI_LABEL})"


def _conditional_identifier(resource: Json) -> str | None:
    for identifier in resource.get("identifier") or []:
        if identifier.get("system") == URI_SYSTEM:
            return f"identifier={URI_SYSTEM}|{identifier['value']}"
    return None


def _uri_identifier(resource_id: str) -> Json:
    return {"system": URI_SYSTEM, "value": full_url(resource_id)}


def _validated(model: Any, resource: Json) -> Json:
    """The resource as fhir.resources (R4B) parses and serialises it (raises if invalid)."""
    cleaned = {k: v for k, v in resource.items() if v is not None}
    out: Json = model.model_validate(cleaned).model_dump(mode="json", exclude_none=True)
    return out
