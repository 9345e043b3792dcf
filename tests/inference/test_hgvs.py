"""Protein HGVS in 1- and 3-letter forms meet on one key."""

from __future__ import annotations

import pytest

from inference.genomics.hgvs import protein_change_key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("p.Val600Glu", "V600E"),
        ("p.(Val600Glu)", "V600E"),
        ("V600E", "V600E"),
        ("p.V600E", "V600E"),
        ("NP_004324.2:p.Val600Glu", "V600E"),
        ("p.Arg273His", "R273H"),
        ("p.Gly12Asp", "G12D"),
        ("p.Gly12Cys", "G12C"),
        ("p.Gln61Ter", "Q61*"),
        ("p.Q61*", "Q61*"),
        ("p.Q61X", "Q61*"),
        ("p.Arg273fs", "R273fs"),
        ("p.Arg273GlyfsTer5", "R273fs"),
        ("p.Leu858Arg", "L858R"),
    ],
)
def test_forms_meet(text: str, key: str) -> None:
    assert protein_change_key(text) == key


@pytest.mark.parametrize("text", [None, "", "amplification", "c.1799T>A", "p.Val600", "Foo600Bar"])
def test_not_understood_is_none(text: str | None) -> None:
    assert protein_change_key(text) is None
