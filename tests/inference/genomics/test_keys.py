"""kb/keys.py: the one writer and reader of knowledge-base matcher keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inference.genomics.kb import keys
from inference.genomics.kb.keys import KeyFormatError, KeyKind


def test_constructors_write_the_documented_formats() -> None:
    assert keys.protein("BRAF", "V600E") == "P|BRAF|V600E"
    assert keys.codon("KRAS", "G12") == "C|KRAS|G12"
    assert keys.codon_range("EGFR", 729, 761) == "R|EGFR|729|761"
    assert keys.named("FLT3", "itd") == "N|FLT3|ITD"
    assert keys.variant_class("EGFR", "exon19_deletion") == "CLS|EGFR|exon19_deletion"
    assert keys.exon("PDGFRA", 18) == "EX|PDGFRA|18|any"
    assert keys.exon("KIT", 11, "deletion") == "EX|KIT|11|deletion"
    assert keys.deleterious("BRCA2") == "DLT|BRCA2"
    assert keys.deleterious("BRCA2", "any") == "DLT|BRCA2"
    assert keys.deleterious("BRCA2", "germline") == "DLT|BRCA2|germline"
    assert keys.mutation("NPM1") == "MUT|NPM1"
    assert keys.fusion("ALK") == "F|ALK"
    assert keys.fusion("BCR", "ABL1") == keys.fusion("ABL1", "BCR") == "F2|ABL1|BCR"
    assert keys.amplification("ERBB2") == "AMP|ERBB2"
    assert keys.deletion("CDKN2A") == "DEL|CDKN2A"
    assert keys.tmb(10) == keys.tmb(10.0) == "TMB|10"
    assert (keys.MSI, keys.HRD) == ("MSI", "HRD")


def test_parse_reads_back_kind_genes_and_fields() -> None:
    assert keys.parse("P|BRAF|V600E") == keys.ParsedKey(KeyKind.PROTEIN, ("BRAF",), ("V600E",))
    assert keys.parse("F2|ABL1|BCR").genes == ("ABL1", "BCR")
    assert keys.parse("DLT|BRCA1|germline").fields == ("germline",)
    assert keys.parse("MSI").genes == ()
    assert keys.parse("TMB|10").fields == ("10",)
    assert keys.genes_of("EX|KIT|11|any") == ("KIT",)
    assert keys.codon_range_of("R|EGFR|729|761") == ("EGFR", 729, 761)
    assert keys.codon_range_of("P|EGFR|L858R") is None
    assert keys.tmb_threshold_of("TMB|12.5") == 12.5
    assert keys.tmb_threshold_of("MSI") is None


@pytest.mark.parametrize(
    "bad",
    [
        "X|BRAF",
        "P|BRAF",
        "P|BRAF|V600E|extra",
        "DLT|BRCA2|mosaic",
        "EX|KIT|11|weird",
        "EX|KIT|eleven|any",
        "R|EGFR|a|b",
        "TMB|high",
        "MSI|x",
        "P||V600E",
    ],
)
def test_parse_refuses_what_is_not_a_key(bad: str) -> None:
    with pytest.raises(KeyFormatError):
        keys.parse(bad)


def test_constructors_refuse_fields_that_would_break_the_format() -> None:
    with pytest.raises(KeyFormatError):
        keys.protein("BRAF", "V600|E")
    with pytest.raises(KeyFormatError):
        keys.protein("", "V600E")
    with pytest.raises(KeyFormatError):
        keys.exon("KIT", 11, "splice")
    with pytest.raises(KeyFormatError):
        keys.deleterious("BRCA2", "mosaic")
    with pytest.raises(KeyFormatError):
        keys.codon_range("EGFR", 761, 729)


def test_no_module_writes_keys_by_hand() -> None:
    """Issue #13: the key format lives in kb/keys.py only (this check fails on a new literal)."""
    root = Path(keys.__file__).resolve().parents[3]
    literal = re.compile(r"""f?["'](?:P|C|R|N|CLS|EX|DLT|MUT|F|F2|AMP|DEL|TMB)\|""")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for package in ("inference", "integrations", "cds_service")
        for path in sorted((root / package).rglob("*.py"))
        if path.name != "keys.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line)
    ]
    assert not offenders
    assert literal.search('return f"P|{gene}|{change}"')  # the check sees a hand-written key
