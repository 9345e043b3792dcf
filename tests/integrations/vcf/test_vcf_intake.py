"""VCF intake on real tumour VCFs (tests/data/vcf, see its README) and on small written cases."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from inference.genomics.model import GenomeBuild, Origin, Variant, Zygosity
from integrations.errors import IntakeError, RecordProblem
from integrations.vcf import VcfReader, iter_vcf, read_vcf

DATA = Path(__file__).resolve().parents[2] / "data" / "vcf"
COAD37 = DATA / "pcgr_T001-COAD.grch37.vcf.gz"
COAD38 = DATA / "pcgr_T001-COAD.grch38.vcf.gz"
BRCA37 = DATA / "pcgr_T001-BRCA.grch37.vcf.gz"
BRCA38 = DATA / "pcgr_T001-BRCA.grch38.vcf.gz"
MERGED = DATA / "vcf2maf_test_merged.vcf"

HEADER = "##fileformat=VCFv4.2\n"
INFO_AF = '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele fraction">\n'
FORMAT_GT_AD = (
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">\n'
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
)
COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tTUMOR\n"
COLUMNS_NO_SAMPLE = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def _at(variants: list[Variant], chrom: str, pos: int) -> Variant:
    found = [
        v for v in variants if v.position and (v.position.chrom, v.position.pos) == (chrom, pos)
    ]
    assert len(found) == 1, f"expected one variant at {chrom}:{pos}, found {len(found)}"
    return found[0]


def _vcf(body: str, header: str = "") -> bytes:
    return (HEADER + header + body).encode()


# ------------------------------------------------------------------ the real files


def test_coad_grch37_braf_v600e_and_record_count() -> None:
    result = read_vcf(COAD37)
    assert result.records_read == 3317  # README: 3,317 data lines, none multi-allelic
    assert len(result.alterations) == 3317
    assert result.problems == []
    braf = _at(result.alterations, "7", 140453136)  # type: ignore[arg-type]
    assert braf.position is not None
    assert braf.position.build is GenomeBuild.GRCH37
    assert (braf.position.ref, braf.position.alt) == ("A", "T")
    assert braf.allele_frequency == pytest.approx(0.31, abs=0.005)
    assert braf.depth == 54
    assert braf.filters == ("PASS",)
    assert braf.zygosity is Zygosity.HETEROZYGOUS
    assert braf.source_ref == "pcgr_T001-COAD.grch37.vcf.gz:1260"


def test_coad_grch38_braf_v600e_and_record_count() -> None:
    result = read_vcf(COAD38)
    assert result.records_read == 3313
    assert len(result.alterations) == 3313
    braf = _at(result.alterations, "7", 140753336)  # type: ignore[arg-type]
    assert braf.position is not None
    assert braf.position.key == "GRCh38:7:140753336:A:T"
    assert braf.allele_frequency == pytest.approx(0.31, abs=0.005)
    assert braf.depth == 54


@pytest.mark.parametrize(
    ("path", "build", "pos"),
    [(BRCA37, GenomeBuild.GRCH37, 178952085), (BRCA38, GenomeBuild.GRCH38, 179234297)],
)
def test_brca_pik3ca_h1047r(path: Path, build: GenomeBuild, pos: int) -> None:
    result = read_vcf(path)
    assert result.records_read == 196
    assert len(result.alterations) == 196
    pik3ca = _at(result.alterations, "3", pos)  # type: ignore[arg-type]
    assert pik3ca.position is not None
    assert pik3ca.position.build is build
    assert (pik3ca.position.ref, pik3ca.position.alt) == ("A", "G")
    assert pik3ca.allele_frequency == pytest.approx(0.42, abs=0.005)
    assert pik3ca.depth == 74


def test_build_is_detected_from_the_lift_over_lines_of_pcgr_headers() -> None:
    with VcfReader(COAD37) as reader37, VcfReader(COAD38) as reader38:
        assert (reader37.build, reader38.build) == (GenomeBuild.GRCH37, GenomeBuild.GRCH38)
        assert reader37.build_source.startswith("##liftOver")


def test_merged_callset_splits_multiallelics_and_reports_n_alleles() -> None:
    result = read_vcf(MERGED)
    assert result.records_read == 573
    # 573 lines with 4 two-ALT records = 577 alleles; the 2 'N' ALTs are problems.
    assert len(result.alterations) == 575
    assert [p.location for p in result.problems] == [
        "vcf2maf_test_merged.vcf:129",
        "vcf2maf_test_merged.vcf:558",
    ]
    kras = _at(result.alterations, "12", 25398284)  # type: ignore[arg-type]
    assert kras.allele_frequency == pytest.approx(0.667)  # TUMOR column FORMAT FA, not NORMAL
    assert kras.depth == 27
    assert kras.filters == ()
    two = [v for v in result.alterations if v.position and v.position.pos == 153352260]
    assert sorted(v.position.alt for v in two if v.position) == [
        "A",
        "ACACCTAGGGTGGCGGCGGCTCCTTGGCAGA",
    ]
    with VcfReader(MERGED) as reader:
        assert reader.build is GenomeBuild.GRCH37  # ##reference=…GRCh37-lite.fa.gz
        assert reader.sample == "TUMOR"


# ------------------------------------------------------------------ build and contigs


def test_contig_lengths_give_grch38_and_chr_prefix_is_dropped() -> None:
    data = _vcf(
        "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\nchrM\t100\t.\tG\tA\t.\t.\t.\n",
        "##contig=<ID=chr1,length=248956422>\n##contig=<ID=chr7,length=159345973>\n"
        + COLUMNS_NO_SAMPLE,
    )
    result = read_vcf(data)
    keys = [v.position.key for v in result.alterations if isinstance(v, Variant) and v.position]
    assert keys == ["GRCh38:7:140753336:A:T", "GRCh38:MT:100:G:A"]


def test_reference_line_names_grch37() -> None:
    data = _vcf(
        "1\t1000\t.\tC\tT\t.\t.\t.\n", "##reference=file:///ref/hs37d5.fa\n" + COLUMNS_NO_SAMPLE
    )
    with VcfReader(data) as reader:
        assert reader.build is GenomeBuild.GRCH37
        assert reader.build_source == "##reference"


def test_unknown_build_is_refused_unless_given() -> None:
    data = _vcf("1\t1000\t.\tC\tT\t.\t.\t.\n", COLUMNS_NO_SAMPLE)
    with pytest.raises(IntakeError, match="genome build"):
        read_vcf(data)
    result = read_vcf(data, build="hg38")
    assert result.alterations[0].position.build is GenomeBuild.GRCH38  # type: ignore[union-attr]


def test_given_build_contradicting_contig_lengths_is_refused() -> None:
    data = _vcf(
        "1\t1000\t.\tC\tT\t.\t.\t.\n", "##contig=<ID=1,length=249250621>\n" + COLUMNS_NO_SAMPLE
    )
    with pytest.raises(IntakeError, match="header says GRCh37"):
        read_vcf(data, build="GRCh38")
    assert read_vcf(data, build="GRCh37").alterations


# ------------------------------------------------------------------ records


def test_multiallelic_values_are_taken_per_allele() -> None:
    data = _vcf(
        "1\t100\t.\tA\tC,T\t.\tPASS\t.\tGT:AF:DP\t1/2:0.1,0.2:20\n"
        "1\t200\t.\tG\tA,C\t.\tq10;lowdp\t.\tGT:AD:DP\t0/2:10,2,8:20\n"
        "1\t300\t.\tG\tA,C\t.\tPASS\tAF=0.3,0.6\tGT\t1/1\n",
        INFO_AF
        + FORMAT_GT_AD
        + '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fraction">\n'
        + COLUMNS,
    )
    variants = read_vcf(data, build="GRCh37").alterations
    assert [(v.position.alt, v.allele_frequency, v.zygosity) for v in variants] == [  # type: ignore[union-attr]
        ("C", 0.1, Zygosity.HETEROZYGOUS),
        ("T", 0.2, Zygosity.HETEROZYGOUS),
        # No AF: allele depths give alt / total; GT 0/2 means only allele C is carried.
        ("A", 0.1, Zygosity.UNKNOWN),
        ("C", 0.4, Zygosity.HETEROZYGOUS),
        # Neither FORMAT AF nor AD: INFO AF (Number=A) is the last resort.
        ("A", 0.3, Zygosity.HOMOZYGOUS),
        ("C", 0.6, Zygosity.UNKNOWN),
    ]
    assert variants[2].filters == ("q10", "lowdp")  # type: ignore[union-attr]
    assert [v.depth for v in variants] == [20, 20, 20, 20, None, None]  # type: ignore[union-attr]


def test_symbolic_alts_are_problems_and_star_alleles_are_skipped() -> None:
    data = _vcf(
        "1\t100\t.\tA\t<DEL>\t.\tPASS\t.\n"
        "1\t200\t.\tG\tC,*\t.\tPASS\t.\n"
        "1\t300\t.\tG\tG]2:1000]\t.\tPASS\t.\n",
        COLUMNS_NO_SAMPLE,
    )
    result = read_vcf(data, build="GRCh37", name="sv.vcf")
    assert [v.position.pos for v in result.alterations] == [200]  # type: ignore[union-attr]
    assert [p.location for p in result.problems] == ["sv.vcf:3", "sv.vcf:5"]
    assert all("symbolic ALT" in p.reason for p in result.problems)


def test_malformed_lines_are_problems_with_line_numbers_and_the_rest_loads() -> None:
    data = _vcf(
        "1\t100\t.\tA\tC\t.\tPASS\t.\n"
        "1\tabc\t.\tA\tC\t.\tPASS\t.\n"  # line 4: POS not a number
        "1\t300\t.\tA\n"  # line 5: too few columns
        "1\t400\t.\tAXZ\tC\t.\tPASS\t.\n"  # line 6: REF not a sequence
        "\n"
        "1\t500\t.\tT\tG\t.\tPASS\t.\n",
        COLUMNS_NO_SAMPLE,
    )
    result = read_vcf(data, build="GRCh37", name="bad.vcf")
    assert [v.position.pos for v in result.alterations] == [100, 500]  # type: ignore[union-attr]
    assert [p.location for p in result.problems] == ["bad.vcf:4", "bad.vcf:5", "bad.vcf:6"]
    assert "malformed VCF record" in result.problems[0].reason
    assert "REF" in result.problems[2].reason
    with pytest.raises(IntakeError) as raised:
        read_vcf(data, build="GRCh37", name="bad.vcf", strict=True)
    assert [p.location for p in raised.value.problems] == ["bad.vcf:4", "bad.vcf:5", "bad.vcf:6"]


def test_unreadable_allele_fraction_is_reported_and_the_variant_kept() -> None:
    data = _vcf(
        "1\t100\t.\tA\tC\t.\tPASS\tTVAF=abc\n1\t200\t.\tA\tC\t.\tPASS\tTVAF=1.5\n",
        '##INFO=<ID=TVAF,Number=1,Type=Float,Description="tumour VAF">\n' + COLUMNS_NO_SAMPLE,
    )
    result = read_vcf(data, build="GRCh37", name="af.vcf")
    assert [v.allele_frequency for v in result.alterations] == [None, None]  # type: ignore[union-attr]
    assert [p.location for p in result.problems] == ["af.vcf:4", "af.vcf:5"]
    assert "outside 0..1" in result.problems[1].reason


def test_somatic_flag_and_origin_argument() -> None:
    data = _vcf(
        "1\t100\t.\tA\tC\t.\tPASS\tSOMATIC\n1\t200\t.\tA\tC\t.\tPASS\t.\n",
        '##INFO=<ID=SOMATIC,Number=0,Type=Flag,Description="somatic">\n' + COLUMNS_NO_SAMPLE,
    )
    plain = read_vcf(data, build="GRCh37").alterations
    assert [v.origin for v in plain] == [Origin.SOMATIC, Origin.UNKNOWN]  # type: ignore[union-attr]
    given = read_vcf(data, build="GRCh37", origin=Origin.GERMLINE).alterations
    assert [v.origin for v in given] == [Origin.SOMATIC, Origin.GERMLINE]  # type: ignore[union-attr]


def test_two_unlabelled_samples_are_not_guessed_between() -> None:
    data = _vcf(
        "1\t100\t.\tA\tC\t.\tPASS\t.\tGT:AD:DP\t0/1:5,5:10\t0/0:10,0:10\n",
        FORMAT_GT_AD + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n",
    )
    (unlabelled,) = read_vcf(data, build="GRCh37").alterations
    assert unlabelled.allele_frequency is None  # type: ignore[union-attr]
    (chosen,) = read_vcf(data, build="GRCh37", sample="S1").alterations
    assert chosen.allele_frequency == 0.5  # type: ignore[union-attr]
    with pytest.raises(IntakeError, match="sample 'S3'"):
        read_vcf(data, build="GRCh37", sample="S3")


def test_snpeff_ann_and_vep_csq_give_gene_and_hgvs() -> None:
    ann = _vcf(
        "7\t140753336\t.\tA\tT\t.\tPASS\tANN=T|missense_variant|MODERATE|BRAF|ENSG00000157764|"
        "transcript|NM_004333.6|protein_coding|15/18|c.1799T>A|p.Val600Glu|1860/2480|1799/2301|"
        "600/766||\n",
        "##INFO=<ID=ANN,Number=.,Type=String,Description=\"Functional annotations: 'Allele | "
        "Annotation | Annotation_Impact | Gene_Name | Gene_ID | Feature_Type | Feature_ID | "
        "Transcript_BioType | Rank | HGVS.c | HGVS.p | cDNA.pos / cDNA.length | CDS.pos / "
        "CDS.length | AA.pos / AA.length | Distance | ERRORS / WARNINGS / INFO' \">\n"
        + COLUMNS_NO_SAMPLE,
    )
    (braf,) = read_vcf(ann, build="GRCh38").alterations
    assert isinstance(braf, Variant)
    assert braf.gene is not None
    assert braf.gene.symbol == "BRAF"
    assert (braf.hgvs_c, braf.hgvs_p, braf.protein_change) == ("c.1799T>A", "p.Val600Glu", "V600E")
    assert braf.transcript == "NM_004333.6"

    csq = _vcf(
        "12\t25245350\t.\tC\tA,T\t.\tPASS\tCSQ="
        "A|missense_variant|KRAS|ENST00000256078.10|ENST00000256078.10:c.35G>T|"
        "ENSP00000256078.5:p.Gly12Val||HGNC:6407,"
        "T|missense_variant|KRAS|ENST00000311936.8|ENST00000311936.8:c.35G>A|"
        "ENSP00000308495.3:p.Gly12Asp||HGNC:6407,"
        "T|missense_variant|KRAS|ENST00000256078.10|ENST00000256078.10:c.35G>A|"
        "ENSP00000256078.5:p.Gly12Asp|1|HGNC:6407\n",
        '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl '
        'VEP. Format: Allele|Consequence|SYMBOL|Feature|HGVSc|HGVSp|PICK|HGNC_ID">\n'
        + COLUMNS_NO_SAMPLE,
    )
    g12v, g12d = read_vcf(csq, build="GRCh38").alterations
    assert isinstance(g12v, Variant)
    assert isinstance(g12d, Variant)
    assert (g12v.protein_change, g12v.transcript) == ("G12V", "ENST00000256078.10")
    # The PICKed entry wins over the first one for the same allele.
    assert (g12d.protein_change, g12d.transcript) == ("G12D", "ENST00000256078.10")
    assert g12d.gene is not None
    assert g12d.gene.hgnc_id == "HGNC:6407"


# ------------------------------------------------------------------ input forms and streaming


def test_bytes_plain_and_gzipped_give_the_same_variants() -> None:
    raw = _vcf("1\t100\t.\tA\tC\t.\tPASS\t.\n", COLUMNS_NO_SAMPLE)
    plain = read_vcf(raw, build="GRCh37").alterations
    zipped = read_vcf(gzip.compress(raw), build="GRCh37").alterations
    assert plain == zipped
    assert len(plain) == 1


def test_not_a_vcf_is_refused() -> None:
    with pytest.raises(IntakeError, match="not a VCF"):
        read_vcf(b"gene,hgvs\nBRAF,V600E\n")


def test_overlong_line_is_one_problem() -> None:
    data = _vcf(
        "1\t100\t.\tA\tC\t.\tPASS\t" + "X" * (1 << 20) + "\n1\t200\t.\tA\tC\t.\tPASS\t.\n",
        COLUMNS_NO_SAMPLE,
    )
    result = read_vcf(data, build="GRCh37", name="long.vcf")
    assert [v.position.pos for v in result.alterations] == [200]  # type: ignore[union-attr]
    assert result.problems == [RecordProblem("long.vcf:3", "line longer than 1048576 characters")]


class _CountingStream(io.RawIOBase):
    """A binary stream that counts the bytes handed out, to see how far the reader has read."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._inner.read(min(len(buffer), 8192))
        buffer[: len(chunk)] = chunk
        self.served += len(chunk)
        return len(chunk)


