"""read_variants picks the reader by extension or content and passes options through."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from inference.genomics.model import BiomarkerKind, Origin, Variant
from integrations.errors import IntakeError
from integrations.readers import read_variants

DATA = Path(__file__).resolve().parents[1] / "data"
VCF_LINES = (
    "##fileformat=VCFv4.2\n"
    "##contig=<ID=7,length=159345973>\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "7\t140753336\t.\tA\tT\t.\tPASS\t.\n"
)


def test_vcf_by_extension_with_options() -> None:
    result = read_variants(DATA / "vcf" / "pcgr_T001-BRCA.grch38.vcf.gz", origin=Origin.SOMATIC)
    assert len(result.alterations) == 196
    assert {a.origin for a in result.alterations} == {Origin.SOMATIC}


@pytest.mark.parametrize("payload", [VCF_LINES.encode(), gzip.compress(VCF_LINES.encode())])
def test_vcf_by_content(payload: bytes) -> None:
    (variant,) = read_variants(payload).alterations
    assert isinstance(variant, Variant)
    assert variant.position is not None
    assert variant.position.key == "GRCh38:7:140753336:A:T"


def test_fhir_json_by_extension_and_by_content() -> None:
    path = DATA / "fhir" / "stu3_braf_report_bundle.json"
    by_path = read_variants(path).alterations
    by_bytes = read_variants(path.read_bytes()).alterations
    assert by_path == by_bytes
    assert by_path[0].protein_change == "V600E"  # type: ignore[union-attr]


def test_table_and_text_by_content(tmp_path: Path) -> None:
    table = read_variants(b"gene,hgvs_p\nBRAF,V600E\n").alterations
    text = read_variants(b"BRAF V600E\nMSI-H\n").alterations
    assert table[0].protein_change == "V600E"  # type: ignore[union-attr]
    assert [getattr(a, "kind", None) for a in text] == [None, BiomarkerKind.MSI_HIGH]
    listing = tmp_path / "list.txt"
    listing.write_text("gene,hgvs_p\n")  # .txt forces the text reader: a header is no alteration
    with pytest.raises(IntakeError):
        read_variants(listing)


def test_bad_json_and_unknown_format_are_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "report.json"
    broken.write_text('{"resourceType": "Bundle",\n "entry": [')
    with pytest.raises(IntakeError, match=r"report.json:2: not valid JSON"):
        read_variants(broken)
    with pytest.raises(IntakeError, match="unknown format"):
        read_variants(b"x", fmt="maf")
    with pytest.raises(IntakeError, match="cannot open"):
        read_variants(tmp_path / "missing.csv")


def test_strict_passes_through(tmp_path: Path) -> None:
    path = tmp_path / "paste.txt"
    path.write_text("BRAF V600E\nnonsense here\n")
    assert len(read_variants(path).problems) == 1
    with pytest.raises(IntakeError) as raised:
        read_variants(path, strict=True)
    assert str(raised.value.problems[0]).startswith("paste.txt:2: 'here' is not a c. or p. HGVS")
