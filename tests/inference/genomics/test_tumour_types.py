"""Tumour types resolve from OncoTree codes, coded system|code pairs and plain names."""

from __future__ import annotations

import pytest

from inference.errors import UnknownTumourTypeError
from inference.genomics import resolve_tumour_type


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
