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
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from inference.genomics.model import (
    Biomarker,
    BiomarkerKind,
    DiagnosticFinding,
    Evidence,
    Gene,
    Genotype,
    HereditaryRiskFinding,
    Interpretation,
    Medication,
    PharmacogenomicFinding,
    RegulatoryStatus,
    TherapeuticFinding,
    Variant,
)
from inference.genomics.serialize import to_jsonable
from integrations.errors import FhirMappingError
from integrations.fhir import genomics_codes as gc
from integrations.fhir.resources import Bundle, Device, DiagnosticReport, Observation, Provenance

#: Namespace of the deterministic urn:uuid fullUrls (uuid5 over the resource id).
_URN_NAMESPACE: Final = uuid.UUID("6f1d3c1e-5c1a-4b8e-9a37-0c0da0d1e4a1")

Json = dict[str, Any]

#: RFC 3986 URI identifiers (the ``urn:uuid`` fullUrls) make conditional creates possible.
_URI_SYSTEM: Final = "urn:ietf:rfc:3986"
#: Resource types with an ``identifier`` element (Provenance has none in R4).
_CONDITIONAL_TYPES: Final = frozenset({"Observation", "DiagnosticReport", "Device"})


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What the report needs besides the interpretation.

    Attributes:
        patient_reference: ``Patient/123`` (a reference, never demographics).
        oncocds_version: the running OncoCDS version (``cds_service.__version__``).
        kb_version: the knowledge-base release the interpretation used.
        issued: when the report is issued (timezone-aware); also Provenance.recorded.
        specimen_reference: ``Specimen/…`` if the lab named one.
        performer_reference: ``Organization/…`` of the lab, if known.
    """

    patient_reference: str
    oncocds_version: str
    kb_version: str
    issued: datetime
    specimen_reference: str | None = None
    performer_reference: str | None = None


# ------------------------------------------------------------------ small helpers


def _instant(value: datetime) -> str:
    """FHIR instant in UTC with ``Z``, exactly as fhir.resources serialises it."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


#: Alteration fields added after report ids were first issued: left out of an id's digest while
#: unset, so a report for the same results keeps its resource ids (conditional create on the
#: EHR's server matches them) across the upgrade.
_NEWER_UNSET_FIELDS: Final = ("variant_class", "exon", "classification", "score")
#: Therapeutic-finding fields added later (issue 12), left out while at their default.
_NEWER_DEFAULTS: Final[dict[str, Any]] = {
    "tumour_code": None,
    "label_id": None,
    "regulatory_status": "unknown",
    "preclinical": False,
    "conflicts": [],
}


def _id_payload(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _id_payload(v)
            for k, v in value.items()
            if not (v is None and k in _NEWER_UNSET_FIELDS)
            and not (k in _NEWER_DEFAULTS and v == _NEWER_DEFAULTS[k])
            and not (k == "source" and v == "" and "drugs" in value)
        }
    if isinstance(value, list):
        return [_id_payload(v) for v in value]
    return value


