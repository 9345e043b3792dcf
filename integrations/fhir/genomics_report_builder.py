"""The Genomics Reporting STU3 transaction Bundle builder (one method per resource family):
variants, biomarkers, genotypes, implications, the DiagnosticReport, Device and Provenance.

The public entry point is :func:`integrations.fhir.genomics_report.build_genomic_report_bundle`;
data-type elements and ids are :mod:`integrations.fhir.genomics_report_elements`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from inference.genomics.conclusion import conclusion_text
from inference.genomics.model import (
    Biomarker,
    BiomarkerKind,
    DiagnosticFinding,
    Genotype,
    HereditaryRiskFinding,
    Interpretation,
    PharmacogenomicFinding,
    RegulatoryStatus,
    TherapeuticFinding,
    Variant,
)
from integrations.errors import FhirMappingError
from integrations.fhir import genomics_codes as gc
from integrations.fhir import genomics_report_elements as el
from integrations.fhir.genomics_report_elements import Json, full_url
from integrations.fhir.resources import Bundle, Device, DiagnosticReport, Observation, Provenance

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


class ReportBuilder:
    """Builds one report: each method adds the resources of one family (use it once)."""

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
            "category": el.categories(),
            "code": code,
            "subject": self.subject,
            "issued": el.instant(self.ctx.issued),
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
        rid = el.resource_id("var", self.ctx.patient_reference, variant)
        obs = self._observation_base(
            rid, gc.PROFILE_VARIANT, el.loinc_cc(gc.CODE_VARIANT, "Genetic variant assessment")
        )
        obs["valueCodeableConcept"] = el.loinc_cc(*gc.VARIANT_PRESENT)
        comps: list[Json] = []
        if variant.gene:
            comps.append(
                el.loinc_component(gc.C_GENE, valueCodeableConcept=el.gene_cc(variant.gene))
            )
        if variant.hgvs_c:
            hgvs_c = variant.hgvs_c
            if variant.transcript and ":" not in hgvs_c:
                hgvs_c = f"{variant.transcript}:{hgvs_c}"
            comps.append(
                el.loinc_component(gc.C_CODING_HGVS, valueCodeableConcept=el.cc(gc.HGVS, hgvs_c))
            )
        protein = variant.hgvs_p or (
            f"p.{variant.protein_change}" if variant.protein_change else None
        )
        if protein:
            comps.append(
                el.loinc_component(gc.C_PROTEIN_HGVS, valueCodeableConcept=el.cc(gc.HGVS, protein))
            )
        if variant.hgvs_g:
            comps.append(
                el.loinc_component(
                    gc.C_GENOMIC_HGVS, valueCodeableConcept=el.cc(gc.HGVS, variant.hgvs_g)
                )
            )
        if variant.transcript:
            system = gc.ENSEMBL if variant.transcript.startswith("ENS") else gc.REFSEQ
            comps.append(
                el.loinc_component(
                    gc.C_TRANSCRIPT, valueCodeableConcept=el.cc(system, variant.transcript)
                )
            )
        if variant.position is not None:
            comps.extend(self._position_components(variant))
        comps.append(
            el.loinc_component(
                gc.C_SOURCE_CLASS,
                valueCodeableConcept=el.loinc_cc(*gc.SOURCE_CLASS[variant.origin.value]),
            )
        )
        state = gc.ALLELIC_STATE.get(variant.zygosity.value)
        if state:
            comps.append(
                el.loinc_component(gc.C_ALLELIC_STATE, valueCodeableConcept=el.loinc_cc(*state))
            )
        if variant.allele_frequency is not None:
            comps.append(
                el.loinc_component(
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
                el.loinc_component(
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
            el.loinc_component(
                gc.C_ASSEMBLY, valueCodeableConcept=el.loinc_cc(*gc.ASSEMBLY[pos.build.value])
            )
        ]
        chrom_code = gc.CHROMOSOME.get(pos.chrom)
        if chrom_code:
            comps.append(
                el.loinc_component(
                    gc.C_CHROMOSOME,
                    valueCodeableConcept=el.loinc_cc(chrom_code, f"Chromosome {pos.chrom}"),
                )
            )
        # VCF pos is 1-based and names the first reference base; the 0-based interval covering
        # the reference allele is [pos-1, pos-1+len(ref)) (IG: coordinate system LA30100-4).
        start = pos.pos - 1
        comps.append(
            el.loinc_component(
                gc.C_COORD_SYSTEM, valueCodeableConcept=el.loinc_cc(*gc.ZERO_BASED_INTERVAL)
            )
        )
        comps.append(
            el.loinc_component(
                gc.C_EXACT_START_END,
                valueRange={"low": {"value": start}, "high": {"value": start + len(pos.ref)}},
            )
        )
        comps.append(el.loinc_component(gc.C_REF_ALLELE, valueString=pos.ref))
        comps.append(el.loinc_component(gc.C_ALT_ALLELE, valueString=pos.alt))
        return comps

    def biomarker(self, marker: Biomarker) -> str:
        rid = el.resource_id("bio", self.ctx.patient_reference, marker)
        if marker.kind is BiomarkerKind.TMB:
            obs = self._observation_base(rid, gc.PROFILE_BIOMARKER, el.loinc_cc(gc.CODE_TMB))
            if marker.tmb is not None:
                obs["valueQuantity"] = {
                    "value": marker.tmb,
                    "unit": "mutations/megabase",
                    "system": gc.UCUM,
                    "code": "1/1000000",
                }
            else:
                obs["dataAbsentReason"] = el.cc(
                    "http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown"
                )
            return self._add(obs)
        if marker.kind is BiomarkerKind.MSI_HIGH:
            obs = self._observation_base(rid, gc.PROFILE_BIOMARKER, el.loinc_cc(gc.CODE_MSI))
            obs["valueCodeableConcept"] = el.loinc_cc(*gc.MSI_HIGH)
            return self._add(obs)
        # Fusions and copy-number changes: a Variant (structural) with gene-studied components;
        # no change-type code is emitted that we cannot cite, the label says what it is.
        obs = self._observation_base(
            rid, gc.PROFILE_VARIANT, el.loinc_cc(gc.CODE_VARIANT, "Genetic variant assessment")
        )
        obs["valueCodeableConcept"] = el.loinc_cc(*gc.VARIANT_PRESENT)
        comps: list[Json] = []
        for gene in (marker.gene, marker.fusion_partner):
            if gene is not None:
                comps.append(el.loinc_component(gc.C_GENE, valueCodeableConcept=el.gene_cc(gene)))
        if marker.copy_number is not None:
            comps.append(
                el.loinc_component(
                    gc.C_COPY_NUMBER,
                    valueQuantity={"value": marker.copy_number, "system": gc.UCUM, "code": "1"},
                )
            )
        comps.append(
            el.loinc_component(
                gc.C_SOURCE_CLASS,
                valueCodeableConcept=el.loinc_cc(*gc.SOURCE_CLASS[marker.origin.value]),
            )
        )
        comps.append(el.conclusion_component(marker.label))
        obs["component"] = comps
        return self._add(obs)

    def genotype(self, genotype: Genotype) -> str:
        rid = el.resource_id("gt", self.ctx.patient_reference, genotype.gene, genotype.diplotype)
        obs = self._observation_base(
            rid, gc.PROFILE_GENOTYPE, el.loinc_cc(gc.CODE_GENOTYPE, "Genotype display name")
        )
        obs["valueCodeableConcept"] = {"text": f"{genotype.gene.symbol} {genotype.diplotype}"}
        obs["component"] = [
            el.loinc_component(gc.C_GENE, valueCodeableConcept=el.gene_cc(genotype.gene))
        ]
        return self._add(obs)

    # -------------------------------------------------------------- implications

    def _implication(self, rid: str, profile: str, code: str, derived: Sequence[str]) -> Json:
        obs = self._observation_base(rid, profile, el.cc(gc.TBD, code))
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
        rid = el.resource_id("tx", self.ctx.patient_reference, finding)
        derived = self._alteration_url(finding.alteration_id, "a therapeutic finding")
        obs = self._implication(rid, gc.PROFILE_THERAPEUTIC, gc.CODE_THERAPEUTIC, [derived])
        response = gc.RESPONSIVE if finding.response.value == "sensitive" else gc.RESISTANT
        comps: list[Json] = [
            el.component(
                el.cc(gc.TBD, gc.CODE_THERAPEUTIC), valueCodeableConcept=el.loinc_cc(*response)
            )
        ]
        comps.extend(
            el.loinc_component(gc.C_MEDICATION, valueCodeableConcept=el.medication_cc(drug))
            for drug in finding.drugs
        )
        comps.append(
            el.loinc_component(gc.C_PHENOTYPE, valueCodeableConcept={"text": finding.disease})
        )
        comps.append(
            el.loinc_component(
                gc.C_EVIDENCE_LEVEL, valueCodeableConcept={"text": finding.tier.label}
            )
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
            comps.append(el.conclusion_component("; ".join(notes)))
        obs["component"] = comps
        obs["extension"] = el.related_artifacts(finding.evidence)
        return self._add(obs)

    def pharmacogenomic(self, finding: PharmacogenomicFinding, genotype_url: str) -> str:
        rid = el.resource_id("pgx", self.ctx.patient_reference, finding)
        obs = self._implication(rid, gc.PROFILE_THERAPEUTIC, gc.CODE_THERAPEUTIC, [genotype_url])
        mapped = gc.METABOLIZER.get(finding.phenotype.strip().lower())
        phenotype_cc: Json = el.loinc_cc(*mapped) if mapped else {}
        phenotype_cc["text"] = finding.phenotype
        comps: list[Json] = [
            el.component(el.cc(gc.TBD, gc.CODE_THERAPEUTIC), valueCodeableConcept=phenotype_cc)
        ]
        comps.extend(
            el.loinc_component(gc.C_MEDICATION, valueCodeableConcept=el.medication_cc(drug))
            for drug in finding.drugs
        )
        levels = [f"{ev.source} level {ev.level}" for ev in finding.evidence if ev.level]
        if levels:
            comps.append(
                el.loinc_component(
                    gc.C_EVIDENCE_LEVEL, valueCodeableConcept={"text": "; ".join(levels)}
                )
            )
        comps.append(el.conclusion_component(finding.recommendation))
        obs["component"] = comps
        obs["extension"] = el.related_artifacts(finding.evidence)
        return self._add(obs)

    def diagnostic(self, finding: DiagnosticFinding) -> str:
        rid = el.resource_id("dx", self.ctx.patient_reference, finding)
        derived = self._alteration_url(finding.alteration_id, "a diagnostic finding")
        obs = self._implication(rid, gc.PROFILE_DIAGNOSTIC, gc.CODE_DIAGNOSTIC, [derived])
        obs["component"] = [
            el.loinc_component(gc.C_PHENOTYPE, valueCodeableConcept={"text": finding.disease}),
            el.loinc_component(
                gc.C_EVIDENCE_LEVEL, valueCodeableConcept={"text": finding.tier.label}
            ),
            el.conclusion_component(f"{finding.kind.capitalize()}: {finding.statement}"),
        ]
        obs["extension"] = el.related_artifacts(finding.evidence)
        return self._add(obs)

    def hereditary(self, finding: HereditaryRiskFinding) -> str:
        rid = el.resource_id("hr", self.ctx.patient_reference, finding)
        derived = self._alteration_url(finding.alteration_id, "a hereditary-risk finding")
        obs = self._implication(rid, gc.PROFILE_DIAGNOSTIC, gc.CODE_DIAGNOSTIC, [derived])
        significance = gc.CLINICAL_SIGNIFICANCE.get(finding.classification.strip().lower())
        sig_cc: Json = el.loinc_cc(*significance) if significance else {}
        sig_cc["text"] = finding.classification
        obs["component"] = [
            el.loinc_component(gc.C_CLIN_SIG, valueCodeableConcept=sig_cc),
            el.loinc_component(gc.C_PHENOTYPE, valueCodeableConcept={"text": finding.condition}),
            el.conclusion_component(finding.recommendation),
        ]
        obs["extension"] = el.related_artifacts(finding.evidence)
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
        report_id = el.resource_id(
            "rep", self.ctx.patient_reference, observation_ids, self.ctx.kb_version
        )
        report: Json = {
            "resourceType": "DiagnosticReport",
            "id": report_id,
            "meta": {"profile": [gc.PROFILE_REPORT]},
            "status": "final",
            "category": [el.cc(gc.V2_0074, "GE")],
            "code": el.loinc_cc(gc.CODE_REPORT, "Genetic analysis report"),
            "subject": self.subject,
            "effectiveDateTime": el.instant(self.ctx.issued),
            "issued": el.instant(self.ctx.issued),
            "result": [{"reference": full_url(rid)} for rid in observation_ids],
            "conclusion": conclusion_text(interp),
        }
        if self.ctx.performer_reference:
            report["performer"] = [{"reference": self.ctx.performer_reference}]
        if self.ctx.specimen_reference:
            report["specimen"] = [{"reference": self.ctx.specimen_reference}]
        self._add(report)

        device_id = el.resource_id("dev", self.ctx.oncocds_version, self.ctx.kb_version)
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
            "id": el.resource_id("prov", targets, device_id),
            "target": [{"reference": full_url(rid)} for rid in targets],
            "recorded": el.instant(self.ctx.issued),
            "agent": [
                {
                    "type": el.cc(
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
