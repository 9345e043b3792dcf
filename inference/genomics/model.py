"""The genomic domain model: alterations, patient context, evidence and findings.

Pure data (frozen dataclasses), no I/O. Intake code in ``integrations`` builds these from FHIR,
VCF, HL7 v2 and text; :func:`inference.genomics.interpret` turns them into an
:class:`Interpretation`; ``cds_service`` renders that as cards, FHIR and pages.

Conventions:
- Genes are HGNC symbols (upper case) with the HGNC id (``HGNC:1097``) when known.
- Genomic positions are VCF-style: 1-based ``pos``, VCF-normalised ``ref``/``alt``, chromosome
  without a ``chr`` prefix (``"7"``, ``"X"``, ``"MT"``), with the genome build.
- Protein changes are kept as given (``hgvs_p``) and as a normalised one-letter key
  (``protein_change``, e.g. ``V600E``) so 1- and 3-letter forms meet.
- Every finding carries :class:`Evidence` (source, id, URL, PubMed ids); a finding without
  evidence must not be produced.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from enum import StrEnum


class GenomeBuild(StrEnum):
    GRCH37 = "GRCh37"
    GRCH38 = "GRCh38"


class Origin(StrEnum):
    """Genomic source class (LOINC 48002-0)."""

    SOMATIC = "somatic"
    GERMLINE = "germline"
    UNKNOWN = "unknown"


class Zygosity(StrEnum):
    """Allelic state (LOINC 53034-5)."""

    HETEROZYGOUS = "heterozygous"
    HOMOZYGOUS = "homozygous"
    HEMIZYGOUS = "hemizygous"
    UNKNOWN = "unknown"


class BiomarkerKind(StrEnum):
    FUSION = "fusion"
    AMPLIFICATION = "amplification"
    DELETION = "deletion"
    #: Microsatellite instability-high or mismatch-repair deficient (the labels pair them).
    MSI_HIGH = "msi-high"
    TMB = "tmb"
    #: Homologous-recombination deficiency (a genomic-instability score at or above the test's
    #: cut-off, as the lab reports it).
    HRD = "hrd"


class VariantClass(StrEnum):
    """What a report states when it gives a class of change rather than the exact change.

    Labs write ``EGFR exon 19 deletion``, ``FLT3-ITD``, ``MET exon 14 skipping`` or
    ``KIT exon 11 mutation`` without HGVS. Such a variant carries its class (and exon) instead
    of a protein change; :mod:`inference.genomics.classes` derives the same classes from exact
    changes by rule, so both forms meet the knowledge base on one key.
    """

    EXON19_DELETION = "exon 19 deletion"
    EXON20_INSERTION = "exon 20 insertion"
    EXON14_SKIPPING = "exon 14 skipping"
    #: Internal tandem duplication (FLT3-ITD).
    ITD = "internal tandem duplication"
    #: Tyrosine kinase domain point mutation (FLT3-TKD).
    TKD = "tyrosine kinase domain mutation"
    #: Nonsense, frameshift or canonical splice-site change (predicted loss of function).
    TRUNCATING = "truncating mutation"
    ACTIVATING = "activating mutation"
    KINASE_DOMAIN = "kinase domain mutation"
    #: Any mutation in the given ``exon`` (KIT exon 11, PDGFRA exon 18).
    EXON_MUTATION = "exon mutation"
    #: A gene-level "mutated" result with no further detail (``NPM1 mutation``).
    MUTATION = "mutation"


class Significance(StrEnum):
    """Clinical significance as a report states it (ACMG/AMP 5-tier terms, as ClinVar uses)."""

    PATHOGENIC = "pathogenic"
    LIKELY_PATHOGENIC = "likely pathogenic"
    UNCERTAIN = "uncertain significance"
    LIKELY_BENIGN = "likely benign"
    BENIGN = "benign"


@dataclass(frozen=True, slots=True)
class Gene:
    symbol: str
    hgnc_id: str | None = None


@dataclass(frozen=True, slots=True)
class GenomicPosition:
    build: GenomeBuild
    chrom: str
    pos: int
    ref: str
    alt: str

    @property
    def key(self) -> str:
        """``GRCh38:7:140753336:A:T``: the lookup key the knowledge base precomputes."""
        return f"{self.build.value}:{self.chrom}:{self.pos}:{self.ref}:{self.alt}"


@functools.lru_cache(maxsize=65_536)
def _stable_id(*parts: object) -> str:
    # Cached: a card, a report and a stored analysis ask each alteration for its id many
    # times (1,650 sha256 per 50-variant patient-view before; bench/bench_patient_view.py).
    digest = hashlib.sha256("|".join("" if p is None else str(p) for p in parts).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Variant:
    """A sequence variant (SNV, MNV, indel) as reported by a lab."""

    gene: Gene | None
    hgvs_c: str | None = None
    hgvs_p: str | None = None
    hgvs_g: str | None = None
    transcript: str | None = None
    #: Normalised one-letter protein change without ``p.`` (``V600E``), when known.
    protein_change: str | None = None
    position: GenomicPosition | None = None
    origin: Origin = Origin.UNKNOWN
    zygosity: Zygosity = Zygosity.UNKNOWN
    allele_frequency: float | None = None
    depth: int | None = None
    #: Where it came from, for error messages and provenance: ``file.vcf:123``, ``Observation/x``.
    source_ref: str | None = None
    #: VCF FILTER as called: ``()`` when not filtered (``.``), ``("PASS",)``, or the failed filters.
    filters: tuple[str, ...] = ()
    #: The class of change when the report gives no exact change (``EGFR exon 19 deletion``).
    variant_class: VariantClass | None = None
    #: Exon number, for ``VariantClass.EXON_MUTATION`` (and when a report states it).
    exon: int | None = None
    #: The clinical significance the report states, if any (never inferred here).
    classification: Significance | None = None

    @property
    def id(self) -> str:
        """Stable for the same variant content (used for FHIR resource ids)."""
        if self.variant_class is None and self.exon is None and self.classification is None:
            # Kept as before for variants without the newer fields: stored report ids stay.
            return _stable_id(
                "variant",
                self.gene.symbol if self.gene else None,
                self.hgvs_c,
                self.protein_change or self.hgvs_p,
                self.position.key if self.position else None,
                self.origin.value,
            )
        return _stable_id(
            "variant",
            self.gene.symbol if self.gene else None,
            self.hgvs_c,
            self.protein_change or self.hgvs_p,
            self.position.key if self.position else None,
            self.origin.value,
            self.variant_class.value if self.variant_class else None,
            self.exon,
            self.classification.value if self.classification else None,
        )

    @property
    def label(self) -> str:
        """Human label, e.g. ``BRAF V600E``, ``TP53 c.818G>A`` or ``EGFR exon 19 deletion``."""
        gene = self.gene.symbol if self.gene else "?"
        change = self.protein_change or self.hgvs_p or self.hgvs_c or self.hgvs_g
        if change is None and self.variant_class is not None:
            if self.variant_class is VariantClass.EXON_MUTATION and self.exon is not None:
                change = f"exon {self.exon} mutation"
            else:
                change = self.variant_class.value
        if change is None and self.position is not None:
            change = (
                f"{self.position.chrom}:{self.position.pos} {self.position.ref}>{self.position.alt}"
            )
        return f"{gene} {change or '(unspecified)'}"


@dataclass(frozen=True, slots=True)
class Biomarker:
    """A gene-level or genome-level biomarker: fusion, amplification, deletion, MSI-H, TMB."""

    kind: BiomarkerKind
    gene: Gene | None = None
    fusion_partner: Gene | None = None
    copy_number: float | None = None
    #: Tumour mutational burden in mutations per megabase (kind TMB).
    tmb: float | None = None
    origin: Origin = Origin.SOMATIC
    source_ref: str | None = None
    #: The lab's score where the kind has one (HRD: genomic-instability score), else ``None``.
    score: float | None = None

    @property
    def id(self) -> str:
        if self.score is None:
            return _stable_id(
                "biomarker",
                self.kind.value,
                self.gene.symbol if self.gene else None,
                self.fusion_partner.symbol if self.fusion_partner else None,
                self.tmb,
            )
        return _stable_id(
            "biomarker",
            self.kind.value,
            self.gene.symbol if self.gene else None,
            self.fusion_partner.symbol if self.fusion_partner else None,
            self.tmb,
            self.score,
        )

    @property
    def label(self) -> str:
        if self.kind is BiomarkerKind.MSI_HIGH:
            return "MSI-high"
        if self.kind is BiomarkerKind.HRD:
            return "HRD-positive" + (f" (score {self.score:g})" if self.score is not None else "")
        if self.kind is BiomarkerKind.TMB:
            return f"TMB {self.tmb:g} mut/Mb" if self.tmb is not None else "TMB"
        gene = self.gene.symbol if self.gene else "?"
        if self.kind is BiomarkerKind.FUSION and self.fusion_partner:
            return f"{self.fusion_partner.symbol}::{gene} fusion"
        return f"{gene} {self.kind.value}"


Alteration = Variant | Biomarker


@dataclass(frozen=True, slots=True)
class Genotype:
    """A pharmacogene diplotype, e.g. DPYD ``*1/*2A`` or UGT1A1 ``*28/*28``."""

    gene: Gene
    diplotype: str
    source_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Medication:
    name: str
    rxnorm: str | None = None


@dataclass(frozen=True, slots=True)
class TumourType:
    """A tumour type from the curated table (OncoTree code as the primary key)."""

    code: str
    name: str
    #: Codes of this type and its ancestors, most specific first (LUAD, NSCLC, LUNG).
    lineage: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PatientContext:
    tumour_type: TumourType | None = None
    sex: str | None = None
    age: int | None = None
    medications: tuple[Medication, ...] = ()
    #: Extra clinical context that gates some approvals, e.g. ``"HR+"``, ``"HER2-"``.
    clinical_context: frozenset[str] = frozenset()


# ------------------------------------------------------------------ evidence and findings


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a clinical statement comes from."""

    #: ``CIViC``, ``FDA``, ``CPIC``, ``ClinVar``, ``ACMG``, ``NCCN``, ``curated``.
    source: str
    #: The source's identifier: ``EID9851``, ``AID7``, an FDA label set id, a CPIC guideline.
    id: str
    url: str
    pmids: tuple[str, ...] = ()
    #: The source's own level (CIViC A-E, CPIC strength), when it has one.
    level: str | None = None
    #: Release or label date of the source.
    version: str | None = None

    @property
    def label(self) -> str:
        """``CIViC EID9851``, ``FDA-BRAFTOVI-CRC``: the source named once (ids that already
        start with it, such as ``CPIC DPYD-fluoropyrimidines``, are not prefixed again)."""
        if self.id.lower().startswith(self.source.lower()):
            return self.id
        return f"{self.source} {self.id}"


class Tier(StrEnum):
    """AMP/ASCO/CAP 2017 (Li et al., J Mol Diagn 2017, PMID 27993330)."""

    I = "I"  # noqa: E741 - the tier's name
    II = "II"
    III = "III"
    IV = "IV"


class EvidenceLevel(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


@dataclass(frozen=True, slots=True)
class TierAssignment:
    tier: Tier
    level: EvidenceLevel | None = None

    @property
    def label(self) -> str:
        return f"Tier {self.tier.value}" + (f" - Level {self.level.value}" if self.level else "")


class Response(StrEnum):
    SENSITIVE = "sensitive"
    RESISTANT = "resistant"


class RegulatoryStatus(StrEnum):
    """The US regulatory standing of a therapy row (every drug of the regimen).

    From the FDA label facts (approval for this tumour type) and the curated drug table
    (``curated/drugs.toml`` ``status``); a drug the table does not know is ``unknown``.
    """

    APPROVED_FOR_TUMOUR = "fda-approved-this-tumour"
    #: An FDA label names this regimen for this biomarker in this tumour type, but a condition
    #: of the label (HER2-, germline origin...) is not stated for the patient: see the note.
    APPROVED_FOR_TUMOUR_IF = "fda-approved-this-tumour-conditions-unstated"
    #: An FDA label names this regimen for this biomarker, in another tumour type.
    APPROVED_OTHER_TUMOUR = "fda-approved-other-tumour"
    #: Every drug is FDA-approved (some indication), but no label names this regimen for this
    #: biomarker: off-label.
    APPROVED_OFF_LABEL = "fda-approved-drugs-off-label"
    INVESTIGATIONAL = "investigational"
    WITHDRAWN = "withdrawn"
    #: A research compound never developed as a medicine (staurosporine).
    PRECLINICAL = "preclinical"
    UNKNOWN = "unknown"

    @property
    def display(self) -> str:
        return _REGULATORY_DISPLAY[self]

    @property
    def for_this_tumour(self) -> bool:
        """An FDA label names the regimen for this biomarker in the patient's tumour type."""
        return self in {
            RegulatoryStatus.APPROVED_FOR_TUMOUR,
            RegulatoryStatus.APPROVED_FOR_TUMOUR_IF,
        }


_REGULATORY_DISPLAY: dict[RegulatoryStatus, str] = {
    RegulatoryStatus.APPROVED_FOR_TUMOUR: "FDA-approved for this tumour type",
    RegulatoryStatus.APPROVED_FOR_TUMOUR_IF: (
        "FDA-approved for this tumour type if the label's conditions hold (not stated; see note)"
    ),
    RegulatoryStatus.APPROVED_OTHER_TUMOUR: "FDA-approved in another tumour type",
    RegulatoryStatus.APPROVED_OFF_LABEL: "FDA-approved drug(s), off-label for this finding",
    RegulatoryStatus.INVESTIGATIONAL: "investigational (not FDA-approved)",
    RegulatoryStatus.WITHDRAWN: "withdrawn from the US market",
    RegulatoryStatus.PRECLINICAL: "preclinical compound (not a drug)",
    RegulatoryStatus.UNKNOWN: "regulatory status unknown",
}


@dataclass(frozen=True, slots=True)
class Conflict:
    """Evidence about the same drug in the other direction, and how it was resolved."""

    drugs: tuple[Medication, ...]
    response: Response
    tier: TierAssignment
    disease: str
    evidence: tuple[Evidence, ...]
    #: e.g. "sensitivity evidence outweighed by resistance evidence at Tier I - Level B".
    resolution: str


@dataclass(frozen=True, slots=True)
class TherapeuticFinding:
    """One therapy row: one regimen, one response, one disease, that disease's evidence."""

    alteration_id: str
    drugs: tuple[Medication, ...]
    response: Response
    tier: TierAssignment
    evidence: tuple[Evidence, ...]
    #: The disease the evidence is about: the tumour type's name when the source's disease maps
    #: to one, else as the source names it. Every item of ``evidence`` is about this disease.
    disease: str
    fda_approved_for_tumour: bool = False
    line_of_therapy: str | None = None
    #: Conditions the approval carries, e.g. "HR+/HER2- advanced breast cancer".
    context_note: str | None = None
    #: The patient takes the whole regimen (every one of ``drugs``), or the evidence is about
    #: the single agent the patient takes (from ``PatientContext.medications``).
    current_medication: bool = False
    #: OncoTree code of ``disease`` when the source's disease maps to one.
    tumour_code: str | None = None
    #: The source of the strongest statement: ``FDA``, ``CIViC`` or ``curated``.
    source: str = ""
    #: The FDA label fact behind this row, only when it is about this row's disease.
    label_id: str | None = None
    regulatory_status: RegulatoryStatus = RegulatoryStatus.UNKNOWN
    #: Only preclinical evidence (CIViC level D), or a compound that is not a drug: kept in the
    #: report, marked, never offered as a therapy option.
    preclinical: bool = False
    #: Evidence in the other direction this row outweighed (stated once, here, cited).
    conflicts: tuple[Conflict, ...] = ()


@dataclass(frozen=True, slots=True)
class DiagnosticFinding:
    alteration_id: str
    #: ``diagnostic`` or ``prognostic``.
    kind: str
    statement: str
    disease: str
    tier: TierAssignment
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class HereditaryRiskFinding:
    alteration_id: str
    gene: Gene
    #: ``pathogenic`` or ``likely pathogenic`` (known to the KB), or ``predicted loss of
    #: function (PVS1); classification to be confirmed`` (ACMG/AMP PVS1 rule alone).
    classification: str
    condition: str
    recommendation: str
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class PharmacogenomicFinding:
    gene: Gene
    diplotype: str
    phenotype: str
    activity_score: float | None
    drugs: tuple[Medication, ...]
    recommendation: str
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class UnknownResult:
    """An alteration the knowledge base says nothing about: reported, never guessed."""

    alteration_id: str
    label: str
    reason: str = "not in knowledge base"


@dataclass(frozen=True, slots=True)
class Interpretation:
    alterations: tuple[Alteration, ...]
    genotypes: tuple[Genotype, ...]
    context: PatientContext
    therapeutic: tuple[TherapeuticFinding, ...] = ()
    diagnostic: tuple[DiagnosticFinding, ...] = ()
    hereditary: tuple[HereditaryRiskFinding, ...] = ()
    pharmacogenomic: tuple[PharmacogenomicFinding, ...] = ()
    unknown: tuple[UnknownResult, ...] = ()
    kb_version: str = ""
    warnings: tuple[str, ...] = ()
    #: AMP/ASCO/CAP tier of each alteration found in the knowledge base, by alteration id: the
    #: best tier of its treatment-sensitivity findings, Tier III when it has none.
    alteration_tiers: tuple[tuple[str, TierAssignment], ...] = ()
