"""Words for what is not an exact change: genome-wide biomarkers (MSI, TMB, HRD), gene-level
events (fusions, copy number) and classes of change (exon 19 deletion, FLT3-ITD).

Each reader returns ``None`` when the words are not its own, so the caller tries the next one;
it raises :class:`LineError` when the words are its own but incomplete (``TMB high``).
"""

from __future__ import annotations

import re
from typing import Final

from inference.genomics.hgvs import protein_change_key
from inference.genomics.model import Biomarker, BiomarkerKind, Gene, Origin, VariantClass
from integrations.normalise import gene
from integrations.notation.errors import LineError

_MSI_HIGH = re.compile(
    r"^(?:msi[-\s]?h(?:igh)?|msi[-\s]high|microsatellite\s+instability[-\s]high|"
    # The labels pair MSI-H with mismatch-repair deficiency (e.g. pembrolizumab, "MSI-H or dMMR").
    r"dmmr|mmr[-\s]?d(?:eficient)?|mismatch[-\s]repair[-\s]deficien(?:t|cy))$"
)
_MSI_NEGATIVE = re.compile(
    r"^(?:mss|msi[-\s]?(?:l|low|stable)|microsatellite\s+stable|pmmr|mmr[-\s]?proficient|"
    r"mismatch[-\s]repair[-\s]proficient)$"
)
_TMB = re.compile(
    r"^tmb\s*[:=]?\s*(?P<value>\d+(?:\.\d+)?)\s*(?:mut(?:ation)?s?\s*/\s*mb|/mb|mut/mb)?$"
)
_TMB_WORD = re.compile(r"^tmb\b")
_HRD_WORD = re.compile(r"^(?:hrd|hr[-\s](?:deficien|proficien)|homologous\s+recombination)")
_HRD_POSITIVE = re.compile(
    r"^(?:hrd[-\s]?(?:positive|pos|\+)|hrd\s+status\s*:?\s*positive|hr[-\s]deficient|"
    r"homologous\s+recombination\s+deficien(?:t|cy)(?:\s+positive)?)$"
)
_HRD_NEGATIVE = re.compile(
    r"^(?:hrd[-\s]?(?:negative|neg|-)|hrd\s+status\s*:?\s*negative|hr[-\s]proficient|"
    r"homologous\s+recombination\s+proficient)$"
)
_HRD_SCORE = re.compile(
    r"\b(?:gis|score|hrd\s+score|genomic\s+instability\s+score)\s*[:=]?\s*"
    r"(?P<score>\d+(?:\.\d+)?)\b"
)
FUSION_WORDS: Final = frozenset(
    {"fusion", "fusions", "rearrangement", "rearranged", "fusion+", "translocation"}
)
AMP_WORDS: Final = frozenset(
    {"amplification", "amplified", "amp", "gain", "copy number gain", "copy-number gain"}
)
DEL_WORDS: Final = frozenset(
    {
        "deletion",
        "deleted",
        "del",
        "loss",
        "homozygous deletion",
        "deep deletion",
        "copy number loss",
        "copy-number loss",
    }
)
# Exon-level classes labs write instead of HGVS: "exon 19 deletion", "ex20ins", "exon 14
# skipping", "exon 11 mutation". Only these three named classes and the generic exon mutation
# are read; any other "exon N <event>" is a problem (an exon 2 deletion is a copy-number event).
_EXON = re.compile(
    r"^(?:exon|ex)\s*(?P<exon>\d{1,3})\s*(?:in[-\s]?frame\s+)?"
    r"(?P<event>del(?:etion)?s?|ins(?:ertion)?s?|skip(?:ping)?|"
    r"(?:skipping|splice)\s+(?:mutation|variant|alteration)s?|"
    r"mut(?:ation)?s?|alterations?|variants?)$"
)
_NAMED_EXON_CLASSES: Final = {
    (19, "del"): VariantClass.EXON19_DELETION,
    (20, "ins"): VariantClass.EXON20_INSERTION,
    (14, "skip"): VariantClass.EXON14_SKIPPING,
}
#: Clinical shorthand for the two EGFR-style exon classes ("EGFR del19", "EGFR 20ins").
_SHORT_EXON_CLASSES: Final = {
    "del19": (VariantClass.EXON19_DELETION, 19),
    "19del": (VariantClass.EXON19_DELETION, 19),
    "ins20": (VariantClass.EXON20_INSERTION, 20),
    "20ins": (VariantClass.EXON20_INSERTION, 20),
}
_CLASS_WORDS: Final = {
    "itd": VariantClass.ITD,
    "internal tandem duplication": VariantClass.ITD,
    "tkd": VariantClass.TKD,
    "tkd mutation": VariantClass.TKD,
    "tyrosine kinase domain mutation": VariantClass.TKD,
    "truncating mutation": VariantClass.TRUNCATING,
    "truncating variant": VariantClass.TRUNCATING,
    "activating mutation": VariantClass.ACTIVATING,
    "kinase domain mutation": VariantClass.KINASE_DOMAIN,
    "mutation": VariantClass.MUTATION,
    "mutated": VariantClass.MUTATION,
    "mutant": VariantClass.MUTATION,
}
#: ``FLT3-ITD``, ``FLT3-TKD``, ``METex14``, ``EGFRex19del``: the class glued to the gene.
_GLUED = re.compile(
    r"^(?P<gene>[A-Za-z][A-Za-z0-9]*?)(?:-(?P<word>itd|tkd)|(?P<exon>ex\d.*))$", re.IGNORECASE
)

#: What :func:`genome_wide` returns for words that are not its own.
NO_MATCH: Final = object()
_FUSION_SEPARATOR = re.compile(r"::|--|-|/")


