"""Migrations run down and up on both backends and leave no drift."""

from __future__ import annotations

import json

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


def test_stored_analyses_survive_the_document_column_retype(database_url: str) -> None:
    """2026_11_23_0600 turns analyses' jsonb documents into json on PostgreSQL (a no-op on
    SQLite): a row stored before it reads back equal after the upgrade and after a downgrade."""
    from sqlalchemy import text

    document = {"resourceType": "Bundle", "entry": [{"n": 1.5, "s": "é", "z": None}], "a": [1, 2]}
    interpretation = {"alterations": [], "kb_version": "v1"}
    migrate.downgrade(database_url, "2026_11_23_0500")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO analyses (id, created, patient_ref, source_kind, kb_version,"
                " oncocds_version, interpretation, report_bundle) VALUES ('a-1',"
                " CURRENT_TIMESTAMP, 'Patient/1', 'fhir', 'v1', '0', :i, :b)"
            ),
            {"i": json.dumps(interpretation), "b": json.dumps(document)},
        )

    def stored() -> tuple[object, object]:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT interpretation, report_bundle FROM analyses WHERE id = 'a-1'")
            ).one()
        return tuple(json.loads(v) if isinstance(v, str) else v for v in row)

    assert stored() == (interpretation, document)
    migrate.upgrade(database_url, "2026_11_23_0600")
    if engine.dialect.name == "postgresql":
        columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("analyses")}
        assert type(columns["report_bundle"]).__name__ == "JSON"
        assert type(columns["interpretation"]).__name__ == "JSON"
    assert stored() == (interpretation, document)
    migrate.downgrade(database_url, "2026_11_23_0500")
    assert stored() == (interpretation, document)
    migrate.upgrade(database_url, "head")
    assert stored() == (interpretation, document)
    engine.dispose()