def test_records_stream_without_reading_the_whole_file() -> None:
    body = "".join(f"1\t{1000 + i}\t.\tA\tC\t.\tPASS\t.\n" for i in range(50_000))
    data = _vcf(body, "##contig=<ID=1,length=249250621>\n" + COLUMNS_NO_SAMPLE)
    stream = _CountingStream(data)
    records = iter_vcf(stream)
    first = next(records)
    assert isinstance(first, Variant)
    # The first variant arrives after one batch of lines, long before the file's 1.3 MB are read.
    assert stream.served < len(data) // 10
    assert sum(1 for _ in records) == 49_999
    assert stream.served == len(data)


def test_refseq_chrom_is_read_through_the_chromosome_table_and_checked_against_the_build() -> None:
    """CHROM written as a RefSeq accession (issue 13 §4): the version must be the file's build."""
    data = _vcf(
        "NC_000007.14\t140753336\t.\tA\tT\t.\tPASS\t.\n"
        "NC_000007.13\t140453136\t.\tA\tT\t.\tPASS\t.\n",
        "##reference=GRCh38\n" + COLUMNS_NO_SAMPLE,
    )
    result = read_vcf(data, name="refseq.vcf")
    keys = [v.position.key for v in result.alterations if isinstance(v, Variant) and v.position]
    assert keys == ["GRCh38:7:140753336:A:T"]
    (problem,) = result.problems
    assert problem.location == "refseq.vcf:5"
    assert "assembly GRCh38 contradicts RefSeq NC_000007.13 (GRCh37)" in problem.reason
