"""Alteration lists as clinicians paste them (tables with a header: :mod:`.textlist_table`).

One alteration per line (``;`` also separates); ``#`` starts a comment; bullets and numbering are
ignored. Each line is read by :func:`integrations.notation.read_line`, whose docstring lists the
forms understood (HGVS in every protein form, exon classes, fusions, copy number, FLT3-ITD,
MSI/TMB/HRD, diplotypes) and the qualifiers (origin, zygosity, VAF, depth, significance).

Lines that are not understood are problems at ``<name>:<line>`` with the reason and the line
(never a guess). ``origin`` (``--origin germline``) is the origin of every variant whose line
states none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Final

from inference.genomics.model import GenomeBuild, Genotype, Origin
from integrations.errors import IntakeError
from integrations.intake import IntakeResult, with_default_origin
from integrations.normalise import ProblemSink, parse_build
from integrations.notation import Item, LineError, read_line
from integrations.notation.line import MAX_LINE_CHARS

#: Most lines (or table rows) read from one input.
MAX_LINES: Final = 200_000

__all__ = ["MAX_LINES", "MAX_LINE_CHARS", "add", "build_arg", "parse_text_list", "with_source"]


def with_source(item: Item, location: str) -> Item:
    """The item with its provenance (``text:3``)."""
    return replace(item, source_ref=location)


def add(result: IntakeResult, items: Iterable[Item], location: str) -> None:
    """Append what one line or row named, each with its location."""
    for item in items:
        located = item if item.source_ref == location else with_source(item, location)
        if isinstance(located, Genotype):
            result.genotypes.append(located)
        else:
            result.alterations.append(located)


def build_arg(build: GenomeBuild | str | None) -> GenomeBuild | None:
    """The caller's default build, or :class:`IntakeError` for a name that is not one."""
    if build is None:
        return None
    found = parse_build(str(build))
    if found is None:
        raise IntakeError(f"unknown genome build {build!r}; use GRCh37 or GRCh38")
    return found


def _items(line: str) -> Iterator[str]:
    """Split a line at ``;`` outside brackets (HGVS alleles ``c.[76A>C;83G>C]`` keep theirs)."""
    if ";" not in line:
        yield line
        return
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
    origin: Origin | None = None,
) -> IntakeResult:
    """Read a pasted alteration list (see the module docstring for the forms understood).

    Args:
        text: the pasted text.
        build: genome build for lines given as genomic positions without one.
        strict: raise :class:`IntakeError` with every problem instead of keeping good lines.
        name: what the input is called in problem locations (``text:3``).
        origin: origin of every variant whose line states none (``germline`` for a
            hereditary panel).

    Returns:
        Alterations, genotypes and one problem per line not understood.

    Raises:
        IntakeError: strict mode with problems, too many lines, or nothing readable.
    """
    default_build = build_arg(build)
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
                items = read_line(item_text.strip(), build=default_build, source_ref=location)
            except LineError as exc:
                sink.add(location, f"{exc} (line: {_clip(item_text)})")
                continue
            add(result, items, location)
    return with_default_origin(sink.finish(result, strict=strict), origin)


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
