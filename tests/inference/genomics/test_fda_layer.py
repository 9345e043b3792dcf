"""The FDA layer (kb/fda.py, sources/curated/fda/*.toml) end to end: the loader refuses what the
format does not allow, and interpret() finds the labelled drug for the label's biomarker and
tumour type, and no drug its label excludes. Expected drugs are read from the labels (cited in
the fact files), never from the code under test."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from inference.errors import KnowledgeBaseSourceError
from inference.genomics import BiomarkerKind, Interpretation, Response, interpret
from inference.genomics.kb import DEFAULT_KB_PATH, load_knowledge_base
from inference.genomics.kb.civic import read_tsv
from inference.genomics.kb.fda import load_fda_layer
from inference.genomics.matching import variant_match
from inference.genomics.model import Gene, Origin, Variant, VariantClass
from tests.inference.genomics.factories import biomarker, context, variant

SOURCES = DEFAULT_KB_PATH.parent.parent / "sources"
FDA_DIR = SOURCES / "curated" / "fda"


def _fda(result: Interpretation) -> dict[tuple[str, ...], set[str]]:
    """Sensitive regimens approved for the patient's tumour type → the FDA facts cited."""
    found: dict[tuple[str, ...], set[str]] = {}
    for f in result.therapeutic:
        if f.response is Response.SENSITIVE and f.fda_approved_for_tumour:
            drugs = tuple(d.name for d in f.drugs)
            found.setdefault(drugs, set()).update(e.id for e in f.evidence if e.source == "FDA")
    return found


def _sensitive(result: Interpretation) -> set[str]:
    return {d.name for f in result.therapeutic if f.response is Response.SENSITIVE for d in f.drugs}


# ------------------------------------------------------------------ the examples


def test_idh2_r140q_aml_gets_enasidenib() -> None:
    found = _fda(interpret([variant("IDH2", protein="R140Q")], context("AML")))
    assert "IDHIFA-AML-IDH2-RR" in found[("enasidenib",)]


def test_abl1_t315i_cml_gets_ponatinib_and_asciminib() -> None:
    found = _fda(interpret([variant("ABL1", protein="T315I")], context("CML")))
    assert "ICLUSIG-CML-T315I" in found[("ponatinib",)]
    assert "SCEMBLIX-CML-T315I" in found[("asciminib",)]


def test_t315i_in_ph_positive_all_needs_the_fusion_too() -> None:
    alone = _fda(interpret([variant("ABL1", protein="T315I")], context("BLL")))
    assert ("ponatinib",) not in alone
    fusion = biomarker(BiomarkerKind.FUSION, "ABL1", partner="BCR")
    both = _fda(interpret([variant("ABL1", protein="T315I"), fusion], context("BLL")))
    assert "ICLUSIG-BLL-T315I" in both[("ponatinib",)]


def test_ret_m918t_medullary_thyroid_gets_selpercatinib() -> None:
    # OncoTree THME = medullary thyroid cancer.
    found = _fda(interpret([variant("RET", protein="M918T")], context("THME")))
    assert "RETEVMO-THME-RET" in found[("selpercatinib",)]


def test_pdgfra_d842v_gist_gets_avapritinib() -> None:
    found = _fda(interpret([variant("PDGFRA", protein="D842V")], context("GIST")))
    assert "AYVAKIT-GIST-PDGFRA-EX18" in found[("avapritinib",)]


def test_pdgfra_stated_exon18_mutation_gets_avapritinib() -> None:
    stated = Variant(gene=Gene("PDGFRA"), variant_class=VariantClass.EXON_MUTATION, exon=18)
    assert ("avapritinib",) in _fda(interpret([stated], context("GIST")))
    exon12 = Variant(gene=Gene("PDGFRA"), variant_class=VariantClass.EXON_MUTATION, exon=12)
    assert ("avapritinib",) not in _fda(interpret([exon12], context("GIST")))


