"""One golden-file check for the suite: compare as parsed JSON, regenerate only on purpose.

``assert_matches_golden(actual, path)`` parses the file and compares it with ``actual`` after a
JSON round trip (so key order, whitespace and tuples vs lists do not matter, and anything that is
not JSON fails loudly). Unlike ``==`` on Python values, ``true`` is not ``1`` and ``1`` is not
``1.0``. On a mismatch the assertion names the first differing JSON paths.

Regenerate mode: with ``ONCOCDS_REGENERATE_GOLDEN=1`` the check *writes* ``actual`` to the file
and then fails the test, saying which file it wrote. A regenerating run therefore never passes:
the variable cannot be left on by mistake, and every rewritten file is reviewed (``git diff``)
and confirmed by a run without it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

REGENERATE_ENV: Final = "ONCOCDS_REGENERATE_GOLDEN"
#: How many differing paths a mismatch message lists.
_MAX_DIFFERENCES: Final = 10


def regenerating() -> bool:
    """True when this run rewrites golden files (``ONCOCDS_REGENERATE_GOLDEN=1``)."""
    return os.environ.get(REGENERATE_ENV) == "1"


def load_golden(path: Path) -> Any:
    """The parsed golden file."""
    return json.loads(path.read_text(encoding="utf-8"))


def as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (raises TypeError for what JSON cannot hold)."""
    return json.loads(json.dumps(value, allow_nan=False))


def same_json(actual: Any, expected: Any) -> bool:
    """Equal as parsed JSON, keeping JSON's types apart (``true`` ≠ ``1`` ≠ ``1.0``)."""
    return _canonical(actual) == _canonical(expected)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))


def matches_golden(actual: Any, path: Path) -> bool:
    """Whether ``actual`` equals the golden file, compared as parsed JSON."""
    return same_json(as_json(actual), load_golden(path))


def differences(actual: Any, expected: Any, where: str = "$") -> list[str]:
    """JSON paths where ``actual`` and ``expected`` differ (at most the first few)."""
    found: list[str] = []
    _diff(actual, expected, where, found)
    return found


def _diff(actual: Any, expected: Any, where: str, found: list[str]) -> None:
    if len(found) >= _MAX_DIFFERENCES:
        return
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in sorted(set(actual) | set(expected), key=str):
            if key not in actual:
                found.append(f"{where}.{key}: missing")
            elif key not in expected:
                found.append(f"{where}.{key}: not expected")
            else:
                _diff(actual[key], expected[key], f"{where}.{key}", found)
        return
    if isinstance(actual, list) and isinstance(expected, list):
        if len(actual) != len(expected):
            found.append(f"{where}: {len(actual)} items, expected {len(expected)}")
        for index, (a, e) in enumerate(zip(actual, expected, strict=False)):
            _diff(a, e, f"{where}[{index}]", found)
        return
    if actual != expected or type(actual) is not type(expected):
        found.append(f"{where}: {actual!r} != {expected!r}"[:300])


def write_golden(actual: Any, path: Path, *, sort_keys: bool = True) -> None:
    """Write ``actual`` as the golden file (2-space JSON, final newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(as_json(actual), indent=2, sort_keys=sort_keys, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def assert_matches_golden(
    actual: Any,
    path: Path,
    *,
    normalise: Callable[[Any], Any] | None = None,
    sort_keys: bool = True,
) -> None:
    """Assert that ``actual`` (after ``normalise``) equals the golden file at ``path``.

    Args:
        actual: the output under test (JSON-compatible).
        path: the golden file.
        normalise: applied to ``actual`` before comparing and before writing (e.g. generated
            uuids replaced by a placeholder); the golden file holds the normalised form.
        sort_keys: regenerate mode writes keys sorted (False keeps the output's order).

    Raises:
        AssertionError: ``actual`` differs from the file (the message lists where).
        pytest.fail.Exception: regenerate mode; the file was written, the test fails.
    """
    value = normalise(actual) if normalise is not None else actual
    if regenerating():
        write_golden(value, path, sort_keys=sort_keys)
        pytest.fail(
            f"{REGENERATE_ENV}=1: wrote {path.name}; review the diff, then run again without "
            f"{REGENERATE_ENV} (a regenerating run always fails)",
            pytrace=False,
        )
    expected = load_golden(path)
    parsed = as_json(value)
    if not same_json(parsed, expected):
        where = "\n  ".join(differences(parsed, expected))
        raise AssertionError(f"output differs from golden file {path.name}:\n  {where}")
