"""The vocabulary the grounding checker recognises: the knowledge base's genes and drugs.

Drugs come from the KB's drug table (``inference/genomics/kb/sources/curated/drugs.toml``):
each generic name with its brands, synonyms and CIViC names, all folded to the generic name, so
"Braftovi", "LGX818" and "encorafenib" are one drug. Genes are the KB's gene symbols. Built
once per process (the sources do not change while it runs).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from inference.genomics import load_knowledge_base

DRUGS_TOML: Final = (
    Path(__file__).resolve().parent.parent
    / "genomics"
    / "kb"
    / "sources"
    / "curated"
    / "drugs.toml"
)
#: Names shorter than this, or without a letter, are not matched in free text ("2", "5-FU" is
#: kept): CIViC splits some regimen names into fragments that would match everywhere.
_MIN_NAME = 4
_HAS_LETTER = re.compile(r"[a-z]")


@dataclass(frozen=True, slots=True)
class Vocabulary:
    #: Lower-case drug name, brand, synonym or CIViC name → lower-case generic name.
    drugs: dict[str, str]
    #: Gene symbols of the KB: its statements, pharmacogenes and hereditary-risk genes.
    genes: frozenset[str]
    #: One alternation over every drug name, longest first (whole words, case-insensitive).
    drug_pattern: re.Pattern[str]

    def canonical_drug(self, name: str) -> str:
        """The generic name of ``name`` (itself, lower-cased, when the table lacks it)."""
        key = name.strip().lower()
        return self.drugs.get(key, key)


def _drug_names() -> dict[str, str]:
    data = tomllib.loads(DRUGS_TOML.read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    for entry in data.get("drug", []):
        generic = str(entry["name"]).strip().lower()
        names[generic] = generic
    # Other names after every generic name, so another drug's synonym never shadows a generic.
    for entry in data.get("drug", []):
        generic = str(entry["name"]).strip().lower()
        for other in (
            *entry.get("brands", ()),
            *entry.get("synonyms", ()),
            *entry.get("civic_names", ()),
        ):
            names.setdefault(str(other).strip().lower(), generic)
    for name in load_knowledge_base().drugs:
        names.setdefault(name.strip().lower(), name.strip().lower())
    return {k: v for k, v in names.items() if len(k) >= _MIN_NAME and _HAS_LETTER.search(k)}


@functools.cache
def vocabulary() -> Vocabulary:
    """The process-wide vocabulary (built on first use)."""
    drugs = _drug_names()
    kb = load_knowledge_base()
    hereditary = kb.hereditary.get("genes", {})
    genes = frozenset({*kb.genes, *kb.pharmacogenomics, *hereditary})
    alternation = "|".join(re.escape(n) for n in sorted(drugs, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])", re.IGNORECASE)
    return Vocabulary(drugs=drugs, genes=genes, drug_pattern=pattern)