def genome_wide(lowered: str, source_ref: str | None = None) -> object:
    """MSI / TMB / HRD lines (``None`` for a negative result), else :data:`NO_MATCH`."""
    if _MSI_HIGH.match(lowered):
        return Biomarker(kind=BiomarkerKind.MSI_HIGH, source_ref=source_ref)
    if _MSI_NEGATIVE.match(lowered):
        return None
    if _TMB_WORD.match(lowered):
        tmb = _TMB.match(lowered)
        if tmb is None:
            raise LineError("TMB needs a number in mutations/Mb (e.g. 'TMB 12')")
        return Biomarker(
            kind=BiomarkerKind.TMB, tmb=float(tmb.group("value")), source_ref=source_ref
        )
    if _HRD_WORD.match(lowered):
        return _hrd(lowered, source_ref)
    return NO_MATCH


def _hrd(lowered: str, source_ref: str | None) -> Biomarker | None:
    score_match = _HRD_SCORE.search(lowered)
    score = float(score_match.group("score")) if score_match else None
    status = " ".join(_HRD_SCORE.sub(" ", lowered).replace("(", " ").replace(")", " ").split())
    if _HRD_NEGATIVE.match(status):
        return None
    if _HRD_POSITIVE.match(status):
        return Biomarker(kind=BiomarkerKind.HRD, score=score, source_ref=source_ref)
    # The cut-off belongs to the test (e.g. a genomic-instability score of 42 for one assay):
    # a score alone, or "HRD" alone, is not read as positive.
    raise LineError("HRD needs the lab's status: write 'HRD positive' (optionally 'score 48')")


def split_fusion(token: str) -> tuple[Gene, Gene] | None:
    """(5' partner, 3' gene) from ``A::B``/``A--B``/``A-B``, or ``None`` when not two genes.

    ``A-B`` is a fusion only when both parts read as genes and the right one is not a number,
    one letter or a protein change (``NKX2-1``, ``HLA-A`` and ``KRAS-G12C`` are not fusions).
    """
    separated = "-" in token or ":" in token or "/" in token
    parts = [p for p in _FUSION_SEPARATOR.split(token) if p] if separated else []
    if len(parts) != 2:
        return None
    if "::" in token or "--" in token:
        five, three = gene(parts[0]), gene(parts[1])
        if five is None or three is None:
            raise LineError(f"{token!r} is not two gene symbols joined by '::'")
        return five, three
    right = parts[1]
    if len(right) < 2 or right.isdigit() or not right[0].isalpha():
        return None
    if protein_change_key(right) is not None or right.lower() in {"itd", "tkd"}:
        return None
    five, three = gene(parts[0]), gene(right)
    if five is None or three is None:
        return None
    return five, three


def gene_level(
    head: str, rest_text: str, origin: Origin, source_ref: str | None = None
) -> Biomarker | None:
    """Fusion / amplification / deletion lines (``head`` the first token), else ``None``."""
    biomarker_origin = origin if origin is not Origin.UNKNOWN else Origin.SOMATIC
    fusion = split_fusion(head)
    if rest_text in FUSION_WORDS or (not rest_text and fusion is not None):
        five: Gene | None
        if fusion is not None:
            five, three = fusion
        else:
            five, three = None, gene_or_error(head)
        return Biomarker(
            kind=BiomarkerKind.FUSION,
            gene=three,
            fusion_partner=five,
            origin=biomarker_origin,
            source_ref=source_ref,
        )
    if rest_text in AMP_WORDS or rest_text in DEL_WORDS:
        kind = BiomarkerKind.AMPLIFICATION if rest_text in AMP_WORDS else BiomarkerKind.DELETION
        return Biomarker(
            kind=kind, gene=gene_or_error(head), origin=biomarker_origin, source_ref=source_ref
        )
    return None


def variant_class(head: str, rest_text: str) -> tuple[Gene, VariantClass, int | None] | None:
    """(gene, class, exon) for class lines (``EGFR exon 19 deletion``, ``FLT3-ITD``), else None."""
    if not rest_text:
        glued = _GLUED.match(head)
        if glued is None:
            return None
        head = glued.group("gene")
        rest_text = (glued.group("word") or glued.group("exon") or "").lower()
    compact = rest_text.replace(" ", "")
    short = _SHORT_EXON_CLASSES.get(compact)
    if short is None and head.upper() == "MET" and compact in {"ex14", "exon14"}:
        # "METex14" is the labels' own name for MET exon 14 skipping (capmatinib, tepotinib).
        short = (VariantClass.EXON14_SKIPPING, 14)
    if short is not None:
        return gene_or_error(head), short[0], short[1]
    exon_match = _EXON.match(rest_text)
    if exon_match is not None:
        number = int(exon_match.group("exon"))
        event = exon_match.group("event")
        for (exon, prefix), found in _NAMED_EXON_CLASSES.items():
            if number == exon and event.startswith(prefix):
                return gene_or_error(head), found, exon
        if event.startswith(("mut", "alteration", "variant")):
            return gene_or_error(head), VariantClass.EXON_MUTATION, number
        raise LineError(
            f"exon {number} {event} is not a class this reader knows (exon 19 deletion, exon 20 "
            "insertion, exon 14 skipping, exon N mutation); give the c. or p. change"
        )
    if re.match(r"^(?:exon|ex)\s*\d+$", rest_text):
        raise LineError(f"{rest_text} without the event; write e.g. 'exon 19 deletion'")
    found_class = _CLASS_WORDS.get(rest_text)
    if found_class is None:
        return None
    return gene_or_error(head), found_class, None


def gene_or_error(token: str) -> Gene:
    found = gene(token)
    if found is None:
        raise LineError(f"{token!r} is not a gene symbol")
    return found
