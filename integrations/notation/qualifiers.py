"""Words around an alteration that qualify it: origin, zygosity, allele fraction, depth, and the
clinical significance a report states. They are taken out of the line before the alteration
itself is read, wherever they stand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from inference.genomics.model import Origin, Significance, Zygosity
from integrations.normalise import ORIGIN_WORDS, ZYGOSITY_WORDS, parse_fraction
from integrations.notation.errors import LineError

_FRACTION = re.compile(
    r"\b(?:t?vaf|af|allele\s+fraction|allele\s+frequency)\s*[:=]?\s*(\d+(?:\.\d+)?)\s*(%?)",
    re.IGNORECASE,
)
_BARE_PERCENT = re.compile(r"(?<![\w.*])(\d{1,3}(?:\.\d+)?)\s*%")
_DEPTH = re.compile(r"\b(?:dp|depth|reads)\s*[:=]?\s*(\d+)\b", re.IGNORECASE)
_QUALIFIER = re.compile(
    r"\b(likely\s+germline|likely\s+somatic|germline|somatic|constitutional|de\s+novo|"
    r"heterozygous|homozygous|hemizygous|het|hom|hemi)\b",
    re.IGNORECASE,
)
# ACMG/AMP 2015 five-tier terms (Richards et al., PMID 25741868), as ClinVar writes them; "VUS"
# is the usual abbreviation of "uncertain significance". Longest phrases first.
_SIGNIFICANCE = re.compile(
    r"\b(likely\s+pathogenic|likely\s+benign|variant\s+of\s+uncertain\s+significance|"
    r"uncertain\s+significance|pathogenic|benign|vus)\b",
    re.IGNORECASE,
)
_HOMOZYGOUS_DELETION = re.compile(r"homozygous\s+deletion", re.IGNORECASE)
_ORIGIN_ONLY = re.compile(r"\b(germline|somatic)\b", re.IGNORECASE)
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")
_BRACKETED_WORD = re.compile(r"(?<!\S)\((\S+)\)(?!\S)")
_COMMA = re.compile(r",(\s|$)")
_SPACES = re.compile(r"\s+")
#: Cheap pre-checks: most lines carry no significance word and no qualifier at all.
_SIGNIFICANCE_HINTS: Final = ("path", "benign", "vus", "uncertain")
SIGNIFICANCE_WORDS: Final = {
    "pathogenic": Significance.PATHOGENIC,
    "likely pathogenic": Significance.LIKELY_PATHOGENIC,
    "uncertain significance": Significance.UNCERTAIN,
    "variant of uncertain significance": Significance.UNCERTAIN,
    "vus": Significance.UNCERTAIN,
    "likely benign": Significance.LIKELY_BENIGN,
    "benign": Significance.BENIGN,
}


@dataclass(frozen=True, slots=True)
class Qualifiers:
    origin: Origin = Origin.UNKNOWN
    zygosity: Zygosity = Zygosity.UNKNOWN
    fraction: float | None = None
    depth: int | None = None
    classification: Significance | None = None
    #: Where the line came from (``text:3``), given to every item read from it.
    source_ref: str | None = None


def fraction(value: str, *, percent: bool) -> float:
    """An allele fraction in 0..1 from ``31`` + ``%`` or ``0.31``; :class:`LineError` otherwise."""
    number = parse_fraction(float(value), percent=percent)
    if number is None:
        raise LineError(f"allele fraction {value}{'%' if percent else ''} is outside 0..1")
    return number


def strip_qualifiers(text: str, source_ref: str | None = None) -> tuple[str, Qualifiers]:
    """The line without its qualifiers, and the qualifiers found."""
    found_fraction: float | None = None
    depth: int | None = None
    match = _FRACTION.search(text)
    if match:
        found_fraction = fraction(match.group(1), percent=bool(match.group(2)))
        text = text[: match.start()] + " " + text[match.end() :]
    else:
        bare = _BARE_PERCENT.search(text)
        if bare:
            found_fraction = fraction(bare.group(1), percent=True)
            text = text[: bare.start()] + " " + text[bare.end() :]
    match = _DEPTH.search(text)
    if match:
        depth = int(match.group(1))
        text = text[: match.start()] + " " + text[match.end() :]
    origin = Origin.UNKNOWN
    zygosity = Zygosity.UNKNOWN
    classification: Significance | None = None

    def qualifier(found: re.Match[str]) -> str:
        nonlocal origin, zygosity
        word = _SPACES.sub(" ", found.group(1).lower())
        if word in ORIGIN_WORDS:
            origin = ORIGIN_WORDS[word]
        elif word in ZYGOSITY_WORDS:
            zygosity = ZYGOSITY_WORDS[word]
        return " "

    def significance(found: re.Match[str]) -> str:
        nonlocal classification
        classification = SIGNIFICANCE_WORDS[_SPACES.sub(" ", found.group(1).lower())]
        return " "

    # "homozygous deletion" is a copy-number call, not a zygosity qualifier.
    if not _HOMOZYGOUS_DELETION.search(text):
        text = _QUALIFIER.sub(qualifier, text)
    else:
        text = _ORIGIN_ONLY.sub(qualifier, text)
    lowered = text.lower()
    if any(hint in lowered for hint in _SIGNIFICANCE_HINTS):
        text = _SIGNIFICANCE.sub(significance, text)
    if "(" in text or "[" in text:
        # "(germline)" has lost its word above; "(het)" → "het"; HGVS parentheses stay.
        text = _EMPTY_BRACKETS.sub(" ", text)
        text = _BRACKETED_WORD.sub(r"\1", text)
    if "," in text:
        text = _COMMA.sub(" ", text)
    return " ".join(text.split()), Qualifiers(
        origin, zygosity, found_fraction, depth, classification, source_ref
    )
