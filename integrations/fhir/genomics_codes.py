"""The one table of LOINC/LA and Genomics Reporting codes, used both ways: emitted by the FHIR
writer, read by the FHIR and HL7 v2 readers (LOINC panel 81247-9 uses the same codes in OBX-3).

The emitting side is tuples ``(code, display)`` keyed by domain values; the reading side is
dicts from codes (and, where senders use them, other answer codes of the same list) to domain
values. Chromosome answers (LL2938-0) live with the accession table in
:mod:`integrations.chromosomes`.

Sources: HL7/genomics-reporting ``input/fsh/CGFindings.fsh``, ``CGImplications.fsh``,
``CGValueSets.fsh``, ``Aliases.fsh`` at tag ``3.0.0-published`` (CC0); LOINC answer lists LL1971-2,
LL1040-6, LL2938-0, LL378-1, LL381-5, LL4034-6 (LOINC licence, free with notice).
"""

from __future__ import annotations

from typing import Final

from inference.genomics.model import GenomeBuild, Origin, Zygosity
from integrations.chromosomes import CHROMOSOME_LA

LOINC: Final = "http://loinc.org"
TBD: Final = "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/tbd-codes-cs"
OBS_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0074: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"
HGNC: Final = "http://www.genenames.org"
HGVS: Final = "http://varnomen.hgvs.org"
REFSEQ: Final = "http://www.ncbi.nlm.nih.gov/refseq"
ENSEMBL: Final = "http://www.ensembl.org"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM: Final = "http://unitsofmeasure.org"
RELATED_ARTIFACT_EXT: Final = "http://hl7.org/fhir/StructureDefinition/workflow-relatedArtifact"

_SD: Final = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
PROFILE_VARIANT: Final = _SD + "variant"
PROFILE_GENOTYPE: Final = _SD + "genotype"
PROFILE_BIOMARKER: Final = _SD + "molecular-biomarker"
PROFILE_THERAPEUTIC: Final = _SD + "therapeutic-implication"
PROFILE_DIAGNOSTIC: Final = _SD + "diagnostic-implication"
PROFILE_REPORT: Final = _SD + "genomic-report"

# Observation codes
CODE_VARIANT: Final = "69548-6"  # Genetic variant assessment
CODE_GENOTYPE: Final = "84413-4"  # Genotype display name
CODE_REPORT: Final = "51969-4"  # Genetic analysis report (STU3; not 81247-9, that was STU1)
CODE_TMB: Final = "94076-7"  # Mutations/Megabase [# Ratio] in Tumor
CODE_MSI: Final = "81695-9"  # Microsatellite instability [Interpretation] in Cancer specimen
CODE_MASTER_PANEL: Final = "81247-9"  # Master HL7 genetic variant reporting panel (STU1, HL7 v2)
CODE_SIMPLE_VARIANT: Final = "81250-3"  # Simple variant panel (81247-9 member)
CODE_STRUCTURAL_VARIANT: Final = "81297-4"  # Structural variant panel (81247-9 member)
CODE_THERAPEUTIC: Final = "therapeutic-implication"  # tbd-codes-cs
CODE_DIAGNOSTIC: Final = "diagnostic-implication"  # tbd-codes-cs
CODE_CONCLUSION_STRING: Final = "conclusion-string"  # tbd-codes-cs (genomic-base component)

# Component codes (LOINC unless noted)
C_GENE: Final = "48018-6"
C_CODING_HGVS: Final = "48004-6"
C_PROTEIN_HGVS: Final = "48005-3"
C_GENOMIC_HGVS: Final = "81290-9"
C_TRANSCRIPT: Final = "51958-7"
C_ASSEMBLY: Final = "62374-4"
C_CHROMOSOME: Final = "48000-4"
C_COORD_SYSTEM: Final = "92822-6"
C_EXACT_START_END: Final = "81254-5"
C_REF_ALLELE: Final = "69547-8"
C_ALT_ALLELE: Final = "69551-0"
C_SOURCE_CLASS: Final = "48002-0"
C_AF: Final = "81258-6"
C_DEPTH: Final = "82121-5"
C_ALLELIC_STATE: Final = "53034-5"
C_COPY_NUMBER: Final = "82155-3"
C_MEDICATION: Final = "51963-7"
C_EVIDENCE_LEVEL: Final = "93044-6"
C_PHENOTYPE: Final = "81259-4"  # predicted phenotype / phenotypic treatment context
C_CLIN_SIG: Final = "53037-8"
C_GENOMIC_REFSEQ: Final = "48013-7"
C_CHANGE_TYPE: Final = "48019-4"  # DNA change type (Sequence Ontology)
C_VARIATION_CODE: Final = "81252-9"
C_VARIANT_CATEGORY: Final = "83005-9"  # LA26801-3 simple, LA26802-1 structural
C_DISPLAY_NAME: Final = "47998-0"  # variant display name (HL7 v2 panel)
C_CYTOGENOMIC: Final = "81291-7"  # ISCN
C_DNA_REGION: Final = "47999-8"  # DNA region name (e.g. "Exon 19")
C_DISEASE_ASSESSED: Final = "51967-8"  # genetic disease assessed (HL7 v2 panel)