def _digest(*parts: object) -> str:
    payload = json.dumps([_id_payload(to_jsonable(p)) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _resource_id(prefix: str, *parts: object) -> str:
    return f"{prefix}-{_digest(*parts)[:24]}"


@functools.lru_cache(maxsize=65_536)
def full_url(resource_id: str) -> str:
    """The deterministic ``urn:uuid:`` fullUrl of a resource id."""
    return f"urn:uuid:{uuid.uuid5(_URN_NAMESPACE, resource_id)}"


def _coding(system: str, code: str, display: str | None = None) -> Json:
    out: Json = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _cc(system: str, code: str, display: str | None = None) -> Json:
    return {"coding": [_coding(system, code, display)]}


def _loinc_cc(code: str, display: str | None = None) -> Json:
    return _cc(gc.LOINC, code, display)


def _component(code: Json, **value: Any) -> Json:
    return {"code": code, **value}


def _loinc_component(code: str, **value: Any) -> Json:
    return _component(_loinc_cc(code), **value)


def _categories() -> list[Json]:
    # genomic-base: category 2..*, slices labCategory and geCategory (IG STU3 §genomic-base).
    return [_cc(gc.OBS_CATEGORY, "laboratory"), _cc(gc.V2_0074, "GE")]


def _gene_cc(gene: Gene) -> Json:
    if gene.hgnc_id:
        return _cc(gc.HGNC, gene.hgnc_id, gene.symbol)
    return {"text": gene.symbol}


def _medication_cc(drug: Medication) -> Json:
    if drug.rxnorm:
        return _cc(gc.RXNORM, drug.rxnorm, drug.name)
    return {"text": drug.name}


def _conclusion(text: str) -> Json:
    return _component(_cc(gc.TBD, gc.CODE_CONCLUSION_STRING), valueString=text)


def _related_artifacts(evidence: Iterable[Evidence]) -> list[Json]:
    """``workflow-relatedArtifact`` citations: the source record and each PubMed id."""
    out: list[Json] = []
    seen: set[str] = set()
    for ev in evidence:
        label = f"{ev.source} {ev.id}"
        if label not in seen:
            seen.add(label)
            artifact: Json = {"type": "citation", "label": label, "url": ev.url}
            if ev.level:
                artifact["display"] = f"{ev.source} evidence level {ev.level}"
            if ev.version:
                artifact["citation"] = f"{label} ({ev.version})"
            out.append({"url": gc.RELATED_ARTIFACT_EXT, "valueRelatedArtifact": artifact})
        for pmid in ev.pmids:
            key = f"PMID:{pmid}"
            if key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "url": gc.RELATED_ARTIFACT_EXT,
                    "valueRelatedArtifact": {
                        "type": "citation",
                        "label": key,
                        "url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
                    },
                }
            )
    return out


# ------------------------------------------------------------------ builder