@pytest.mark.parametrize(
    "brca2",
    [
        variant("BRCA2", hgvs_c="c.5946delT"),
        variant("BRCA2", hgvs_c="NM_000059.4:c.5946del"),
        variant("BRCA2", hgvs_p="p.S1982Rfs*22"),
        variant("BRCA2", hgvs_p="p.Ser1982ArgfsTer22"),
    ],
)
def test_brca2_frameshift_prostate_gets_parp_inhibitors_per_label(brca2: Variant) -> None:
    found = _fda(interpret([brca2], context("PRAD")))
    assert "LYNPARZA-PROSTATE-HRR-LATER" in found[("olaparib",)]
    assert "RUBRACA-PROSTATE-BRCA-LATER" in found[("rucaparib",)]
    assert "TALZENNA-PROSTATE-HRR-1L-ENZALUTAMIDE" in found[("enzalutamide", "talazoparib")]
    assert ("abiraterone", "niraparib") in found
    assert ("abiraterone", "olaparib") in found


@pytest.mark.parametrize("hgvs_c", ["c.68_69delAG", "c.5266dupC", "NM_007294.4:c.5266dup"])
def test_germline_brca1_founder_variants_breast_get_olaparib_and_talazoparib(hgvs_c: str) -> None:
    germline = variant("BRCA1", hgvs_c=hgvs_c, origin=Origin.GERMLINE)
    found = _fda(interpret([germline], context("BRCA", tags=("HER2-",))))
    assert "LYNPARZA-BREAST-GBRCA-METASTATIC" in found[("olaparib",)]
    assert "TALZENNA-BREAST-GBRCA" in found[("talazoparib",)]


def test_germline_only_labels_need_a_germline_variant() -> None:
    somatic = variant("BRCA1", hgvs_c="c.68_69delAG", origin=Origin.SOMATIC)
    found = _fda(interpret([somatic], context("BRCA", tags=("HER2-",))))
    assert ("talazoparib",) not in found
    assert ("olaparib",) not in found


def test_stated_benign_truncating_variant_gets_no_parp_inhibitor() -> None:
    from inference.genomics.model import Significance

    benign = Variant(gene=Gene("BRCA2"), hgvs_c="c.5946delT", classification=Significance.BENIGN)
    assert not _fda(interpret([benign], context("PRAD")))


def test_stated_pathogenic_missense_counts_as_deleterious() -> None:
    from inference.genomics.model import Significance

    stated = Variant(
        gene=Gene("BRCA2"), protein_change="D2723H", classification=Significance.PATHOGENIC
    )
    assert ("rucaparib",) in _fda(interpret([stated], context("PRAD")))
    unstated = Variant(gene=Gene("BRCA2"), protein_change="D2723H")
    assert ("rucaparib",) not in _fda(interpret([unstated], context("PRAD")))


def test_fgfr2_fusion_cholangiocarcinoma_gets_pemigatinib() -> None:
    fusion = biomarker(BiomarkerKind.FUSION, "FGFR2", partner="BICC1")
    found = _fda(interpret([fusion], context("CHOL")))
    assert "PEMAZYRE-CHOL-FGFR2" in found[("pemigatinib",)]


@pytest.mark.parametrize("tumour", ["NSCLC", "LUAD"])
@pytest.mark.parametrize(
    "egfr",
    [
        variant("EGFR", hgvs_p="E746_A750del"),
        variant("EGFR", hgvs_p="p.Glu746_Ala750del"),
        variant("EGFR", hgvs_p="L747_P753delinsS"),
        variant("EGFR", hgvs_c="NM_005228.5:c.2235_2249del"),
        Variant(gene=Gene("EGFR"), variant_class=VariantClass.EXON19_DELETION),
    ],
)
def test_egfr_exon19_deletion_gets_osimertinib(egfr: Variant, tumour: str) -> None:
    found = _fda(interpret([egfr], context(tumour)))
    assert "TAGRISSO-NSCLC-EGFR-1L" in found[("osimertinib",)]


