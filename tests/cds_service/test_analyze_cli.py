"""``oncocds analyze`` end to end on the PCGR example tumours (real TCGA calls, tests/data/vcf)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds_service.cli import main
from integrations.fhir.genomics_profiles import check_bundle

VCF = Path(__file__).resolve().parents[1] / "data" / "vcf"


def _therapies(document: dict[str, object]) -> set[tuple[str, str, tuple[str, ...]]]:
    found = set()
    for finding in document["therapeutic"]:  # type: ignore[attr-defined]
        drugs = tuple(sorted(d["name"] for d in finding["drugs"]))
        found.add((finding["tier"]["tier"], finding["response"], drugs))
    return found


def _analyze_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["analyze", *args, "--format", "json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


@pytest.mark.parametrize("build", ["grch37", "grch38"])
def test_coad_braf_v600e_tier_one_encorafenib_cetuximab(
    capsys: pytest.CaptureFixture[str], build: str
) -> None:
    document = _analyze_json(
        capsys, str(VCF / f"pcgr_T001-COAD.{build}.vcf.gz"), "--tumor-type", "COAD"
    )
    top = document["therapeutic"][0]  # type: ignore[index]
    assert top["tier"] == {"tier": "I", "level": "A"}
    assert sorted(d["name"] for d in top["drugs"]) == ["cetuximab", "encorafenib"]
    assert top["fda_approved_for_tumour"] is True
    assert {e["id"] for e in top["evidence"]} >= {"EID9851"}
    labels = {(a.get("gene") or {}).get("symbol") for a in document["alterations"]}  # type: ignore[union-attr]
    assert "BRAF" in labels


def test_both_builds_give_the_same_findings(capsys: pytest.CaptureFixture[str]) -> None:
    grch37 = _analyze_json(
        capsys, str(VCF / "pcgr_T001-COAD.grch37.vcf.gz"), "--tumor-type", "COAD"
    )
    grch38 = _analyze_json(
        capsys, str(VCF / "pcgr_T001-COAD.grch38.vcf.gz"), "--tumor-type", "COAD"
    )
    assert _therapies(grch37) == _therapies(grch38)
    assert len(_therapies(grch37)) > 1


@pytest.mark.parametrize("build", ["grch37", "grch38"])
def test_brca_pik3ca_h1047r_fulvestrant_combinations(
    capsys: pytest.CaptureFixture[str], build: str
) -> None:
    document = _analyze_json(
        capsys,
        str(VCF / f"pcgr_T001-BRCA.{build}.vcf.gz"),
        "--tumor-type",
        "BRCA",
        "--context",
        "HR+,HER2-",
    )
    tier_one = {drugs for tier, response, drugs in _therapies(document) if tier == "I"}
    for drug in ("alpelisib", "capivasertib", "inavolisib"):
        assert any(drug in drugs and "fulvestrant" in drugs for drugs in tier_one), drug


def test_fhir_output_is_a_genomics_report_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    vcf = str(VCF / "pcgr_T001-BRCA.grch38.vcf.gz")
    assert main(["analyze", vcf, "--tumor-type", "BRCA", "--format", "fhir"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    assert check_bundle(bundle) == []
    reports = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    ]
    assert reports[0]["code"]["coding"][0]["code"] == "51969-4"


def test_text_output_names_the_variant_and_citations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(VCF / "pcgr_T001-COAD.grch37.vcf.gz"), "--tumor-type", "COAD"]) == 0
    out = capsys.readouterr().out
    assert "BRAF V600E" in out
    assert "EID9851" in out
    assert "not a diagnosis" in out


def test_text_list_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "variants.txt"
    listing.write_text("KRAS G12D\nBRAF V600E\nNOTAGENE X1Y\n")
    document = _analyze_json(capsys, str(listing), "--tumor-type", "COAD")
    drugs = {d for _, _, group in _therapies(document) for d in group}
    assert "sotorasib" not in drugs
    assert "adagrasib" not in drugs
    assert "encorafenib" in drugs
    assert document["unknown"]


def test_unknown_tumour_type_lists_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "analyze",
            str(VCF / "pcgr_T001-COAD.grch37.vcf.gz"),
            "--tumor-type",
            "colon adenocarcinom",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("oncocds: error: unknown tumour type")
    assert "COAD" in err
    assert len(err.splitlines()) == 1


def test_missing_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["analyze", str(tmp_path / "nope.vcf")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_strict_mode_refuses_a_bad_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "variants.txt"
    listing.write_text("BRAF V600E\nthis is not a variant at all ###\n")
    assert main(["analyze", str(listing), "--strict"]) == 2
    assert "oncocds: error:" in capsys.readouterr().err
    assert main(["analyze", str(listing), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["problems"]


@pytest.mark.parametrize("tumour", ["BLCA", "HGSOC", "FL", "SM", "THAP", "UCS"])
def test_any_oncotree_code_is_a_tumour_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tumour: str
) -> None:
    listing = tmp_path / "variants.txt"
    listing.write_text("BRAF p.V600E\n")
    document = _analyze_json(capsys, str(listing), "--tumor-type", tumour)
    assert document["context"]["tumour_type"]["code"] == tumour  # type: ignore[index]


def test_unknown_tumour_code_error_stays_short(capsys: pytest.CaptureFixture[str]) -> None:
    vcf = str(VCF / "pcgr_T001-COAD.grch37.vcf.gz")
    assert main(["analyze", vcf, "--tumor-type", "ZZQX"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("oncocds: error: unknown tumour type")
    assert len(err) < 400


# The BRCA founder frameshifts (issue 12): c. forms as hereditary panels write them, and the
# protein changes they predict (BRCA1 c.68_69delAG p.Glu23ValfsTer17, c.5266dupC
# p.Gln1756ProfsTer74; BRCA2 c.5946delT p.Ser1982ArgfsTer22; ClinVar VCV000017662,
# VCV000017677, VCV000009325).
FOUNDERS_C = "BRCA1 c.68_69delAG\nBRCA1 c.5266dupC\nBRCA2 c.5946delT\n"
FOUNDERS_P = "BRCA1 p.Glu23ValfsTer17\nBRCA1 Q1756Pfs*74\nBRCA2 S1982Rfs*22\n"


def test_origin_germline_reaches_the_variants_of_a_text_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "panel.txt"
    listing.write_text(FOUNDERS_C)
    document = _analyze_json(capsys, str(listing), "--tumor-type", "BRCA", "--origin", "germline")
    assert [(a["hgvs_c"], a["origin"]) for a in document["alterations"]] == [  # type: ignore[attr-defined]
        ("c.68_69delAG", "germline"),
        ("c.5266dupC", "germline"),
        ("c.5946delT", "germline"),
    ]


def test_origin_germline_fills_the_hereditary_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "panel.txt"
    listing.write_text(FOUNDERS_P)
    somatic_unknown = _analyze_json(capsys, str(listing), "--tumor-type", "BRCA")
    assert somatic_unknown["hereditary"] == []
    germline = _analyze_json(capsys, str(listing), "--tumor-type", "BRCA", "--origin", "germline")
    hereditary = germline["hereditary"]
    assert [h["gene"]["symbol"] for h in hereditary] == ["BRCA1", "BRCA1", "BRCA2"]  # type: ignore[attr-defined,index]


def test_c_forms_with_origin_germline_reach_hereditary_and_parp_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The founder frameshifts in c. form only (no p.): loss of function from the indel length."""
    listing = tmp_path / "panel.txt"
    listing.write_text(FOUNDERS_C)
    document = _analyze_json(capsys, str(listing), "--tumor-type", "PRAD", "--origin", "germline")
    hereditary = document["hereditary"]
    assert [h["gene"]["symbol"] for h in hereditary] == ["BRCA1", "BRCA1", "BRCA2"]  # type: ignore[attr-defined,index]
    assert document["unknown"] == []
    approved = {
        tuple(d["name"] for d in f["drugs"])  # type: ignore[index]
        for f in document["therapeutic"]  # type: ignore[attr-defined]
        if f["fda_approved_for_tumour"]  # type: ignore[index]
    }
    assert {("olaparib",), ("rucaparib",)} <= approved


def test_notation_labs_write_is_read_by_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "report.txt"
    listing.write_text(
        "EGFR E746_A750del\nEGFR exon 19 deletion\nEML4-ALK\nERBB2 amp\nMSI-H\n"
        "TMB 12 mut/Mb\nFLT3-ITD\nHRD positive\nEGFR exon 2 deletion\n"
    )
    document = _analyze_json(capsys, str(listing), "--tumor-type", "NSCLC")
    labels = [
        a.get("protein_change") or a.get("variant_class") or a.get("kind")
        for a in document["alterations"]
    ]  # type: ignore[attr-defined]
    assert labels == [
        "E746_A750del",
        "exon 19 deletion",
        "fusion",
        "amplification",
        "msi-high",
        "tmb",
        "internal tandem duplication",
        "hrd",
    ]
    (problem,) = document["problems"]  # type: ignore[misc]
    assert "report.txt:9" in str(problem)
    assert "exon 2 deletion is not a class this reader knows" in str(problem)