class _Builder:
    def __init__(self, interpretation: Interpretation, ctx: ReportContext) -> None:
        self.interp = interpretation
        self.ctx = ctx
        self.subject = {"reference": ctx.patient_reference}
        self.entries: dict[str, Json] = {}  # resource id → resource, in bundle order
        self.alteration_urls: dict[str, str] = {}

    def _observation_base(self, rid: str, profile: str, code: Json) -> Json:
        obs: Json = {
            "resourceType": "Observation",
            "id": rid,
            "meta": {"profile": [profile]},
            "status": "final",
            "category": _categories(),
            "code": code,
            "subject": self.subject,
            "issued": _instant(self.ctx.issued),
        }
        if self.ctx.specimen_reference:
            obs["specimen"] = {"reference": self.ctx.specimen_reference}
        if self.ctx.performer_reference:
            obs["performer"] = [{"reference": self.ctx.performer_reference}]
        return obs

    def _add(self, resource: Json) -> str:
        rid = str(resource["id"])
        url = full_url(rid)
        # The same content twice yields one resource, where it first appeared.
        self.entries.setdefault(rid, resource)
        return url

    # -------------------------------------------------------------- findings

    def variant(self, variant: Variant) -> str:
        rid = _resource_id("var", self.ctx.patient_reference, variant)
        obs = self._observation_base(
            rid, gc.PROFILE_VARIANT, _loinc_cc(gc.CODE_VARIANT, "Genetic variant assessment")
        )
        obs["valueCodeableConcept"] = _loinc_cc(*gc.VARIANT_PRESENT)
        comps: list[Json] = []
        if variant.gene:
            comps.append(_loinc_component(gc.C_GENE, valueCodeableConcept=_gene_cc(variant.gene)))
        if variant.hgvs_c:
            hgvs_c = variant.hgvs_c
            if variant.transcript and ":" not in hgvs_c:
                hgvs_c = f"{variant.transcript}:{hgvs_c}"
            comps.append(
                _loinc_component(gc.C_CODING_HGVS, valueCodeableConcept=_cc(gc.HGVS, hgvs_c))
            )
        protein = variant.hgvs_p or (
            f"p.{variant.protein_change}" if variant.protein_change else None
        )
        if protein:
            comps.append(
                _loinc_component(gc.C_PROTEIN_HGVS, valueCodeableConcept=_cc(gc.HGVS, protein))
            )
        if variant.hgvs_g:
            comps.append(
                _loinc_component(
                    gc.C_GENOMIC_HGVS, valueCodeableConcept=_cc(gc.HGVS, variant.hgvs_g)
                )
            )
        if variant.transcript:
            system = gc.ENSEMBL if variant.transcript.startswith("ENS") else gc.REFSEQ
            comps.append(
                _loinc_component(
                    gc.C_TRANSCRIPT, valueCodeableConcept=_cc(system, variant.transcript)
                )
            )
        if variant.position is not None:
            comps.extend(self._position_components(variant))
        comps.append(
            _loinc_component(
                gc.C_SOURCE_CLASS,
                valueCodeableConcept=_loinc_cc(*gc.SOURCE_CLASS[variant.origin.value]),
            )
        )
        state = gc.ALLELIC_STATE.get(variant.zygosity.value)
        if state:
            comps.append(
                _loinc_component(gc.C_ALLELIC_STATE, valueCodeableConcept=_loinc_cc(*state))
            )
        if variant.allele_frequency is not None:
            comps.append(
                _loinc_component(
                    gc.C_AF,
                    valueQuantity={
                        "value": variant.allele_frequency,
                        "system": gc.UCUM,
                        "code": "1",
                    },
                )
            )
        if variant.depth is not None:
            comps.append(
                _loinc_component(
                    gc.C_DEPTH,
                    valueQuantity={
                        "value": variant.depth,
                        "unit": "reads",
                        "system": gc.UCUM,
                        "code": "1",
                    },
                )
            )
        obs["component"] = comps
        return self._add(obs)

    @staticmethod
    def _position_components(variant: Variant) -> list[Json]:
        pos = variant.position
        assert pos is not None
        comps: list[Json] = [
            _loinc_component(
                gc.C_ASSEMBLY, valueCodeableConcept=_loinc_cc(*gc.ASSEMBLY[pos.build.value])
            )
        ]
        chrom_code = gc.CHROMOSOME.get(pos.chrom)
        if chrom_code:
            comps.append(
                _loinc_component(
                    gc.C_CHROMOSOME,
                    valueCodeableConcept=_loinc_cc(chrom_code, f"Chromosome {pos.chrom}"),
                )
            )
        # VCF pos is 1-based and names the first reference base; the 0-based interval covering
        # the reference allele is [pos-1, pos-1+len(ref)) (IG: coordinate system LA30100-4).
        start = pos.pos - 1
        comps.append(
            _loinc_component(
                gc.C_COORD_SYSTEM, valueCodeableConcept=_loinc_cc(*gc.ZERO_BASED_INTERVAL)
            )
        )
        comps.append(
            _loinc_component(
                gc.C_EXACT_START_END,
                valueRange={"low": {"value": start}, "high": {"value": start + len(pos.ref)}},
            )
        )
        comps.append(_loinc_component(gc.C_REF_ALLELE, valueString=pos.ref))
        comps.append(_loinc_component(gc.C_ALT_ALLELE, valueString=pos.alt))
        return comps

    def biomarker(self, marker: Biomarker) -> str:
        rid = _resource_id("bio", self.ctx.patient_reference, marker)
        if marker.kind is BiomarkerKind.TMB:
            obs = self._observation_base(rid, gc.PROFILE_BIOMARKER, _loinc_cc(gc.CODE_TMB))
            if marker.tmb is not None:
                obs["valueQuantity"] = {
                    "value": marker.tmb,
                    "unit": "mutations/megabase",
                    "system": gc.UCUM,
                    "code": "1/1000000",
                }
            else:
                obs["dataAbsentReason"] = _cc(
                    "http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown"
                )
            return self._add(obs)
        if marker.kind is BiomarkerKind.MSI_HIGH:
            obs = self._observation_base(rid, gc.PROFILE_BIOMARKER, _loinc_cc(gc.CODE_MSI))
            obs["valueCodeableConcept"] = _loinc_cc(*gc.MSI_HIGH)
            return self._add(obs)
        # Fusions and copy-number changes: a Variant (structural) with gene-studied components;
        # no change-type code is emitted that we cannot cite, the label says what it is.
        obs = self._observation_base(
            rid, gc.PROFILE_VARIANT, _loinc_cc(gc.CODE_VARIANT, "Genetic variant assessment")
        )
        obs["valueCodeableConcept"] = _loinc_cc(*gc.VARIANT_PRESENT)
        comps: list[Json] = []
        for gene in (marker.gene, marker.fusion_partner):
            if gene is not None:
                comps.append(_loinc_component(gc.C_GENE, valueCodeableConcept=_gene_cc(gene)))
        if marker.copy_number is not None:
            comps.append(
                _loinc_component(
                    gc.C_COPY_NUMBER,
                    valueQuantity={"value": marker.copy_number, "system": gc.UCUM, "code": "1"},
                )
            )
        comps.append(
            _loinc_component(
                gc.C_SOURCE_CLASS,
                valueCodeableConcept=_loinc_cc(*gc.SOURCE_CLASS[marker.origin.value]),
            )
        )
        comps.append(_conclusion(marker.label))
        obs["component"] = comps
        return self._add(obs)

    def genotype(self, genotype: Genotype) -> str:
        rid = _resource_id("gt", self.ctx.patient_reference, genotype.gene, genotype.diplotype)
        obs = self._observation_base(
            rid, gc.PROFILE_GENOTYPE, _loinc_cc(gc.CODE_GENOTYPE, "Genotype display name")
        )
        obs["valueCodeableConcept"] = {"text": f"{genotype.gene.symbol} {genotype.diplotype}"}
        obs["component"] = [
            _loinc_component(gc.C_GENE, valueCodeableConcept=_gene_cc(genotype.gene))
        ]
        return self._add(obs)

    # -------------------------------------------------------------- implications

    def _implication(self, rid: str, profile: str, code: str, derived: Sequence[str]) -> Json:
        obs = self._observation_base(rid, profile, _cc(gc.TBD, code))
        # implication: value[x] 0..0 and derivedFrom 1..* (IG STU3 §implication).
        obs["derivedFrom"] = [{"reference": url} for url in derived]
        return obs

    def _alteration_url(self, alteration_id: str, what: str) -> str:
        url = self.alteration_urls.get(alteration_id)
        if url is None:
            raise FhirMappingError(
                f"{what} refers to alteration {alteration_id}, which is not in the interpretation"
            )
        return url

    def therapeutic(self, finding: TherapeuticFinding) -> str:
        rid = _resource_id("tx", self.ctx.patient_reference, finding)
        derived = self._alteration_url(finding.alteration_id, "a therapeutic finding")
        obs = self._implication(rid, gc.PROFILE_THERAPEUTIC, gc.CODE_THERAPEUTIC, [derived])
        response = gc.RESPONSIVE if finding.response.value == "sensitive" else gc.RESISTANT
        comps: list[Json] = [
            _component(_cc(gc.TBD, gc.CODE_THERAPEUTIC), valueCodeableConcept=_loinc_cc(*response))
        ]
        comps.extend(
            _loinc_component(gc.C_MEDICATION, valueCodeableConcept=_medication_cc(drug))
            for drug in finding.drugs
        )
        comps.append(
            _loinc_component(gc.C_PHENOTYPE, valueCodeableConcept={"text": finding.disease})
        )
        comps.append(
            _loinc_component(gc.C_EVIDENCE_LEVEL, valueCodeableConcept={"text": finding.tier.label})
        )
        notes = [n for n in (finding.context_note, finding.line_of_therapy) if n]
        if finding.fda_approved_for_tumour:
            notes.insert(0, RegulatoryStatus.APPROVED_FOR_TUMOUR.display)
        elif finding.regulatory_status is not RegulatoryStatus.UNKNOWN:
            notes.insert(0, finding.regulatory_status.display)
        if finding.preclinical:
            notes.insert(0, "preclinical evidence only")
        notes.extend(
            f"conflicting evidence resolved: {c.resolution} "
            f"({', '.join(e.label for e in c.evidence[:3])})"
            for c in finding.conflicts
        )
        if notes:
            comps.append(_conclusion("; ".join(notes)))
        obs["component"] = comps
        obs["extension"] = _related_artifacts(finding.evidence)
        return self._add(obs)

    def pharmacogenomic(self, finding: PharmacogenomicFinding, genotype_url: str) -> str:
        rid = _resource_id("pgx", self.ctx.patient_reference, finding)
        obs = self._implication(rid, gc.PROFILE_THERAPEUTIC, gc.CODE_THERAPEUTIC, [genotype_url])
        mapped = gc.METABOLIZER.get(finding.phenotype.strip().lower())
        phenotype_cc: Json = _loinc_cc(*mapped) if mapped else {}
        phenotype_cc["text"] = finding.phenotype
        comps: list[Json] = [
            _component(_cc(gc.TBD, gc.CODE_THERAPEUTIC), valueCodeableConcept=phenotype_cc)
        ]
        comps.extend(
            _loinc_component(gc.C_MEDICATION, valueCodeableConcept=_medication_cc(drug))
            for drug in finding.drugs
        )
        levels = [f"{ev.source} level {ev.level}" for ev in finding.evidence if ev.level]
        if levels:
            comps.append(
                _loinc_component(
                    gc.C_EVIDENCE_LEVEL, valueCodeableConcept={"text": "; ".join(levels)}
                )
            )
        comps.append(_conclusion(finding.recommendation))
        obs["component"] = comps
        obs["extension"] = _related_artifacts(finding.evidence)
        return self._add(obs)

    def diagnostic(self, finding: DiagnosticFinding) -> str:
        rid = _resource_id("dx", self.ctx.patient_reference, finding)
        derived = self._alteration_url(finding.alteration_id, "a diagnostic finding")
        obs = self._implication(rid, gc.PROFILE_DIAGNOSTIC, gc.CODE_DIAGNOSTIC, [derived])
        obs["component"] = [
            _loinc_component(gc.C_PHENOTYPE, valueCodeableConcept={"text": finding.disease}),
            _loinc_component(
                gc.C_EVIDENCE_LEVEL, valueCodeableConcept={"text": finding.tier.label}
            ),
            _conclusion(f"{finding.kind.capitalize()}: {finding.statement}"),
        ]
        obs["extension"] = _related_artifacts(finding.evidence)
        return self._add(obs)

    def hereditary(self, finding: HereditaryRiskFinding) -> str:
        rid = _resource_id("hr", self.ctx.patient_reference, finding)
        derived = self._alteration_url(finding.alteration_id, "a hereditary-risk finding")
        obs = self._implication(rid, gc.PROFILE_DIAGNOSTIC, gc.CODE_DIAGNOSTIC, [derived])
        significance = gc.CLINICAL_SIGNIFICANCE.get(finding.classification.strip().lower())
        sig_cc: Json = _loinc_cc(*significance) if significance else {}
        sig_cc["text"] = finding.classification
        obs["component"] = [
            _loinc_component(gc.C_CLIN_SIG, valueCodeableConcept=sig_cc),
            _loinc_component(gc.C_PHENOTYPE, valueCodeableConcept={"text": finding.condition}),
            _conclusion(finding.recommendation),
        ]
        obs["extension"] = _related_artifacts(finding.evidence)
        return self._add(obs)

    # -------------------------------------------------------------- report

    def build(self, *, validate: bool = True) -> Json:
        interp = self.interp
        for alteration in interp.alterations:
            url = (
                self.variant(alteration)
                if isinstance(alteration, Variant)
                else self.biomarker(alteration)
            )
            self.alteration_urls[alteration.id] = url
        genotype_urls: dict[tuple[str, str], str] = {}
        genotypes = list(interp.genotypes)
        genotypes += [Genotype(gene=f.gene, diplotype=f.diplotype) for f in interp.pharmacogenomic]
        for genotype in genotypes:
            key = (genotype.gene.symbol, genotype.diplotype)
            if key not in genotype_urls:
                genotype_urls[key] = self.genotype(genotype)
        for tx in interp.therapeutic:
            self.therapeutic(tx)
        for pgx in interp.pharmacogenomic:
            self.pharmacogenomic(pgx, genotype_urls[(pgx.gene.symbol, pgx.diplotype)])
        for dx in interp.diagnostic:
            self.diagnostic(dx)
        for hr in interp.hereditary:
            self.hereditary(hr)

        observation_ids = list(self.entries)
        report_id = _resource_id(
            "rep", self.ctx.patient_reference, observation_ids, self.ctx.kb_version
        )
        report: Json = {
            "resourceType": "DiagnosticReport",
            "id": report_id,
            "meta": {"profile": [gc.PROFILE_REPORT]},
            "status": "final",
            "category": [_cc(gc.V2_0074, "GE")],
            "code": _loinc_cc(gc.CODE_REPORT, "Genetic analysis report"),
            "subject": self.subject,
            "effectiveDateTime": _instant(self.ctx.issued),
            "issued": _instant(self.ctx.issued),
            "result": [{"reference": full_url(rid)} for rid in observation_ids],
            "conclusion": conclusion_text(interp),
        }
        if self.ctx.performer_reference:
            report["performer"] = [{"reference": self.ctx.performer_reference}]
        if self.ctx.specimen_reference:
            report["specimen"] = [{"reference": self.ctx.specimen_reference}]
        self._add(report)

        device_id = _resource_id("dev", self.ctx.oncocds_version, self.ctx.kb_version)
        device: Json = {
            "resourceType": "Device",
            "id": device_id,
            "deviceName": [{"name": "OncoCDS", "type": "manufacturer-name"}],
            "type": {"text": "clinical decision support software"},
            "version": [
                {"type": {"text": "software"}, "value": self.ctx.oncocds_version},
                {"type": {"text": "knowledge base"}, "value": self.ctx.kb_version or "unknown"},
            ],
        }
        self._add(device)
        targets = [rid for rid in self.entries if rid != device_id]
        provenance: Json = {
            "resourceType": "Provenance",
            "id": _resource_id("prov", targets, device_id),
            "target": [{"reference": full_url(rid)} for rid in targets],
            "recorded": _instant(self.ctx.issued),
            "agent": [
                {
                    "type": _cc(
                        "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                        "author",
                        "Author",
                    ),
                    "who": {
                        "reference": full_url(device_id),
                        "display": f"OncoCDS {self.ctx.oncocds_version}, "
                        f"knowledge base {self.ctx.kb_version or 'unknown'}",
                    },
                }
            ],
        }
        self._add(provenance)
        return self._bundle(validate=validate)

    def _bundle(self, *, validate: bool = True) -> Json:
        validators: dict[str, Any] = {
            "Observation": Observation,
            "DiagnosticReport": DiagnosticReport,
            "Device": Device,
            "Provenance": Provenance,
        }
        entries: list[Json] = []
        for rid, resource in self.entries.items():
            request: Json = {"method": "POST", "url": resource["resourceType"]}
            if resource["resourceType"] in _CONDITIONAL_TYPES:
                # Idempotent write-back: a retry after a timeout whose transaction did commit
                # must not duplicate the report. The content-derived urn:uuid is also the
                # resource's identifier, and the create is conditional on it (FHIR R4
                # §3.1.0.8.1 conditional create, Bundle.entry.request.ifNoneExist).
                resource["identifier"] = [{"system": _URI_SYSTEM, "value": full_url(rid)}]
                request["ifNoneExist"] = f"identifier={_URI_SYSTEM}|{full_url(rid)}"
            out = resource
            if validate:
                model = validators[resource["resourceType"]].model_validate(resource)
                out = model.model_dump(mode="json", exclude_none=True)
            entries.append({"fullUrl": full_url(rid), "resource": out, "request": request})
        document: Json = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        if not validate:
            return document
        result: Json = Bundle.model_validate(document).model_dump(mode="json", exclude_none=True)
        return result