def test_egfr_exon20_insertion_gets_amivantamab_not_osimertinib_first_line() -> None:
    found = _fda(interpret([variant("EGFR", hgvs_p="D770_N771insSVD")], context("NSCLC")))
    assert any(drugs[0] == "amivantamab" for drugs in found)
    assert ("osimertinib",) not in found


def test_met_exon14_splice_site_gets_capmatinib_and_tepotinib() -> None:
    found = _fda(interpret([variant("MET", hgvs_c="c.3028+1G>T")], context("NSCLC")))
    assert ("capmatinib",) in found
    assert ("tepotinib",) in found
    deeper = _fda(interpret([variant("MET", hgvs_c="c.3028+5G>A")], context("NSCLC")))
    assert ("capmatinib",) not in deeper


def test_flt3_itd_and_tkd() -> None:
    itd = Variant(gene=Gene("FLT3"), variant_class=VariantClass.ITD)
    found = _fda(interpret([itd], context("AML")))
    assert {("gilteritinib",), ("quizartinib",)} <= set(found)
    tkd = _fda(interpret([variant("FLT3", protein="D835Y")], context("AML")))
    assert ("gilteritinib",) in tkd
    assert ("quizartinib",) not in tkd  # VANFLYTA: FLT3-ITD only


def test_kras_g12d_gets_no_sotorasib_or_adagrasib() -> None:
    for tumour in ("NSCLC", "COADREAD"):
        result = interpret([variant("KRAS", protein="G12D")], context(tumour))
        assert not {"sotorasib", "adagrasib"} & _sensitive(result)
    g12c = _fda(interpret([variant("KRAS", protein="G12C")], context("NSCLC")))
    assert ("sotorasib",) in g12c


def test_ras_mutant_colorectal_cancer_gets_no_cetuximab_or_panitumumab() -> None:
    kb = load_knowledge_base()
    for change in ("G12D", "G12V", "G12A", "G13D", "Q61H"):
        result = interpret([variant("KRAS", protein=change)], context("COADREAD"))
        if change != "G13D":
            # G13D: CIViC level-B sensitivity evidence (EID306, PMID 20978259) still yields a
            # cetuximab row; resolving it against the label exclusion is interpret's job
            # (the statement below is what it needs).
            assert not {"cetuximab", "panitumumab"} & _sensitive(result), change
        # The labels' exclusions are in the KB as not-indicated FDA statements for the variant.
        match = variant_match(variant("KRAS", protein=change), kb)
        excluded = {
            drug
            for i in kb.statements_for(match.keys)
            for statement in [kb.statements[i]]
            if statement["source"] == "FDA"
            and statement.get("effect") == "not-indicated"
            and statement["tumour"] == "COADREAD"
            for drug in statement["drugs"]
        }
        assert {"cetuximab", "panitumumab"} <= excluded, change
    wild = interpret([variant("BRAF", protein="V600E")], context("COADREAD"))
    assert "cetuximab" in _sensitive(wild)  # with encorafenib: the exclusion is RAS-specific


def test_hrd_msi_and_tmb_biomarkers() -> None:
    hrd = _fda(interpret([biomarker(BiomarkerKind.HRD)], context("OVARY")))
    assert ("bevacizumab", "olaparib") in hrd
    msi = _fda(interpret([biomarker(BiomarkerKind.MSI_HIGH)], context("COADREAD")))
    assert ("pembrolizumab",) in msi
    tmb = _fda(interpret([biomarker(BiomarkerKind.TMB, tmb=12)], context("LUAD")))
    assert ("pembrolizumab",) in tmb
    low = _fda(interpret([biomarker(BiomarkerKind.TMB, tmb=8)], context("LUAD")))
    assert ("pembrolizumab",) not in low


def test_withdrawn_and_excluded_facts_are_never_approved_options() -> None:
    data = json.loads(DEFAULT_KB_PATH.read_text())
    kb = load_knowledge_base()
    fda = [s for s in data["statements"] if s["source"] == "FDA" and "effect" in s]
    withdrawn = [s for s in fda if s["status"] == "withdrawn"]
    assert withdrawn
    for statement in withdrawn + [s for s in fda if s["effect"] == "not-indicated"]:
        view = kb.views[[v.id for v in kb.views].index(statement["id"])]
        assert view.kind != "predictive", statement["id"]


