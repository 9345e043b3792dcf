"""Golden CDS Hooks responses for the real genomic services, compared as parsed JSON.

Only what legitimately changes between two runs of the same request is normalised, each rule
explicit and narrow, so anything else a card says (summary, indicator, detail, suggestions,
links, override reasons) must equal the golden file:

- a ``uuid`` member holding a valid UUID → ``"<uuid>"`` (a missing or malformed one still differs);
- a link to the report page, ``{base_url}/reports/{analysis id}?t={signed token}`` →
  ``"<report-link>"`` (the analysis id is fresh per database, the token is signed per call);
- the knowledge-base version in ``source.topic.display`` (``"… (KB 2026-…)"``) →
  ``"(KB <version>)"``: a KB rebuild is reviewed in ``test_kb.py``, not here;
- in the DiagnosticReport a "save to chart" action creates: the times (``issued``,
  ``effectiveDateTime``, ``lastUpdated``) → ``"<generated>"``, and so are its resource ids, the
  ``#…`` references to its contained resources and its ``urn:uuid:`` identifier: they are
  hashes over the content *and the KB version* (``integrations/fhir/genomics_report.py``), so a
  KB rebuild would otherwise change every golden file. The report's codes, subject, results,
  components and conclusion are compared in full.

``ONCOCDS_REGENERATE_GOLDEN=1`` writes the normalised response as the new golden file and then
*fails* the test, so a run with the variable set can never pass unnoticed (issue 13 item 7).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Final

import pytest

REGENERATE_ENV: Final = "ONCOCDS_REGENERATE_GOLDEN"
UUID_MARK: Final = "<uuid>"
REPORT_LINK_MARK: Final = "<report-link>"
GENERATED_MARK: Final = "<generated>"
_KB_VERSION = re.compile(r"\(KB [^)]*\)$")
_REPORT_VOLATILE: Final = frozenset({"id", "issued", "effectiveDateTime", "lastUpdated"})


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _generated(value: Any) -> bool:
    """A reference to a contained resource (``#…``) or the report's ``urn:uuid:`` identifier."""
    return isinstance(value, str) and value.startswith(("#", "urn:uuid:"))


def _normalise_report(value: Any) -> Any:
    """The DiagnosticReport of a "save to chart" action, its generated ids and times masked."""
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            volatile = key in _REPORT_VOLATILE or (
                key in {"reference", "value"} and _generated(item)
            )
            if volatile and isinstance(item, str):
                result[key] = GENERATED_MARK
            else:
                result[key] = _normalise_report(item)
        return result
    if isinstance(value, list):
        return [_normalise_report(v) for v in value]
    return value


def normalise(value: Any, *, base_url: str) -> Any:
    """The response with its volatile members masked (see the module docstring)."""
    report_prefix = f"{base_url.rstrip('/')}/reports/"
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if key == "uuid" and isinstance(item, str) and _is_uuid(item):
                result[key] = UUID_MARK
            elif key == "url" and isinstance(item, str) and item.startswith(report_prefix):
                result[key] = REPORT_LINK_MARK
            elif key == "display" and isinstance(item, str) and _KB_VERSION.search(item):
                result[key] = _KB_VERSION.sub("(KB <version>)", item)
            elif (
                key == "resource"
                and isinstance(item, dict)
                and item.get("resourceType") == "DiagnosticReport"
            ):
                result[key] = _normalise_report(item)
            else:
                result[key] = normalise(item, base_url=base_url)
        return result
    if isinstance(value, list):
        return [normalise(v, base_url=base_url) for v in value]
    return value


def differences(actual: Any, expected: Any, path: str = "$") -> list[str]:
    """Where two parsed JSON values differ, as ``path: expected … got …`` lines (empty: equal)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        found: list[str] = []
        for key in sorted(set(actual) | set(expected)):
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            elif key not in expected:
                found.append(f"{path}.{key}: unexpected {json.dumps(actual[key])[:120]}")
            else:
                found.extend(differences(actual[key], expected[key], f"{path}.{key}"))
        return found
    if isinstance(actual, list) and isinstance(expected, list):
        found = []
        if len(actual) != len(expected):
            found.append(f"{path}: {len(expected)} items expected, got {len(actual)}")
        for index, (a, e) in enumerate(zip(actual, expected, strict=False)):
            found.extend(differences(a, e, f"{path}[{index}]"))
        return found
    # type() as well: JSON true == 1 in Python, but a card saying true is not one saying 1.
    if actual != expected or type(actual) is not type(expected):
        return [f"{path}: expected {json.dumps(expected)[:120]}, got {json.dumps(actual)[:120]}"]
    return []


def matches_golden(response: Any, expected: Any, *, base_url: str) -> bool:
    return not differences(normalise(response, base_url=base_url), expected)


def check_golden(path: Path, response: Any, *, base_url: str) -> None:
    """Fail unless ``response`` (normalised) equals the golden file at ``path``.

    With ``ONCOCDS_REGENERATE_GOLDEN=1`` the file is written from ``response`` and the test
    fails anyway: review the diff (``git diff``), then run again without the variable.
    """
    normalised = normalise(response, base_url=base_url)
    if os.environ.get(REGENERATE_ENV) == "1":
        path.write_text(json.dumps(normalised, indent=1, ensure_ascii=False) + "\n")
        pytest.fail(f"{REGENERATE_ENV}=1: wrote {path.name}; review the diff and run again")
    if not path.exists():
        pytest.fail(f"no golden file {path}; create it with {REGENERATE_ENV}=1")
    expected = json.loads(path.read_text())
    found = differences(normalised, expected)
    assert not found, f"{path.parent.name} differs from its golden file:\n" + "\n".join(found[:40])
