"""Codes and URLs of the FHIR Genomics Reporting IG STU3 (v3.0.0) that OncoCDS emits and checks.

Sources: HL7/genomics-reporting ``input/fsh/CGFindings.fsh``, ``CGImplications.fsh``,
``CGValueSets.fsh``, ``Aliases.fsh`` at tag ``3.0.0-published`` (CC0); LOINC answer lists LL1971-2,
LL1040-6, LL2938-0, LL378-1, LL381-5, LL4034-6 (LOINC licence, free with notice).
"""

from __future__ import annotations

from typing import Final

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

VARIANT_PRESENT: Final = ("LA9633-4", "Present")
VARIANT_VALUES: Final = frozenset({"LA9633-4", "LA9634-2", "LA18198-4", "LA11884-6"})
ZERO_BASED_INTERVAL: Final = ("LA30100-4", "0-based interval counting")

ASSEMBLY: Final = {"GRCh37": ("LA14029-5", "GRCh37"), "GRCh38": ("LA26806-2", "GRCh38")}

#: LL2938-0 (required binding). MT has no answer in this list, so no component is emitted for it.
CHROMOSOME: Final = {
    "1": "LA21254-0", "2": "LA21255-7", "3": "LA21256-5", "4": "LA21257-3", "5": "LA21258-1",
    "6": "LA21259-9", "7": "LA21260-7", "8": "LA21261-5", "9": "LA21262-3", "10": "LA21263-1",
    "11": "LA21264-9", "12": "LA21265-6", "13": "LA21266-4", "14": "LA21267-2",
    "15": "LA21268-0", "16": "LA21269-8", "17": "LA21270-6", "18": "LA21271-4",
    "19": "LA21272-2", "20": "LA21273-0", "21": "LA21274-8", "22": "LA21275-5",
    "X": "LA21276-3", "Y": "LA21277-1",
}  # fmt: skip

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
