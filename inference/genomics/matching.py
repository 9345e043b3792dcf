"""Alteration → knowledge-base keys: how a variant or biomarker finds its statements.

Split from :mod:`inference.genomics.interpret` so the matching rules (notation, biomarker
classes) and the therapy logic (tiers, labels, conflicts) change independently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from inference.genomics import classes
from inference.genomics.hgvs import (
    THREE_TO_ONE,
    ChangeKind,
    parse_protein_change,
    protein_change_key,
)
from inference.genomics.kb import keys
from inference.genomics.kb.store import KnowledgeBase
from inference.genomics.model import Biomarker, BiomarkerKind, Gene, Origin, Variant

_AA = "|".join(THREE_TO_ONE) + "|[A-Z]"
_SUBSTITUTION = re.compile(r"^([A-Z])(\d+)([A-Z*])$")
_DELETION = re.compile(
    rf"^(?:[A-Z]{{2}}_\d+(?:\.\d+)?:)?(?:p\.)?\(?(?:{_AA})(\d+)(?:_(?:{_AA})(\d+))?"
    rf"(?:del|delins[A-Za-z*]+)\)?$"
)
_SPLICE = re.compile(r"c\.\*?-?\d+[+-][12](?!\d)")
_TRANSCRIPT = re.compile(r"^[^:]+:")


# ------------------------------------------------------------------ alteration → keys


@dataclass(slots=True)
class Match:
    gene: str | None
    protein: str | None
    keys: list[str]
    known_allele: bool = False
    warnings: list[str] = field(default_factory=list)


def strip_p(text: str | None) -> str | None:
    if not text:
        return None
    body = _TRANSCRIPT.sub("", text.strip())
    return body.removeprefix("p.").strip("()").upper() or None


def variant_match(variant: Variant, kb: KnowledgeBase) -> Match:
    gene = variant.gene.symbol.upper() if variant.gene else None
    protein = variant.protein_change or protein_change_key(variant.hgvs_p)
    match = Match(gene, protein, [])
    if variant.position is not None:
        allele = kb.genomic_alleles.get(variant.position.key)
        if allele is not None:
            kb_gene, kb_protein = allele
            if gene is not None and gene != kb_gene:
                match.warnings.append(
                    f"{variant.label}: position {variant.position.key} is {kb_gene} {kb_protein} "
                    f"in the knowledge base, not {gene}; matched by position"
                )
            gene, protein, match.known_allele = kb_gene, kb_protein, True
            match.gene, match.protein = gene, protein
    if gene is None:
        return match
    if protein is None and variant.hgvs_c:
        protein = kb.cdna_alleles.get(f"{gene}:{_TRANSCRIPT.sub('', variant.hgvs_c.strip())}")
        match.protein = protein
    if protein is not None:
        match.keys.append(keys.protein(gene, protein))
        sub = _SUBSTITUTION.match(protein)
        if sub and sub.group(1) != sub.group(3):
            match.keys.append(keys.codon(gene, f"{sub.group(1)}{sub.group(2)}"))
    for text in (variant.protein_change, strip_p(variant.hgvs_p)):
        if text:
            match.keys.append(keys.named(gene, text))
    deletion = _DELETION.match(variant.hgvs_p.strip()) if variant.hgvs_p else None
    if deletion is not None:
        start = int(deletion.group(1))
        end = int(deletion.group(2) or start)
        for matcher in kb.ranges.get(gene, ()):
            if matcher.start <= start and end <= matcher.end:
                match.keys.append(matcher.key)
    match.keys.extend(_class_keys(variant, gene, protein, match.keys, kb))
    return match


def _class_keys(
    variant: Variant, gene: str, protein: str | None, own: list[str], kb: KnowledgeBase
) -> list[str]:
    """Class, exon, deleterious and gene-level mutation keys (:mod:`inference.genomics.classes`)."""
    change = parse_protein_change(protein) if protein else None
    hgvs_c = variant.hgvs_c
    if hgvs_c and variant.transcript and ":" not in hgvs_c:
        hgvs_c = f"{variant.transcript}:{hgvs_c}"
    coding = classes.parse_coding(hgvs_c)
    names = set(classes.classes_of(gene, change, coding, variant.variant_class))
    for text in (variant.protein_change, strip_p(variant.hgvs_p)):
        named = classes.named_class(gene, text)
        if named is not None:
            names.add(named)
    found = [keys.variant_class(gene, name) for name in sorted(names)]
    kind = classes.exon_change(change)
    for number in sorted(classes.exons_of(gene, change, variant.exon)):
        found.append(keys.exon(gene, number))
        if kind is not None:
            found.append(keys.exon(gene, number, kind))
    known_pathogenic = any(key in kb.germline_pathogenic for key in own)
    if classes.is_deleterious(
        change, coding, variant.classification, known_pathogenic=known_pathogenic
    ):
        found.append(keys.deleterious(gene))
        if variant.origin in {Origin.GERMLINE, Origin.SOMATIC}:
            found.append(keys.deleterious(gene, variant.origin.value))
        else:
            # Origin not stated: the origin-specific facts are found, then shown as not
            # matched for want of the origin (:func:`inference.genomics.interpret._therapeutic`).
            found.extend(keys.deleterious(gene, origin) for origin in sorted(keys.ORIGINS))
    # A c. substitution alone may be synonymous: only indels and splice sites count from c.
    changed = (change is not None and change.kind is not ChangeKind.SYNONYMOUS) or (
        coding is not None and (coding.net not in (None, 0) or classes.canonical_splice(coding))
    )
    if changed or variant.variant_class is not None or variant.exon is not None:
        found.append(keys.mutation(gene))
    return found


def annotated(variant: Variant, match: Match) -> Variant:
    """A position-only variant the KB knows gets its gene and protein change (for labels).

    Only a known allele (exact genomic key) is annotated; nothing is inferred otherwise.
    """
    if not match.known_allele or match.gene is None:
        return variant
    if variant.gene is not None and variant.protein_change is not None:
        return variant
    return replace(
        variant,
        gene=variant.gene or Gene(match.gene),
        protein_change=variant.protein_change or match.protein,
    )


def biomarker_match(biomarker: Biomarker, kb: KnowledgeBase) -> Match:
    gene = biomarker.gene.symbol.upper() if biomarker.gene else None
    partner = biomarker.fusion_partner.symbol.upper() if biomarker.fusion_partner else None
    found: list[str] = []
    if biomarker.kind is BiomarkerKind.FUSION and gene:
        found.append(keys.fusion(gene))
        if partner:
            found.append(keys.fusion(partner))
            found.append(keys.fusion(gene, partner))
    elif biomarker.kind is BiomarkerKind.AMPLIFICATION and gene:
        found.append(keys.amplification(gene))
    elif biomarker.kind is BiomarkerKind.DELETION and gene:
        found.append(keys.deletion(gene))
    elif biomarker.kind is BiomarkerKind.MSI_HIGH:
        found.append(keys.MSI)
    elif biomarker.kind is BiomarkerKind.HRD:
        found.append(keys.HRD)
    elif biomarker.kind is BiomarkerKind.TMB and biomarker.tmb is not None:
        found.extend(key for threshold, key in kb.tmb_thresholds if biomarker.tmb >= threshold)
    return Match(gene, None, found)


def is_loss_of_function(variant: Variant, protein: str | None) -> bool:
    """Nonsense, frameshift or canonical ±1/2 splice-site variant (ACMG/AMP PVS1 classes).

    From the protein change, or from the c. change alone (:func:`classes.is_truncating`): a
    coding deletion, duplication or insertion whose length is not a multiple of three is a
    frameshift (BRCA1 c.68_69delAG, c.5266dupC); a nonsense change needs the p. change.
    """
    if protein is not None and (protein.endswith(("*", "fs"))):
        return not protein.startswith("M1")
    if variant.hgvs_c and _SPLICE.search(variant.hgvs_c):
        return True
    hgvs_c = variant.hgvs_c
    if hgvs_c and variant.transcript and ":" not in hgvs_c:
        hgvs_c = f"{variant.transcript}:{hgvs_c}"
    change = parse_protein_change(protein) if protein else None
    return classes.is_truncating(change, classes.parse_coding(hgvs_c))
