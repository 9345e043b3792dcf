"""One entry point for every intake format: :func:`read_variants` picks the reader.

Format choice (``fmt`` wins when given): by extension (``.vcf``, ``.vcf.gz``, ``.vcf.bgz``,
``.json``, ``.csv``, ``.tsv``, ``.txt``), else by content (gzip magic or ``##fileformat=VCF`` →
VCF; ``{``/``[`` → FHIR JSON; a first line with tabs or commas naming known columns → table;
otherwise a pasted text list). VCF is streamed from disk; the other formats are read whole and
are therefore limited to :data:`MAX_TEXT_BYTES`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final, Literal

from inference.genomics.model import GenomeBuild, Origin
from integrations.errors import IntakeError
from integrations.intake import IntakeResult, with_default_origin
from integrations.textlist import parse_text_list
from integrations.vcf import read_vcf

Format = Literal["vcf", "fhir", "csv", "tsv", "text"]
FORMATS: Final[tuple[str, ...]] = ("vcf", "fhir", "csv", "tsv", "text")
#: Largest non-VCF input read into memory (FHIR JSON, tables, text lists).
MAX_TEXT_BYTES: Final = 32 * 1024 * 1024
_EXTENSIONS: Final = {
    ".vcf": "vcf",
    ".vcf.gz": "vcf",
    ".vcf.bgz": "vcf",
    ".json": "fhir",
    ".fhir.json": "fhir",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "text",
    ".tab": "tsv",
}
_TABLE_WORDS: Final = ("gene", "hugo_symbol", "symbol", "chrom", "alteration", "hgvs")


def _format_from_name(name: str) -> str | None:
    lowered = name.lower()
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if lowered.endswith(ext):
            return _EXTENSIONS[ext]
    return None


def _format_from_content(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "vcf"  # of the formats read here, only VCF comes gzipped
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    if text.startswith("##fileformat=VCF"):
        return "vcf"
    if stripped[:1] in {"{", "["}:
        return "fhir"
    first = text.split("\n", 1)[0].lower()
    if ("\t" in first or "," in first) and any(word in first for word in _TABLE_WORDS):
        return "tsv" if "\t" in first else "csv"
    return "text"


def _head(path: Path, display: str) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(4096)
    except OSError as exc:
        raise IntakeError(f"{display}: cannot open: {exc.strerror}") from exc


def _read_small(path: Path, display: str) -> bytes:
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise IntakeError(f"{display}: larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB")
        return path.read_bytes()
    except OSError as exc:
        raise IntakeError(f"{display}: cannot open: {exc.strerror}") from exc


def read_variants(
    path_or_bytes: str | Path | bytes,
    *,
    fmt: Format | str | None = None,
    build: GenomeBuild | str | None = None,
    strict: bool = False,
    origin: Origin | None = None,
    sample: str | None = None,
    name: str | None = None,
) -> IntakeResult:
    """Read alterations and genotypes from a file path or raw bytes, whatever the format.

    Args:
        path_or_bytes: a path, or the bytes of an upload / pasted text.
        fmt: ``vcf``, ``fhir``, ``csv``, ``tsv`` or ``text``; detected when omitted.
        build: genome build for inputs that do not state it (VCF header, FHIR 62374-4, …).
        strict: raise :class:`IntakeError` with every problem instead of keeping good records.
        origin: origin of every variant whose record states none: VCF (e.g. somatic for a
            tumour-normal callset), text lists and tables (``germline`` for a hereditary
            panel), FHIR Observations without a genomic source class (48002-0).
        sample: VCF only: tumour sample column.
        name: name used in problem locations (defaults to the file name, or ``input``).

    Returns:
        The :class:`IntakeResult` of the chosen reader.

    Raises:
        IntakeError: unreadable input, unknown format, too large, or strict mode with problems.
    """
    if fmt is not None and fmt not in FORMATS:
        raise IntakeError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if isinstance(path_or_bytes, bytes):
        display = name or "input"
        chosen = fmt or _format_from_content(path_or_bytes[:4096])
        if chosen == "vcf":
            return read_vcf(
                path_or_bytes,
                build=build,
                strict=strict,
                sample=sample,
                origin=origin,
                name=display,
            )
        data = path_or_bytes
    else:
        path = Path(path_or_bytes)
        display = name or path.name
        chosen = fmt or _format_from_name(path.name) or _format_from_content(_head(path, display))
        if chosen == "vcf":
            return read_vcf(
                path, build=build, strict=strict, sample=sample, origin=origin, name=display
            )
        data = _read_small(path, display)
    if len(data) > MAX_TEXT_BYTES:
        raise IntakeError(f"{display}: larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB")
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    if chosen == "fhir":
        # The FHIR models load only for FHIR input: a text list or VCF is read without them
        # (they are most of ``oncocds analyze``'s start-up otherwise).
        from integrations.fhir.variant_intake import read_fhir_variants

        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IntakeError(f"{display}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
        return with_default_origin(
            read_fhir_variants(parsed, build=build, strict=strict, name=display), origin
        )
    if chosen in {"csv", "tsv"}:
        from integrations.textlist_table import read_table  # only tables need the csv reader

        return read_table(text, build=build, strict=strict, name=display, origin=origin)
    return parse_text_list(text, build=build, strict=strict, name=display, origin=origin)
