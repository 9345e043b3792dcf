"""Streaming VCF 4.x reader: records to :class:`~inference.genomics.model.Variant`, one at a time.

vcfpy (bihealth/vcfpy, MIT, pure Python) parses the header (meta lines, INFO/FORMAT definitions,
samples) and converts every INFO/FORMAT value we read by its declared Type and Number
(``vcfpy.parser.parse_field_value``). We split each data line ourselves instead of calling
vcfpy's record parser, because

- a malformed line must become a :class:`~integrations.errors.RecordProblem` at ``file:line``
  while the next line is still read;
- only the dozen fields the domain model needs are converted (vcfpy converts every INFO and
  FORMAT value of the record, which is about half of its run time on PCGR's files);
- nothing but the current batch of lines is in memory (gzip/bgzip is decompressed as a stream;
  BGZF is multi-member gzip, which :mod:`gzip` reads transparently), and every line has a length
  limit.

Mapping (VCF 4.3 spec, §1.6 data lines):

- one :class:`Variant` per ALT allele (multi-allelic records are split); ``Number=A`` INFO/FORMAT
  values are taken at the allele's index, ``Number=R`` at index + 1;
- ``*`` (allele missing under an upstream deletion, §1.6.1) and gVCF ``<NON_REF>``/``<*>`` are not
  variants and are skipped; other symbolic ALTs (``<DEL>``, ``<DUP>``, breakends) are reported as
  problems: structural variants are not read from VCF;
- allele fraction, first found: FORMAT ``AF`` (Mutect2), ``FA`` (SomaticSniper), ``VAF``, INFO
  ``TVAF`` (PCGR), ``VAF``, the tumour's allele depths (FORMAT ``AD``, PCGR ``ADT``) as
  alt / sum, and last INFO ``AF`` (which GATK fills from genotypes, not reads);
- depth: FORMAT ``DP``, ``DPT`` (PCGR), INFO ``TDP`` (PCGR), INFO ``DP``;
- FILTER is kept on the variant (``()`` when ``.``, ``("PASS",)`` when passed);
- gene and HGVS come from SnpEff ``ANN`` or VEP ``CSQ`` when present (VEP ``PICK``, then
  ``CANONICAL=YES``, then the first entry for the allele); otherwise the variant has only its
  position and the knowledge base matches it by genomic key.
"""

from __future__ import annotations

import gzip
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final, NamedTuple, cast

import vcfpy
from vcfpy.parser import parse_field_value

from inference.genomics.hgvs import protein_change_key
from inference.genomics.model import (
    Gene,
    GenomeBuild,
    GenomicPosition,
    Origin,
    Variant,
    Zygosity,
)
from integrations.chromosomes import accession_problem, refseq_chromosome
from integrations.errors import IntakeError, RecordProblem
from integrations.intake import IntakeResult
from integrations.normalise import (
    ProblemSink,
    allele,
    gene,
    normalise_chrom,
    parse_build,
    parse_fraction,
    split_hgvs,
)
from integrations.vcf.header import (
    AnnotationLayout,
    annotation_layout,
    build_from_header,
    choose_sample,
)

#: Longest data or header line accepted (characters). Real lines are a few kB even with VEP CSQ.
MAX_LINE_CHARS: Final = 1 << 20
#: Most meta-information lines accepted (GRCh38 with alts and decoys has ~3,400 contigs).
MAX_HEADER_LINES: Final = 200_000
#: Lines parsed per batch under one ``warnings`` guard (bounded memory, few guard switches).
_BATCH: Final = 512

_GZIP_MAGIC: Final = b"\x1f\x8b"
_NOT_VARIANT_ALTS: Final = frozenset({"*", "<NON_REF>", "<*>", "<X>"})
_GT_SPLIT = re.compile(r"[/|]")
# Symbolic alleles (<DEL>), breakends (G]2:100], .A, A.) — VCF 4.3 §5.4-5.5.
_SYMBOLIC = re.compile(r"^(?:<[^>]+>|.*[\[\]].*|\.[A-Za-z]+|[A-Za-z]+\.)$")
# The only INFO / FORMAT fields read (everything else on the line is left unparsed).
_INFO_KEYS: Final = ("AF", "TVAF", "VAF", "TDP", "DP", "SOMATIC")
_FORMAT_KEYS: Final = ("GT", "AF", "FA", "VAF", "AD", "ADT", "DP", "DPT")
# FORMAT AF is Number=A (Mutect2); FA and VAF are single values of a one-ALT record.
_FORMAT_NUMBER: Final = {"AF": "A", "FA": "1", "VAF": "A"}
#: Most distinct CHROM / FORMAT strings remembered (real files have a few dozen).
_CACHE_LIMIT: Final = 4_096


