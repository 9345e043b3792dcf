"""RefSeq accessions of the primary-assembly chromosomes per genome build: the one table.

GRCh37.p13 and GRCh38.p14 (NCBI assembly reports GCF_000001405.25 and GCF_000001405.26). The
accession's *version* tells the build (``NC_000007.13`` is GRCh37, ``NC_000007.14`` GRCh38).
Used by the KB builder (CIViC ``NC_0000xx.yy:g.`` expressions) and, through
:mod:`integrations.chromosomes`, by every reader and the FHIR writer.
"""

from __future__ import annotations

from typing import Final

from inference.genomics.model import GenomeBuild

_NC_GRCH37: Final = {
    "1": "NC_000001.10", "2": "NC_000002.11", "3": "NC_000003.11", "4": "NC_000004.11",
    "5": "NC_000005.9", "6": "NC_000006.11", "7": "NC_000007.13", "8": "NC_000008.10",
    "9": "NC_000009.11", "10": "NC_000010.10", "11": "NC_000011.9", "12": "NC_000012.11",
    "13": "NC_000013.10", "14": "NC_000014.8", "15": "NC_000015.9", "16": "NC_000016.9",
    "17": "NC_000017.10", "18": "NC_000018.9", "19": "NC_000019.9", "20": "NC_000020.10",
    "21": "NC_000021.8", "22": "NC_000022.10", "X": "NC_000023.10", "Y": "NC_000024.9",
}  # fmt: skip
_NC_GRCH38: Final = {
    "1": "NC_000001.11", "2": "NC_000002.12", "3": "NC_000003.12", "4": "NC_000004.12",
    "5": "NC_000005.10", "6": "NC_000006.12", "7": "NC_000007.14", "8": "NC_000008.11",
    "9": "NC_000009.12", "10": "NC_000010.11", "11": "NC_000011.10", "12": "NC_000012.12",
    "13": "NC_000013.11", "14": "NC_000014.9", "15": "NC_000015.10", "16": "NC_000016.10",
    "17": "NC_000017.11", "18": "NC_000018.10", "19": "NC_000019.10", "20": "NC_000020.11",
    "21": "NC_000021.9", "22": "NC_000022.11", "X": "NC_000023.11", "Y": "NC_000024.10",
}  # fmt: skip
#: Accessions by build and chromosome.
ACCESSIONS: Final[dict[GenomeBuild, dict[str, str]]] = {
    GenomeBuild.GRCH37: _NC_GRCH37,
    GenomeBuild.GRCH38: _NC_GRCH38,
}
#: Accession → (build, chromosome).
REFSEQ_CHROMOSOMES: Final[dict[str, tuple[GenomeBuild, str]]] = {
    accession: (build, chrom)
    for build, table in ACCESSIONS.items()
    for chrom, accession in table.items()
}
MITOCHONDRION: Final = "NC_012920.1"
