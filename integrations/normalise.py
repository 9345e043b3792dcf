"""Shared normalisation for every intake: genes, chromosomes, builds, alleles, HGVS, problems.

Each reader (FHIR, VCF, text/CSV, HL7 v2) turns its own syntax into these few canonical forms so
the knowledge base sees one shape whatever the source:

- gene symbols upper case (HGNC style, keeping the lower-case ``orf`` of ``C1orf112``);
- chromosomes without ``chr`` (``"7"``, ``"X"``, ``"MT"``);
- VCF-style alleles (``[ACGTN]+``, upper case);
- c./p. HGVS split from their reference sequence (``NM_004333.6:c.1799T>A`` gives transcript
  ``NM_004333.6`` and ``c.1799T>A``); ``protein_change`` from
  :func:`inference.genomics.hgvs.protein_change_key`.

:class:`ProblemSink` collects per-record problems and applies the strict/lenient switch.
"""

from __future__ import annotations

import math
import re
from typing import Final

from inference.genomics.model import Gene, GenomeBuild, Origin, Zygosity
from integrations.errors import IntakeError, RecordProblem
from integrations.intake import IntakeResult

#: Hard limit of problems kept per input: a file of garbage must not grow memory without bound.
MAX_PROBLEMS: Final = 10_000

_GENE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*(?:@)?$")
_ORF = re.compile(r"(?<=\d)ORF(?=\d)")
_ALLELE = re.compile(r"^[ACGTN]+$")
_HGNC_ID = re.compile(r"^(?:HGNC:)?(\d{1,6})$", re.IGNORECASE)
# RefSeq (NM_, NP_, NC_, NG_, XM_ …), Ensembl (ENST, ENSP, ENSG) and LRG accessions.
_ACCESSION = re.compile(
    r"^(?P<acc>(?:[A-Z]{2}_\d+|ENS[TPG]\d+|LRG_\d+(?:[tp]\d+)?)(?:\.\d+)?)"
    r"(?:\((?P<gene>[^)]+)\))?:(?P<expr>.+)$"
)

# Names and assembly accessions seen in VCF ``##reference``/``##assembly`` lines: GRCh37 is
# RefSeq GCF_000001405.13-.25 (p13 = .25), GRCh38 is GCF_000001405.26 onwards.
_BUILD_WORDS: Final = (
    (re.compile(r"grch38|hg38|hs38|\bb38\b|gcf_000001405\.(?:2[6-9]|[3-9]\d)"), GenomeBuild.GRCH38),
    (
        re.compile(r"grch37|hg19|hs37|\bb37\b|g1k_v37|gcf_000001405\.(?:1[3-9]|2[0-5])\b"),
        GenomeBuild.GRCH37,
    ),
)


def gene(symbol: str, hgnc_id: str | None = None) -> Gene | None:
    """A :class:`Gene` with an upper-case HGNC-style symbol, or ``None`` if it is not one.

    ``c1orf112`` becomes ``C1orf112`` (HGNC keeps ``orf`` lower case); HGNC ids are written
    ``HGNC:1097``.
    """
    text = symbol.strip()
    if not text or not _GENE.match(text):
        return None
    canonical = _ORF.sub("orf", text.upper())
    return Gene(symbol=canonical, hgnc_id=normalise_hgnc_id(hgnc_id) if hgnc_id else None)


def normalise_hgnc_id(text: str) -> str | None:
    """``HGNC:1097`` from ``1097``, ``hgnc:1097`` or ``HGNC:1097``; ``None`` otherwise."""
    match = _HGNC_ID.match(text.strip())
    return f"HGNC:{match.group(1)}" if match else None


def normalise_chrom(text: str) -> str | None:
    """``"7"`` from ``7``, ``chr7``, ``CHR7``; ``"MT"`` from ``M``/``chrM``; ``None`` if empty."""
    value = text.strip()
    if value[:3].lower() == "chr":
        value = value[3:]
    if not value or any(c.isspace() for c in value):
        return None
    upper = value.upper()
    if upper in {"M", "MT"}:
        return "MT"
    if upper in {"X", "Y"}:
        return upper
    return value