def conclusion_text(interpretation: Interpretation) -> str:
    """The report's overall conclusion: one sentence per finding, findings-first, no guessing."""
    labels = {alt.id: alt.label for alt in interpretation.alterations}
    parts: list[str] = []
    for tx in interpretation.therapeutic:
        drugs = " + ".join(d.name for d in tx.drugs)
        verb = (
            "predicts response to" if tx.response.value == "sensitive" else "predicts resistance to"
        )
        label = labels.get(tx.alteration_id, "an alteration")
        parts.append(f"{label}: {verb} {drugs} in {tx.disease} ({tx.tier.label}).")
    for dx in interpretation.diagnostic:
        parts.append(
            f"{labels.get(dx.alteration_id, 'an alteration')}: {dx.kind} - {dx.statement} "
            f"({dx.tier.label})."
        )
    for hr in interpretation.hereditary:
        parts.append(
            f"Germline {hr.gene.symbol} {hr.classification} variant: {hr.condition}. "
            f"{hr.recommendation}"
        )
    for pgx in interpretation.pharmacogenomic:
        drugs = ", ".join(d.name for d in pgx.drugs)
        parts.append(
            f"{pgx.gene.symbol} {pgx.diplotype} ({pgx.phenotype}): {drugs}: {pgx.recommendation}"
        )
    if not parts:
        parts.append("No actionable finding in the knowledge base.")
    if interpretation.unknown:
        parts.append(
            f"{len(interpretation.unknown)} alteration(s) not in the knowledge base "
            "(significance unknown)."
        )
    parts.append("Decision support, not a diagnosis.")
    return " ".join(parts)


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
    return _Builder(interpretation, context).build(validate=validate)


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
