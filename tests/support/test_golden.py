"""The golden-file helper: a wrong output fails, regenerate mode writes and fails the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.golden import (
    REGENERATE_ENV,
    assert_matches_golden,
    differences,
    matches_golden,
)

EXPECTED = {"cards": [{"summary": "BRAF V600E", "indicator": "info", "count": 2}]}


@pytest.fixture
def golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(REGENERATE_ENV, raising=False)
    path = tmp_path / "case.json"
    # Written by hand (not by the helper), with another key order and spacing.
    path.write_text('{"cards":[{"count":2,"indicator":"info","summary":"BRAF V600E"}]}')
    return path


def test_the_same_structure_matches_whatever_the_key_order(golden: Path) -> None:
    assert_matches_golden({"cards": [dict(reversed(EXPECTED["cards"][0].items()))]}, golden)
    assert matches_golden(EXPECTED, golden)


@pytest.mark.parametrize(
    "wrong",
    [
        {"cards": [{"summary": "BRAF V600K", "indicator": "info", "count": 2}]},
        {"cards": [{"summary": "BRAF V600E", "indicator": "info"}]},
        {"cards": [{"summary": "BRAF V600E", "indicator": "info", "count": 2, "extra": None}]},
        {"cards": [{"summary": "BRAF V600E", "indicator": "info", "count": 2.0}]},
        {"cards": []},
        {"cards": [EXPECTED["cards"][0], EXPECTED["cards"][0]]},
    ],
    ids=["value", "missing-key", "extra-key", "int-vs-float", "no-card", "extra-card"],
)
def test_a_wrong_output_fails(golden: Path, wrong: object) -> None:
    assert not matches_golden(wrong, golden)
    with pytest.raises(AssertionError, match=r"differs from golden file case\.json"):
        assert_matches_golden(wrong, golden)


def test_true_is_not_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REGENERATE_ENV, raising=False)
    path = tmp_path / "flag.json"
    path.write_text('{"flag": true}')
    with pytest.raises(AssertionError):
        assert_matches_golden({"flag": 1}, path)


def test_the_mismatch_message_names_the_path(golden: Path) -> None:
    wrong = {"cards": [{"summary": "BRAF V600K", "indicator": "info", "count": 2}]}
    with pytest.raises(AssertionError, match=r"\$\.cards\[0\]\.summary: 'BRAF V600K'"):
        assert_matches_golden(wrong, golden)
    assert differences({"a": 1}, {"b": 1}) == ["$.a: not expected", "$.b: missing"]


def test_normalise_applies_before_comparing(golden: Path) -> None:
    actual = {"cards": [{**EXPECTED["cards"][0], "summary": "braf v600e"}]}
    with pytest.raises(AssertionError):
        assert_matches_golden(actual, golden)

    def upper(value: object) -> object:
        return {"cards": [{**EXPECTED["cards"][0]}]} if value == actual else value

    assert_matches_golden(actual, golden, normalise=upper)


def test_regenerate_mode_writes_the_file_and_fails(
    golden: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REGENERATE_ENV, "1")
    new = {"cards": [{"summary": "KRAS G12C", "indicator": "warning", "count": 1}]}
    with pytest.raises(pytest.fail.Exception, match=rf"{REGENERATE_ENV}=1: wrote case\.json"):
        assert_matches_golden(new, golden)
    assert json.loads(golden.read_text()) == new
    # Even when the output already equals the file, a regenerating run fails.
    with pytest.raises(pytest.fail.Exception):
        assert_matches_golden(new, golden)
    # Without the variable, the rewritten file is what the output is compared with.
    monkeypatch.delenv(REGENERATE_ENV)
    assert_matches_golden(new, golden)
    with pytest.raises(AssertionError):
        assert_matches_golden(EXPECTED, golden)


def test_only_the_value_1_regenerates(golden: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = golden.read_text()
    monkeypatch.setenv(REGENERATE_ENV, "0")
    with pytest.raises(AssertionError):
        assert_matches_golden({"cards": []}, golden)
    assert golden.read_text() == before