class _RecordError(ValueError):
    """A data line that cannot be read; the message is the problem's reason."""


class _Record(NamedTuple):
    chrom: str
    pos: int
    ref: str
    alts: list[str]
    filters: tuple[str, ...]
    info: dict[str, Any]
    call: dict[str, Any] | None


Source = str | Path | bytes | IO[bytes]


def _open_text(source: Source) -> tuple[io.TextIOWrapper, str, IO[bytes] | None]:
    """A text stream over ``source`` (gzip detected by magic bytes), a name, the file we opened."""
    raw: IO[bytes]
    opened: IO[bytes] | None = None
    if isinstance(source, bytes):
        raw, name = io.BytesIO(source), "input.vcf"
    elif isinstance(source, str | Path):
        path = Path(source)
        try:
            raw = opened = path.open("rb")
        except OSError as exc:
            raise IntakeError(f"{path.name}: cannot open: {exc.strerror}") from exc
        name = path.name
    else:
        raw, name = source, Path(str(getattr(source, "name", None) or "input.vcf")).name
    if not raw.seekable():
        raw = io.BufferedReader(raw)  # type: ignore[type-var]  # any binary stream; gives peek()
    if isinstance(raw, io.BufferedReader):
        magic = raw.peek(2)[:2]
    else:
        start = raw.tell()
        magic = raw.read(2)
        raw.seek(start)
    binary: IO[bytes] = (
        cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if magic == _GZIP_MAGIC else raw
    )
    # errors="replace": a stray non-UTF-8 byte spoils one record (reported), not the file.
    text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline=None)
    return text, name, opened


