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
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from inference.genomics.hgvs import protein_change_key
from inference.genomics.model import (
    Gene,
    GenomeBuild,
    GenomicPosition,
    Origin,
    Variant,
    Zygosity,
)
from integrations.errors import RecordProblem
from integrations.hl7v2.parsing import components, field_text, parse_message
from integrations.intake import IntakeResult

# LOINC codes (panel 81247-9 and its simple-variant panel 81250-3).
PANEL: Final = "81247-9"
ASSEMBLY: Final = "62374-4"
GENE: Final = "48018-6"
HGVS_C: Final = "48004-6"
HGVS_P: Final = "48005-3"
HGVS_G: Final = "81290-9"
TRANSCRIPT: Final = "51958-7"
GENOMIC_REFSEQ: Final = "48013-7"
REF_ALLELE: Final = "69547-8"
ALT_ALLELE: Final = "69551-0"
START_END: Final = "81254-5"
SOURCE_CLASS: Final = "48002-0"
ALLELE_FREQUENCY: Final = "81258-6"
READ_DEPTH: Final = "82121-5"
ALLELIC_STATE: Final = "53034-5"
ASSESSMENT: Final = "69548-6"
VARIANT_CATEGORY: Final = "83005-9"
DISPLAY_NAME: Final = "47998-0"

#: OBX codes whose value names the condition (LOINC panel 81247-9, see
#: shared/reference/genomics.md §6.1): 81259-4 associated phenotype (the variant panel's
#: condition; the FHIR Genomics IG uses the same code for the phenotypic treatment context) and
#: 51967-8 genetic disease assessed (overall study). OBR-31 (reason for study) and DG1-3 are
#: read as well.
DIAGNOSIS_CODES: Final = frozenset({"81259-4", "51967-8"})

VARIANT_CODES: Final = frozenset(
    {GENE, HGVS_C, HGVS_P, HGVS_G, REF_ALLELE, ALT_ALLELE, START_END, VARIANT_CATEGORY}
)

# LOINC answer lists.
_BUILDS: Final = {
    "LA26806-2": GenomeBuild.GRCH38,
    "LA14029-5": GenomeBuild.GRCH37,
    "GRCH38": GenomeBuild.GRCH38,
    "GRCH37": GenomeBuild.GRCH37,
}
_ORIGINS: Final = {
    "LA6684-0": Origin.SOMATIC,
    "LA6683-2": Origin.GERMLINE,
    "SOMATIC": Origin.SOMATIC,
    "GERMLINE": Origin.GERMLINE,
}
_ZYGOSITY: Final = {
    "LA6706-1": Zygosity.HETEROZYGOUS,
    "LA6705-3": Zygosity.HOMOZYGOUS,
    "LA6707-9": Zygosity.HEMIZYGOUS,
}
_ABSENT: Final = "LA9634-2"
_E = TypeVar("_E", Origin, Zygosity)
_NC_ACCESSION = re.compile(r"^NC_0+(\d+)\.\d+$")
_ALLELE = re.compile(r"^[ACGTN]+$")
_CHROMOSOMES: Final = {**{str(n): str(n) for n in range(1, 23)}, "23": "X", "24": "Y"}


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
        if order.code != PANEL and not any(row.code in VARIANT_CODES for row in order.rows):
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
        if not any(row.code in VARIANT_CODES for row in rows):
            continue
        intake.records_read += 1
        location = f"OBR {order.set_id} OBX-4 {sub_id or '(empty)'}"
        try:
            variant = _variant(rows, build, location, intake.problems)
        except ValueError as exc:
            intake.problems.append(RecordProblem(location, str(exc)))
            continue
        if variant is not None:
            intake.alterations.append(variant)


def _build(value: list[str]) -> GenomeBuild | None:
    for part in value[:2]:
        found = _BUILDS.get(part.strip().upper()) or _BUILDS.get(part.strip())
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


def _variant(
    rows: list[_Obx], build: GenomeBuild | None, location: str, problems: list[RecordProblem]
) -> Variant | None:
    assessment = _first(rows, ASSESSMENT)
    if assessment is not None and assessment[0].strip() == _ABSENT:
        return None  # the lab reports the variant as tested and absent (LOINC 69548-6)
    gene = _gene(_first(rows, GENE))
    hgvs_c = _text(rows, HGVS_C)
    hgvs_p = _text(rows, HGVS_P)
    hgvs_g = _text(rows, HGVS_G)
    transcript = _text(rows, TRANSCRIPT)
    if transcript is None and hgvs_c and ":" in hgvs_c:
        transcript = hgvs_c.split(":", 1)[0]
    position = _position(rows, build, location, problems)
    if gene is None and not (hgvs_c or hgvs_p or hgvs_g) and position is None:
        raise ValueError("variant group has no gene (48018-6), HGVS or genomic coordinates")
    return Variant(
        gene=gene,
        hgvs_c=hgvs_c,
        hgvs_p=hgvs_p,
        hgvs_g=hgvs_g,
        transcript=transcript,
        protein_change=protein_change_key(hgvs_p),
        position=position,
        origin=_coded(_first(rows, SOURCE_CLASS), _ORIGINS, Origin.UNKNOWN),
        zygosity=_coded(_first(rows, ALLELIC_STATE), _ZYGOSITY, Zygosity.UNKNOWN),
        allele_frequency=_allele_frequency(_text(rows, ALLELE_FREQUENCY)),
        depth=_depth(_text(rows, READ_DEPTH)),
        source_ref=location,
    )


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
    accession = accession.strip()
    if accession.startswith("NC_012920"):
        return "MT"
    match = _NC_ACCESSION.match(accession)
    if match:
        return _CHROMOSOMES.get(str(int(match.group(1))))
    bare = accession.removeprefix("chr")
    if bare in _CHROMOSOMES.values() or bare == "MT":
        return bare
    return None


def _position(
    rows: list[_Obx], build: GenomeBuild | None, location: str, problems: list[RecordProblem]
) -> GenomicPosition | None:
    start_value = _first(rows, START_END)
    ref = _text(rows, REF_ALLELE)
    alt = _text(rows, ALT_ALLELE)
    if start_value is None and ref is None and alt is None:
        return None
    refseq = _text(rows, GENOMIC_REFSEQ)
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
