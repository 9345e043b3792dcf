"""ORU^R01 genetic results → domain :class:`Variant` objects and the patient's identifiers.

Layout (HL7 v2 LRI R1 STU3 §5 "Clinical genomics results reporting", LOINC panel 81247-9): each
OBR carries OBX rows; OBX-4 sub-ids group one variant's rows ("2a", "2b", … per the LRI "Dewey
decimal" convention, as vcf2hl7v2 writes them); section-level rows (assembly 62374-4, overall
interpretation 51968-6) sit at sub-id "1". Labs often put a local test code in OBR-4, so an OBR
counts as a genetic result when OBR-4 is 81247-9 *or* any of its OBX rows is a variant row.

Every variant group is read on its own: a bad group becomes a :class:`RecordProblem` and the
others are kept. Nothing is guessed: a position needs its assembly (62374-4), chromosome
(48013-7 RefSeq accession), 1-based start (81254-5), reference and alternate alleles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar

from inference.genomics.hgvs import protein_change_key
from inference.genomics.model import (
    Alteration,
    Biomarker,
    BiomarkerKind,
    Gene,
    GenomeBuild,
    GenomicPosition,
    Origin,
    Significance,
    Variant,
    VariantClass,
    Zygosity,
)
from integrations.chromosomes import accession_problem, refseq_chromosome
from integrations.errors import RecordProblem
from integrations.fhir import genomics_codes as gc
from integrations.hl7v2.parsing import components, field_text, parse_message
from integrations.intake import IntakeResult
from integrations.normalise import parse_build
from integrations.notation import LineError, read_line

# LOINC codes (panel 81247-9 and its simple-variant panel 81250-3): the one table, shared with
# the FHIR reader and writer.
PANEL: Final = gc.CODE_MASTER_PANEL
ASSEMBLY: Final = gc.C_ASSEMBLY
GENE: Final = gc.C_GENE
HGVS_C: Final = gc.C_CODING_HGVS
HGVS_P: Final = gc.C_PROTEIN_HGVS
HGVS_G: Final = gc.C_GENOMIC_HGVS
TRANSCRIPT: Final = gc.C_TRANSCRIPT
GENOMIC_REFSEQ: Final = gc.C_GENOMIC_REFSEQ
REF_ALLELE: Final = gc.C_REF_ALLELE
ALT_ALLELE: Final = gc.C_ALT_ALLELE
START_END: Final = gc.C_EXACT_START_END
SOURCE_CLASS: Final = gc.C_SOURCE_CLASS
ALLELE_FREQUENCY: Final = gc.C_AF
READ_DEPTH: Final = gc.C_DEPTH
ALLELIC_STATE: Final = gc.C_ALLELIC_STATE
ASSESSMENT: Final = gc.CODE_VARIANT
VARIANT_CATEGORY: Final = gc.C_VARIANT_CATEGORY
DISPLAY_NAME: Final = gc.C_DISPLAY_NAME
CHANGE_TYPE: Final = gc.C_CHANGE_TYPE
COPY_NUMBER: Final = gc.C_COPY_NUMBER
CLINICAL_SIGNIFICANCE: Final = gc.C_CLIN_SIG
TMB: Final = gc.CODE_TMB
MSI: Final = gc.CODE_MSI

#: OBX codes whose value names the condition (LOINC panel 81247-9, see
#: shared/reference/genomics.md §6.1): 81259-4 associated phenotype (the variant panel's
#: condition; the FHIR Genomics IG uses the same code for the phenotypic treatment context) and
#: 51967-8 genetic disease assessed (overall study). OBR-31 (reason for study) and DG1-3 are
#: read as well.
DIAGNOSIS_CODES: Final = frozenset({gc.C_PHENOTYPE, gc.C_DISEASE_ASSESSED})

VARIANT_CODES: Final = frozenset(
    {GENE, HGVS_C, HGVS_P, HGVS_G, REF_ALLELE, ALT_ALLELE, START_END, VARIANT_CATEGORY}
)
#: Genome-wide biomarkers reported as rows of their own (LOINC 94076-7 TMB, 81695-9 MSI).
BIOMARKER_CODES: Final = frozenset({TMB, MSI})

_E = TypeVar("_E", Origin, Zygosity)
_ALLELE = re.compile(r"^[ACGTN]+$")
_ORIGIN_WORDS: Final = {"SOMATIC": Origin.SOMATIC, "GERMLINE": Origin.GERMLINE}


@dataclass(frozen=True, slots=True)
class PatientIdentifier:
    """One PID-3 repetition (CX): the id and who assigned it.

    Attributes:
        value: CX.1.
        assigning_authority: CX.4.1 namespace id (``EXAMPLE_HOSP``).
        authority_universal_id: CX.4.2 (an OID or URI), when given.
        authority_universal_id_type: CX.4.3 (``ISO``, ``URI``…).
        type_code: CX.5 identifier type (``MR``, ``PI``…).
    """

    value: str
    assigning_authority: str = ""
    authority_universal_id: str = ""
    authority_universal_id_type: str = ""
    type_code: str = ""


@dataclass(slots=True)
class GeneticResultMessage:
    """What an ORU^R01 genetic-results message yields."""

    intake: IntakeResult = field(default_factory=IntakeResult)
    patient_identifiers: list[PatientIdentifier] = field(default_factory=list)
    #: OBR set ids whose rows were read as genetic results.
    genetic_orders: list[str] = field(default_factory=list)
    #: Coded diagnoses the message carries, in the order they were found (see
    #: :data:`DIAGNOSIS_CODES`); the caller maps them to a tumour type.
    diagnoses: list[CodedDiagnosis] = field(default_factory=list)

    @property
    def patient(self) -> PatientIdentifier | None:
        """The first PID-3 identifier (the medical record number when the lab sends one)."""
        for identifier in self.patient_identifiers:
            if identifier.type_code.upper() == "MR":
                return identifier
        return self.patient_identifiers[0] if self.patient_identifiers else None


@dataclass(frozen=True, slots=True)
class CodedDiagnosis:
    """A CWE naming the patient's condition: CWE.1 code, CWE.2 text, CWE.3 coding system
    (HL7 table 0396, e.g. ``SCT``, ``I10``), and where it was found."""

    code: str
    text: str
    system: str
    source: str


@dataclass(slots=True)
class _Obx:
    code: str
    sub_id: str
    value: list[str]
    set_id: str


@dataclass(slots=True)
class _Order:
    set_id: str
    code: str
    rows: list[_Obx] = field(default_factory=list)


def read_genetic_results(text: str) -> GeneticResultMessage:
    """Read an ORU^R01 message's patient identifiers and genetic variants.

    Args:
        text: the decoded message (segments terminated by CR).

    Returns:
        Variants (``intake.alterations``), one problem per unreadable variant group, and the
        PID-3 identifiers.

    Raises:
        Hl7ParseError: hl7apy cannot parse the message at all.
    """
    message = parse_message(text)
    result = GeneticResultMessage()
    orders: list[_Order] = []
    for segment in message.children:
        name = segment.name
        if name == "PID":
            result.patient_identifiers.extend(_patient_identifiers(segment))
        elif name == "OBR":
            code = (components(segment.obr_4) or [""])[0]
            orders.append(_Order(set_id=field_text(segment, "obr_1") or "?", code=code))
            _diagnosis(segment, "obr_31", "OBR-31", result.diagnoses)
        elif name == "DG1":
            # Not in the v2.5.1 ORU_R01 structure, but some LIS send it: read when present.
            _diagnosis(segment, "dg1_3", "DG1-3", result.diagnoses)
        elif name == "OBX":
            if not orders:
                # HL7 v2.5.1 ORU_R01: OBX belongs to an OBSERVATION group after an OBR.
                result.intake.problems.append(
                    RecordProblem("OBX before OBR", "OBX segment outside an OBR order group")
                )
                orders.append(_Order(set_id="?", code=""))
            orders[-1].rows.append(
                _Obx(
                    code=(components(segment.obx_3) or [""])[0].strip(),
                    sub_id=field_text(segment, "obx_4").strip(),
                    value=_obx_value(segment),
                    set_id=field_text(segment, "obx_1"),
                )
            )
    if not result.patient_identifiers:
        result.intake.problems.append(
            RecordProblem("PID-3", "no patient identifier (PID segment or PID-3 missing)")
        )
    for order in orders:
        for row in order.rows:
            if row.code in DIAGNOSIS_CODES and any(row.value):
                padded = [*row.value, "", "", ""]
                result.diagnoses.append(
                    CodedDiagnosis(padded[0], padded[1], padded[2], f"OBX {row.code}")
                )
        if order.code != PANEL and not any(
            row.code in VARIANT_CODES or row.code in BIOMARKER_CODES for row in order.rows
        ):
            continue
        result.genetic_orders.append(order.set_id)
        _read_order(order, result.intake)
    return result


def _diagnosis(segment: Any, name: str, source: str, into: list[CodedDiagnosis]) -> None:
    try:
        parts = components(getattr(segment, name))
    except Exception:  # noqa: BLE001 - hl7apy raises assorted errors on absent/odd fields
        return
    parts = [*parts, "", "", ""]
    if parts[0] or parts[1]:
        into.append(CodedDiagnosis(parts[0], parts[1], parts[2], source))


def _obx_value(segment: Any) -> list[str]:
    try:
        return components(segment.obx_5)
    except Exception:  # noqa: BLE001 - hl7apy raises assorted errors on odd OBX-5 content
        return [""]


def _patient_identifiers(pid: Any) -> Iterable[PatientIdentifier]:
    try:
        repetitions = list(pid.pid_3)
    except Exception:  # noqa: BLE001 - hl7apy raises assorted errors on malformed PID-3
        return []
    identifiers = []
    for rep in repetitions:
        parts = components(rep)
        value = parts[0] if parts else ""
        if not value:
            continue
        authority = components(rep.cx_4) if len(parts) > 3 and parts[3] else []
        identifiers.append(
            PatientIdentifier(
                value=value,
                assigning_authority=authority[0] if authority else "",
                authority_universal_id=authority[1] if len(authority) > 1 else "",
                authority_universal_id_type=authority[2] if len(authority) > 2 else "",
                type_code=parts[4] if len(parts) > 4 else "",
            )
        )
    return identifiers


def _read_order(order: _Order, intake: IntakeResult) -> None:
    build: GenomeBuild | None = None
    groups: dict[str, list[_Obx]] = {}
    for row in order.rows:
        if row.code == ASSEMBLY:
            build = _build(row.value)
        root = row.sub_id.split(".")[0]
        groups.setdefault(root, []).append(row)
    for sub_id, rows in groups.items():
        location = f"OBR {order.set_id} OBX-4 {sub_id or '(empty)'}"
        for row in rows:
            if row.code in BIOMARKER_CODES:
                intake.records_read += 1
                _genome_wide(row, f"{location} {row.code}", intake)
        if not any(row.code in VARIANT_CODES for row in rows):
            continue
        intake.records_read += 1
        try:
            alterations = _group(rows, build, location, intake.problems)
        except ValueError as exc:
            intake.problems.append(RecordProblem(location, str(exc)))
            continue
        intake.alterations.extend(alterations)


def _genome_wide(row: _Obx, location: str, intake: IntakeResult) -> None:
    """TMB (94076-7, NM in mutations/Mb) and MSI (81695-9, CWE) rows."""
    value = [part.strip() for part in row.value]
    if row.code == TMB:
        try:
            tmb = float(value[0])
        except ValueError:
            intake.problems.append(RecordProblem(location, "94076-7 TMB is not a number"))
            return
        if tmb < 0:
            intake.problems.append(RecordProblem(location, "94076-7 TMB is negative"))
            return
        intake.alterations.append(Biomarker(kind=BiomarkerKind.TMB, tmb=tmb, source_ref=location))
        return
    text = " ".join(value[:2]).lower()
    if gc.MSI_HIGH[0] in value[:1] or "msi-h" in text or "high" in text:
        intake.alterations.append(Biomarker(kind=BiomarkerKind.MSI_HIGH, source_ref=location))
    elif not (set(value[:1]) & gc.MSI_NEGATIVE or "stable" in text or "low" in text):
        intake.problems.append(
            RecordProblem(location, "81695-9 microsatellite status not understood")
        )


def _build(value: list[str]) -> GenomeBuild | None:
    for part in value[:2]:
        found = gc.ASSEMBLY_BUILD.get(part.strip()) or parse_build(part)
        if found is not None:
            return found
    return None


def _first(rows: list[_Obx], code: str) -> list[str] | None:
    for row in rows:
        if row.code == code:
            return row.value
    return None


def _text(rows: list[_Obx], code: str) -> str | None:
    value = _first(rows, code)
    if value is None:
        return None
    text = value[0].strip()
    return text or None


def _group(
    rows: list[_Obx], build: GenomeBuild | None, location: str, problems: list[RecordProblem]
) -> list[Alteration]:
    """One variant group (one OBX-4 root): a variant, a fusion or copy-number change, or the
    classes a display name states (``EGFR exon 19 deletion``, ``FLT3-ITD``)."""
    assessment = _first(rows, ASSESSMENT)
    if assessment is not None and assessment[0].strip() in gc.VARIANT_NOT_PRESENT:
        return []  # the lab reports the variant as tested and absent (LOINC 69548-6)
    genes = [g for g in (_gene(row.value) for row in rows if row.code == GENE) if g is not None]
    origin = _origin(_first(rows, SOURCE_CLASS))
    change_type = {
        part.strip().lower() if not part.strip().upper().startswith("SO:") else part.strip()
        for row in rows
        if row.code == CHANGE_TYPE
        for part in row.value[:2]
        if part.strip()
    }
    if change_type & (gc.SO_FUSION | gc.SO_COPY_GAIN | gc.SO_COPY_LOSS):
        return [_gene_level(rows, genes, change_type, origin, location)]
    variant = _variant(rows, genes[0] if genes else None, origin, build, location, problems)
    if variant is None:
        return []
    if (
        change_type & gc.SO_TANDEM_DUPLICATION
        and variant.gene is not None
        and variant.gene.symbol == "FLT3"
        and not (variant.hgvs_c or variant.hgvs_p)
    ):
        # A FLT3 tandem duplication reported without HGVS is the FLT3-ITD class.
        return [replace(variant, variant_class=VariantClass.ITD)]
    if variant.hgvs_c or variant.hgvs_p or variant.hgvs_g or variant.position is not None:
        return [variant]
    return _display_name(rows, variant, location)


def _display_name(rows: list[_Obx], variant: Variant, location: str) -> list[Alteration]:
    """A group with a gene but no HGVS or position: its display name (47998-0) may state a
    class (``EGFR exon 19 deletion``); otherwise the gene-level variant as before."""
    display = _text(rows, DISPLAY_NAME)
    if display is None or variant.gene is None:
        return [variant]
    text = (
        display
        if display.upper().startswith(variant.gene.symbol)
        else (f"{variant.gene.symbol} {display}")
    )
    try:
        items = read_line(text)
    except LineError:
        return [variant]
    found: list[Alteration] = []
    for item in items:
        if isinstance(item, Variant):
            found.append(
                replace(
                    variant,
                    variant_class=item.variant_class,
                    exon=item.exon,
                    hgvs_p=item.hgvs_p,
                    protein_change=item.protein_change,
                    hgvs_c=item.hgvs_c,
                )
            )
        elif isinstance(item, Biomarker):
            found.append(replace(item, source_ref=location))
    return found or [variant]


def _gene_level(
    rows: list[_Obx], genes: list[Gene], change_type: set[str], origin: Origin, location: str
) -> Biomarker:
    """A fusion or copy-number change stated by 48019-4 (same reading as the FHIR intake)."""
    biomarker_origin = origin if origin is not Origin.UNKNOWN else Origin.SOMATIC
    if not genes:
        raise ValueError("structural variant without a gene studied (48018-6)")
    if change_type & gc.SO_FUSION:
        return Biomarker(
            kind=BiomarkerKind.FUSION,
            gene=genes[-1],
            fusion_partner=genes[0] if len(genes) >= 2 else None,
            origin=biomarker_origin,
            source_ref=location,
        )
    copies_text = _text(rows, COPY_NUMBER)
    try:
        copies = float(copies_text) if copies_text is not None else None
    except ValueError as exc:
        raise ValueError("82155-3 copy number is not a number") from exc
    return Biomarker(
        kind=BiomarkerKind.AMPLIFICATION
        if change_type & gc.SO_COPY_GAIN
        else BiomarkerKind.DELETION,
        gene=genes[0],
        copy_number=copies,
        origin=biomarker_origin,
        source_ref=location,
    )


def _variant(  # noqa: PLR0917 - the group's already-read parts
    rows: list[_Obx],
    gene: Gene | None,
    origin: Origin,
    build: GenomeBuild | None,
    location: str,
    problems: list[RecordProblem],
) -> Variant | None:
    hgvs_c = _text(rows, HGVS_C)
    hgvs_p = _text(rows, HGVS_P)
    hgvs_g = _text(rows, HGVS_G)
    transcript = _text(rows, TRANSCRIPT)
    if transcript is None and hgvs_c and ":" in hgvs_c:
        transcript = hgvs_c.split(":", 1)[0]
    position = _position(rows, build, location, problems)
    if position is False:
        return None
    if gene is None and not (hgvs_c or hgvs_p or hgvs_g) and position is None:
        raise ValueError("variant group has no gene (48018-6), HGVS or genomic coordinates")
    significance = _first(rows, CLINICAL_SIGNIFICANCE)
    return Variant(
        gene=gene,
        hgvs_c=hgvs_c,
        hgvs_p=hgvs_p,
        hgvs_g=hgvs_g,
        transcript=transcript,
        protein_change=protein_change_key(hgvs_p),
        position=position if isinstance(position, GenomicPosition) else None,
        origin=origin,
        zygosity=_coded(_first(rows, ALLELIC_STATE), gc.ALLELIC_STATE_ZYGOSITY, Zygosity.UNKNOWN),
        allele_frequency=_allele_frequency(_text(rows, ALLELE_FREQUENCY)),
        depth=_depth(_text(rows, READ_DEPTH)),
        source_ref=location,
        classification=_significance(significance),
    )


def _origin(value: list[str] | None) -> Origin:
    if value is None:
        return Origin.UNKNOWN
    for part in value[:2]:
        found = gc.SOURCE_CLASS_ORIGIN.get(part.strip()) or _ORIGIN_WORDS.get(part.strip().upper())
        if found is not None:
            return found
    return Origin.UNKNOWN


def _significance(value: list[str] | None) -> Significance | None:
    if value is None:
        return None
    term = gc.CLINICAL_SIGNIFICANCE_TERM.get(value[0].strip())
    return Significance(term) if term is not None else None


def _gene(value: list[str] | None) -> Gene | None:
    if value is None:
        return None
    identifier = value[0].strip()
    symbol = value[1].strip() if len(value) > 1 else ""
    if identifier.upper() in {"HGNC:0000", "HGNC:0"} or symbol.upper() == "NOGENE":
        return None  # vcf2hl7v2's placeholder for "no gene"
    if not symbol and not identifier.upper().startswith("HGNC:"):
        symbol = identifier
    if not symbol:
        raise ValueError("48018-6 gene has an HGNC id but no symbol")
    hgnc_id = identifier if identifier.upper().startswith("HGNC:") else None
    return Gene(symbol=symbol.upper(), hgnc_id=hgnc_id)


def _coded(value: list[str] | None, table: dict[str, _E], default: _E) -> _E:
    if value is None:
        return default
    for part in value[:2]:
        found = table.get(part.strip()) or table.get(part.strip().upper())
        if found is not None:
            return found
    return default


def _allele_frequency(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise ValueError("81258-6 allelic frequency is not a number") from exc
    if not 0.0 <= value <= 1.0:
        raise ValueError("81258-6 allelic frequency is outside 0..1")
    return value


def _depth(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(float(text))
    except ValueError as exc:
        raise ValueError("82121-5 read depth is not a number") from exc


def _chromosome(accession: str) -> str | None:
    found = refseq_chromosome(accession)
    if found is not None:
        return found.chrom
    bare = accession.strip().removeprefix("chr")
    if bare in {*(str(n) for n in range(1, 23)), "X", "Y", "MT"}:
        return bare
    return None


def _position(
    rows: list[_Obx], build: GenomeBuild | None, location: str, problems: list[RecordProblem]
) -> GenomicPosition | bool | None:
    """The VCF-style position, ``None`` when not given or unusable, ``False`` after a conflict
    (the RefSeq accession's version names the other build: the group is not read, as in the
    FHIR intake)."""
    start_value = _first(rows, START_END)
    ref = _text(rows, REF_ALLELE)
    alt = _text(rows, ALT_ALLELE)
    if start_value is None and ref is None and alt is None:
        return None
    refseq = _text(rows, GENOMIC_REFSEQ)
    if refseq is not None:
        conflict = accession_problem(refseq, build)
        if conflict is not None:
            problems.append(RecordProblem(location, f"48013-7 {conflict}; variant not read"))
            return False
    reason: str | None = None
    chrom = _chromosome(refseq) if refseq else None
    start_text = (start_value or [""])[0].split("-")[0].strip()
    if build is None:
        reason = "coordinates without a reference assembly (62374-4)"
    elif chrom is None:
        reason = "coordinates without a recognised chromosome RefSeq accession (48013-7)"
    elif not start_text.isdigit() or int(start_text) < 1:
        reason = "81254-5 start is not a positive 1-based position"
    elif not ref or not alt or not _ALLELE.match(ref.upper()) or not _ALLELE.match(alt.upper()):
        reason = "69547-8/69551-0 alleles are missing or not single A/C/G/T/N sequences"
    if reason is not None:
        problems.append(RecordProblem(location, reason + "; variant kept without position"))
        return None
    assert build is not None
    assert chrom is not None
    assert ref is not None
    assert alt is not None
    return GenomicPosition(
        build=build, chrom=chrom, pos=int(start_text), ref=ref.upper(), alt=alt.upper()
    )
