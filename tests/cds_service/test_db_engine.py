"""How engines read and write JSON columns (orjson, with the standard library for the rest)."""

from __future__ import annotations

import math
from pathlib import Path

from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select, text

from cds_service.db.engine import make_engine


def test_json_columns_round_trip_and_read_what_the_standard_library_wrote(
    tmp_path: Path,
) -> None:
    """orjson writes; integers beyond 64 bits and integer keys fall back to the standard library;
    a row the standard library wrote with ``NaN`` (before orjson did the writing) still reads."""
    engine = make_engine(f"sqlite:///{tmp_path / 'json.db'}")
    table = Table("docs", MetaData(), Column("id", Integer, primary_key=True), Column("doc", JSON))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": 1, "doc": {"a": [1, "é", None], "b": 2**70}}])
        conn.execute(insert(table), [{"id": 2, "doc": {3: "integer key"}}])
        conn.execute(text("""INSERT INTO docs (id, doc) VALUES (3, '{"af": NaN}')"""))
    with engine.connect() as conn:
        docs = dict(conn.execute(select(table.c.id, table.c.doc)).all())
    engine.dispose()
    assert docs[1] == {"a": [1, "é", None], "b": 2**70}
    assert docs[2] == {"3": "integer key"}
    assert math.isnan(docs[3]["af"])
