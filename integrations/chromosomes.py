"""The one chromosome table: names, RefSeq accessions per genome build, LOINC answer codes.

Every reader (VCF, FHIR, HL7 v2, text) and the FHIR writer take chromosomes from here:

- :data:`REFSEQ_CHROMOSOMES`: GRCh37 and GRCh38 RefSeq accessions of the primary assembly
  chromosomes (NCBI assembly reports GCF_000001405.25 and GCF_000001405.26). The accession's
  *version* tells the build (``NC_000007.13`` is GRCh37, ``NC_000007.14`` GRCh38), which is how
  a reader checks a stated accession against a stated build (:func:`accession_problem`).
- :data:`MITOCHONDRION`: ``NC_012920.1`` (rCRS), the MT sequence of both builds' RefSeq
  assemblies, so it says nothing about the build.
- :data:`CHROMOSOME_LA` / :data:`LA_CHROMOSOME`: LOINC answer list LL2938-0 (chromosome 1 …
  22, X, Y; required binding of 48000-4). MT has no answer in the list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# The accession tables live in the domain (the KB builder reads CIViC's NC_ expressions with
# them too); re-exported here for the readers and writers.
from inference.genomics.assembly import ACCESSIONS, MITOCHONDRION, REFSEQ_CHROMOSOMES
from inference.genomics.model import GenomeBuild

__all__ = ["ACCESSIONS", "MITOCHONDRION", "REFSEQ_CHROMOSOMES"]


#: LOINC LL2938-0: chromosome → answer code (LA21254-0 is chromosome 1 … LA21277-1 is Y).
CHROMOSOME_LA: Final = {
    "1": "LA21254-0", "2": "LA21255-7", "3": "LA21256-5", "4": "LA21257-3", "5": "LA21258-1",
    "6": "LA21259-9", "7": "LA21260-7", "8": "LA21261-5", "9": "LA21262-3", "10": "LA21263-1",
    "11": "LA21264-9", "12": "LA21265-6", "13": "LA21266-4", "14": "LA21267-2",
    "15": "LA21268-0", "16": "LA21269-8", "17": "LA21270-6", "18": "LA21271-4",
    "19": "LA21272-2", "20": "LA21273-0", "21": "LA21274-8", "22": "LA21275-5",
    "X": "LA21276-3", "Y": "LA21277-1",
}  # fmt: skip
LA_CHROMOSOME: Final = {code: chrom for chrom, code in CHROMOSOME_LA.items()}

_NC = re.compile(r"^NC_0*(?P<number>\d+)(?:\.(?P<version>\d+))?$")
_NUMBERED: Final = {**{str(n): str(n) for n in range(1, 23)}, "23": "X", "24": "Y"}


@dataclass(frozen=True, slots=True)
class RefSeqChromosome:
    """What a chromosome RefSeq accession says: the chromosome and, when versioned, the build."""

    chrom: str
    #: ``None`` for an unversioned accession, MT, or a version of neither build.
    build: GenomeBuild | None
    accession: str


def refseq_chromosome(accession: str) -> RefSeqChromosome | None:
    """The chromosome (and build) of ``NC_000007.14``-style accessions; ``None`` if not one."""
    text = accession.strip()
    known = REFSEQ_CHROMOSOMES.get(text)
    if known is not None:
        return RefSeqChromosome(known[1], known[0], text)
    if text.split(".")[0] == MITOCHONDRION.split(".")[0]:
        return RefSeqChromosome("MT", None, text)
    match = _NC.match(text)
    if match is None:
        return None
    chrom = _NUMBERED.get(match.group("number"))
    return RefSeqChromosome(chrom, None, text) if chrom is not None else None


def accession_problem(accession: str, build: GenomeBuild | None) -> str | None:
    """Why a chromosome accession cannot be used with ``build`` (``None`` when it can).

    A versioned accession of one build contradicts the other build; a version of neither build
    (``NC_000007.12``, GRCh36) is not a sequence this service can place.
    """
    found = refseq_chromosome(accession)
    if found is None or found.chrom == "MT":
        return None
    version = accession.strip().partition(".")[2]
    if found.build is None and version:
        return f"RefSeq {accession.strip()} is not a GRCh37 or GRCh38 chromosome accession"
    if found.build is not None and build is not None and found.build is not build:
        return (
            f"assembly {build.value} contradicts RefSeq {accession.strip()} ({found.build.value})"
        )
    return None
