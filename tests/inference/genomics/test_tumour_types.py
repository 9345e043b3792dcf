"""Tumour types: the whole OncoTree, resolved from codes, coded system|code pairs and names,
and matched up the tree (an NSCLC approval applies to LUAD; a solid-tumour one to every solid
tumour and no haematological one). Expected values are read from the vendored OncoTree file."""

from __future__ import annotations

import json

import pytest

from inference.errors import UnknownTumourTypeError
from inference.genomics import resolve_tumour_type
from inference.genomics.kb import DEFAULT_KB_PATH, load_knowledge_base
from inference.genomics.tiering import Relation, tumour_relation

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


def test_label_exclusions_cover_the_excluded_type_s_descendants() -> None:
    assert _relation("SOLID", "COAD", excludes=("COADREAD",)) is Relation.EXCLUDED
    assert _relation("SOLID", "LUAD", excludes=("COADREAD",)) is Relation.MATCH
