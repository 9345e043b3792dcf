"""``histopathology-ai`` on ``patient-view``: AI analysis of the patient's digitised pathology.

Offered (listed in discovery) only when a verified model bundle is installed
(``ONCOCDS_IMAGING__BUNDLE_PATH``; :func:`cds_service.imaging.endpoints.install_imaging`).

The chart open never waits for the model (issue #15 §4). The service reads the patient's
ImagingStudy (with their Endpoints) and pathology DocumentReference/Media from prefetch and
looks up the stored result of each for the installed bundle:

- none yet: the result row and its ``imaging.analyse`` job are created, and the answer is at
  once an info card "analysis in progress";
- pending or running: the same info card;
- done: one card per study/document, ``warning`` when an image has tissue above the model's
  threshold, else ``info`` (never ``critical``: a model output is not a finding until a
  pathologist has reviewed it), labelled "AI-generated; requires pathologist review", with a
  link to the imaging report page (signed like the genomic report links);
- failed: an info card "analysis unavailable" with the PHI-free reason.

Pathology documents are the DocumentReferences of LOINC 11526-1 "Pathology study"
(https://loinc.org/11526-1/) as category; Media is read for the patient whatever its type, and
only image attachments are analysed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select

from cds_service.cdshooks.registry import CdsServiceDefinition, ResolvedRequest
from cds_service.cdshooks.schemas import Card, CdsResponse, Coding, Link, Source
from cds_service.cdshooks.services import genomic_common as common
from cds_service.imaging import repository
from cds_service.imaging.report import imaging_report_link
from cds_service.imaging.service import (
    AI_NOTICE,
    ImageReference,
    ImagingRuntime,
    create_request,
    ensure_results,
)
from cds_service.models.imaging import ImagingImage, ImagingResult
from integrations.imaging import IMAGE_TYPES

ID: Final = "histopathology-ai"
HOOK: Final = "patient-view"
TITLE: Final = "Histopathology AI (invasive ductal carcinoma)"
DESCRIPTION: Final = (
    "Runs a locally installed, calibrated image classifier for invasive ductal carcinoma over "
    "the patient's digitised pathology (DICOMweb whole-slide and single-frame images, image "
    "attachments of pathology documents) in the background, and shows the stored result: the "
    "fraction of tissue above the model's threshold, with a heatmap. AI-generated; requires "
    "pathologist review."
)
_PATIENT: Final = "{{context.patientId}}"
PATHOLOGY_STUDY: Final = "http://loinc.org|11526-1"
PREFETCH: Final = {
    "imagingStudies": f"ImagingStudy?patient={_PATIENT}&_include=ImagingStudy:endpoint",
    "pathologyDocuments": f"DocumentReference?patient={_PATIENT}&category={PATHOLOGY_STUDY}",
    "media": f"Media?patient={_PATIENT}",
}
USAGE_REQUIREMENTS: Final = (
    "Reads ImagingStudy (with _include of its Endpoint, or the configured PACS), pathology "
    "DocumentReference (LOINC 11526-1) and Media of the patient; none is required. Image "
    "servers must be on ONCOCDS_IMAGING_SERVICE__ALLOWLIST."
)
CARD_KIND: Final = "urn:oncocds:card-kind"
#: DICOM UIDs in FHIR identifiers (R4 ImagingStudy.identifier: system urn:dicom:uid).
DICOM_UID_SYSTEM: Final = "urn:dicom:uid"


def _source(kind: str, display: str) -> Source:
    return Source(
        label="OncoCDS histopathology AI",
        topic=Coding(system=CARD_KIND, code=kind, display=display),
    )


# ------------------------------------------------------------------ references from prefetch


def _study_uid(study: Mapping[str, Any]) -> str | None:
    for identifier in study.get("identifier") or []:
        if not isinstance(identifier, Mapping):
            continue
        value = identifier.get("value")
        if identifier.get("system") == DICOM_UID_SYSTEM and isinstance(value, str):
            return value.removeprefix("urn:oid:")
    return None


def _endpoint_address(
    study: Mapping[str, Any], endpoints: Mapping[str, Mapping[str, Any]]
) -> str | None:
    contained = {
        f"#{c.get('id')}": c
        for c in study.get("contained") or []
        if isinstance(c, Mapping) and c.get("resourceType") == "Endpoint"
    }
    for ref in study.get("endpoint") or []:
        target = ref.get("reference") if isinstance(ref, Mapping) else None
        if not isinstance(target, str):
            continue
        endpoint = contained.get(target) or endpoints.get(target.split("/_history", 1)[0])
        address = endpoint.get("address") if endpoint else None
        if isinstance(address, str) and address:
            return address
    return None


def _has_image(resource: Mapping[str, Any]) -> bool:
    if resource.get("resourceType") == "Media":
        content = resource.get("content")
        attachments: list[Any] = [content] if isinstance(content, Mapping) else []
    else:
        attachments = [
            c.get("attachment") for c in resource.get("content") or [] if isinstance(c, Mapping)
        ]
    return any(
        isinstance(a, Mapping) and str(a.get("contentType", "")).split(";")[0] in IMAGE_TYPES
        for a in attachments
    )


def references(
    resources: Iterable[Mapping[str, Any]], *, fhir_server: str | None, pacs_url: str | None
) -> list[ImageReference]:
    """What can be analysed among the prefetched resources (unanalysable ones left out)."""
    items = list(resources)
    endpoints = {f"Endpoint/{r.get('id')}": r for r in items if r.get("resourceType") == "Endpoint"}
    found: list[ImageReference] = []
    for resource in items:
        kind, rid = resource.get("resourceType"), resource.get("id")
        if kind == "ImagingStudy":
            uid = _study_uid(resource)
            address = _endpoint_address(resource, endpoints) or pacs_url
            if uid and address:
                found.append(
                    ImageReference(
                        kind="dicomweb-study",
                        endpoint=address,
                        study_uid=uid,
                        resource=f"ImagingStudy/{rid}" if rid else None,
                    )
                )
        elif (
            kind in {"DocumentReference", "Media"} and rid and fhir_server and _has_image(resource)
        ):
            found.append(
                ImageReference(kind="fhir-resource", endpoint=fhir_server, resource=f"{kind}/{rid}")
            )
    return list({r.source_key: r for r in found}.values())


# ------------------------------------------------------------------ cards


@dataclass(frozen=True, slots=True)
class _ImageRow:
    result_id: str
    label: str
    outcome: str
    positive_fraction: float | None
    max_probability: float | None


def _image_rows(session: Any, result_ids: list[str]) -> dict[str, list[_ImageRow]]:
    """The card's columns of the images (never the analysis document or the heatmap)."""
    found: dict[str, list[_ImageRow]] = {i: [] for i in result_ids}
    if not result_ids:
        return found
    rows = session.execute(
        select(
            ImagingImage.result_id,
            ImagingImage.label,
            ImagingImage.outcome,
            ImagingImage.positive_fraction,
            ImagingImage.max_probability,
        )
        .where(ImagingImage.result_id.in_(result_ids))
        .order_by(ImagingImage.result_id, ImagingImage.position)
    ).all()
    for row in rows:
        found[row[0]].append(_ImageRow(*row))
    return found


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def _result_card(
    runtime: ImagingRuntime, result: ImagingResult, images: list[_ImageRow], link: str
) -> Card:
    model = runtime.require_model()
    positive = [i for i in images if i.outcome == "positive"]
    indeterminate = [i for i in images if i.outcome == "indeterminate"]
    what = (result.reference.get("resource") or "pathology images").split("/", 1)[0]
    if positive:
        head = f"{len(positive)} of {len(images)} image(s) with tissue above the model threshold"
    elif indeterminate and len(indeterminate) == len(images):
        head = f"indeterminate for {len(images)} image(s)"
    else:
        head = f"no tissue above the model threshold in {len(images)} image(s)"
    table = [
        "| Image | Model output | Tissue above threshold | Highest tile probability |",
        "|---|---|---|---|",
        *(
            f"| {common.md(i.label)} | {i.outcome} | {_pct(i.positive_fraction)} | "
            f"{_pct(i.max_probability)} |"
            for i in images[:10]
        ),
    ]
    if len(images) > 10:
        table.append(f"\n{len(images) - 10} more image(s) in the report.")
    detail = "\n".join(
        [
            f"**{AI_NOTICE}** Model **{common.md(model.label)}** (bundle "
            f"`{model.bundle_sha256[:12]}`), operating threshold {model.threshold:.3f} on the "
            "calibrated tile probability.",
            "",
            *table,
            "",
            "Indeterminate: the out-of-distribution guard found the image blank, blurred or "
            "not H&E-like; no probability is claimed for it. The heatmaps are in the report.",
            "",
            "_Model output, not a diagnosis._",
        ]
    )
    return Card(
        summary=common.summary(f"AI histopathology ({what}): {head}; pathologist review needed"),
        detail=detail,
        indicator="warning" if positive else "info",
        source=_source("histopathology-ai-result", "AI histopathology result"),
        links=[Link(label="Open the imaging report", url=link, type="absolute")],
    )


