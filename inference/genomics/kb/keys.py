"""Knowledge-base matcher keys: the one place their text format is written and read.

A statement in the compiled KB lists the keys it matches (``matchers``); an alteration is
turned into the keys it carries (:mod:`inference.genomics.matching`); the two meet in one dict
lookup. Keys stay plain strings in the JSON and on the hot path; this module builds them and
parses them back into :class:`ParsedKey`.

==========================  ==========================================================
key                          meaning
==========================  ==========================================================
``P|BRAF|V600E``             exact protein change (one-letter HGVS key, :mod:`..hgvs`)
``C|BRAF|V600``              any amino-acid substitution at the codon
``R|EGFR|729|761``           in-frame deletion/delins inside a codon range (CIViC exon 19)
``N|FLT3|ITD``               a named alteration as written (CIViC ``ITD``)
``CLS|EGFR|exon19_deletion`` a biomarker class, by rule (:mod:`inference.genomics.classes`)
``EX|PDGFRA|18|any``         a change in an exon (``any``/``deletion``/``insertion``/``missense``)
``DLT|BRCA2``                a deleterious variant (truncating, stated or known pathogenic)
``DLT|BRCA2|germline``       the same, of stated germline (or somatic) origin
``MUT|NPM1``                 any non-synonymous mutation of the gene
``F|ALK``                    a fusion of the gene, any partner
``F2|ABL1|BCR``              a fusion of that pair (genes sorted)
``AMP|ERBB2``, ``DEL|CDKN2A`` amplification, deep deletion
``MSI``, ``HRD``             MSI-high / dMMR; HRD-positive
``TMB|10``                   TMB at or above the threshold (mut/Mb)
==========================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class KeyKind(StrEnum):
    PROTEIN = "P"
    CODON = "C"
    RANGE = "R"
    NAMED = "N"
    CLASS = "CLS"
    EXON = "EX"
    DELETERIOUS = "DLT"
    MUTATION = "MUT"
    FUSION = "F"
    FUSION_PAIR = "F2"
    AMPLIFICATION = "AMP"
    DELETION = "DEL"
    MSI = "MSI"
    HRD = "HRD"
    TMB = "TMB"


#: Changes an exon key may name.
EXON_CHANGES: Final = frozenset({"any", "deletion", "insertion", "missense"})
#: Origins a deleterious key may name (``any`` is the key without an origin).
ORIGINS: Final = frozenset({"germline", "somatic"})
_SEP: Final = "|"
#: Number of fields after the kind, per kind (``None``: variable, checked in :func:`parse`).
_ARITY: Final = {
    KeyKind.PROTEIN: 2,
    KeyKind.CODON: 2,
    KeyKind.RANGE: 3,
    KeyKind.NAMED: 2,
    KeyKind.CLASS: 2,
    KeyKind.EXON: 3,
    KeyKind.DELETERIOUS: None,
    KeyKind.MUTATION: 1,
    KeyKind.FUSION: 1,
    KeyKind.FUSION_PAIR: 2,
    KeyKind.AMPLIFICATION: 1,
    KeyKind.DELETION: 1,
    KeyKind.MSI: 0,
    KeyKind.HRD: 0,
    KeyKind.TMB: 1,
}


class KeyFormatError(ValueError):
    """A string that is not a knowledge-base key (programming or source error)."""


def _field(value: str, what: str) -> str:
    if not value or _SEP in value:
        raise KeyFormatError(f"{what} {value!r} cannot be part of a knowledge-base key")
    return value


def protein(gene: str, change: str) -> str:
    return f"P|{_field(gene, 'gene')}|{_field(change, 'protein change')}"


def codon(gene: str, residue_and_position: str) -> str:
    return f"C|{_field(gene, 'gene')}|{_field(residue_and_position, 'codon')}"


def codon_range(gene: str, start: int, end: int) -> str:
    if start > end:
        raise KeyFormatError(f"codon range {start}-{end} is reversed")
    return f"R|{_field(gene, 'gene')}|{start}|{end}"


def named(gene: str, name: str) -> str:
    return f"N|{_field(gene, 'gene')}|{_field(name.upper(), 'name')}"


def variant_class(gene: str, name: str) -> str:
    return f"CLS|{_field(gene, 'gene')}|{_field(name, 'class')}"


def exon(gene: str, number: int, change: str = "any") -> str:
    if change not in EXON_CHANGES:
        raise KeyFormatError(f"exon change {change!r} is not one of {sorted(EXON_CHANGES)}")
    return f"EX|{_field(gene, 'gene')}|{int(number)}|{change}"


def deleterious(gene: str, origin: str | None = None) -> str:
    if origin is None or origin == "any":
        return f"DLT|{_field(gene, 'gene')}"
    if origin not in ORIGINS:
        raise KeyFormatError(f"origin {origin!r} is not one of any, {', '.join(sorted(ORIGINS))}")
    return f"DLT|{_field(gene, 'gene')}|{origin}"


def mutation(gene: str) -> str:
    return f"MUT|{_field(gene, 'gene')}"


def fusion(gene: str, partner: str | None = None) -> str:
    """``F|gene`` (any partner) or, with ``partner``, the order-free pair ``F2|a|b``."""
    if partner is None:
        return f"F|{_field(gene, 'gene')}"
    first, second = sorted((_field(gene, "gene"), _field(partner, "gene")))
    return f"F2|{first}|{second}"


def amplification(gene: str) -> str:
    return f"AMP|{_field(gene, 'gene')}"


def deletion(gene: str) -> str:
    return f"DEL|{_field(gene, 'gene')}"


MSI: Final = "MSI"
HRD: Final = "HRD"


def tmb(threshold: float) -> str:
    return f"TMB|{float(threshold):g}"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A key read back: its kind, its gene(s) and the remaining fields."""

    kind: KeyKind
    #: Genes the key names (two for a fusion pair, none for MSI/HRD/TMB).
    genes: tuple[str, ...]
    fields: tuple[str, ...]

    @property
    def gene(self) -> str | None:
        return self.genes[0] if self.genes else None


