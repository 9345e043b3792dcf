"""Protein changes as labs and knowledge bases write them, read into one structure and one key.

HGVS protein notation (HGVS Nomenclature v21, https://hgvs-nomenclature.org/stable/recommendations/protein/)
in 1- or 3-letter amino-acid codes, with or without ``p.``, parentheses (predicted) or an ``NP_``
accession, all meet on one normalised one-letter key:

=====================  =====================  ==========================
written                 kind                   key
=====================  =====================  ==========================
``p.Val600Glu``, V600E  substitution           ``V600E``
``p.Gly12Ter``, G12*    nonsense               ``G12*``
``p.V600=``, V600V      synonymous             ``V600V``
``R1699fs``, W288fs*12  frameshift             ``R1699fs``, ``W288fs``
``E746_A750del``        deletion (in frame)    ``E746_A750del``
``A767_V769dup``        duplication            ``A767_V769dup``
``D770_N771insSVD``     insertion              ``D770_N771insSVD``
``L747_P753delinsS``    deletion-insertion     ``L747_P753delinsS``
``p.Met1?``             start lost             ``M1?``
=====================  =====================  ==========================

``X`` as the new residue is ambiguous: older lab nomenclature (and HGVS before 2016) used it for a
stop codon (``R213X``), while CIViC names use it for "any residue" (``G12X``). Callers say which
(:data:`X_MEANS_STOP` for patient input, the default; :data:`X_MEANS_ANY` for knowledge-base
names). Anything this parser does not understand gives ``None``, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

THREE_TO_ONE: Final = {
    "Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C", "Gln": "Q", "Glu": "E",
    "Gly": "G", "His": "H", "Ile": "I", "Leu": "L", "Lys": "K", "Met": "M", "Phe": "F",
    "Pro": "P", "Ser": "S", "Thr": "T", "Trp": "W", "Tyr": "Y", "Val": "V", "Ter": "*",
    "Sec": "U", "Pyl": "O",
}  # fmt: skip
ONE_LETTER: Final = frozenset(THREE_TO_ONE.values()) | {"X"}

XMeaning = Literal["stop", "any"]
X_MEANS_STOP: Final[XMeaning] = "stop"
X_MEANS_ANY: Final[XMeaning] = "any"


class ChangeKind(StrEnum):
    #: A residue replaced by another (``*757L``, a stop lost, is read as one too).
    SUBSTITUTION = "substitution"
    SYNONYMOUS = "synonymous"
    NONSENSE = "nonsense"
    #: ``G12X`` in a knowledge-base name: any residue at the codon (never from patient input).
    ANY_RESIDUE = "any residue"
    FRAMESHIFT = "frameshift"
    DELETION = "deletion"
    DUPLICATION = "duplication"
    INSERTION = "insertion"
    DELINS = "deletion-insertion"
    START_LOST = "start lost"


#: Kinds that keep the reading frame and change a stretch of residues (in-frame indels).
IN_FRAME_INDELS: Final = frozenset(
    {ChangeKind.DELETION, ChangeKind.DUPLICATION, ChangeKind.INSERTION, ChangeKind.DELINS}
)


@dataclass(frozen=True, slots=True)
class ProteinChange:
    """One protein change, one-letter codes throughout (``*`` for a stop)."""

    kind: ChangeKind
    #: First affected residue and its position.
    start_aa: str
    start: int
    #: Last residue of a range (``E746_A750del``: ``A``, 750); ``None`` for a single position.
    end_aa: str | None = None
    end: int | None = None
    #: New residue of a substitution; inserted residues of an insertion or delins.
    alt: str = ""

    @property
    def last(self) -> int:
        """Last position the change touches (the start for a single position)."""
        return self.end if self.end is not None else self.start

    @property
    def key(self) -> str:  # noqa: PLR0911 - one return per kind
        """The normalised one-letter key (see the module table)."""
        first = f"{self.start_aa}{self.start}"
        span = first if self.end is None else f"{first}_{self.end_aa}{self.end}"
        match self.kind:
            case ChangeKind.SUBSTITUTION | ChangeKind.NONSENSE:
                return f"{first}{self.alt}"
            case ChangeKind.SYNONYMOUS:
                return f"{first}{self.start_aa}"
            case ChangeKind.ANY_RESIDUE:
                return f"{first}X"
            case ChangeKind.FRAMESHIFT:
                return f"{first}fs"
            case ChangeKind.START_LOST:
                return f"{first}?"
            case ChangeKind.DELETION:
                return f"{span}del"
            case ChangeKind.DUPLICATION:
                return f"{span}dup"
            case ChangeKind.INSERTION:
                return f"{span}ins{self.alt}"
            case ChangeKind.DELINS:
                return f"{span}delins{self.alt}"
        raise AssertionError(self.kind)  # pragma: no cover - every kind is listed


_AA3 = "|".join(THREE_TO_ONE)
_AA = rf"(?:{_AA3}|[ACDEFGHIKLMNPQRSTVWYUOX*])"
_PREFIX = re.compile(r"^(?:[A-Z]{2}_\d+(?:\.\d+)?:)?(?:p\.)?(?P<body>.*)$")
_POS = rf"(?P<ref>{_AA})(?P<pos>\d+)"
_RANGE = rf"{_POS}(?:_(?P<ref2>{_AA})(?P<pos2>\d+))?"
_SUBSTITUTION = re.compile(rf"^{_POS}(?P<alt>{_AA}|=)$")
_FRAMESHIFT = re.compile(rf"^{_POS}(?:{_AA})?fs(?:(?:Ter|\*|X)(?:\d+|\?)?)?$")
_START_LOST = re.compile(r"^(?:Met|M)1\?$")
_KEYWORDS = re.compile(r"DELINS|DEL|DUP|INS|FS")
_INDEL = re.compile(rf"^{_RANGE}(?P<op>delins|del|dup|ins)(?P<seq>[A-Za-z*]*)$")


def _one(code: str) -> str:
    if code in THREE_TO_ONE:
        return THREE_TO_ONE[code]
    return code


def _residues(seq: str) -> str | None:
    """Inserted residues, in 3-letter (``SerValAsp``) or 1-letter (``SVD``) codes."""
    if not seq:
        return None
    if any(c.islower() for c in seq):
        if len(seq) % 3:
            return None
        codes = [seq[i : i + 3] for i in range(0, len(seq), 3)]
        if not all(code in THREE_TO_ONE for code in codes):
            return None
        return "".join(THREE_TO_ONE[code] for code in codes)
    if all(c in ONE_LETTER for c in seq) and "X" not in seq:
        return seq
    return None


def _body(text: str) -> str | None:
    match = _PREFIX.match(text.strip())
    if match is None:
        return None
    body = match.group("body").strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1].strip()
    return body or None


def _substitution(found: re.Match[str], x_means: XMeaning) -> ProteinChange | None:
    ref, pos, alt = _one(found.group("ref")), int(found.group("pos")), found.group("alt")
    if alt == "=":
        return ProteinChange(ChangeKind.SYNONYMOUS, ref, pos, alt=ref)
    if alt == "X":
        if x_means == X_MEANS_ANY:
            return ProteinChange(ChangeKind.ANY_RESIDUE, ref, pos, alt="X")
        return ProteinChange(ChangeKind.NONSENSE, ref, pos, alt="*")
    one = _one(alt)
    if one == "*":
        return ProteinChange(ChangeKind.NONSENSE, ref, pos, alt="*")
    if one == ref:
        return ProteinChange(ChangeKind.SYNONYMOUS, ref, pos, alt=ref)
    return ProteinChange(ChangeKind.SUBSTITUTION, ref, pos, alt=one)


def _indel(found: re.Match[str]) -> ProteinChange | None:  # noqa: PLR0911 - one per form
    ref = _one(found.group("ref"))
    start = int(found.group("pos"))
    ref2 = _one(found.group("ref2")) if found.group("ref2") else None
    end = int(found.group("pos2")) if found.group("pos2") else None
    if "X" in (ref, ref2) or (end is not None and end <= start):
        return None
    op, seq = found.group("op"), found.group("seq")
    if op in {"del", "dup"}:
        if seq:
            return None  # "delAla" style deleted residues are not HGVS for proteins
        kind = ChangeKind.DELETION if op == "del" else ChangeKind.DUPLICATION
        return ProteinChange(kind, ref, start, ref2, end)
    inserted = _residues(seq)
    if inserted is None:
        return None
    if op == "ins":
        # HGVS: an insertion names the two flanking residues, which must be adjacent.
        if end != start + 1:
            return None
        return ProteinChange(ChangeKind.INSERTION, ref, start, ref2, end, alt=inserted)
    return ProteinChange(ChangeKind.DELINS, ref, start, ref2, end, alt=inserted)


def parse_protein_change(
    text: str | None, *, x_means: XMeaning = X_MEANS_STOP
) -> ProteinChange | None:
    """Read a protein change (see the module docstring), or ``None`` if not understood."""
    if not text:
        return None
    body = _body(text)
    if body is None:
        return None
    candidates = [body]
    if body.islower():
        # "v600e", "e746_a750del": one-letter codes written in lower case.
        candidates.append(_KEYWORDS.sub(lambda m: m.group(0).lower(), body.upper()))
    for candidate in candidates:
        parsed = _parse_body(candidate, x_means)
        if parsed is not None:
            return parsed
    return None


def _parse_body(body: str, x_means: XMeaning) -> ProteinChange | None:
    if _START_LOST.match(body):
        return ProteinChange(ChangeKind.START_LOST, "M", 1)
    found = _SUBSTITUTION.match(body)
    if found:
        return _substitution(found, x_means)
    found = _FRAMESHIFT.match(body)
    if found:
        ref = _one(found.group("ref"))
        if ref in {"*", "X"}:
            return None
        return ProteinChange(ChangeKind.FRAMESHIFT, ref, int(found.group("pos")))
    found = _INDEL.match(body)
    if found:
        return _indel(found)
    return None


def protein_change_key(text: str | None, *, x_means: XMeaning = X_MEANS_STOP) -> str | None:
    """Normalised one-letter protein change (``V600E``) or ``None`` if not understood."""
    parsed = parse_protein_change(text, x_means=x_means)
    return parsed.key if parsed is not None else None