# ------------------------------------------------------------------ the compiled statements


def test_statements_carry_the_fda_fields() -> None:
    data = json.loads(DEFAULT_KB_PATH.read_text())
    by_id = {s["id"]: s for s in data["statements"]}
    tagrisso = by_id["TAGRISSO-NSCLC-EGFR-1L"]
    assert tagrisso["source"] == "FDA"
    assert tagrisso["level"] == "label"
    assert tagrisso["effect"] == "indicated"
    assert tagrisso["response"] == "sensitive"
    assert tagrisso["status"] == "approved"
    assert tagrisso["approval"] == "regular"
    assert tagrisso["label_id"] == "TAGRISSO"
    assert re.fullmatch(r"\d+(\.\d+)*", tagrisso["section"])
    assert tagrisso["line"] == "first-line"
    assert tagrisso["origin"] == "any"
    assert tagrisso["version"] == "2018-04-18"
    assert tagrisso["cdx"]
    assert tagrisso["url"].startswith("https://dailymed.nlm.nih.gov/")
    assert "CLS|EGFR|exon19_deletion" in tagrisso["matchers"]
    assert "P|EGFR|L858R" in tagrisso["matchers"]
    assert not any(s["id"].startswith("FDA-") for s in data["statements"])
    talzenna = by_id["TALZENNA-BREAST-GBRCA"]
    assert talzenna["origin"] == "germline"
    assert "DLT|BRCA1|germline" in talzenna["matchers"]
    assert "DLT|BRCA1" not in talzenna["matchers"]
    assert data["drug_status"]["rociletinib"] == "investigational"
    assert data["drug_status"]["osimertinib"] == "approved"


def test_every_indexed_indication_has_a_fact_and_every_fact_is_indexed() -> None:
    """Read the TOML directly (not through the loader) and compare both ways."""
    import tomllib

    indexed: set[str] = set()
    facts: dict[str, str] = {}
    for path in FDA_DIR.glob("*.toml"):
        data = tomllib.loads(path.read_text())
        for label in data.get("label", []):
            indexed |= set(label["indications"])
        for fact in data.get("fact", []):
            facts[fact["id"]] = fact["label"]
    assert indexed == set(facts)
    assert len(facts) >= 150


# ------------------------------------------------------------------ the loader refuses


def _eids() -> set[str]:
    return {
        f"EID{row['evidence_id']}"
        for row in read_tsv(SOURCES / "civic" / "01-Aug-2024-ClinicalEvidenceSummaries.tsv")
    }


def _broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    fda = tmp_path / "fda"
    shutil.copytree(FDA_DIR, fda)
    path = fda / file
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return fda