def parse(key: str) -> ParsedKey:
    """Read a key (see the module table).

    Raises:
        KeyFormatError: not a knowledge-base key.
    """
    head, *rest = key.split(_SEP)
    try:
        kind = KeyKind(head)
    except ValueError as exc:
        raise KeyFormatError(f"{key!r}: unknown key kind {head!r}") from exc
    arity = _ARITY[kind]
    if kind is KeyKind.DELETERIOUS:
        if len(rest) not in {1, 2} or (len(rest) == 2 and rest[1] not in ORIGINS):
            raise KeyFormatError(f"{key!r}: not DLT|gene or DLT|gene|origin")
    elif len(rest) != arity:
        raise KeyFormatError(f"{key!r}: {kind.name} keys have {arity} field(s)")
    if any(not part for part in rest):
        raise KeyFormatError(f"{key!r}: empty field")
    if kind in {KeyKind.MSI, KeyKind.HRD}:
        return ParsedKey(kind, (), ())
    if kind is KeyKind.TMB:
        try:
            float(rest[0])
        except ValueError as exc:
            raise KeyFormatError(f"{key!r}: threshold is not a number") from exc
        return ParsedKey(kind, (), (rest[0],))
    if kind is KeyKind.FUSION_PAIR:
        return ParsedKey(kind, (rest[0], rest[1]), ())
    if kind in {KeyKind.RANGE, KeyKind.EXON}:
        numbers = rest[1:3] if kind is KeyKind.RANGE else rest[1:2]
        if not all(n.isdigit() for n in numbers):
            raise KeyFormatError(f"{key!r}: positions must be numbers")
        if kind is KeyKind.EXON and rest[2] not in EXON_CHANGES:
            raise KeyFormatError(f"{key!r}: unknown exon change {rest[2]!r}")
    return ParsedKey(kind, (rest[0],), tuple(rest[1:]))


def genes_of(key: str) -> tuple[str, ...]:
    """The gene symbols a key names (none for MSI, HRD and TMB)."""
    return parse(key).genes


def codon_range_of(key: str) -> tuple[str, int, int] | None:
    """``(gene, start, end)`` of an ``R|`` key, else ``None``."""
    if not key.startswith("R|"):
        return None
    parsed = parse(key)
    return parsed.genes[0], int(parsed.fields[0]), int(parsed.fields[1])


def tmb_threshold_of(key: str) -> float | None:
    """The threshold of a ``TMB|`` key, else ``None``."""
    if not key.startswith("TMB|"):
        return None
    return float(parse(key).fields[0])
