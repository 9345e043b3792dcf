"""Migrations run down and up on both backends and leave no drift."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from cds_service.db import migrate


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    migrate.downgrade(database_url, "base")
    engine = create_engine(database_url)
    assert "audit_records" not in inspect(engine).get_table_names()
    migrate.upgrade(database_url, "head")
    assert "audit_records" in inspect(engine).get_table_names()
    engine.dispose()
    migrate.check(database_url)


def test_revisions_are_date_stamped() -> None:
    head = migrate.head_revision()
    year, month, day, number = head.split("_")[:4]
    assert len(year) == 4
    assert len(month) == 2
    assert len(day) == 2
    assert number.isdigit()
