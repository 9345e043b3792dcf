"""Streaming VCF 4.x reader: records to :class:`~inference.genomics.model.Variant`, one at a time.

Parsing is vcfpy's (bihealth/vcfpy, MIT, pure Python): its header parser reads the meta lines and
its record parser each data line. We feed vcfpy one line at a time ourselves so that

- a malformed line becomes a :class:`~integrations.errors.RecordProblem` at ``file:line`` and the
  next line is still read (vcfpy alone stops at the first bad record);
- nothing but the current line is in memory (gzip/bgzip is decompressed as a stream; BGZF is
  multi-member gzip, which :mod:`gzip` reads transparently);
- every line has a length limit.

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
from typing import IO, Any, Final, cast

import vcfpy

from inference.genomics.hgvs import protein_change_key
from inference.genomics.model import (
    Gene,
    GenomeBuild,
    GenomicPosition,
    Origin,
    Variant,
    Zygosity,
)
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
        header = probe.header
        names = list(header.samples.names)
        self.sample = choose_sample(header, names, sample)
        if sample is not None and self.sample is None:
            raise IntakeError(f"{self.name}: sample {sample!r} is not in the file")
        # Parse only the chosen sample's FORMAT column (vcfpy skips the others): faster.
        parsed = [self.sample] if self.sample else (names[:1] or None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", vcfpy.exceptions.VCFPyWarning)
            self._vcf = vcfpy.Reader.from_stream(_text(lines), parsed_samples=parsed)
        self.header = self._vcf.header
        self.build, self.build_source = self._resolve_build(build_arg)
        self._ann: AnnotationLayout | None = annotation_layout(self.header)
        self._info_number = {
            key: str(self.header.get_info_field_info(key).number) for key in self.header.info_ids()
        }
        self._format_number = {
            key: str(self.header.get_format_field_info(key).number)
            for key in self.header.format_ids()
        }

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
        if self._opened is None:
            self._stream.detach()  # leaves the caller's binary stream open
        else:
            self._stream.close()
            self._opened.close()

    def __iter__(self) -> Iterator[Variant | RecordProblem]:
        parser = self._vcf.parser
        while True:
            batch: list[Variant | RecordProblem] = []
            # vcfpy warns (e.g. INFO key not in the header) through `warnings`; those are not
            # problems of the record, so they are silenced for our parse calls only.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", vcfpy.exceptions.VCFPyWarning)
                eof = self._parse_batch(parser, batch)
            yield from batch
            if eof:
                return

    def _parse_batch(self, parser: Any, out: list[Variant | RecordProblem]) -> bool:
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
            if not line.strip() or line.startswith("#"):
                continue
            self.records += 1
            location = f"{self.name}:{self.line_no}"
            try:
                record = parser.parse_line(line)
            except (vcfpy.exceptions.VCFPyException, ValueError, IndexError, KeyError) as exc:
                out.append(RecordProblem(location, f"malformed VCF record: {_first_line(exc)}"))
                continue
            self._map_record(record, location, out)
        return False

    def _map_record(self, record: Any, location: str, out: list[Variant | RecordProblem]) -> None:
        chrom = normalise_chrom(str(record.CHROM))
        ref = allele(str(record.REF))
        if chrom is None:
            out.append(RecordProblem(location, f"invalid CHROM {record.CHROM!r}"))
            return
        if ref is None:
            out.append(RecordProblem(location, f"invalid REF {record.REF!r}"))
            return
        if record.POS < 1:
            out.append(RecordProblem(location, f"invalid POS {record.POS}"))
            return
        call = self._call(record)
        n_alts = len(record.ALT)
        filters = tuple(str(f) for f in record.FILTER)
        origin = Origin.SOMATIC if record.INFO.get("SOMATIC") is True else self.origin
        depth, depth_problem = self._depth(record, call)
        if depth_problem:
            out.append(RecordProblem(location, depth_problem))
        annotations = self._annotations(record)
        for index, alt_record in enumerate(record.ALT):
            text = str(alt_record.serialize())
            if text in _NOT_VARIANT_ALTS:
                continue
            if not isinstance(alt_record, vcfpy.Substitution):
                out.append(
                    RecordProblem(location, f"symbolic ALT {text} not read (structural variant)")
                )
                continue
            alt = allele(text)
            if alt is None or "N" in alt:
                out.append(RecordProblem(location, f"ALT {text!r} is not a sequence of A/C/G/T"))
                continue
            if alt == ref:
                out.append(RecordProblem(location, f"ALT {text!r} equals REF"))
                continue
            fraction, fraction_problem = self._fraction(record, call, index, n_alts)
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
                    protein_change=protein_change_key(hgvs_p),
                    position=GenomicPosition(self.build, chrom, int(record.POS), ref, alt),
                    origin=origin,
                    zygosity=_zygosity(call, index + 1),
                    allele_frequency=fraction,
                    depth=depth,
                    source_ref=location,
                    filters=filters,
                )
            )

    def _call(self, record: Any) -> Any:
        if self.sample is None or not record.calls:
            return None
        for call in record.calls:
            if call.sample == self.sample:
                return call
        return None

    def _depth(self, record: Any, call: Any) -> tuple[int | None, str | None]:
        candidates: list[tuple[str, Any]] = []
        if call is not None:
            candidates += [("FORMAT/DP", call.data.get("DP")), ("FORMAT/DPT", call.data.get("DPT"))]
        candidates += [("INFO/TDP", record.INFO.get("TDP")), ("INFO/DP", record.INFO.get("DP"))]
        for label, raw in candidates:
            value = raw[0] if isinstance(raw, list) and raw else raw
            if value is None or value == []:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                return None, f"{label} {raw!r} is not a read count; ignored"
            try:
                number = int(value)
            except ValueError:
                return None, f"{label} {value!r} is not a read count; ignored"
            if number < 0:
                return None, f"{label} {value!r} is negative; ignored"
            return number, None
        return None, None

    def _fraction(
        self, record: Any, call: Any, index: int, n_alts: int
    ) -> tuple[float | None, str | None]:
        candidates: list[tuple[str, Any]] = []
        if call is not None:
            for key in ("AF", "FA", "VAF"):
                if key in call.data:
                    picked = _per_allele(
                        call.data[key], self._format_number.get(key), index, n_alts
                    )
                    candidates.append((f"FORMAT/{key}", picked))
        for key in ("TVAF", "VAF"):
            if key in record.INFO:
                picked = _per_allele(record.INFO[key], self._info_number.get(key), index, n_alts)
                candidates.append((f"INFO/{key}", picked))
        for label, raw in candidates:
            if raw is None:
                continue
            return _as_fraction(label, raw)
        if call is not None:
            for key in ("AD", "ADT"):
                ratio = _depth_ratio(call.data.get(key), index)
                if ratio is not None:
                    return ratio, None
        if "AF" in record.INFO:
            picked = _per_allele(record.INFO["AF"], self._info_number.get("AF"), index, n_alts)
            if picked is not None:
                return _as_fraction("INFO/AF", picked)
        return None, None

    def _annotations(self, record: Any) -> list[list[str]]:
        if self._ann is None:
            return []
        raw = record.INFO.get(self._ann.key)
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _per_allele(value: Any, number: str | None, index: int, n_alts: int) -> Any:
    """The value for ALT ``index`` of an INFO/FORMAT field with VCF ``Number`` ``number``."""
    if not isinstance(value, list):
        return value if (number not in {"A", "R"} and (n_alts == 1 or index == 0)) else None
    if number == "R":
        return value[index + 1] if len(value) > index + 1 else None
    if len(value) == n_alts:
        return value[index]
    if len(value) == 1 and n_alts == 1:
        return value[0]
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


def _zygosity(call: Any, allele_number: int) -> Zygosity:
    if call is None:
        return Zygosity.UNKNOWN
    gt = call.data.get("GT")
    if not isinstance(gt, str) or not gt:
        return Zygosity.UNKNOWN
    alleles = _GT_SPLIT.split(gt)
    if any(a == "." for a in alleles):
        return Zygosity.UNKNOWN
    count = sum(1 for a in alleles if a == str(allele_number))
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