def _codes() -> set[str]:
    return {t.code for t in load_knowledge_base().tumour_types.values()}


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "thoracic.toml",
            'class = "exon19_deletion"',
            'class = "exon19_deletions"',
            r"thoracic.toml: fact \S+: unknown biomarker class|unknown class 'exon19_deletions'",
        ),
        ("thoracic.toml", 'kind = "fusion"', 'kind = "rearrangement"', "unknown biomarker kind"),
        ("breast_gyn.toml", '\nrequires = ["HER2+"]', '\nrequires = ["HER2pos"]', "HER2pos"),
        ("thoracic.toml", 'effect = "indicated"', 'effect = "recommended"', "effect"),
        ("thoracic.toml", 'line = "first-line"', 'line = "1L"', "line '1L'"),
        ("thoracic.toml", 'status = "approved"', 'status = "on market"', "status"),
        ("thoracic.toml", 'approval = "regular"', 'approval = "full"', "approval"),
        ("thoracic.toml", 'changes = ["L858R"]', 'changes = ["Leu858Arg"]', "normalised"),
        ("thoracic.toml", 'date = "2018-04-18"', 'date = "April 2018"', "date"),
        ("thoracic.toml", 'effect = "indicated"', 'effect = "indicated"\ntypo = 1', "typo"),
        ("thoracic.toml", 'civic_eids = ["', 'civic_eids = ["99999999", "', "EID99999999"),
    ],
)
def test_loader_refuses_with_file_and_fact(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    fda = _broken(tmp_path, file, old, new)
    with pytest.raises(KnowledgeBaseSourceError, match=message) as caught:
        load_fda_layer(fda, _codes(), _eids())
    assert str(caught.value).startswith(f"{file}: ")


def test_indexed_indication_without_fact_fails(tmp_path: Path) -> None:
    fda = _broken(
        tmp_path,
        "haematology.toml",
        'indications = ["XOSPATA-AML-FLT3-RR"]',
        'indications = ["XOSPATA-AML-FLT3-RR", "XOSPATA-AML-FLT3-1L"]',
    )
    with pytest.raises(KnowledgeBaseSourceError, match="XOSPATA-AML-FLT3-1L"):
        load_fda_layer(fda, _codes(), _eids())


def test_fact_not_indexed_by_its_label_fails(tmp_path: Path) -> None:
    fda = _broken(
        tmp_path,
        "haematology.toml",
        'indications = ["XOSPATA-AML-FLT3-RR"]',
        "indications = []",
    )
    with pytest.raises(KnowledgeBaseSourceError, match="XOSPATA"):
        load_fda_layer(fda, _codes(), _eids())


def test_loader_accepts_the_committed_sources() -> None:
    layer = load_fda_layer(FDA_DIR, _codes(), _eids())
    assert len(layer.statements) == 241
    assert len(layer.labels) == 98
    assert all(re.fullmatch(r"[A-Z0-9-]+", s["id"]) for s in layer.statements)


@pytest.mark.parametrize(
    ("alteration", "tumour", "tags", "present", "absent"),
    [
        (variant("FGFR3", protein="S249C"), "BLADDER", (), {"erdafitinib"}, set()),
        (
            biomarker(BiomarkerKind.FUSION, "ROS1", partner="CD74"),
            "NSCLC",
            (),
            {"crizotinib", "entrectinib"},
            set(),
        ),
        (
            biomarker(BiomarkerKind.FUSION, "NTRK3", partner="ETV6"),
            "BRCA",
            (),
            {"larotrectinib", "entrectinib"},
            set(),
        ),
        # Tumour-agnostic NTRK approvals are for solid tumours only.
        (
            biomarker(BiomarkerKind.FUSION, "NTRK3", partner="ETV6"),
            "AML",
            (),
            set(),
            {"larotrectinib"},
        ),
        (
            biomarker(BiomarkerKind.AMPLIFICATION, "ERBB2"),
            "BRCA",
            ("HER2+",),
            {"trastuzumab"},
            set(),
        ),
        (
            variant("BRAF", protein="V600K"),
            "SKCM",
            (),
            {"dabrafenib+trametinib", "binimetinib+encorafenib"},
            {"dabrafenib"},  # TAFINLAR monotherapy: V600E only
        ),
        (
            biomarker(BiomarkerKind.FUSION, "ABL1", partner="BCR"),
            "CML",
            (),
            {"imatinib", "dasatinib", "nilotinib", "bosutinib"},
            set(),
        ),
        (variant("IDH1", protein="R132H"), "AML", (), {"ivosidenib", "olutasidenib"}, set()),
        (variant("KIT", protein="V560D"), "GIST", ("CD117+",), {"imatinib"}, set()),
    ],
)
def test_label_biomarker_tumour_table(
    alteration: Variant, tumour: str, tags: tuple[str, ...], present: set[str], absent: set[str]
) -> None:
    found = {"+".join(drugs) for drugs in _fda(interpret([alteration], context(tumour, tags=tags)))}
    assert present <= found
    assert not absent & found