VARIANT_PRESENT: Final = ("LA9633-4", "Present")
VARIANT_VALUES: Final = frozenset({"LA9633-4", "LA9634-2", "LA18198-4", "LA11884-6"})
ZERO_BASED_INTERVAL: Final = ("LA30100-4", "0-based interval counting")

ASSEMBLY: Final = {"GRCh37": ("LA14029-5", "GRCh37"), "GRCh38": ("LA26806-2", "GRCh38")}

#: LL2938-0 (required binding). MT has no answer in this list, so no component is emitted for it.
CHROMOSOME: Final = CHROMOSOME_LA

SOURCE_CLASS: Final = {
    "germline": ("LA6683-2", "Germline"),
    "somatic": ("LA6684-0", "Somatic"),
    "unknown": ("LA18197-6", "Unknown genomic origin"),
}
ALLELIC_STATE: Final = {
    "heterozygous": ("LA6706-1", "Heterozygous"),
    "homozygous": ("LA6705-3", "Homozygous"),
    "hemizygous": ("LA6707-9", "Hemizygous"),
}
RESPONSIVE: Final = ("LA6677-4", "Responsive")
RESISTANT: Final = ("LA6676-6", "Resistant")
#: GeneticTherapeuticImplicationsVS metabolizer answers, keyed by the lower-cased CPIC phenotype.
METABOLIZER: Final = {
    "ultrarapid metabolizer": ("LA10315-2", "Ultrarapid metabolizer"),
    "rapid metabolizer": ("LA25390-8", "Rapid metabolizer"),
    "normal metabolizer": ("LA25391-6", "Normal metabolizer"),
    "intermediate metabolizer": ("LA10317-8", "Intermediate metabolizer"),
    "poor metabolizer": ("LA9657-3", "Poor metabolizer"),
}
CLINICAL_SIGNIFICANCE: Final = {
    "pathogenic": ("LA6668-3", "Pathogenic"),
    "likely pathogenic": ("LA26332-9", "Likely pathogenic"),
    "uncertain significance": ("LA26333-7", "Uncertain significance"),
    "likely benign": ("LA26334-5", "Likely benign"),
    "benign": ("LA6675-8", "Benign"),
}
MSI_HIGH: Final = ("LA26203-2", "MSI-H")

# ------------------------------------------------------------------ reading: code → domain value

#: LL1971-2 answers that mean the variant is not there (absent, no call, indeterminate).
VARIANT_NOT_PRESENT: Final = frozenset({"LA9634-2", "LA18198-4", "LA11884-6"})
#: LL1040-6 (62374-4).
ASSEMBLY_BUILD: Final = {code: GenomeBuild(name) for name, (code, _display) in ASSEMBLY.items()}
#: LL5323-2 (92822-6) coordinate systems.
ZERO_BASED_CHARACTER: Final = ("LA30101-2", "0-based character counting")
ONE_BASED_CHARACTER: Final = ("LA30102-0", "1-based character counting")
#: LL378-1 (48002-0): every answer, with what it means for the variant's origin.
SOURCE_CLASS_ORIGIN: Final = {
    "LA6683-2": Origin.GERMLINE,
    "LA6684-0": Origin.SOMATIC,
    "LA18194-3": Origin.GERMLINE,  # likely germline
    "LA18195-0": Origin.SOMATIC,  # likely somatic
    "LA26807-0": Origin.GERMLINE,  # de novo: constitutional, not tumour-acquired
    "LA10429-1": Origin.UNKNOWN,  # fetal
    "LA18196-8": Origin.UNKNOWN,  # likely fetal
    "LA18197-6": Origin.UNKNOWN,
}
#: LL381-5 (53034-5).
ALLELIC_STATE_ZYGOSITY: Final = {
    code: Zygosity(name) for name, (code, _display) in ALLELIC_STATE.items()
}
#: LL4034-6 (53037-8) answer → the ACMG term (the :class:`Significance` value).
CLINICAL_SIGNIFICANCE_TERM: Final = {
    code: term for term, (code, _display) in CLINICAL_SIGNIFICANCE.items()
}
#: 81695-9 answers read as no MSI finding: stable, MSI-low.
MSI_NEGATIVE: Final = frozenset({"LA14122-8", "LA26202-4"})
#: 83005-9 variant category.
VARIANT_CATEGORY_STRUCTURAL: Final = "LA26802-1"
#: Sequence Ontology DNA change types (48019-4) read as gene-level biomarkers or classes, with
#: the names senders write instead of the id (Sequence Ontology release 2024-06).
SO_COPY_GAIN: Final = frozenset({"SO:0001742", "copy_number_gain"})
SO_COPY_LOSS: Final = frozenset({"SO:0001743", "copy_number_loss"})
SO_FUSION: Final = frozenset({"SO:0001565", "gene_fusion", "SO:001565"})  # mCODE's typo too
SO_TANDEM_DUPLICATION: Final = frozenset({"SO:1000173", "tandem_duplication"})