def parse_build(text: str | None) -> GenomeBuild | None:
    """Genome build from names labs write (``GRCh38``, ``hg19``, ``b37``, ``37``, assembly ids)."""
    if not text:
        return None
    value = text.strip().lower()
    if value in {"37", "grch37", "hg19", "b37"}:
        return GenomeBuild.GRCH37
    if value in {"38", "grch38", "hg38", "b38"}:
        return GenomeBuild.GRCH38
    for pattern, build in _BUILD_WORDS:
        if pattern.search(value):
            return build
    return None


def allele(text: str) -> str | None:
    """An upper-case VCF allele (``[ACGTN]+``), or ``None`` if the text is not one."""
    value = text.strip().upper()
    return value if _ALLELE.match(value) else None


def split_hgvs(text: str) -> tuple[str | None, str]:
    """``("NM_004333.6", "c.1799T>A")`` from ``NM_004333.6:c.1799T>A``; no accession gives None.

    ClinVar's ``NM_004333.6(BRAF):c.1799T>A`` form is accepted too (the gene part is dropped
    here; callers that want it use :func:`hgvs_gene`).
    """
    value = text.strip()
    match = _ACCESSION.match(value)
    if match is None:
        return None, value
    return match.group("acc"), match.group("expr").strip()


def hgvs_gene(text: str) -> str | None:
    """The gene of ClinVar-style ``NM_004333.6(BRAF):c.1799T>A``, if given."""
    match = _ACCESSION.match(text.strip())
    return match.group("gene") if match and match.group("gene") else None


def parse_fraction(value: float, *, percent: bool = False) -> float | None:
    """An allele fraction in 0..1 (``percent`` divides by 100); ``None`` when out of range."""
    number = value / 100.0 if percent else value
    if math.isnan(number) or number < 0.0 or number > 1.0:
        return None
    return number


ORIGIN_WORDS: Final = {
    "somatic": Origin.SOMATIC,
    "tumour": Origin.SOMATIC,
    "tumor": Origin.SOMATIC,
    "likely somatic": Origin.SOMATIC,
    "germline": Origin.GERMLINE,
    "constitutional": Origin.GERMLINE,
    "likely germline": Origin.GERMLINE,
    "inherited": Origin.GERMLINE,
    "de novo": Origin.GERMLINE,
    "unknown": Origin.UNKNOWN,
}

ZYGOSITY_WORDS: Final = {
    "het": Zygosity.HETEROZYGOUS,
    "heterozygous": Zygosity.HETEROZYGOUS,
    "hom": Zygosity.HOMOZYGOUS,
    "homozygous": Zygosity.HOMOZYGOUS,
    "hemi": Zygosity.HEMIZYGOUS,
    "hemizygous": Zygosity.HEMIZYGOUS,
}


class ProblemSink:
    """Collects per-record problems for one input and applies the strict/lenient switch."""

    def __init__(self, what: str, *, max_problems: int = MAX_PROBLEMS) -> None:
        self.what = what
        self.max_problems = max_problems
        self.problems: list[RecordProblem] = []

    def add(self, location: str, reason: str) -> None:
        """Record a problem; past ``max_problems`` the input is refused as a whole."""
        self.problems.append(RecordProblem(location, reason))
        if len(self.problems) >= self.max_problems:
            raise IntakeError(
                f"{self.what}: stopped after {len(self.problems)} problems; is this the right "
                "format?",
                self.problems,
            )

    def finish(self, result: IntakeResult, *, strict: bool) -> IntakeResult:
        """Attach problems; raise :class:`IntakeError` in strict mode or when nothing was read.

        Strict mode raises if any record had a problem (carrying all of them). Lenient mode keeps
        the good records and returns the problems beside them, but still raises when there were
        problems and not a single record could be read (the input is unusable as a whole).
        """
        result.problems.extend(self.problems)
        if result.problems and strict:
            raise IntakeError(
                f"{self.what}: {len(result.problems)} record(s) could not be read",
                result.problems,
            )
        if result.problems and not result.alterations and not result.genotypes:
            raise IntakeError(
                f"{self.what}: no record could be read ({len(result.problems)} problem(s))",
                result.problems,
            )
        return result
