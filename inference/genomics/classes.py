"""Biomarker classes by rule: which label-named classes a variant belongs to.

FDA labels name classes of alterations ("EGFR exon 19 deletions", "MET exon 14 skipping",
"deleterious BRCA-mutated"), not lists of variants. Each class here is a rule over the parsed
protein change (:mod:`inference.genomics.hgvs`), the coding (c.) change and what the report
states (:class:`~inference.genomics.model.VariantClass`, exon, classification), so a lab's exact
change and a lab's class name meet the knowledge base on the same key
(:mod:`inference.genomics.kb.keys`). Nothing here guesses: a change the rules cannot place gives
no class.

Exon coordinates (codons of the MANE Select / CIViC representative transcripts), only for the
exons the labels name:

- EGFR exon 19 = codons 729-761 (c.2185-2283, NM_005228 / ENST00000275493: CIViC variant 133
  "Exon 19 Deletion", ``c.2185_2283del``); exon 20 = codons 762-823 (Yasuda, Kobayashi & Costa,
  *Lancet Oncol* 2012;13:e23-31, "EGFR exon 20 insertion mutations in NSCLC"; it begins at the
  codon after exon 19 ends).
- MET exon 14 = c.2888-3028, codons 963-1010 (NM_000245.4: CIViC variant 324 "Exon 14 Skipping
  Mutation", GRCh37 7:116411903-116412043, anchored by CIViC variant 4386 c.3028G>A at
  116412043); its canonical splice sites are c.2888-1/-2 and c.3028+1/+2.
- ERBB2 tyrosine kinase domain = residues 720-987 (UniProt P04626, "Protein kinase" domain).
- FLT3 TKD = codons D835 and I836 (the FDA-approved LeukoStrat CDx FLT3 Mutation Assay named in
  the midostaurin and gilteritinib labels detects ITD and TKD mutations D835 and I836).
- PDGFRA exon 18 and KIT exons: no exon boundaries are cited here yet; those exons match when
  the report states the exon (``Variant.exon``), and the AYVAKIT fact also names D842 as its
  label does ("PDGFRA exon 18 mutation, including D842V").

Truncating (ACMG/AMP PVS1 classes, Richards et al. 2015, PMID 25741868): nonsense (not at the
start codon), frameshift, a coding (c.) indel whose length is not a multiple of three, or a
change at a canonical splice site (intron position ±1 or ±2). A stated benign, likely benign
or uncertain classification overrides the rule (the lab has assessed the variant).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from inference.genomics.hgvs import ChangeKind, ProteinChange
from inference.genomics.model import Significance, VariantClass

#: Classes a fact may name, with the genes each is defined for (``None``: any gene).
CLASS_GENES: Final[dict[str, frozenset[str] | None]] = {
    "exon19_deletion": frozenset({"EGFR"}),
    "exon20_insertion": frozenset({"EGFR", "ERBB2"}),
    "exon14_skipping": frozenset({"MET"}),
    "itd": frozenset({"FLT3"}),
    "tkd": frozenset({"FLT3"}),
    "activating": frozenset({"ERBB2"}),
    "kinase_domain": frozenset({"ABL1"}),
    "truncating": None,
}

#: Stated classes (report wording) → class names.
_STATED: Final = {
    VariantClass.EXON19_DELETION: "exon19_deletion",
    VariantClass.EXON20_INSERTION: "exon20_insertion",
    VariantClass.EXON14_SKIPPING: "exon14_skipping",
    VariantClass.ITD: "itd",
    VariantClass.TKD: "tkd",
    VariantClass.TRUNCATING: "truncating",
    VariantClass.ACTIVATING: "activating",
    VariantClass.KINASE_DOMAIN: "kinase_domain",
}

#: Class names as reports and CIViC variant names write them after the gene (``FLT3 ITD``).
_NAMED: Final = {
    "ITD": "itd",
    "INTERNAL TANDEM DUPLICATION": "itd",
    "TKD": "tkd",
    "EXON 19 DELETION": "exon19_deletion",
    "EXON 20 INSERTION": "exon20_insertion",
    "EXON 14 SKIPPING": "exon14_skipping",
    "EXON 14 SKIPPING MUTATION": "exon14_skipping",
}

#: (gene, exon) → (first codon, last codon), cited in the module docstring.
EXON_CODONS: Final = {
    ("EGFR", 19): (729, 761),
    ("EGFR", 20): (762, 823),
    ("MET", 14): (963, 1010),
}
#: (gene, exon) → (first, last) coding position (c.), for c.-only changes.
_EXON_CDNA: Final = {
    ("EGFR", 19): (2185, 2283),
    ("MET", 14): (2888, 3028),
}
#: Transcripts the c. coordinates above are for (a c. change on another transcript is not placed).
_TRANSCRIPTS: Final = {"EGFR": "NM_005228", "MET": "NM_000245"}
_ERBB2_KINASE: Final = (720, 987)
_FLT3_TKD: Final = frozenset({835, 836})
_MET14_SITES: Final = ((2888, -1), (2888, -2), (3028, 1), (3028, 2))
#: CIViC variant 4386, "Splice Site (c.3028G>A)": the last base of exon 14.
_MET14_NAMED: Final = frozenset({"c.3028G>A"})

_NOT_DELETERIOUS: Final = frozenset(
    {Significance.BENIGN, Significance.LIKELY_BENIGN, Significance.UNCERTAIN}
)
_DELETERIOUS: Final = frozenset({Significance.PATHOGENIC, Significance.LIKELY_PATHOGENIC})

_POS = r"(\*?-?\d+)([+-]\d+)?"
_CDNA = re.compile(
    rf"^(?:(?P<tx>[A-Z]{{2}}_\d+)(?:\.\d+)?:)?c\.{_POS}(?:_{_POS})?"
    r"(?P<op>delins|del|dup|ins|[ACGTN]>[ACGTN])(?P<seq>[ACGTN]*|\d*)$"
)


@dataclass(frozen=True, slots=True)
class CodingChange:
    """A c. change read far enough to place it: positions (base, intron offset) and length."""

    transcript: str | None
    start: tuple[int, int]
    end: tuple[int, int]
    op: str
    #: Net change in coding length (``None`` when not computable: UTR, intronic, no length).
    net: int | None
    #: True when both ends are coding positions (no UTR prefix, no intron offset).
    coding: bool


def parse_coding(text: str | None) -> CodingChange | None:
    """Read a c. HGVS change (substitution, del, dup, ins, delins), or ``None``."""
    if not text:
        return None
    found = _CDNA.match(text.strip().replace(" ", ""))
    if found is None:
        return None
    s_base, s_off, e_base, e_off = found.group(2, 3, 4, 5)
    utr = any(b is not None and b[0] in "*-" for b in (s_base, e_base))
    if utr:
        return None
    start = (int(s_base), int(s_off or 0))
    end = (int(e_base), int(e_off or 0)) if e_base is not None else start
    if end < start:
        return None
    op, seq = found.group("op"), found.group("seq")
    coding = start[1] == 0 and end[1] == 0
    net = _net_length(op, seq, start[0], end[0]) if coding else None
    return CodingChange(found.group("tx"), start, end, op, net, coding)


def _net_length(op: str, seq: str, start: int, end: int) -> int | None:
    span = end - start + 1
    if ">" in op:
        return 0
    length = int(seq) if seq.isdigit() else len(seq) if seq else None
    if op == "del":
        return -span
    if op == "dup":
        return span
    if length is None:
        return None
    if op == "ins":
        return length if span == 2 else None  # HGVS: ins between two adjacent bases
    return length - span  # delins


def _covers(change: CodingChange, site: tuple[int, int]) -> bool:
    # (base, offset) pairs sort in transcript order: c.3028 < c.3028+1 < c.3029-5 < c.3029.
    return change.start <= site <= change.end


def canonical_splice(change: CodingChange) -> bool:
    """The change touches an intron position ±1 or ±2 (a canonical splice site)."""
    candidates = {
        (base, off)
        for base, offset in (change.start, change.end)
        if offset
        for off in ((1, 2) if offset > 0 else (-1, -2))
    }
    return any(_covers(change, site) for site in candidates)


def is_truncating(change: ProteinChange | None, coding: CodingChange | None) -> bool:
    """Nonsense (not at the start codon), frameshift, c. frameshift indel or canonical splice."""
    if change is not None:
        if change.kind is ChangeKind.FRAMESHIFT:
            return True
        if change.kind is ChangeKind.NONSENSE:
            return change.start != 1
    if coding is None:
        return False
    if coding.coding and coding.net is not None and coding.net % 3 != 0:
        return True
    return canonical_splice(coding)


def is_deleterious(
    change: ProteinChange | None,
    coding: CodingChange | None,
    classification: Significance | None,
    *,
    known_pathogenic: bool,
) -> bool:
    """Truncating, stated (likely) pathogenic, or a pathogenic variant the KB knows.

    A stated benign/likely benign/uncertain classification wins over the truncating rule.
    """
    if classification in _DELETERIOUS or known_pathogenic:
        return True
    if classification in _NOT_DELETERIOUS:
        return False
    return is_truncating(change, coding)


def _on_transcript(gene: str, coding: CodingChange) -> bool:
    expected = _TRANSCRIPTS.get(gene)
    return expected is not None and coding.transcript in {None, expected}


def _in_codons(change: ProteinChange, first: int, last: int) -> bool:
    return first <= change.start and change.last <= last


def _inserts(change: ProteinChange) -> bool:
    if change.kind in {ChangeKind.INSERTION, ChangeKind.DUPLICATION}:
        return True
    return change.kind is ChangeKind.DELINS and len(change.alt) > change.last - change.start + 1


def _deletes(change: ProteinChange) -> bool:
    if change.kind is ChangeKind.DELETION:
        return True
    return change.kind is ChangeKind.DELINS and len(change.alt) < change.last - change.start + 1


def classes_of(
    gene: str,
    change: ProteinChange | None,
    coding: CodingChange | None,
    stated: VariantClass | None = None,
) -> frozenset[str]:
    """The class names (:data:`CLASS_GENES`) a variant of ``gene`` belongs to."""
    found: set[str] = set()
    if stated is not None and stated in _STATED:
        found.add(_STATED[stated])
    if is_truncating(change, coding):
        found.add("truncating")
    if change is not None:
        if gene == "EGFR":
            if _deletes(change) and _in_codons(change, *EXON_CODONS[("EGFR", 19)]):
                found.add("exon19_deletion")
            if _inserts(change) and _in_codons(change, *EXON_CODONS[("EGFR", 20)]):
                found.add("exon20_insertion")
        elif gene == "ERBB2":
            if _inserts(change) and _in_codons(change, *_ERBB2_KINASE):
                found.add("activating")
        elif (
            gene == "FLT3"
            and change.start in _FLT3_TKD
            and change.kind
            in {
                ChangeKind.SUBSTITUTION,
                ChangeKind.DELETION,
            }
        ):
            found.add("tkd")
    if coding is not None and _on_transcript(gene, coding):
        if gene == "MET" and (
            any(_covers(coding, site) for site in _MET14_SITES)
            or _coding_text(coding) in _MET14_NAMED
        ):
            found.add("exon14_skipping")
        if (
            gene == "EGFR"
            and coding.coding
            and coding.op == "del"
            and coding.net is not None
            and coding.net % 3 == 0
            and _EXON_CDNA[("EGFR", 19)][0] <= coding.start[0]
            and coding.end[0] <= _EXON_CDNA[("EGFR", 19)][1]
        ):
            found.add("exon19_deletion")
    return frozenset(found)


def named_class(gene: str, text: str | None) -> str | None:
    """The class a written name stands for (FLT3 ``ITD`` → ``itd``), if defined for the gene."""
    if not text:
        return None
    name = _NAMED.get(" ".join(text.upper().replace("-", " ").split()))
    if name is None:
        return None
    genes = CLASS_GENES[name]
    return name if genes is None or gene in genes else None


def _coding_text(coding: CodingChange) -> str:
    single = coding.start == coding.end and coding.start[1] == 0
    return f"c.{coding.start[0]}{coding.op}" if single else ""


def exons_of(gene: str, change: ProteinChange | None, stated_exon: int | None) -> set[int]:
    """Exons a change lies in: the stated one, or one of :data:`EXON_CODONS` containing it."""
    exons = {stated_exon} if stated_exon is not None else set()
    if change is not None:
        for (exon_gene, number), (first, last) in EXON_CODONS.items():
            if exon_gene == gene and _in_codons(change, first, last):
                exons.add(number)
    return exons


def exon_change(change: ProteinChange | None) -> str | None:
    """The exon-key change word for a protein change (``missense``/``deletion``/``insertion``)."""
    if change is None:
        return None
    if change.kind is ChangeKind.SUBSTITUTION:
        return "missense"
    if _deletes(change):
        return "deletion"
    if _inserts(change):
        return "insertion"
    return None
