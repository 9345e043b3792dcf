"""Alteration lists as clinicians paste them, and CSV/TSV tables with a header.

One alteration per line (``;`` also separates); ``#`` starts a comment; bullets and numbering are
ignored. Understood forms (gene symbols case-insensitive)::

    TP53:c.818G>A        TP53 c.818G>A         NM_000546.6(TP53):c.818G>A
    TP53:p.Arg273His     BRAF V600E            EGFR p.L858R          KRAS p.(Gly12Asp)
    BRAF 7:140753336 A>T GRCh38                chr7-140753336-A-T (with build=)
    ALK fusion           EML4-ALK fusion       EML4::ALK             RET rearrangement
    ERBB2 amplification  MET amp               CDKN2A deletion       PTEN loss
    MSI-H                MSI high              MSS (no finding)      TMB 12    TMB: 12.5 mut/Mb
    DPYD *2A/*2A         UGT1A1 *1/*28         (pharmacogene diplotypes)
    BRCA1 c.68_69delAG germline het VAF 48% DP 120

Qualifiers anywhere on the line: ``germline``/``somatic`` (origin), ``het``/``hom``/``hemi``
(zygosity), ``VAF 0.31``/``AF=31%`` (allele fraction), ``DP 54``/``depth 54`` (reads).

Fusions: ``A-B``/``A::B`` is 5' partner ``A``, 3' partner ``B`` (HGVS/HGNC fusion notation), kept as
``Biomarker(gene=B, fusion_partner=A)``, the model's ``partner::gene`` label. A symbol with a hyphen
and a short or numeric right part (``NKX2-1``, ``HLA-A``) is one gene, not a fusion.

Lines that are not understood are problems at ``<name>:<line>`` (never a guess): for example
``EGFR exon 19 deletion`` (not HGVS), a protein change without a gene, ``TMB high`` without a
number.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Final

from inference.genomics.hgvs import protein_change_key
from inference.genomics.model import (
    Alteration,
    Biomarker,
    BiomarkerKind,
    Gene,
    GenomeBuild,
    GenomicPosition,
    Genotype,
    Origin,
    Variant,
    Zygosity,
)
from integrations.errors import IntakeError
from integrations.intake import IntakeResult
from integrations.normalise import (
    ORIGIN_WORDS,
    ZYGOSITY_WORDS,
    ProblemSink,
    allele,
    gene,
    hgvs_gene,
    normalise_chrom,
    parse_build,
    parse_fraction,
    split_hgvs,
)

#: Most lines (or table rows) read from one input.
MAX_LINES: Final = 200_000
#: Longest line accepted (characters).
MAX_LINE_CHARS: Final = 4_096

_BULLET = re.compile(r"^\s*(?:[-•*]\s+|\d{1,4}[.)]\s+)")
_FRACTION = re.compile(
    r"\b(?:t?vaf|af|allele\s+fraction|allele\s+frequency)\s*[:=]?\s*(\d+(?:\.\d+)?)\s*(%?)",
    re.IGNORECASE,
)
_BARE_PERCENT = re.compile(r"(?<![\w.*])(\d{1,3}(?:\.\d+)?)\s*%")
_DEPTH = re.compile(r"\b(?:dp|depth|reads)\s*[:=]?\s*(\d+)\b", re.IGNORECASE)
_BUILD_WORD = re.compile(r"\b(grch3[78]|hg19|hg38)\b", re.IGNORECASE)
_QUALIFIER = re.compile(
    r"\b(likely\s+germline|likely\s+somatic|germline|somatic|constitutional|de\s+novo|"
    r"heterozygous|homozygous|hemizygous|het|hom|hemi)\b",
    re.IGNORECASE,
)
_MSI_HIGH = re.compile(
    r"^(?:msi[-\s]?h(?:igh)?|msi[-\s]high|microsatellite\s+instability[-\s]high)$"
)
_MSI_NEGATIVE = re.compile(r"^(?:mss|msi[-\s]?(?:l|low|stable)|microsatellite\s+stable)$")
_TMB = re.compile(
    r"^tmb\s*[:=]?\s*(?P<value>\d+(?:\.\d+)?)\s*(?:mut(?:ation)?s?\s*/\s*mb|/mb|mut/mb)?$"
)
_TMB_WORD = re.compile(r"^tmb\b")
_POSITION = re.compile(
    r"^(?:chr)?(?P<chrom>[0-9]{1,2}|X|Y|MT?)[:\-_\s](?P<pos>\d+)[:\-_\s]?"
    r"(?P<ref>[ACGTN]+)\s*(?:>|:|-|/)\s*(?P<alt>[ACGTN]+)$",
    re.IGNORECASE,
)
_DIPLOTYPE = re.compile(r"^\*\w+\s*/\s*\*\w+$")
_FUSION_WORDS: Final = frozenset({"fusion", "fusions", "rearrangement", "rearranged", "fusion+"})
_AMP_WORDS: Final = frozenset(
    {"amplification", "amplified", "amp", "gain", "copy number gain", "copy-number gain"}
)
_DEL_WORDS: Final = frozenset(
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
_C_HGVS = re.compile(r"^[cn]\.[-*]?\d[\w+*_>.()\-?]*$")
_P_HGVS = re.compile(r"^p\.\S+$")
_G_HGVS = re.compile(r"^[A-Z]{2}_\d+(?:\.\d+)?:g\.\S+$")


class LineError(ValueError):
    """A line that is not a readable alteration; its message is the reason."""


Parsed = Alteration | Genotype | None


def _strip_qualifiers(text: str) -> tuple[str, Origin, Zygosity, float | None, int | None]:
    fraction: float | None = None
    depth: int | None = None
    match = _FRACTION.search(text)
    if match:
        fraction = _fraction(match.group(1), percent=bool(match.group(2)))
        text = text[: match.start()] + " " + text[match.end() :]
    else:
        bare = _BARE_PERCENT.search(text)
        if bare:
            fraction = _fraction(bare.group(1), percent=True)
            text = text[: bare.start()] + " " + text[bare.end() :]
    match = _DEPTH.search(text)
    if match:
        depth = int(match.group(1))
        text = text[: match.start()] + " " + text[match.end() :]
    origin = Origin.UNKNOWN
    zygosity = Zygosity.UNKNOWN

    def qualifier(found: re.Match[str]) -> str:
        nonlocal origin, zygosity
        word = re.sub(r"\s+", " ", found.group(1).lower())
        if word in ORIGIN_WORDS:
            origin = ORIGIN_WORDS[word]
        elif word in ZYGOSITY_WORDS:
            zygosity = ZYGOSITY_WORDS[word]
        return " "

    # "homozygous deletion" is a copy-number call, not a zygosity qualifier.
    if not re.search(r"homozygous\s+deletion", text, re.IGNORECASE):
        text = _QUALIFIER.sub(qualifier, text)
    else:
        text = re.sub(r"\b(germline|somatic)\b", qualifier, text, flags=re.IGNORECASE)
    # "(germline)" has lost its word above; "(het)" → "het"; HGVS parentheses stay as they are.
    text = re.sub(r"\(\s*\)|\[\s*\]", " ", text)
    text = re.sub(r"(?<!\S)\((\S+)\)(?!\S)", r"\1", text)
    text = re.sub(r",(\s|$)", " ", text)
    return " ".join(text.split()), origin, zygosity, fraction, depth


def _fraction(value: str, *, percent: bool) -> float:
    number = parse_fraction(float(value), percent=percent)
    if number is None:
        raise LineError(f"allele fraction {value}{'%' if percent else ''} is outside 0..1")
    return number


def _gene_or_error(token: str) -> Gene:
    found = gene(token)
    if found is None:
        raise LineError(f"{token!r} is not a gene symbol")
    return found


def _split_fusion(token: str) -> tuple[Gene | None, Gene] | None:
    """(5' partner, 3' gene) from ``A::B``/``A-B``/``A--B``, or None when one gene."""
    parts = [p for p in re.split(r"::|--|-|/", token) if p]
    if "::" in token or "--" in token:
        if len(parts) != 2:
            return None
        return _gene_or_error(parts[0]), _gene_or_error(parts[1])
    if len(parts) == 2 and len(parts[1]) >= 2 and not parts[1].isdigit() and parts[1][0].isalpha():
        five, three = gene(parts[0]), gene(parts[1])
        if five is not None and three is not None:
            return five, three
    return None


@dataclass(frozen=True, slots=True)
class _Qualifiers:
    origin: Origin = Origin.UNKNOWN
    zygosity: Zygosity = Zygosity.UNKNOWN
    fraction: float | None = None
    depth: int | None = None


_NO_MATCH: Final = object()


def parse_line(text: str, *, build: GenomeBuild | None = None) -> Parsed:
    """Parse one pasted line into an alteration, a genotype, or ``None`` for a negative result.

    Raises:
        LineError: the line is not understood (the message says why).
    """
    if len(text) > MAX_LINE_CHARS:
        raise LineError(f"line longer than {MAX_LINE_CHARS} characters")
    body, origin, zygosity, fraction, depth = _strip_qualifiers(_BULLET.sub("", text))
    qualifiers = _Qualifiers(origin, zygosity, fraction, depth)
    build_match = _BUILD_WORD.search(body)
    if build_match:
        build = parse_build(build_match.group(1))
        body = " ".join((body[: build_match.start()] + body[build_match.end() :]).split())
    body = re.sub(r"\s*/\s*(?=\*)", "/", body)
    if not body:
        raise LineError("nothing but qualifiers on the line")
    genome_wide = _genome_wide(body.lower())
    if genome_wide is not _NO_MATCH:
        return genome_wide  # type: ignore[return-value]  # _NO_MATCH excluded above
    tokens = body.split()
    # A bare genomic position (chr7:140753336 A>T), possibly after a gene symbol.
    for start in (0, 1):
        position = _POSITION.match(" ".join(tokens[start:]))
        if position and (start == 0 or gene(tokens[0]) is not None):
            return _position_variant(
                position, tokens[0] if start else None, build=build, qualifiers=qualifiers
            )
    gene_level = _gene_level(tokens, origin)
    if gene_level is not None:
        return gene_level
    return _gene_change(tokens, qualifiers)


def _genome_wide(lowered: str) -> object:
    """MSI / TMB lines (``None`` for a negative MSI result), else ``_NO_MATCH``."""
    if _MSI_HIGH.match(lowered):
        return Biomarker(kind=BiomarkerKind.MSI_HIGH)
    if _MSI_NEGATIVE.match(lowered):
        return None
    if _TMB_WORD.match(lowered):
        tmb = _TMB.match(lowered)
        if tmb is None:
            raise LineError("TMB needs a number in mutations/Mb (e.g. 'TMB 12')")
        return Biomarker(kind=BiomarkerKind.TMB, tmb=float(tmb.group("value")))
    if "exon" in lowered.split():
        raise LineError("exon-level descriptions are not HGVS; give the c. or p. change")
    return _NO_MATCH


def _gene_level(tokens: list[str], origin: Origin) -> Biomarker | None:
    """Fusion / amplification / deletion lines, else ``None``."""
    head, rest = tokens[0], tokens[1:]
    rest_text = " ".join(rest).lower()
    biomarker_origin = origin if origin is not Origin.UNKNOWN else Origin.SOMATIC
    if rest_text in _FUSION_WORDS or (not rest and ("::" in head or "--" in head)):
        fusion = _split_fusion(head)
        five, three = fusion if fusion else (None, _gene_or_error(head))
        return Biomarker(
            kind=BiomarkerKind.FUSION, gene=three, fusion_partner=five, origin=biomarker_origin
        )
    if rest_text in _AMP_WORDS or rest_text in _DEL_WORDS:
        kind = BiomarkerKind.AMPLIFICATION if rest_text in _AMP_WORDS else BiomarkerKind.DELETION
        return Biomarker(kind=kind, gene=_gene_or_error(head), origin=biomarker_origin)
    return None


def _gene_change(tokens: list[str], qualifiers: _Qualifiers) -> Variant | Genotype:
    """``GENE change`` / ``GENE:change`` / ``NM_…(GENE):c.…`` / ``GENE *1/*2A``."""
    head, rest = tokens[0], tokens[1:]
    if len(tokens) == 1:
        accession, expression = split_hgvs(head)
        if accession is not None:
            symbol = hgvs_gene(head)
            if symbol is None:
                raise LineError("HGVS with a transcript but no gene; write 'GENE c.…'")
            return _hgvs_variant(_gene_or_error(symbol), expression, accession, qualifiers)
        if ":" in head:
            head, change = head.split(":", 1)
            rest = [change]
        elif protein_change_key(head) is not None or _C_HGVS.match(head):
            raise LineError("a change without a gene; write 'GENE change' (e.g. 'BRAF V600E')")
        else:
            raise LineError("a gene alone is not an alteration; add the change (e.g. 'V600E')")
    if len(rest) == 2 and _C_HGVS.match(split_hgvs(rest[0])[1]) and rest[1].startswith("p."):
        # "BRAF c.1799T>A (p.V600E)": both forms of one variant.
        coding = _hgvs_variant(_gene_or_error(head), *_swap(split_hgvs(rest[0])), qualifiers)
        protein = _hgvs_variant(_gene_or_error(head), rest[1], None, qualifiers)
        return replace(coding, hgvs_p=protein.hgvs_p, protein_change=protein.protein_change)
    if len(rest) != 1:
        raise LineError(f"could not understand {' '.join(rest)!r} after the gene")
    if _DIPLOTYPE.match(rest[0]):
        return Genotype(gene=_gene_or_error(head), diplotype=rest[0].replace(" ", ""))
    accession, expression = split_hgvs(rest[0])
    return _hgvs_variant(_gene_or_error(head), expression, accession, qualifiers)


def _swap(pair: tuple[str | None, str]) -> tuple[str, str | None]:
    return pair[1], pair[0]


def _hgvs_variant(
    gene_: Gene, change: str, transcript: str | None, qualifiers: _Qualifiers
) -> Variant:
    hgvs_c = hgvs_p = None
    key = None
    if _C_HGVS.match(change):
        hgvs_c = change
    elif _P_HGVS.match(change):
        hgvs_p = change
        key = protein_change_key(change)
    else:
        key = protein_change_key(change)
        if key is None:
            raise LineError(f"{change!r} is not a c. or p. HGVS change")
        hgvs_p = f"p.{change}"
    return Variant(
        gene=gene_,
        hgvs_c=hgvs_c,
        hgvs_p=hgvs_p,
        transcript=transcript,
        protein_change=key,
        origin=qualifiers.origin,
        zygosity=qualifiers.zygosity,
        allele_frequency=qualifiers.fraction,
        depth=qualifiers.depth,
    )


def _position_variant(
    match: re.Match[str],
    symbol: str | None,
    *,
    build: GenomeBuild | None,
    qualifiers: _Qualifiers,
) -> Variant:
    if build is None:
        raise LineError("a genomic position needs the build (add GRCh37 or GRCh38)")
    chrom = normalise_chrom(match.group("chrom"))
    ref, alt = allele(match.group("ref")), allele(match.group("alt"))
    if chrom is None or ref is None or alt is None or ref == alt:
        raise LineError("invalid genomic position or alleles")
    return Variant(
        gene=_gene_or_error(symbol) if symbol else None,
        position=GenomicPosition(build, chrom, int(match.group("pos")), ref, alt),
        origin=qualifiers.origin,
        zygosity=qualifiers.zygosity,
        allele_frequency=qualifiers.fraction,
        depth=qualifiers.depth,
    )


def _with_source(item: Parsed, location: str) -> Parsed:
    if isinstance(item, Variant):
        return _replace_source(item, location)
    if isinstance(item, Biomarker):
        return Biomarker(
            kind=item.kind,
            gene=item.gene,
            fusion_partner=item.fusion_partner,
            copy_number=item.copy_number,
            tmb=item.tmb,
            origin=item.origin,
            source_ref=location,
        )
    if isinstance(item, Genotype):
        return Genotype(gene=item.gene, diplotype=item.diplotype, source_ref=location)
    return None


def _replace_source(variant: Variant, location: str) -> Variant:
    return replace(variant, source_ref=location)


def _add(result: IntakeResult, item: Parsed) -> None:
    if isinstance(item, Genotype):
        result.genotypes.append(item)
    elif item is not None:
        result.alterations.append(item)


def _items(line: str) -> Iterator[str]:
    """Split a line at ``;`` outside brackets (HGVS alleles ``c.[76A>C;83G>C]`` keep theirs)."""
    depth = 0
    current: list[str] = []
    for char in line:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth = max(0, depth - 1)
        if char == ";" and depth == 0:
            yield "".join(current)
            current = []
        else:
            current.append(char)
    yield "".join(current)


def parse_text_list(
    text: str,
    *,
    build: GenomeBuild | str | None = None,
    strict: bool = False,
    name: str = "text",
) -> IntakeResult:
    """Read a pasted alteration list (see the module docstring for the forms understood).

    Args:
        text: the pasted text.
        build: genome build for lines given as genomic positions without one.
        strict: raise :class:`IntakeError` with every problem instead of keeping good lines.
        name: what the input is called in problem locations (``text:3``).

    Returns:
        Alterations, genotypes and one problem per line not understood.

    Raises:
        IntakeError: strict mode with problems, too many lines, or nothing readable.
    """
    default_build = _build_arg(build)
    sink = ProblemSink(name)
    result = IntakeResult()
    for number, raw in enumerate(text.splitlines(), start=1):
        if number > MAX_LINES:
            raise IntakeError(f"{name}: more than {MAX_LINES} lines")
        line = raw.split("#", 1)[0]
        for item_text in _items(line):
            if not item_text.strip():
                continue
            location = f"{name}:{number}"
            result.records_read += 1
            try:
                item = parse_line(item_text.strip(), build=default_build)
            except LineError as exc:
                sink.add(location, f"{exc} (line: {_clip(item_text)})")
                continue
            _add(result, _with_source(item, location))
    return sink.finish(result, strict=strict)


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _build_arg(build: GenomeBuild | str | None) -> GenomeBuild | None:
    if build is None:
        return None
    found = parse_build(str(build))
    if found is None:
        raise IntakeError(f"unknown genome build {build!r}; use GRCh37 or GRCh38")
    return found


# ------------------------------------------------------------------ tables

#: Header aliases (case-insensitive, spaces/dots/dashes read as underscores) → field.
_ALIASES: Final = {
    "gene": ("gene", "gene_symbol", "symbol", "hugo_symbol", "hgnc_symbol", "gene_name"),
    "hgnc_id": ("hgnc_id", "hgnc"),
    "hgvs_c": ("hgvs_c", "hgvsc", "cdna", "c_dot", "cdna_change", "coding_change", "c_hgvs"),
    "hgvs_p": (
        "hgvs_p",
        "hgvsp",
        "hgvsp_short",
        "protein",
        "protein_change",
        "aa_change",
        "amino_acid_change",
        "p_dot",
        "p_hgvs",
    ),
    "hgvs_g": ("hgvs_g", "hgvsg", "g_dot"),
    "transcript": ("transcript", "transcript_id", "refseq", "feature", "nm"),
    "chrom": ("chrom", "chr", "chromosome", "_chrom", "contig"),
    "pos": ("pos", "position", "start", "start_position"),
    "ref": ("ref", "reference", "ref_allele", "reference_allele"),
    "alt": ("alt", "alternate", "alt_allele", "alternate_allele", "tumor_seq_allele2"),
    "build": ("build", "genome_build", "assembly", "ncbi_build", "reference_genome"),
    "origin": ("origin", "genomic_source", "source_class", "mutation_status", "germline_somatic"),
    "vaf": ("vaf", "af", "allele_fraction", "allele_frequency", "tumor_vaf", "t_vaf"),
    "depth": ("depth", "dp", "read_depth", "t_depth", "coverage"),
    "zygosity": ("zygosity", "allelic_state"),
    "alteration": ("alteration", "variant", "mutation", "biomarker", "finding", "change"),
    "kind": ("kind", "alteration_type", "type", "variant_class", "category"),
    "partner": ("partner", "fusion_partner", "partner_gene", "five_prime_gene"),
    "tmb": ("tmb",),
    "diplotype": ("diplotype", "genotype"),
}
_ALIAS_TO_FIELD: Final = {alias: field for field, aliases in _ALIASES.items() for alias in aliases}


def _field_name(header: str) -> str | None:
    key = re.sub(r"[\s.\-#]+", "_", header.strip().lower()).strip("_")
    return _ALIAS_TO_FIELD.get(key) or _ALIAS_TO_FIELD.get(f"_{key}")


def read_table(
    text: str,
    *,
    build: GenomeBuild | str | None = None,
    strict: bool = False,
    name: str = "table",
) -> IntakeResult:
    """Read a CSV or TSV with a header row (column names matched through aliases).

    Columns: gene, hgnc_id, hgvs_c, hgvs_p, hgvs_g, transcript, chrom/pos/ref/alt, build, origin,
    vaf (fraction, or with ``%``), depth, zygosity; or a free-text ``alteration`` column read like
    a pasted line (``gene`` is prefixed when the text lacks it); ``kind`` amplification / deletion /
    fusion with ``partner``; ``tmb``; ``diplotype``.

    Raises:
        IntakeError: no usable header, strict mode with problems, or nothing readable.
    """
    default_build = _build_arg(build)
    first_line = text.split("\n", 1)[0]
    delimiter = (
        "\t"
        if "\t" in first_line
        else (";" if first_line.count(";") > first_line.count(",") else ",")
    )
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration as exc:
        raise IntakeError(f"{name}: empty table") from exc
    except csv.Error as exc:
        raise IntakeError(f"{name}:1: unreadable header: {exc}") from exc
    fields = [_field_name(h) for h in header]
    if not {"gene", "alteration", "chrom", "hgvs_g"} & set(filter(None, fields)):
        raise IntakeError(
            f"{name}:1: no gene, alteration or chrom column in the header "
            f"(found: {', '.join(h.strip() for h in header[:12])})"
        )
    sink = ProblemSink(name)
    result = IntakeResult()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            sink.add(f"{name}:{reader.line_num}", f"unreadable row: {exc}")
            continue
        if reader.line_num > MAX_LINES:
            raise IntakeError(f"{name}: more than {MAX_LINES} rows")
        if not any(cell.strip() for cell in row):
            continue
        location = f"{name}:{reader.line_num}"
        result.records_read += 1
        values = {
            f: cell.strip() for f, cell in zip(fields, row, strict=False) if f and cell.strip()
        }
        try:
            item = _row(values, default_build)
        except LineError as exc:
            sink.add(location, str(exc))
            continue
        _add(result, _with_source(item, location))
    return sink.finish(result, strict=strict)


def _row(values: dict[str, str], default_build: GenomeBuild | None) -> Parsed:
    row_build = default_build
    if "build" in values:
        row_build = parse_build(values["build"])
        if row_build is None:
            raise LineError(f"unknown genome build {values['build']!r}")
    symbol = values.get("gene")
    if "alteration" in values and not ({"hgvs_c", "hgvs_p", "chrom"} & values.keys()):
        text = values["alteration"]
        if (
            symbol
            and not text.upper().startswith(symbol.upper())
            and not _MSI_HIGH.match(text.lower())
        ):
            text = f"{symbol} {text}"
        for extra in ("origin", "zygosity"):
            if extra in values:
                text += f" {values[extra]}"
        item = parse_line(text, build=row_build)
        return _with_row_numbers(item, values)
    kind = values.get("kind", "").lower()
    if kind in _FUSION_WORDS or kind in _AMP_WORDS or kind in _DEL_WORDS:
        partner = values.get("partner")
        line = f"{partner}::{symbol}" if partner and kind in _FUSION_WORDS else f"{symbol}"
        return parse_line(f"{line} {kind}", build=row_build)
    if "tmb" in values:
        return parse_line(f"TMB {values['tmb']}")
    if "diplotype" in values and symbol:
        return parse_line(f"{symbol} {values['diplotype']}")
    return _row_variant(values, symbol, row_build)


def _with_row_numbers(item: Parsed, values: dict[str, str]) -> Parsed:
    if not isinstance(item, Variant):
        return item
    fraction, depth = _row_fraction(values), _row_depth(values)
    return replace(
        item,
        allele_frequency=fraction if fraction is not None else item.allele_frequency,
        depth=depth if depth is not None else item.depth,
    )


def _row_fraction(values: dict[str, str]) -> float | None:
    raw = values.get("vaf")
    if raw is None:
        return None
    percent = raw.endswith("%")
    try:
        number = float(raw.rstrip("%").strip())
    except ValueError as exc:
        raise LineError(f"vaf {raw!r} is not a number") from exc
    if number > 1 and not percent:
        raise LineError(f"vaf {raw!r} is above 1: give a fraction (0.31) or a percentage (31%)")
    return _fraction(str(number), percent=percent)


def _row_depth(values: dict[str, str]) -> int | None:
    raw = values.get("depth")
    if raw is None:
        return None
    if not raw.isdigit():
        raise LineError(f"depth {raw!r} is not a read count")
    return int(raw)


def _row_position(values: dict[str, str], build: GenomeBuild | None) -> GenomicPosition | None:
    if {"chrom", "pos", "ref", "alt"} <= values.keys():
        ref, alt = values["ref"], values["alt"]
        if ref in {"-", "."} or alt in {"-", "."}:
            # MAF-style indel alleles lack VCF's anchor base; HGVS (if given) still identifies it.
            return None
        chrom = normalise_chrom(values["chrom"])
        ref_allele, alt_allele = allele(ref), allele(alt)
        if not values["pos"].isdigit() or chrom is None or ref_allele is None or not alt_allele:
            raise LineError("invalid chrom/pos/ref/alt")
        if build is None:
            raise LineError("genomic position without a build (add a build column or build=)")
        return GenomicPosition(build, chrom, int(values["pos"]), ref_allele, alt_allele)
    if values.keys() & {"chrom", "pos", "ref", "alt"}:
        raise LineError("chrom, pos, ref and alt must be given together")
    return None


def _row_variant(values: dict[str, str], symbol: str | None, build: GenomeBuild | None) -> Variant:
    gene_ = gene(symbol, values.get("hgnc_id")) if symbol else None
    if symbol and gene_ is None:
        raise LineError(f"{symbol!r} is not a gene symbol")
    transcript = values.get("transcript")
    hgvs_c = hgvs_p = None
    if "hgvs_c" in values:
        accession, hgvs_c = split_hgvs(values["hgvs_c"])
        if not _C_HGVS.match(hgvs_c):
            raise LineError(f"hgvs_c {values['hgvs_c']!r} is not a c. HGVS change")
        transcript = transcript or accession
    key = None
    if "hgvs_p" in values:
        hgvs_p = split_hgvs(values["hgvs_p"])[1]
        key = protein_change_key(hgvs_p)
        if not hgvs_p.startswith("p."):
            if key is None:
                raise LineError(f"hgvs_p {values['hgvs_p']!r} is not a protein change")
            hgvs_p = f"p.{hgvs_p}"
    hgvs_g = values.get("hgvs_g")
    if hgvs_g is not None and not _G_HGVS.match(hgvs_g):
        raise LineError(f"hgvs_g {hgvs_g!r} is not NC_…:g.… HGVS")
    position = _row_position(values, build)
    if position is None and not (gene_ and (hgvs_c or hgvs_p)) and not hgvs_g:
        raise LineError("row has neither gene with HGVS nor a genomic position")
    origin = Origin.UNKNOWN
    if "origin" in values:
        word = values["origin"].lower()
        if word not in ORIGIN_WORDS:
            raise LineError(f"origin {values['origin']!r} is not germline or somatic")
        origin = ORIGIN_WORDS[word]
    zygosity = ZYGOSITY_WORDS.get(values.get("zygosity", "").lower(), Zygosity.UNKNOWN)
    return Variant(
        gene=gene_,
        hgvs_c=hgvs_c,
        hgvs_p=hgvs_p,
        hgvs_g=hgvs_g,
        transcript=transcript,
        protein_change=key,
        position=position,
        origin=origin,
        zygosity=zygosity,
        allele_frequency=_row_fraction(values),
        depth=_row_depth(values),
    )
