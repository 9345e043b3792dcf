"""CSV/TSV alteration tables with a header row (pasted lists: :mod:`integrations.textlist`).

Column names are matched through aliases (MAF, cBioPortal and lab-export spellings). A row is
either structured (gene, HGVS, chrom/pos/ref/alt, …) or a free-text ``alteration`` column read
by :func:`integrations.notation.read_line`, so every notation a pasted line accepts works in a
table too. Origin comes per row (an ``origin`` column, or ``germline`` in the alteration text),
else from the caller's ``origin``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from typing import Final

from inference.genomics.hgvs import protein_change_key
from inference.genomics.model import (
    GenomeBuild,
    GenomicPosition,
    Origin,
    Significance,
    Variant,
    Zygosity,
)
from integrations.errors import IntakeError
from integrations.intake import IntakeResult, with_default_origin
from integrations.normalise import (
    ORIGIN_WORDS,
    ZYGOSITY_WORDS,
    ProblemSink,
    allele,
    gene,
    normalise_chrom,
    parse_build,
    split_hgvs,
)
from integrations.notation import (
    AMP_WORDS,
    C_HGVS,
    DEL_WORDS,
    FUSION_WORDS,
    SIGNIFICANCE_WORDS,
    Item,
    LineError,
    fraction,
    read_line,
)
from integrations.textlist import MAX_LINES, add, build_arg

_G_HGVS = re.compile(r"^[A-Z]{2}_\d+(?:\.\d+)?:g\.\S+$")
_MSI_OR_GENOME_WIDE = re.compile(r"^(?:msi|mss|tmb|hrd|dmmr|pmmr)", re.IGNORECASE)

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
    "classification": (
        "classification",
        "clinical_significance",
        "significance",
        "clinsig",
        "acmg_classification",
    ),
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
    origin: Origin | None = None,
) -> IntakeResult:
    """Read a CSV or TSV with a header row (column names matched through aliases).

    Columns: gene, hgnc_id, hgvs_c, hgvs_p, hgvs_g, transcript, chrom/pos/ref/alt, build, origin,
    vaf (fraction, or with ``%``), depth, zygosity, classification (ACMG term); or a free-text
    ``alteration`` column read like a pasted line (``gene`` is prefixed when the text lacks
    it); ``kind`` amplification / deletion / fusion with ``partner``; ``tmb``; ``diplotype``.
    ``origin`` is the origin of every variant whose row states none.

    Raises:
        IntakeError: no usable header, strict mode with problems, or nothing readable.
    """
    default_build = build_arg(build)
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
            items = _row(values, default_build)
        except LineError as exc:
            sink.add(location, str(exc))
            continue
        add(result, items, location)
    return with_default_origin(sink.finish(result, strict=strict), origin)


def _row(values: dict[str, str], default_build: GenomeBuild | None) -> tuple[Item, ...]:
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
            and symbol.upper() not in re.split(r"[\s:/-]+", text.upper())
            and not _MSI_OR_GENOME_WIDE.match(text)
        ):
            text = f"{symbol} {text}"
        for extra in ("origin", "zygosity"):
            if extra in values:
                text += f" {values[extra]}"
        return tuple(_with_row_numbers(item, values) for item in read_line(text, build=row_build))
    kind = values.get("kind", "").lower()
    if kind in FUSION_WORDS or kind in AMP_WORDS or kind in DEL_WORDS:
        partner = values.get("partner")
        line = f"{partner}::{symbol}" if partner and kind in FUSION_WORDS else f"{symbol}"
        return read_line(f"{line} {kind}", build=row_build)
    if "tmb" in values:
        return read_line(f"TMB {values['tmb']}")
    if "diplotype" in values and symbol:
        return read_line(f"{symbol} {values['diplotype']}")
    if kind and symbol and not ({"hgvs_c", "hgvs_p", "hgvs_g", "chrom"} & values.keys()):
        # A class in the kind column ("exon 19 deletion", "ITD"): read like a pasted line.
        line = f"{symbol} {values['kind']}"
        if "origin" in values:
            line += f" {values['origin']}"
        return tuple(_with_row_numbers(item, values) for item in read_line(line, build=row_build))
    return (_row_variant(values, symbol, row_build),)


def _with_row_numbers(item: Item, values: dict[str, str]) -> Item:
    if not isinstance(item, Variant):
        return item
    row_fraction, depth = _row_fraction(values), _row_depth(values)
    classification = _row_classification(values)
    return replace(
        item,
        allele_frequency=row_fraction if row_fraction is not None else item.allele_frequency,
        classification=classification or item.classification,
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
    return fraction(str(number), percent=percent)


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
        if not C_HGVS.match(hgvs_c):
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
        classification=_row_classification(values),
    )


def _row_classification(values: dict[str, str]) -> Significance | None:
    raw = values.get("classification")
    if raw is None:
        return None
    found = SIGNIFICANCE_WORDS.get(" ".join(raw.lower().replace("_", " ").split()))
    if found is None:
        raise LineError(f"classification {raw!r} is not an ACMG term (pathogenic … benign)")
    return found
