"""Fixtures shared by the genomics tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inference.genomics.interpret import clear_caches


@pytest.fixture(autouse=True)
def _empty_interpret_memos() -> Iterator[None]:
    """Each test groups and tiers its statements afresh, not from a memo an earlier test filled:
    the test then checks the rule itself, and mutation testing sees every test that runs the
    memoised functions (with a warm memo only the first caller is recorded, and a mutant that
    only a later test would kill survives; docs/mutation-testing.md)."""
    clear_caches()
    yield
    clear_caches()
