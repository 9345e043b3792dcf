"""Hand-built interpretations used by the FHIR, storage, write-back and report-page tests.

Clinical facts and their sources:
- BRAF V600E in colorectal cancer: encorafenib + cetuximab, CIViC evidence item EID9851
  (level A, predictive, sensitivity; PMID 31566309, BEACON CRC) from the CIViC 01-Aug-2024
  release (CC0), and the FDA label of Braftovi (encorafenib), NDA 210496. AMP/ASCO/CAP Tier I,
  Level A (FDA-approved therapy for this tumour type; Li et al. 2017, PMID 27993330).
  BRAF V600E GRCh38 chr7:140753336 A>T (PCGR T001-COAD), HGNC:1097, NM_004333.6:c.1799T>A.
- DPYD *2A/*2A (c.1905+1G>A homozygous, activity score 0, poor metabolizer) and capecitabine:
  CPIC guideline for fluoropyrimidines and DPYD (Amstutz et al. 2018, PMID 29152729): avoid
  5-fluorouracil and its prodrugs (capecitabine). CPIC level A. DPYD is HGNC:3012.
- RxNorm ingredients: encorafenib 2049106, cetuximab 318341, capecitabine 194000 (CPIC drug table).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from inference.genomics.model import (
    Biomarker,
    BiomarkerKind,
    DiagnosticFinding,
    Evidence,
    EvidenceLevel,
    Gene,
    GenomeBuild,
    GenomicPosition,
    Genotype,
    HereditaryRiskFinding,
    Interpretation,
    Medication,
    Origin,
    PatientContext,
    PharmacogenomicFinding,
    Response,
    TherapeuticFinding,
    Tier,
    TierAssignment,
    TumourType,
    UnknownResult,
    Variant,
    Zygosity,
)
from integrations.fhir.genomics_report import ReportContext

ISSUED = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
KB_VERSION = "civic-2024-08-01+curated-2026-11"
ONCOCDS_VERSION = "0.1.0"

BRAF = Gene("BRAF", "HGNC:1097")
DPYD = Gene("DPYD", "HGNC:3012")

CIVIC_EID9851 = Evidence(
    source="CIViC",
    id="EID9851",
    url="https://civicdb.org/links/evidence_items/9851",
    pmids=("31566309",),
    level="A",
    version="2024-08-01",
)
FDA_BRAFTOVI = Evidence(
    source="FDA",
    id="NDA210496",
    url="https://www.accessdata.fda.gov/scripts/cder/daf/index.cfm?event=overview.process&ApplNo=210496",
)
CPIC_DPYD = Evidence(
    source="CPIC",
    id="guideline-for-fluoropyrimidines-and-dpyd",
    url="https://cpicpgx.org/guidelines/guideline-for-fluoropyrimidines-and-dpyd/",
    pmids=("29152729",),
    level="A",
)


def braf_variant(**overrides: object) -> Variant:
    values: dict[str, object] = {
        "gene": BRAF,
        "hgvs_c": "c.1799T>A",
        "hgvs_p": "p.Val600Glu",
        "transcript": "NM_004333.6",
        "protein_change": "V600E",
        "position": GenomicPosition(GenomeBuild.GRCH38, "7", 140753336, "A", "T"),
        "origin": Origin.SOMATIC,
        "zygosity": Zygosity.HETEROZYGOUS,
        "allele_frequency": 0.31,
        "depth": 412,
        "source_ref": "T001-COAD.vcf:57",
    }
    values.update(overrides)
    return Variant(**values)  # type: ignore[arg-type]


def braf_crc_interpretation(
    *, tier: TierAssignment | None = None, variant: Variant | None = None
) -> Interpretation:
    """BRAF V600E colorectal adenocarcinoma: encorafenib + cetuximab, Tier I - Level A."""
    var = variant or braf_variant()
    tp53 = Variant(
        gene=Gene("TP53", "HGNC:11998"),
        hgvs_c="c.818G>A",
        protein_change="R273H",
        origin=Origin.SOMATIC,
        allele_frequency=0.12,
    )
    return Interpretation(
        alterations=(var, tp53),
        genotypes=(),
        context=PatientContext(
            tumour_type=TumourType("COADREAD", "Colorectal Adenocarcinoma", ("COADREAD", "BOWEL")),
            medications=(),
        ),
        therapeutic=(
            TherapeuticFinding(
                alteration_id=var.id,
                drugs=(Medication("encorafenib", "2049106"), Medication("cetuximab", "318341")),
                response=Response.SENSITIVE,
                tier=tier or TierAssignment(Tier.I, EvidenceLevel.A),
                evidence=(CIVIC_EID9851, FDA_BRAFTOVI),
                disease="Colorectal Cancer",
                fda_approved_for_tumour=True,
                context_note="previously treated metastatic colorectal cancer",
            ),
        ),
        unknown=(UnknownResult(alteration_id=tp53.id, label=tp53.label),),
        kb_version=KB_VERSION,
    )


def dpyd_interpretation() -> Interpretation:
    """DPYD *2A/*2A poor metabolizer and capecitabine (CPIC: avoid)."""
    return Interpretation(
        alterations=(),
        genotypes=(Genotype(gene=DPYD, diplotype="*2A/*2A", source_ref="Observation/gt-dpyd"),),
        context=PatientContext(
            tumour_type=TumourType("COADREAD", "Colorectal Adenocarcinoma", ("COADREAD", "BOWEL")),
            medications=(Medication("capecitabine", "194000"),),
        ),
        pharmacogenomic=(
            PharmacogenomicFinding(
                gene=DPYD,
                diplotype="*2A/*2A",
                phenotype="Poor Metabolizer",
                activity_score=0.0,
                drugs=(Medication("capecitabine", "194000"),),
                recommendation="Avoid use of 5-fluorouracil or 5-fluorouracil prodrug-based "
                "regimens (CPIC).",
                evidence=(CPIC_DPYD,),
            ),
        ),
        kb_version=KB_VERSION,
    )


def report_context(patient: str = "Patient/p1") -> ReportContext:
    return ReportContext(
        patient_reference=patient,
        oncocds_version=ONCOCDS_VERSION,
        kb_version=KB_VERSION,
        issued=ISSUED,
    )


def rich_interpretation() -> Interpretation:
    """Every finding kind at once (structure only; the clinical statements are placeholders
    marked as such and never shown as facts: used for mapping, storage and rendering tests)."""
    base = braf_crc_interpretation()
    fusion = Biomarker(
        kind=BiomarkerKind.FUSION, gene=Gene("ALK", "HGNC:427"), fusion_partner=Gene("EML4")
    )
    tmb = Biomarker(kind=BiomarkerKind.TMB, tmb=12.5)
    msi = Biomarker(kind=BiomarkerKind.MSI_HIGH)
    brca = braf_variant(
        gene=Gene("BRCA1", "HGNC:1100"),
        hgvs_c="c.68_69del",
        hgvs_p=None,
        transcript=None,
        protein_change=None,
        position=None,
        origin=Origin.GERMLINE,
        allele_frequency=0.5,
    )
    return replace(
        base,
        alterations=(*base.alterations, fusion, tmb, msi, brca),
        context=PatientContext(
            tumour_type=base.context.tumour_type, clinical_context=frozenset({"HER2-", "HR+"})
        ),
        diagnostic=(
            DiagnosticFinding(
                alteration_id=fusion.id,
                kind="diagnostic",
                statement="placeholder statement for a mapping test",
                disease="placeholder disease",
                tier=TierAssignment(Tier.II),
                evidence=(CIVIC_EID9851,),
            ),
        ),
        hereditary=(
            HereditaryRiskFinding(
                alteration_id=brca.id,
                gene=Gene("BRCA1", "HGNC:1100"),
                classification="pathogenic",
                condition="placeholder hereditary condition",
                recommendation="placeholder recommendation: genetic counselling",
                evidence=(CIVIC_EID9851,),
            ),
        ),
        pharmacogenomic=dpyd_interpretation().pharmacogenomic,
        genotypes=dpyd_interpretation().genotypes,
        warnings=("w1",),
    )
