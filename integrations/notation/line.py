"""One line (or one ``;``-separated item) into the alterations and genotype it names."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final

from inference.genomics.hgvs import protein_change_key
from inference.genomics.model import (
    Alteration,
    Gene,
    GenomeBuild,
    GenomicPosition,
    Genotype,
    Variant,
)
from integrations.normalise import (
    allele,
    gene,
    hgvs_gene,
    normalise_chrom,
    parse_build,
    split_hgvs,
)
from integrations.notation.errors import LineError
from integrations.notation.phrases import (
    NO_MATCH,
    gene_level,
    gene_or_error,
    genome_wide,
    split_fusion,
    variant_class,
)
from integrations.notation.qualifiers import Qualifiers, strip_qualifiers

#: Longest line accepted (characters).
MAX_LINE_CHARS: Final = 4_096

Item = Alteration | Genotype

_BULLET = re.compile(r"^\s*(?:[-•*]\s+|\d{1,4}[.)]\s+)")
_BUILD_WORD = re.compile(r"\b(grch3[78]|hg19|hg38)\b", re.IGNORECASE)
_POSITION = re.compile(
    r"^(?:chr)?(?P<chrom>[0-9]{1,2}|X|Y|MT?)[:\-_\s](?P<pos>\d+)[:\-_\s]?"
    r"(?P<ref>[ACGTN]+)\s*(?:>|:|-|/)\s*(?P<alt>[ACGTN]+)$",
    re.IGNORECASE,
)
_BEFORE_STAR = re.compile(r"\s*/\s*(?=\*)")
_DIPLOTYPE = re.compile(r"^\*\w+\s*/\s*\*\w+$")
C_HGVS: Final = re.compile(r"^[cn]\.[-*]?\d[\w+*_>.()\-?]*$")
P_HGVS: Final = re.compile(r"^p\.\S+$")


def read_line(
    text: str, *, build: GenomeBuild | None = None, source_ref: str | None = None
) -> tuple[Item, ...]:
    """What one pasted line names: usually one item, none for a negative result (``MSS``),
    two for a fusion with a change in it (``BCR-ABL1 T315I``: the fusion and ``ABL1 T315I``).

    ``source_ref`` (``text:3``) is given to every item read.

    Raises:
        LineError: the line is not understood (the message says why).
    """
    if len(text) > MAX_LINE_CHARS:
        raise LineError(f"line longer than {MAX_LINE_CHARS} characters")
    body, qualifiers = strip_qualifiers(_BULLET.sub("", text), source_ref)
    build_match = _BUILD_WORD.search(body)
    if build_match:
        build = parse_build(build_match.group(1))
        body = " ".join((body[: build_match.start()] + body[build_match.end() :]).split())
    if "*" in body:
        body = _BEFORE_STAR.sub("/", body)
    if not body:
        raise LineError("nothing but qualifiers on the line")
    found = genome_wide(body.lower(), source_ref)
    if found is not NO_MATCH:
        return () if found is None else (found,)  # type: ignore[return-value]  # a Biomarker
    tokens = body.split()
    # A bare genomic position (chr7:140753336 A>T), possibly after a gene symbol.
    for start in (0, 1):
        position = _POSITION.match(" ".join(tokens[start:]))
        if position and (start == 0 or gene(tokens[0]) is not None):
            return (
                _position_variant(
                    position, tokens[0] if start else None, build=build, qualifiers=qualifiers
                ),
            )
    head, rest_text = tokens[0], " ".join(tokens[1:]).lower()
    if head.lower() in {"exon", "ex"}:
        raise LineError("an exon class without a gene; write e.g. 'EGFR exon 19 deletion'")
    classed = variant_class(head, rest_text)
    if classed is not None:
        gene_, found_class, exon = classed
        return (_variant(gene_, qualifiers, variant_class=found_class, exon=exon),)
    biomarker = gene_level(head, rest_text, qualifiers.origin, source_ref)
    if biomarker is not None:
        return (biomarker,)
    fusion = split_fusion(head) if len(tokens) > 1 else None
    if fusion is not None:
        # "BCR-ABL1 T315I": the change is in the 3' gene of the fusion; both are findings.
        fused = gene_level(head, "fusion", qualifiers.origin, source_ref)
        assert fused is not None
        change = _gene_change([fusion[1].symbol, *tokens[1:]], qualifiers)
        return (fused, change)
    return (_gene_change(tokens, qualifiers),)


def _variant(gene_: Gene | None, qualifiers: Qualifiers, **fields: Any) -> Variant:
    # Built at once (no dataclasses.replace): this runs for most lines of a list.
    return Variant(
        gene=gene_,
        origin=qualifiers.origin,
        zygosity=qualifiers.zygosity,
        allele_frequency=qualifiers.fraction,
        depth=qualifiers.depth,
        classification=qualifiers.classification,
        source_ref=qualifiers.source_ref,
        **fields,
    )


def _gene_change(tokens: list[str], qualifiers: Qualifiers) -> Variant | Genotype:
    """``GENE change`` / ``GENE:change`` / ``NM_…(GENE):c.…`` / ``GENE *1/*2A``."""
    head, rest = tokens[0], tokens[1:]
    if len(tokens) == 1:
        accession, expression = split_hgvs(head)
        if accession is not None:
            symbol = hgvs_gene(head)
            if symbol is None:
                raise LineError("HGVS with a transcript but no gene; write 'GENE c.…'")
            return _hgvs_variant(gene_or_error(symbol), expression, accession, qualifiers)
        if ":" in head:
            head, change = head.split(":", 1)
            rest = [change]
        elif protein_change_key(head) is not None or C_HGVS.match(head):
            raise LineError("a change without a gene; write 'GENE change' (e.g. 'BRAF V600E')")
        else:
            raise LineError("a gene alone is not an alteration; add the change (e.g. 'V600E')")
    if len(rest) == 2 and C_HGVS.match(split_hgvs(rest[0])[1]) and rest[1].startswith("p."):
        # "BRAF c.1799T>A (p.V600E)": both forms of one variant.
        accession, coding_text = split_hgvs(rest[0])
        coding = _hgvs_variant(gene_or_error(head), coding_text, accession, qualifiers)
        protein = _hgvs_variant(gene_or_error(head), rest[1], None, qualifiers)
        return replace(coding, hgvs_p=protein.hgvs_p, protein_change=protein.protein_change)
    if len(rest) != 1:
        raise LineError(f"could not understand {' '.join(rest)!r} after the gene")
    if _DIPLOTYPE.match(rest[0]):
        return Genotype(
            gene=gene_or_error(head),
            diplotype=rest[0].replace(" ", ""),
            source_ref=qualifiers.source_ref,
        )
    accession, expression = split_hgvs(rest[0])
    return _hgvs_variant(gene_or_error(head), expression, accession, qualifiers)


def _hgvs_variant(
    gene_: Gene, change: str, transcript: str | None, qualifiers: Qualifiers
) -> Variant:
    hgvs_c = hgvs_p = None
    key = None
    if C_HGVS.match(change):
        hgvs_c = change
    elif P_HGVS.match(change):
        hgvs_p = change
        key = protein_change_key(change)
    else:
        # Protein changes without "p.", in every HGVS form, 1- or 3-letter (E746_A750del,
        # Gln61Ter, W288fs*12): inference.genomics.hgvs reads them, or says it cannot.
        key = protein_change_key(change)
        if key is None:
            raise LineError(f"{change!r} is not a c. or p. HGVS change")
        hgvs_p = f"p.{change}"
    return _variant(
        gene_, qualifiers, hgvs_c=hgvs_c, hgvs_p=hgvs_p, transcript=transcript, protein_change=key
    )


def _position_variant(
    match: re.Match[str],
    symbol: str | None,
    *,
    build: GenomeBuild | None,
    qualifiers: Qualifiers,
) -> Variant:
    if build is None:
        raise LineError("a genomic position needs the build (add GRCh37 or GRCh38)")
    chrom = normalise_chrom(match.group("chrom"))
    ref, alt = allele(match.group("ref")), allele(match.group("alt"))
    if chrom is None or ref is None or alt is None or ref == alt:
        raise LineError("invalid genomic position or alleles")
    return _variant(
        gene_or_error(symbol) if symbol else None,
        qualifiers,
        position=GenomicPosition(build, chrom, int(match.group("pos")), ref, alt),
    )