class VcfReader:
    """A VCF opened for streaming: header read on construction, records on iteration.

    Use as a context manager; iterate to get :class:`Variant` or :class:`RecordProblem` items in
    file order (one variant per ALT allele).

    Args:
        source: path, raw bytes, or a binary file object; plain text or gzip/bgzip.
        build: genome build when the header does not say (or to confirm it).
        sample: the tumour sample column for FORMAT values; chosen from the header if omitted.
        origin: origin to give every variant (``somatic`` for tumour-normal callsets); a record's
            INFO ``SOMATIC`` flag makes that record somatic regardless.
        name: display name used in problem locations (defaults to the file name).

    Raises:
        IntakeError: the header is missing or broken, the build is unknown or contradicted, or
            the named sample is not in the file.
    """

    def __init__(
        self,
        source: Source,
        *,
        build: GenomeBuild | str | None = None,
        sample: str | None = None,
        origin: Origin | None = None,
        name: str | None = None,
    ) -> None:
        self._stream, default_name, self._opened = _open_text(source)
        self._closed = False
        self.name = name or default_name
        self.line_no = 0
        #: Data lines read so far (before multi-allelic splitting).
        self.records = 0
        self.origin = origin or Origin.UNKNOWN
        try:
            self._read_header(build, sample)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ header

    def _readline(self) -> str | None:
        """Next line (without its end), ``None`` at EOF; overlong lines raise ValueError."""
        line = self._stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            return None
        self.line_no += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
            while True:  # drain the rest of the overlong line
                rest = self._stream.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith("\n"):
                    break
            raise ValueError(f"line longer than {MAX_LINE_CHARS} characters")
        return line

    def _read_header(self, build_arg: GenomeBuild | str | None, sample: str | None) -> None:
        lines: list[str] = []
        while True:
            try:
                line = self._readline()
            except ValueError as exc:
                raise IntakeError(f"{self.name}:{self.line_no}: {exc}") from exc
            if line is None:
                raise IntakeError(f"{self.name}: no '#CHROM' header line; not a VCF file")
            if self.line_no == 1 and not line.startswith("##fileformat=VCF"):
                raise IntakeError(f"{self.name}:1: not a VCF file (no '##fileformat=VCF' line)")
            lines.append(line)
            if line.startswith("#CHROM"):
                break
            if not line.startswith("##"):
                raise IntakeError(f"{self.name}:{self.line_no}: header line must start with '##'")
            if len(lines) > MAX_HEADER_LINES:
                raise IntakeError(f"{self.name}: more than {MAX_HEADER_LINES} header lines")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", vcfpy.exceptions.VCFPyWarning)
                probe = vcfpy.Reader.from_stream(_text(lines))
        except (vcfpy.exceptions.VCFPyException, ValueError, KeyError, IndexError) as exc:
            raise IntakeError(f"{self.name}: invalid VCF header: {exc}") from exc
        self.header = probe.header
        names = list(self.header.samples.names)
        self.sample = choose_sample(self.header, names, sample)
        if sample is not None and self.sample is None:
            raise IntakeError(f"{self.name}: sample {sample!r} is not in the file")
        self._sample_column = 9 + names.index(self.sample) if self.sample else None
        self._n_columns = 9 + len(names) if names else 8
        self.build, self.build_source = self._resolve_build(build_arg)
        self._ann: AnnotationLayout | None = annotation_layout(self.header)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", vcfpy.exceptions.VCFPyWarning)
            info_keys = set(_INFO_KEYS) | ({self._ann.key} if self._ann else set())
            self._info_fields = {k: self.header.get_info_field_info(k) for k in info_keys}
            self._format_fields = {k: self.header.get_format_field_info(k) for k in _FORMAT_KEYS}
        self._format_cache: dict[str, list[tuple[int, str, Any]]] = {}
        self._chrom_cache: dict[str, str | None] = {}

    def _resolve_build(self, build_arg: GenomeBuild | str | None) -> tuple[GenomeBuild, str]:
        strong, weak = build_from_header(self.header)
        if build_arg is not None:
            given = parse_build(str(build_arg))
            if given is None:
                raise IntakeError(f"unknown genome build {build_arg!r}; use GRCh37 or GRCh38")
            if strong is not None and strong.build is not given:
                raise IntakeError(
                    f"{self.name}: build {given.value} was given but the header says "
                    f"{strong.build.value} ({strong.source})"
                )
            return given, "argument"
        evidence = strong or weak
        if evidence is None:
            raise IntakeError(
                f"{self.name}: the header does not name the genome build; give it "
                "(GRCh37 or GRCh38)"
            )
        return evidence.build, evidence.source

    # ------------------------------------------------------------------ records

    def __enter__(self) -> VcfReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the text stream, and the file if this reader opened it (a caller's stays open)."""
        if self._closed:
            return
        self._closed = True
        if self._opened is None:
            self._stream.detach()  # leaves the caller's binary stream open
        else:
            self._stream.close()
            self._opened.close()

    def __iter__(self) -> Iterator[Variant | RecordProblem]:
        while True:
            batch: list[Variant | RecordProblem] = []
            # vcfpy's converters warn (e.g. "abc" in a Float field, kept as text) through
            # `warnings`; we check the values ourselves, so those warnings are silenced for our
            # calls only, one batch at a time. (catch_warnings is process-wide: at worst a
            # concurrent thread also misses a vcfpy warning while a batch is parsed.)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", vcfpy.exceptions.VCFPyWarning)
                eof = self._parse_batch(batch)
            yield from batch
            if eof:
                return

    def _parse_batch(self, out: list[Variant | RecordProblem]) -> bool:
        for _ in range(_BATCH):
            try:
                line = self._readline()
            except ValueError as exc:
                out.append(RecordProblem(f"{self.name}:{self.line_no}", str(exc)))
                continue
            except (OSError, EOFError) as exc:
                # A truncated gzip stream: what was read stays read.
                out.append(RecordProblem(f"{self.name}:{self.line_no + 1}", f"unreadable: {exc}"))
                return True
            if line is None:
                return True
            if line.startswith("#") or not line.strip():
                continue
            self.records += 1
            location = f"{self.name}:{self.line_no}"
            try:
                record = self._split(line)
            except _RecordError as exc:
                out.append(RecordProblem(location, str(exc)))
                continue
            self._map_record(record, location, out)
        return False

    def _split(self, line: str) -> _Record:
        """The columns we use, with INFO/FORMAT values converted by vcfpy per the header."""
        columns = line.rstrip("\r\n").split("\t")
        if len(columns) != self._n_columns:
            raise _RecordError(
                f"malformed VCF record: {len(columns)} tab-separated columns, "
                f"expected {self._n_columns}"
            )
        chrom = self._chrom(columns[0])
        if chrom is None:
            raise _RecordError(f"invalid CHROM {columns[0]!r}")
        try:
            pos = int(columns[1])
        except ValueError as exc:
            raise _RecordError(f"malformed VCF record: POS {columns[1]!r} is not a number") from exc
        if pos < 1:
            raise _RecordError(f"invalid POS {pos}")
        ref = allele(columns[3])
        if ref is None:
            raise _RecordError(f"invalid REF {columns[3]!r}")
        alts = [] if columns[4] == "." else columns[4].split(",")
        filters = () if columns[6] == "." else tuple(columns[6].split(";"))
        info: dict[str, Any] = {}
        if columns[7] != ".":
            fields = self._info_fields
            for entry in columns[7].split(";"):
                key, has_value, value = entry.partition("=")
                field = fields.get(key)
                if field is not None:
                    info[key] = parse_field_value(field, value if has_value else True)
        call: dict[str, Any] | None = None
        if self._sample_column is not None:
            call = {}
            values = columns[self._sample_column].split(":")
            for index, key, field in self._format_layout(columns[8]):
                if index < len(values):
                    call[key] = parse_field_value(field, values[index])
        return _Record(chrom, pos, ref, alts, filters, info, call)

    def _chrom(self, text: str) -> str | None:
        if text in self._chrom_cache:
            return self._chrom_cache[text]
        accession = refseq_chromosome(text) if text.startswith("NC_") else None
        if accession is not None:
            # CHROM as a RefSeq accession (NC_000007.14): its version must be the file's build.
            problem = accession_problem(text, self.build)
            if problem is not None:
                raise _RecordError(f"CHROM {problem}")
        chrom = accession.chrom if accession is not None else normalise_chrom(text)
        if len(self._chrom_cache) < _CACHE_LIMIT:  # bounded: junk files must not grow it
            self._chrom_cache[text] = chrom
        return chrom

    def _format_layout(self, format_text: str) -> list[tuple[int, str, Any]]:
        layout = self._format_cache.get(format_text)
        if layout is None:
            wanted = self._format_fields
            layout = [
                (i, k, wanted[k]) for i, k in enumerate(format_text.split(":")) if k in wanted
            ]
            self._format_cache[format_text] = layout
        return layout

    def _map_record(
        self, record: _Record, location: str, out: list[Variant | RecordProblem]
    ) -> None:
        info, call, ref = record.info, record.call, record.ref
        n_alts = len(record.alts)
        origin = Origin.SOMATIC if info.get("SOMATIC") is True else self.origin
        depth, depth_problem = _depth(info, call)
        if depth_problem:
            out.append(RecordProblem(location, depth_problem))
        annotations = self._annotations(info)
        genotype = _genotype(call)
        for index, text in enumerate(record.alts):
            alt = allele(text)
            if alt is None:
                if text in _NOT_VARIANT_ALTS:
                    continue
                if _SYMBOLIC.match(text):
                    out.append(
                        RecordProblem(
                            location, f"symbolic ALT {text} not read (structural variant)"
                        )
                    )
                else:
                    out.append(
                        RecordProblem(location, f"ALT {text!r} is not a sequence of A/C/G/T")
                    )
                continue
            if "N" in alt:
                out.append(RecordProblem(location, f"ALT {text!r} is not a sequence of A/C/G/T"))
                continue
            if alt == ref:
                out.append(RecordProblem(location, f"ALT {text!r} equals REF"))
                continue
            fraction, fraction_problem = _fraction(info, call, index, n_alts)
            if fraction_problem:
                out.append(RecordProblem(location, fraction_problem))
            gene_, hgvs_c, hgvs_p, transcript = self._annotation_for(
                annotations, ref, alt, index, n_alts
            )
            out.append(
                Variant(
                    gene=gene_,
                    hgvs_c=hgvs_c,
                    hgvs_p=hgvs_p,
                    transcript=transcript,
                    protein_change=protein_change_key(hgvs_p) if hgvs_p else None,
                    position=GenomicPosition(self.build, record.chrom, record.pos, ref, alt),
                    origin=origin,
                    zygosity=_zygosity(genotype, index + 1),
                    allele_frequency=fraction,
                    depth=depth,
                    source_ref=location,
                    filters=record.filters,
                )
            )

    def _annotations(self, info: dict[str, Any]) -> list[list[str]]:
        if self._ann is None:
            return []
        raw = info.get(self._ann.key)
        if not raw:
            return []
        entries = raw if isinstance(raw, list) else [raw]
        return [str(entry).split("|") for entry in entries if entry]

    def _annotation_for(
        self, entries: list[list[str]], ref: str, alt: str, index: int, n_alts: int
    ) -> tuple[Gene | None, str | None, str | None, str | None]:
        layout = self._ann
        if layout is None or not entries:
            return None, None, None, None

        def field(entry: list[str], position: int | None) -> str:
            if position is None or position >= len(entry):
                return ""
            return entry[position].strip()

        # VEP writes the allele without the shared first base ("-" when nothing is left).
        trimmed = (alt[1:] or "-") if alt[:1] == ref[:1] else alt
        mine = [
            e
            for e in entries
            if n_alts == 1
            or field(e, layout.allele_num) == str(index + 1)
            or field(e, layout.allele) in {alt, trimmed}
        ]
        if not mine:
            return None, None, None, None
        chosen = (
            next((e for e in mine if field(e, layout.pick) == "1"), None)
            or next((e for e in mine if field(e, layout.canonical) == "YES"), None)
            or mine[0]
        )
        symbol = field(chosen, layout.symbol)
        gene_ = gene(symbol, field(chosen, layout.hgnc_id) or None) if symbol else None
        transcript = field(chosen, layout.feature) or None
        hgvs_c: str | None = None
        hgvs_p: str | None = None
        c_text = field(chosen, layout.hgvs_c)
        if c_text:
            accession, hgvs_c = split_hgvs(c_text)
            transcript = accession or transcript
        p_text = field(chosen, layout.hgvs_p).replace("%3D", "=")
        if p_text:
            hgvs_p = split_hgvs(p_text)[1]
        return gene_, hgvs_c, hgvs_p, transcript


def _text(lines: list[str]) -> io.TextIOWrapper:
    # vcfpy annotates its stream as TextIOWrapper but only calls readline(); StringIO does that.
    return cast(io.TextIOWrapper, io.StringIO("".join(lines)))


def _depth(info: dict[str, Any], call: dict[str, Any] | None) -> tuple[int | None, str | None]:
    """Read depth: FORMAT DP, FORMAT DPT (PCGR), INFO TDP (PCGR), INFO DP; first found."""
    for label, raw in (
        ("FORMAT/DP", call.get("DP") if call else None),
        ("FORMAT/DPT", call.get("DPT") if call else None),
        ("INFO/TDP", info.get("TDP")),
        ("INFO/DP", info.get("DP")),
    ):
        value: Any = raw[0] if isinstance(raw, list) and raw else raw
        if value is None or value == []:
            continue
        if type(value) is int and value >= 0:
            return value, None
        try:
            number = int(value)
        except (TypeError, ValueError):
            return None, f"{label} {value!r} is not a read count; ignored"
        if number < 0:
            return None, f"{label} {value!r} is negative; ignored"
        return number, None
    return None, None


def _fraction(
    info: dict[str, Any], call: dict[str, Any] | None, index: int, n_alts: int
) -> tuple[float | None, str | None]:
    """Allele fraction for ALT ``index`` in the order of the module docstring."""
    if call:
        for key in ("AF", "FA", "VAF"):
            if key in call:
                picked = _per_allele(call[key], _FORMAT_NUMBER.get(key), index, n_alts)
                if picked is not None:
                    return _as_fraction(f"FORMAT/{key}", picked)
    for key in ("TVAF", "VAF"):
        if key in info:
            picked = _per_allele(info[key], None, index, n_alts)
            if picked is not None:
                return _as_fraction(f"INFO/{key}", picked)
    if call:
        for key in ("AD", "ADT"):
            ratio = _depth_ratio(call.get(key), index)
            if ratio is not None:
                return ratio, None
    if "AF" in info:
        picked = _per_allele(info["AF"], "A", index, n_alts)
        if picked is not None:
            return _as_fraction("INFO/AF", picked)
    return None, None


def _per_allele(value: Any, number: str | None, index: int, n_alts: int) -> Any:
    """The value for ALT ``index``: lists are per ALT (``Number=A``); a scalar only if 1 ALT."""
    if not isinstance(value, list):
        return value if n_alts == 1 else None
    if number == "R":
        return value[index + 1] if len(value) > index + 1 else None
    if len(value) == n_alts:
        return value[index]
    return None


def _as_fraction(label: str, raw: Any) -> tuple[float | None, str | None]:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None, f"{label} {raw!r} is not an allele fraction; ignored"
    try:
        number = float(raw)
    except ValueError:
        return None, f"{label} {raw!r} is not an allele fraction; ignored"
    fraction = parse_fraction(number)
    if fraction is None:
        return None, f"{label} {raw!r} is outside 0..1; ignored"
    return fraction, None


def _depth_ratio(value: Any, index: int) -> float | None:
    """alt / total from allele depths (``Number=R``: REF first), or None when not usable."""
    if not isinstance(value, list) or len(value) < index + 2:
        return None
    counts: list[int] = []
    for item in value:
        try:
            counts.append(int(item))
        except (TypeError, ValueError):
            return None
    total = sum(counts)
    if total <= 0:
        return None
    return counts[index + 1] / total


def _genotype(call: dict[str, Any] | None) -> list[str] | None:
    if not call:
        return None
    gt = call.get("GT")
    if not isinstance(gt, str) or not gt:
        return None
    alleles = _GT_SPLIT.split(gt)
    return None if "." in alleles else alleles


def _zygosity(alleles: list[str] | None, allele_number: int) -> Zygosity:
    if alleles is None:
        return Zygosity.UNKNOWN
    mine = str(allele_number)
    count = alleles.count(mine)
    if count == 0:
        return Zygosity.UNKNOWN
    if len(alleles) == 1:
        return Zygosity.HEMIZYGOUS
    return Zygosity.HOMOZYGOUS if count == len(alleles) else Zygosity.HETEROZYGOUS


def iter_vcf(
    source: Source,
    *,
    build: GenomeBuild | str | None = None,
    sample: str | None = None,
    origin: Origin | None = None,
    name: str | None = None,
) -> Iterator[Variant | RecordProblem]:
    """Stream a VCF: variants and per-record problems in file order (see :class:`VcfReader`)."""
    with VcfReader(source, build=build, sample=sample, origin=origin, name=name) as reader:
        yield from reader


def read_vcf(
    source: Source,
    *,
    build: GenomeBuild | str | None = None,
    strict: bool = False,
    sample: str | None = None,
    origin: Origin | None = None,
    name: str | None = None,
) -> IntakeResult:
    """Read a whole VCF into an :class:`IntakeResult` (variants kept, the file is streamed).

    Args:
        source: path, bytes or binary file object (plain or gzip/bgzip).
        build: genome build if the header does not name it (checked against contig lengths).
        strict: raise :class:`IntakeError` with every problem instead of keeping good records.
        sample: tumour sample column for FORMAT AF/DP/GT (chosen from the header if omitted).
        origin: origin for every variant (e.g. ``Origin.SOMATIC`` for a tumour-normal callset).
        name: display name for problem locations.

    Returns:
        Variants (one per ALT allele), problems (``file:line``), ``records_read`` = data lines.

    Raises:
        IntakeError: header unusable; strict mode with problems; or nothing readable.
    """
    result = IntakeResult()
    with VcfReader(source, build=build, sample=sample, origin=origin, name=name) as reader:
        sink = ProblemSink(reader.name)
        for item in reader:
            if isinstance(item, RecordProblem):
                sink.add(item.location, item.reason)
            else:
                result.alterations.append(item)
        result.records_read = reader.records
    return sink.finish(result, strict=strict)
