"""What the VCF header tells us before the first record: genome build, tumour sample, annotation.

Genome build, in order of strength (VCF 4.3 §1.4 meta-information lines):

1. ``##contig=<ID=1,length=249250621>`` lengths of the primary chromosomes (each build's
   lengths differ for every chromosome; GRCh37 from NCBI GCF_000001405.25, GRCh38 from
   GCF_000001405.26); an ``assembly=`` key on the contig line;
2. ``##reference=`` / ``##assembly=`` naming the build (``GRCh37``, ``hg19``, ``hs37d5``,
   ``human_g1k_v37``, ``GRCh38``, ``hg38`` …);
3. lift-over notes as CrossMap writes them (``##liftOverChainFile=…hg19ToHg38…`` means the
   records are on GRCh38; PCGR's example files carry only these).

An explicit ``build=`` argument is used as given, but contradicting contig lengths are refused:
reading GRCh37 positions as GRCh38 would silently match the wrong variants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from inference.genomics.model import GenomeBuild
from integrations.normalise import normalise_chrom, parse_build

_LENGTHS: Final[dict[GenomeBuild, dict[str, int]]] = {
    GenomeBuild.GRCH37: {
        "1": 249250621, "2": 243199373, "3": 198022430, "4": 191154276, "5": 180915260,
        "6": 171115067, "7": 159138663, "8": 146364022, "9": 141213431, "10": 135534747,
        "11": 135006516, "12": 133851895, "13": 115169878, "14": 107349540, "15": 102531392,
        "16": 90354753, "17": 81195210, "18": 78077248, "19": 59128983, "20": 63025520,
        "21": 48129895, "22": 51304566, "X": 155270560, "Y": 59373566,
    },
    GenomeBuild.GRCH38: {
        "1": 248956422, "2": 242193529, "3": 198295559, "4": 190214555, "5": 181538259,
        "6": 170805979, "7": 159345973, "8": 145138636, "9": 138394717, "10": 133797422,
        "11": 135086622, "12": 133275309, "13": 114364328, "14": 107043718, "15": 101991189,
        "16": 90338345, "17": 83257441, "18": 80373285, "19": 58617616, "20": 64444167,
        "21": 46709983, "22": 50818468, "X": 156040895, "Y": 57227415,
    },
}  # fmt: skip

_LIFTOVER_TARGET = re.compile(r"(?:hg19|hg38|grch37|grch38)to(hg19|hg38|grch37|grch38)", re.I)
_TUMOUR_NAME = re.compile(r"tumou?r|(?:^|[-_])T(?:$|[-_\d])", re.IGNORECASE)
# TCGA barcodes: sample type 01-09 are tumours, 10-19 normals (GDC "Sample Type Codes").
_TCGA_TUMOUR = re.compile(r"^TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}-0\d", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BuildEvidence:
    build: GenomeBuild
    source: str


def _contig_evidence(mapping: Any) -> tuple[BuildEvidence | None, BuildEvidence | None]:
    chrom = normalise_chrom(str(mapping.get("ID", "")))
    strong = None
    try:
        length = int(mapping.get("length", -1))
    except ValueError:
        length = -1
    if chrom is not None:
        for build, lengths in _LENGTHS.items():
            if lengths.get(chrom) == length:
                strong = BuildEvidence(build, f"##contig {mapping.get('ID')} length")
    assembly = parse_build(str(mapping.get("assembly", "")))
    weak = BuildEvidence(assembly, "##contig assembly") if assembly is not None else None
    return strong, weak


def _named_build(key: str, value: str) -> GenomeBuild | None:
    if key in {"reference", "assembly", "new_reference_genome"}:
        return parse_build(value)
    if key.lower().startswith("liftover"):
        match = _LIFTOVER_TARGET.search(value)
        return parse_build(match.group(1)) if match else None
    return None


def build_from_header(header: Any) -> tuple[BuildEvidence | None, BuildEvidence | None]:
    """(strong evidence from contig lengths, weaker evidence from names) for the genome build."""
    strong: BuildEvidence | None = None
    weak: BuildEvidence | None = None
    for line in header.lines:
        if line.key == "contig":
            contig_strong, contig_weak = _contig_evidence(getattr(line, "mapping", {}))
            strong = strong or contig_strong
            weak = weak or contig_weak
        elif weak is None:
            found = _named_build(line.key, str(getattr(line, "value", "")))
            weak = BuildEvidence(found, f"##{line.key}") if found is not None else None
    return strong, weak


def choose_sample(header: Any, names: list[str], wanted: str | None) -> str | None:
    """The tumour sample whose FORMAT fields give AF/DP/GT, or ``None`` when it is not clear.

    One sample: that one. Several: a ``##tumor_sample=`` line (GATK Mutect2), else the single
    name that says tumour (``TUMOR``, ``*_T``, a TCGA tumour barcode). Never a guess between
    two candidates: then FORMAT values are not used.
    """
    if wanted is not None:
        return wanted if wanted in names else None
    if len(names) == 1:
        return names[0]
    for line in header.lines:
        if line.key == "tumor_sample":
            value = str(getattr(line, "value", ""))
            if value in names:
                return value
    candidates = [n for n in names if _TUMOUR_NAME.search(n) or _TCGA_TUMOUR.match(n)]
    return candidates[0] if len(candidates) == 1 else None


@dataclass(frozen=True, slots=True)
class AnnotationLayout:
    """Field positions inside SnpEff ``ANN`` or Ensembl VEP ``CSQ`` entries."""

    key: str
    allele: int | None
    symbol: int | None
    hgvs_c: int | None
    hgvs_p: int | None
    feature: int | None
    hgnc_id: int | None
    pick: int | None
    canonical: int | None
    allele_num: int | None


def annotation_layout(header: Any) -> AnnotationLayout | None:
    """The ``ANN``/``CSQ`` field layout from its INFO description, or ``None``."""
    for key in ("CSQ", "ANN"):
        line = header.get_info_field_info(key) if key in header.info_ids() else None
        if line is None:
            continue
        description = str(line.description or "")
        body = description.split("Format:", 1)[1] if "Format:" in description else description
        if "'" in body:
            body = body.split("'")[1]
        names = [part.strip().strip("'\" ") for part in body.split("|")]
        index = {name.upper(): i for i, name in enumerate(names)}

        def pos(*options: str, index: dict[str, int] = index) -> int | None:
            for option in options:
                if option.upper() in index:
                    return index[option.upper()]
            return None

        return AnnotationLayout(
            key=key,
            allele=pos("Allele"),
            symbol=pos("SYMBOL", "Gene_Name"),
            hgvs_c=pos("HGVSc", "HGVS.c"),
            hgvs_p=pos("HGVSp", "HGVS.p"),
            feature=pos("Feature", "Feature_ID"),
            hgnc_id=pos("HGNC_ID"),
            pick=pos("PICK"),
            canonical=pos("CANONICAL"),
            allele_num=pos("ALLELE_NUM"),
        )
    return None