def _pending_card(count: int) -> Card:
    return Card(
        summary=f"AI histopathology analysis in progress ({count} study/document(s))",
        detail=(
            "The patient's digitised pathology is being analysed in the background by the "
            f"locally installed model. The result shows on a later chart open. {AI_NOTICE}"
        ),
        indicator="info",
        source=_source("histopathology-ai-pending", "AI histopathology in progress"),
    )


def _failed_card(results: list[ImagingResult]) -> Card:
    reasons = "\n".join(f"- {common.md(r.error or 'analysis failed')}" for r in results[:5])
    return Card(
        summary=f"AI histopathology analysis unavailable for {len(results)} study/document(s)",
        detail=(
            "The analysis could not be completed (integration staff can replay it from the "
            f"jobs list):\n\n{reasons}\n\nNo AI result is shown for these images."
        ),
        indicator="info",
        source=_source("histopathology-ai-unavailable", "AI histopathology unavailable"),
    )


def handle_with(runtime: ImagingRuntime, request: ResolvedRequest) -> CdsResponse:
    env = request.environment
    model = runtime.model
    if env is None or model is None:
        return CdsResponse(cards=[])
    settings = runtime.settings
    resources = common.prefetched_resources(request, *PREFETCH)
    refs = references(
        resources,
        fhir_server=request.fhir_server,
        pacs_url=settings.imaging_service.pacs_dicomweb_url,
    )[: settings.imaging_service.max_references_per_call]
    if not refs:
        return CdsResponse(cards=[])
    patient_ref = f"Patient/{request.patient_id}" if request.patient_id else None
    with env.session_factory() as session:
        known = repository.results_for(session, (r.source_key for r in refs), model.bundle_sha256)
        missing = [r for r in refs if r.source_key not in known]
        if missing:
            created = ensure_results(
                session, model, missing, patient_ref=patient_ref, vault=runtime.tokens
            )
            stored = create_request(
                session,
                created,
                patient_ref=patient_ref,
                origin="cds-hook",
                agent=request.client.iss,
            )
            session.commit()
            request.audit.link("ImagingRequest", stored.id, role="enqueued")
            known.update({r.source_key: r for r in created})
        results = [known[r.source_key] for r in refs if r.source_key in known]
        done = [r for r in results if r.status == "done"]
        images = _image_rows(session, [r.id for r in done])
    cards: list[Card] = []
    for result in done:
        request.audit.link("ImagingResult", result.id, role="shown")
        cards.append(
            _result_card(
                runtime, result, images[result.id], imaging_report_link(settings, result.id)
            )
        )
    waiting = [r for r in results if r.status in {"pending", "running"}]
    if waiting:
        cards.append(_pending_card(len(waiting)))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        cards.append(_failed_card(failed))
    return CdsResponse(cards=cards)


def definition(runtime: ImagingRuntime) -> CdsServiceDefinition:
    """The service bound to this app's imaging runtime."""

    def handle(request: ResolvedRequest) -> CdsResponse:
        return handle_with(runtime, request)

    return CdsServiceDefinition(
        id=ID,
        hook=HOOK,
        title=TITLE,
        description=DESCRIPTION,
        handler=handle,
        prefetch=dict(PREFETCH),
        required_prefetch=frozenset(),
        usage_requirements=USAGE_REQUIREMENTS,
    )
