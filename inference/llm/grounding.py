"""Is a generated text grounded in the findings it explains?

The checker extracts entities from the text and from the findings document alike, with the
same extractors, and fails the text on any entity the findings do not contain:

- **gene symbols**: the knowledge base's genes, and any upper-case token with a digit that looks
  like one (``ZNF9999``), abbreviations of the trade excepted (``FDA``, ``DNA``, ``VAF``);
- **variants**: protein changes in one- or three-letter form (``G12D``, ``p.Gly12Asp``; compared
  as normalised keys) and ``c.`` changes;
- **drug names**: the KB drug table with its brands, synonyms and CIViC names (compared as the
  generic name: "Braftovi" is encorafenib), and any word with a drug-class suffix (``-tinib``,
  ``-rafenib``, ``-mab`` …) the table lacks;
- **tiers and levels**: ``Tier II``, ``tier 2``, ``Level A``;
- **numbers**: any number; it must equal a number of the findings rounded to the decimals the
  text writes (31.5 allows "31.5" and "32"; a fraction 0.315 allows "31.5%").

Structure is checked too: the patient paragraphs must be one per finding id, each once.
False alarms are safe (the template replaces the text); a missed entity is not, so the
extractors err on the side of matching.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from inference.genomics.hgvs import protein_change_key
from inference.llm.findings import ExplanationInput
from inference.llm.schemas import Explanation, GenomicExplanation, texts
from inference.llm.vocabulary import Vocabulary, vocabulary

_AA3 = "Ala|Arg|Asn|Asp|Cys|Gln|Glu|Gly|His|Ile|Leu|Lys|Met|Phe|Pro|Ser|Thr|Trp|Tyr|Val|Ter"
_AA = rf"(?:{_AA3}|[ACDEFGHIKLMNPQRSTVWY])"
_PROTEIN = re.compile(
    rf"(?<![\w.*])(?:p\.\(?)?(?P<change>{_AA}\d{{1,5}}(?:_{_AA}\d{{1,5}})?"
    rf"(?:{_AA}|\*|=|fs(?:\*|Ter)?\d*|delins[A-Za-z]*|del[A-Za-z]*|dup|ins[A-Za-z]*))(?![\w])"
)
_CDNA = re.compile(r"(?<![\w.])c\.[0-9_+*\-]+[A-Za-z0-9_>+*\-]*")
_TIER = re.compile(r"\btier\s*(IV|III|II|I|[1-4])\b", re.IGNORECASE)
_LEVEL = re.compile(r"\blevel\s+([A-E])\b", re.IGNORECASE)
_STAR_ALLELE = re.compile(r"\*\d+[A-Z]?(?:/\*\d+[A-Z]?)?")
_GENE_LIKE = re.compile(r"(?<![\w-])[A-Z][A-Z0-9]{1,9}(?:-[A-Z0-9]{1,4})?(?![\w])")
_HAS_DIGIT = re.compile(r"\d")
_FINDING_ID = re.compile(r"^F\d{1,2}$")
_DRUG_SUFFIX = re.compile(
    r"\b[a-z]{2,}(?:tinib|rafenib|ciclib|lisib|parib|zomib|degib|sertib|zumab|ximab|mumab|"
    r"lumab|tumab|umab|imab|mab)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w.*/])(\d+(?:[.,]\d+)?)(?![\w])")
#: Abbreviations of the trade that look like gene symbols (they are not entities here).
_NOT_GENES: Final = frozenset(
    {
        "AMP",
        "ASCO",
        "CAP",
        "CIVIC",
        "DNA",
        "RNA",
        "FDA",
        "VAF",
        "TMB",
        "MSI",
        "HRD",
        "NGS",
        "OK",
        "II",
        "III",
        "IV",
        "JSON",
        "US",
        "USA",
        "AI",
        "CT",
        "MRI",
        "PET",
        "H",
        "HE",
        "IHC",
        "WSI",
        "OOD",
        "CPIC",
        "ACMG",
        "NCCN",
        "KB",
        "ID",
        "NOS",
        "UK",
        "EU",
        "DPD",
    }
)
_ROMAN: Final = {"1": "I", "2": "II", "3": "III", "4": "IV"}


@dataclass(frozen=True, slots=True)
class Entities:
    genes: frozenset[str] = frozenset()
    variants: frozenset[str] = frozenset()
    drugs: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    levels: frozenset[str] = frozenset()
    numbers: tuple[Decimal, ...] = ()


@dataclass(frozen=True, slots=True)
class GroundingResult:
    """``ok`` when every entity of the text is in the findings; else the problems (entity
    names and categories only)."""

    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _decimal(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace(",", "."))
    except InvalidOperation:
        return None


def extract(text: str, vocab: Vocabulary) -> Entities:
    """Every entity ``text`` names (the same extractor reads the findings and the answer)."""
    variants: set[str] = set()
    spans: list[tuple[int, int]] = []
    for found in _PROTEIN.finditer(text):
        key = protein_change_key(found.group("change")) or found.group("change")
        variants.add(key.upper())
        spans.append(found.span())
    for found in _CDNA.finditer(text):
        variants.add(found.group(0).rstrip(".,;:").lower())
        spans.append(found.span())
    tiers = {_ROMAN.get(m.group(1), m.group(1).upper()) for m in _TIER.finditer(text)}
    levels = {m.group(1).upper() for m in _LEVEL.finditer(text)}
    spans += [m.span() for m in _TIER.finditer(text)]
    spans += [m.span() for m in _STAR_ALLELE.finditer(text)]
    drugs: set[str] = set()
    for found in vocab.drug_pattern.finditer(text):
        drugs.add(vocab.canonical_drug(found.group(0)))
        spans.append(found.span())
    for found in _DRUG_SUFFIX.finditer(text):
        drugs.add(vocab.canonical_drug(found.group(0)))
    rest = _blank(text, spans)
    genes: set[str] = set()
    gene_spans: list[tuple[int, int]] = []
    for found in _GENE_LIKE.finditer(rest):
        token = found.group(0)
        if token in _NOT_GENES or _FINDING_ID.match(token):
            continue
        if token in vocab.genes or _HAS_DIGIT.search(token):
            genes.add(token)
            gene_spans.append(found.span())
    rest = _blank(rest, gene_spans)
    numbers = tuple(
        d for d in (_decimal(m.group(1)) for m in _NUMBER.finditer(rest)) if d is not None
    )
    return Entities(
        frozenset(genes),
        frozenset(variants),
        frozenset(drugs),
        frozenset(tiers),
        frozenset(levels),
        numbers,
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _numbers(value: Any) -> Iterator[Decimal]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield Decimal(str(value))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def findings_entities(source: ExplanationInput, vocab: Vocabulary | None = None) -> Entities:
    """What the findings document names (its strings read like the answer, plus its numbers;
    a fraction up to 1 also stands for its percentage)."""
    vocab = vocab or vocabulary()
    found = extract("\n".join(_strings(source.document)), vocab)
    numbers = {*found.numbers, *_numbers(source.document)}
    numbers |= {n * 100 for n in numbers if 0 < n <= 1}
    return Entities(
        found.genes, found.variants, found.drugs, found.tiers, found.levels, tuple(numbers)
    )


def _number_grounded(value: Decimal, allowed: Iterable[Decimal]) -> bool:
    exponent = value.as_tuple().exponent
    places = Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
    return any(a.quantize(places, rounding=ROUND_HALF_UP) == value for a in allowed)


def check_text(text: str, allowed: Entities, vocab: Vocabulary) -> list[str]:
    """The problems of one text against the findings' entities."""
    found = extract(text, vocab)
    problems: list[str] = []
    problems += [f"gene not in the findings: {g}" for g in sorted(found.genes - allowed.genes)]
    problems += [
        f"variant not in the findings: {v}" for v in sorted(found.variants - allowed.variants)
    ]
    problems += [f"drug not in the findings: {d}" for d in sorted(found.drugs - allowed.drugs)]
    problems += [f"tier not in the findings: {t}" for t in sorted(found.tiers - allowed.tiers)]
    problems += [
        f"evidence level not in the findings: {lv}" for lv in sorted(found.levels - allowed.levels)
    ]
    problems += [
        f"number not in the findings: {n}"
        for n in sorted(set(found.numbers))
        if not _number_grounded(n, allowed.numbers)
    ]
    return problems


def check_grounding(explanation: Explanation, source: ExplanationInput) -> GroundingResult:
    """Check every text of ``explanation`` against ``source``; and that the patient
    paragraphs are exactly one per finding."""
    vocab = vocabulary()
    allowed = findings_entities(source, vocab)
    problems: list[str] = []
    for text in texts(explanation):
        problems += check_text(text, allowed, vocab)
    if isinstance(explanation, GenomicExplanation):
        ids = [p.finding_id for p in explanation.patient_paragraphs]
        if sorted(ids) != sorted(source.finding_ids) or len(set(ids)) != len(ids):
            problems.append(
                f"patient paragraphs for {sorted(set(ids))}, findings are "
                f"{list(source.finding_ids)}"
            )
    return GroundingResult(tuple(dict.fromkeys(problems)))


def dumps(explanation: Explanation) -> str:
    return json.dumps(explanation.model_dump(), ensure_ascii=False)
