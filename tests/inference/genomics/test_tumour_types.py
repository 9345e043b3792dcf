"""Tumour types: the whole OncoTree, resolved from codes, coded system|code pairs and names,
and matched up the tree (an NSCLC approval applies to LUAD; a solid-tumour one to every solid
tumour and no haematological one). Expected values are read from the vendored OncoTree file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inference.errors import KnowledgeBaseSourceError, UnknownTumourTypeError
from inference.genomics import TumourType, resolve_tumour_type
from inference.genomics.kb import DEFAULT_KB_PATH, build_knowledge_base, load_knowledge_base
from inference.genomics.tiering import Relation, tumour_relation
from inference.genomics.tumour_types import find_tumour_type

SOURCES = DEFAULT_KB_PATH.parent.parent / "sources"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("COAD", "COAD"),
        ("luad", "LUAD"),
        ("colorectal cancer", "COADREAD"),
        ("  Lung   Adenocarcinoma ", "LUAD"),
        ("http://snomed.info/sct|254637007", "NSCLC"),
        ("snomed|363406005", "COAD"),
        ("http://hl7.org/fhir/sid/icd-10-cm|C18.7", "COAD"),
        ("icd-10-cm|C34.90", "LUNG"),
        ("icd-o-3|8720/3", "MEL"),
        ("doid|DOID:3910", "LUAD"),
        ("http://purl.obolibrary.org/obo/doid.owl|3908", "NSCLC"),
        ("oncotree|BRCA", "BRCA"),
        ("breast cancer", "BRCA"),
    ],
)
def test_resolves(text: str, code: str) -> None:
    assert resolve_tumour_type(text).code == code


def test_hierarchy_lung_adenocarcinoma_in_nsclc_in_lung() -> None:
    lineage = resolve_tumour_type("LUAD").lineage
    assert lineage == ("LUAD", "NSCLC", "LUNG", "SOLID", "CANCER")
    assert resolve_tumour_type("AML").lineage[-2:] == ("HEME", "CANCER")


def test_unknown_lists_close_matches() -> None:
    with pytest.raises(UnknownTumourTypeError) as caught:
        resolve_tumour_type("colorectl cancr")
    assert caught.value.suggestions
    assert caught.value.suggestions[0].startswith("COADREAD")
    assert "close matches" in str(caught.value)


@pytest.mark.parametrize("text", ["", "snomed|999999", "nosuchsystem|C18", "x" * 5000])
def test_unknown_forms_are_errors(text: str) -> None:
    with pytest.raises(UnknownTumourTypeError):
        resolve_tumour_type(text)
    assert find_tumour_type(text) is None


def test_an_unknown_code_gets_no_name_suggestions() -> None:
    with pytest.raises(UnknownTumourTypeError) as caught:
        resolve_tumour_type("http://snomed.info/sct|38341003")  # hypertension
    assert caught.value.suggestions == ()


# ---------------------------------------------------------------- the whole OncoTree

_ONCOTREE = SOURCES / "oncotree" / "oncotree_2025_10_03.json"
#: OncoTree tissues whose diagnoses are haematological (the curated table's heme_tissues).
_HEME_TISSUES = {"LYMPH", "MYELOID"}


def _oncotree_nodes() -> dict[str, tuple[str, str, str]]:
    """code → (parent, name, top tissue code), read from the vendored release itself."""
    found: dict[str, tuple[str, str, str]] = {}
    root = json.loads(_ONCOTREE.read_text(encoding="utf-8"))["TISSUE"]
    stack = [(child, child["code"]) for child in root["children"].values()]
    while stack:
        node, tissue = stack.pop()
        found[node["code"]] = (node["parent"], node["name"], tissue)
        stack.extend((child, tissue) for child in node["children"].values())
    return found


def test_every_oncotree_code_is_a_tumour_type_with_its_parent_and_name() -> None:
    kb = load_knowledge_base()
    nodes = _oncotree_nodes()
    assert len(nodes) == 897  # 898 codes with the root TISSUE
    for code, (parent, name, tissue) in nodes.items():
        entry = kb.tumour_types[code]
        assert entry.name == name
        assert entry.source == "oncotree"
        if parent == "TISSUE":
            assert entry.parent == ("HEME" if code in _HEME_TISSUES else "SOLID")
        else:
            assert entry.parent == parent
        assert entry.kind == ("heme" if tissue in _HEME_TISSUES else "solid"), code
        assert resolve_tumour_type(code).code == code
        assert resolve_tumour_type(f"oncotree|{code}").code == code
    assert resolve_tumour_type("TISSUE").code == "CANCER"


def test_main_type_and_tissue_come_from_oncotree() -> None:
    entry = load_knowledge_base().tumour_types["LUAD"]
    assert (entry.main_type, entry.tissue) == ("Non-Small Cell Lung Cancer", "Lung")


@pytest.mark.parametrize(
    ("code", "lineage"),
    [
        ("BLCA", ("BLCA", "BLADDER", "SOLID", "CANCER")),
        ("HGSOC", ("HGSOC", "SOC", "OVT", "OVARY", "SOLID", "CANCER")),
        ("FL", ("FL", "MBN", "NHL", "LNM", "LYMPH", "HEME", "CANCER")),
        ("SM", ("SM", "MCD", "MNM", "MYELOID", "HEME", "CANCER")),
        ("THAP", ("THAP", "THYROID", "SOLID", "CANCER")),
        ("UCS", ("UCS", "UCEC", "UTERUS", "SOLID", "CANCER")),
        ("CMLBCRABL1", ("CMLBCRABL1", "CML", "MPN", "MNM", "MYELOID", "HEME", "CANCER")),
    ],
)
def test_parent_chain(code: str, lineage: tuple[str, ...]) -> None:
    assert resolve_tumour_type(code).lineage == lineage


def test_is_within_walks_up_the_tree() -> None:
    kb = load_knowledge_base()
    assert kb.is_within("LUAD", "NSCLC")
    assert kb.is_within("LUAD", "LUAD")
    assert kb.is_within("LUAD", "SOLID")
    assert not kb.is_within("NSCLC", "LUAD")
    assert not kb.is_within("LUAD", "SCLC")
    for solid in ("BLCA", "HGSOC", "THAP", "UCS", "GIST", "IHCH", "CUP"):
        assert kb.is_within(solid, "SOLID"), solid
        assert not kb.is_within(solid, "HEME"), solid
    for heme in ("AML", "CML", "FL", "SM", "PCM", "CLLSLL", "BLL"):
        assert kb.is_within(heme, "HEME"), heme
        assert not kb.is_within(heme, "SOLID"), heme
    assert not kb.is_within("NOSUCH", "CANCER")


@pytest.mark.parametrize(
    ("former", "code"), [("MM", "PCM"), ("CLL", "CLLSLL"), ("GBM", "GB"), ("DLBCL", "DLBCLNOS")]
)
def test_former_oncotree_codes_resolve_to_their_successor(former: str, code: str) -> None:
    assert resolve_tumour_type(former).code == code


def test_a_former_code_split_in_two_is_not_guessed() -> None:
    # OncoTree revoked ALL into both BLL and TLL.
    with pytest.raises(UnknownTumourTypeError) as caught:
        resolve_tumour_type("ALL")
    assert len(caught.value.suggestions) <= 5
    assert len(str(caught.value)) < 400


def test_a_name_two_oncotree_nodes_share_resolves_by_code_only() -> None:
    # "Embryonal Carcinoma" is both EMBCA (testis) and VOEC (vagina).
    with pytest.raises(UnknownTumourTypeError):
        resolve_tumour_type("Embryonal Carcinoma")
    assert resolve_tumour_type("EMBCA").code == "EMBCA"


@pytest.mark.parametrize(
    ("coded", "code"),
    [
        # The Condition codes EHRs send for common cancers (sources in tumour_types.toml).
        ("http://snomed.info/sct|399326009", "BLADDER"),
        ("icd-10-cm|C67.9", "BLADDER"),
        ("icd-10-cm|C56.1", "OVARY"),
        ("icd-10-cm|C82.07", "FL"),
        ("icd-o-3|9690/3", "FL"),
        ("icd-10-cm|D47.02", "SM"),
        ("icd-10-cm|C96.21", "ASM"),
        ("icd-10-cm|C94.30", "SMMCL"),
        ("http://snomed.info/sct|363478007", "THYROID"),
        ("icd-o-3|8345/3", "THME"),
        ("http://snomed.info/sct|702369008", "UCS"),
        ("http://snomed.info/sct|420120006", "GIST"),
        ("icd-10-cm|C49.A2", "GIST"),
        ("icd-10-cm|C22.1", "IHCH"),
        ("http://snomed.info/sct|312104005", "CHOL"),
        ("icd-10-cm|C92.10", "CMLBCRABL1"),
        ("http://snomed.info/sct|92818009", "CML"),
        ("icd-10-cm|C92.20", "ACML"),
        ("http://snomed.info/sct|399490008", "PRAD"),
        ("icd-10-cm|C61", "PROSTATE"),
        ("http://snomed.info/sct|93655004", "SKCM"),
        ("icd-10-cm|C43.9", "MEL"),
        ("http://snomed.info/sct|93761005", "COAD"),
        ("http://snomed.info/sct|93984006", "READ"),
        ("http://snomed.info/sct|254632001", "SCLC"),
        ("icd-o-3|8046/3", "NSCLC"),
        ("http://snomed.info/sct|408643008", "IDC"),
        ("icd-10-cm|C50.912", "BREAST"),
        ("http://snomed.info/sct|700423003", "PAAD"),
        ("http://snomed.info/sct|408647009", "STAD"),
        ("http://snomed.info/sct|109841003", "HCC"),
        ("icd-10-cm|C22.0", "HCC"),
        ("http://snomed.info/sct|702391001", "RCC"),
        ("http://snomed.info/sct|254915003", "CCRCC"),
        ("icd-10-cm|C92.00", "AML"),
        ("icd-10-cm|C92.40", "AML"),
        ("icd-10-cm|C91.00", "LNM"),  # ALL: B or T lineage, so their common parent
        ("icd-o-3|9811/3", "BLL"),
        ("http://snomed.info/sct|92814006", "CLLSLL"),
        ("icd-10-cm|C91.10", "CLLSLL"),
        ("http://snomed.info/sct|109989006", "PCM"),
        ("icd-10-cm|C90.00", "PCM"),
        ("icd-10-cm|C83.38", "DLBCLNOS"),
    ],
)
def test_ehr_condition_codes_map_to_a_node(coded: str, code: str) -> None:
    assert resolve_tumour_type(coded).code == code


def test_a_code_mapped_to_two_types_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SOURCES, sources)
    path = sources / "curated" / "tumour_types.toml"
    text = path.read_text().replace('code = "FL"\n', 'code = "FL"\nsnomed = ["109989006"]\n', 1)
    path.write_text(text)
    with pytest.raises(KnowledgeBaseSourceError, match="109989006"):
        build_knowledge_base(sources)


def test_a_synonym_naming_another_type_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SOURCES, sources)
    path = sources / "curated" / "tumour_types.toml"
    text = path.read_text().replace(
        'code = "THYMUS"\n', 'code = "THYMUS"\nsynonyms = ["mantle cell lymphoma"]\n', 1
    )
    path.write_text(text)
    with pytest.raises(KnowledgeBaseSourceError, match="mantle cell lymphoma"):
        build_knowledge_base(sources)


def test_an_altered_oncotree_file_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SOURCES, sources)
    path = sources / "oncotree" / "oncotree_2025_10_03.json"
    path.write_bytes(path.read_bytes().replace(b"Lung Adenocarcinoma", b"Lung Adenocarcinomx", 1))
    with pytest.raises(KnowledgeBaseSourceError, match="sha256"):
        build_knowledge_base(sources)


@pytest.mark.parametrize(
    ("doid", "code"),
    [("0050873", "FL"), ("349", "SM"), ("0080522", "THAP"), ("4006", "BLCA"), ("769", "NBL")],
)
def test_civic_diseases_map_to_their_oncotree_node(doid: str, code: str) -> None:
    # CIViC evidence on these diseases is about the patient's tumour type (Tier I/II C-D),
    # not "another tumour type".
    assert resolve_tumour_type(f"doid|DOID:{doid}").code == code


def test_oncotree_external_references_resolve() -> None:
    assert resolve_tumour_type("ncit|C2926").code == "NSCLC"


# ---------------------------------------------------------------- matching up the tree


def _relation(statement: str, patient: str | None, excludes: tuple[str, ...] = ()) -> Relation:
    tumour = resolve_tumour_type(patient) if patient else None
    return tumour_relation(statement, excludes, (), tumour, frozenset())


def test_an_nsclc_statement_applies_to_lung_adenocarcinoma() -> None:
    assert _relation("NSCLC", "LUAD") is Relation.MATCH
    assert _relation("NSCLC", "LUSC") is Relation.MATCH
    assert _relation("LUAD", "NSCLC") is Relation.OTHER  # not down the tree
    assert _relation("NSCLC", "SCLC") is Relation.OTHER


@pytest.mark.parametrize("solid", ["BLCA", "HGSOC", "THAP", "UCS", "GIST", "MEL", "CUP"])
def test_a_solid_tumour_statement_applies_to_every_solid_tumour(solid: str) -> None:
    assert _relation("SOLID", solid) is Relation.MATCH


@pytest.mark.parametrize("heme", ["AML", "CML", "FL", "SM", "PCM", "HEME"])
def test_a_solid_tumour_statement_applies_to_no_haematological_one(heme: str) -> None:
    assert _relation("SOLID", heme) is Relation.OTHER


def test_a_tumour_type_without_lineage_still_matches_its_own_code() -> None:
    bare = TumourType(code="LUAD", name="Lung Adenocarcinoma")
    assert tumour_relation("LUAD", (), (), bare, frozenset()) is Relation.MATCH
    assert tumour_relation("NSCLC", (), (), bare, frozenset()) is Relation.OTHER


def test_label_exclusions_cover_the_excluded_type_s_descendants() -> None:
    assert _relation("SOLID", "COAD", excludes=("COADREAD",)) is Relation.EXCLUDED
    assert _relation("SOLID", "LUAD", excludes=("COADREAD",)) is Relation.MATCH
