"""Interpretation → FHIR R4 transaction Bundle per Genomics Reporting IG STU3 (v3.0.0).

What is emitted (codes in :mod:`integrations.fhir.genomics_codes`):

- one ``variant`` Observation per :class:`~inference.genomics.model.Variant` (LOINC 69548-6,
  value LA9633-4 Present, components per IG §Variant; VCF 1-based ``pos`` becomes the 0-based
  interval the IG's operations profile requires);
- one ``molecular-biomarker`` Observation per MSI-H / TMB biomarker, and a ``variant`` Observation
  (gene-studied, copy number, a conclusion string) per fusion, amplification or deletion, where no
  LOINC/SO code is emitted that we cannot cite;
- one ``genotype`` Observation (LOINC 84413-4) per pharmacogene diplotype;
- one ``therapeutic-implication`` per TherapeuticFinding and per PharmacogenomicFinding, one
  ``diagnostic-implication`` per DiagnosticFinding and HereditaryRiskFinding; implications carry no
  ``value[x]``, ``derivedFrom`` their finding, and cite their evidence in
  ``workflow-relatedArtifact`` extensions;
- a ``genomic-report`` DiagnosticReport (LOINC 51969-4, category GE) whose ``result`` lists every
  Observation, a Device naming OncoCDS and its knowledge-base version, and a Provenance whose
  agent is that Device.

Each Observation, DiagnosticReport and Device carries its ``urn:uuid`` as an identifier and is
created conditionally (``ifNoneExist``), so a retried write-back does not duplicate the report.
Ids are derived from content (SHA-256 over the patient reference and the canonical JSON of what
each resource says), so the same input gives the same ids and fullUrls on every run; any change
of content changes them. Every resource is validated with ``fhir.resources`` (R4B) before it
leaves this module.

Modules: this one (the public API: :func:`build_genomic_report_bundle`,
:func:`report_with_contained`, :class:`ReportContext`), ``genomics_report_builder`` (one method
per resource family), ``genomics_report_elements`` (codings, components, citations, ids); the
conclusion prose is :mod:`inference.genomics.conclusion`.
"""

from __future__ import annotations

from inference.genomics.model import Interpretation
from integrations.errors import FhirMappingError
from integrations.fhir.genomics_report_builder import ReportBuilder, ReportContext
from integrations.fhir.genomics_report_elements import Json, full_url
from integrations.fhir.resources import DiagnosticReport

__all__ = ["ReportContext", "build_genomic_report_bundle", "full_url", "report_with_contained"]


def build_genomic_report_bundle(
    interpretation: Interpretation, context: ReportContext, *, validate: bool = True
) -> Json:
    """Build the Genomics Reporting STU3 transaction Bundle for an interpretation.

    Args:
        interpretation: the interpreter's result.
        context: patient reference, versions, issue time, optional specimen and performer.

    Returns:
        A JSON-ready ``Bundle`` of type ``transaction`` (each entry ``POST``), validated with
        ``fhir.resources`` R4B unless ``validate`` is false. fhir.resources validation costs
        about 10-20 ms per resource; the request path (CDS hooks, uploads) skips it, which is
        safe because the builder's output is identical either way (tested on every finding
        kind, and every emitted resource is validated in the test suite).

    Raises:
        FhirMappingError: a finding refers to an alteration the interpretation does not hold.
    """
    return ReportBuilder(interpretation, context).build(validate=validate)


def report_with_contained(bundle: Json, *, validate: bool = True) -> Json:
    """The bundle's DiagnosticReport with every other Observation ``contained``.

    A CDS card suggestion carries one resource per action, so a "save report to chart" action
    needs the report to be self-contained: ``urn:uuid`` references become ``#id`` references to
    contained resources (FHIR R4 §References to contained resources).
    """
    url_to_id: dict[str, str] = {}
    report: Json | None = None
    observations: list[Json] = []
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        url_to_id[entry["fullUrl"]] = resource["id"]
        if resource["resourceType"] == "DiagnosticReport":
            report = resource
        elif resource["resourceType"] == "Observation":
            observations.append(resource)
    if report is None:
        raise FhirMappingError("the bundle holds no DiagnosticReport")

    def rewrite(ref: Json) -> Json:
        target = url_to_id.get(ref.get("reference", ""))
        return {**ref, "reference": f"#{target}"} if target else ref

    contained = []
    for obs in observations:
        copy = dict(obs)
        if "derivedFrom" in copy:
            copy["derivedFrom"] = [rewrite(r) for r in copy["derivedFrom"]]
        contained.append(copy)
    out = {k: v for k, v in report.items() if k != "id"}
    out["contained"] = contained
    out["result"] = [rewrite(r) for r in report.get("result", [])]
    if not validate:
        return out
    validated = DiagnosticReport.model_validate(out)
    result: Json = validated.model_dump(mode="json", exclude_none=True)
    return result
