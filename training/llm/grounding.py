"""A grounding checker for evaluation: entities in a text that its finding does not contain.

The checker the runtime uses is helper ``llm``'s (``inference/llm``, issue 16); evaluation takes
any callable of the :data:`GroundingChecker` shape as a parameter, so that checker plugs in when
it lands. This one is the default: it extracts

- gene symbols: the KB's genes and pharmacogenes, and HGNC-like tokens (``FOO1``: two or more
  capitals, then digits), so an invented gene counts too;
- protein changes (``V600E``, ``G12D``, ``V600``, ``L858R``, ``E746_A750del``) and cDNA changes
  (``c.1236G>A``);
- drugs: every name, synonym, brand and CIViC name of the KB's drug table (whole words, any case);
- tiers and evidence levels (``Tier I``, ``level B``);
- standalone numbers (not those inside an identifier such as ``BRCA2`` or ``V600E``),

from the text and from the finding (its keys and values flattened to text), and returns those of
the text missing from the finding. A text naming nothing the finding lacks passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from inference.genomics.kb.store import KnowledgeBase

#: ``(text, finding) -> the entities of text not supported by finding`` (empty: grounded).
GroundingChecker = Callable[[str, Mapping[str, Any]], Sequence[str]]

_WORD: Final = re.compile(r"\b[A-Z][A-Za-z0-9-]*[A-Z0-9]\b")
_GENE_LIKE: Final = re.compile(r"^[A-Z]{2,}[0-9]+[A-Z0-9]*$")
#: Identifier prefixes that look like genes but are citations or codes.
_NOT_GENES: Final = ("EID", "PMID", "NCT", "AID", "ICD", "HGNC")
_AA: Final = "ACDEFGHIKLMNPQRSTVWY"
_PROTEIN: Final = re.compile(
    rf"(?<![\w.])(?:p\.)?[{_AA}]\d{{2,4}}(?:_[{_AA}]\d{{2,4}})?"
    rf"(?:fs\*?\d*|del[{_AA}]*|dup|ins[{_AA}]+|delins[{_AA}]+|[{_AA}*])?(?![\w])"
)
_CDNA: Final = re.compile(r"\bc\.[0-9][0-9+\-*_]*[ACGT]*(?:>[ACGT]+|del\w*|dup\w*|ins\w*)?")
_TIER: Final = re.compile(r"\b(tier|level)\s*:?\s*(IV|I{1,3}|[1-4]|[A-E])\b", re.IGNORECASE)
_NUMBER: Final = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")
_TOKEN: Final = re.compile(r"[a-z0-9]+")


def flatten(value: Any) -> str:
    """A finding as text: ``key: value`` lines (underscores in keys read as spaces)."""
    if isinstance(value, Mapping):
        return "\n".join(f"{str(k).replace('_', ' ')}: {flatten(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "\n".join(flatten(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Vocabulary:
    genes: frozenset[str]
    #: Lower-case drug names, synonyms, brands and CIViC names.
    drugs: frozenset[str]

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> Vocabulary:
        genes = set(kb.genes) | set(kb.pharmacogenomics) | set(kb.hereditary.get("genes", {}))
        drugs = {name.lower() for name in kb.drugs} | set(kb.data.get("drug_status", {}))
        return cls(frozenset(genes), frozenset(d for d in drugs if len(d) >= 3))


class KbGroundingChecker:
    """The default :data:`GroundingChecker`, over the KB's vocabulary."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        # Drug names as token tuples, matched longest first over the text's tokens: one set
        # lookup per n-gram. One regex alternation of every name made the whole check 5.6x
        # slower (bench/bench_lora.py) and missed "trastuzumab-based" (a hyphen after a name).
        self._drugs: dict[tuple[str, ...], str] = {}
        for name in vocabulary.drugs:
            tokens = tuple(_TOKEN.findall(name))
            if tokens:
                self._drugs.setdefault(tokens, name)
        self._longest = max((len(t) for t in self._drugs), default=0)

    def drugs(self, text: str) -> set[str]:
        """Drug names in ``text`` (lower case, as the vocabulary spells them)."""
        tokens = _TOKEN.findall(text.lower())
        found: set[str] = set()
        i = 0
        while i < len(tokens):
            for n in range(min(self._longest, len(tokens) - i), 0, -1):
                name = self._drugs.get(tuple(tokens[i : i + n]))
                if name is not None:
                    found.add(name)
                    i += n
                    break
            else:
                i += 1
        return found

    def entities(self, text: str) -> set[str]:
        """Every entity of ``text``, as ``kind:value`` strings."""
        found = {f"drug:{d}" for d in self.drugs(text)}
        for match in _WORD.finditer(text):
            word = match.group(0)
            if word in self.vocabulary.genes or (
                _GENE_LIKE.match(word) and not word.startswith(_NOT_GENES)
            ):
                found.add(f"gene:{word}")
        found.update(f"variant:{m.group(0).removeprefix('p.')}" for m in _PROTEIN.finditer(text))
        found.update(f"variant:{m.group(0)}" for m in _CDNA.finditer(text))
        found.update(f"{m.group(1).lower()}:{m.group(2).upper()}" for m in _TIER.finditer(text))
        found.update(f"number:{_number(m.group(0))}" for m in _NUMBER.finditer(text))
        return found

    def __call__(self, text: str, finding: Mapping[str, Any]) -> list[str]:
        allowed = self.entities(flatten(finding))
        return sorted(self.entities(text) - allowed)

    def unsupported_drugs(self, text: str, finding: Mapping[str, Any]) -> list[str]:
        """Drugs ``text`` names that ``finding`` does not (a drug the facts do not support)."""
        return sorted(self.drugs(text) - self.drugs(flatten(finding)))


def _number(text: str) -> str:
    if "." in text:
        return text.rstrip("0").rstrip(".") if text.rstrip("0").rstrip(".") else "0"
    return text.lstrip("0") or "0"
