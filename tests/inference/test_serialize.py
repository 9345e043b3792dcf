"""Interpretation ↔ JSON round trip, and clear errors for bad documents."""

from __future__ import annotations

import json

import pytest

from inference.genomics.serialize import (
    SCHEMA,
    SerializationError,
    interpretation_from_json,
    interpretation_to_json,
)
from tests.genomics_examples import (
    braf_crc_interpretation,
    dpyd_interpretation,
    rich_interpretation,
)


@pytest.mark.parametrize(
    "factory", [braf_crc_interpretation, dpyd_interpretation, rich_interpretation]
)
def test_round_trip_through_json_text(factory) -> None:  # type: ignore[no-untyped-def]
    original = factory()
    text = json.dumps(interpretation_to_json(original))
    assert interpretation_from_json(json.loads(text)) == original


def test_document_shape_is_plain_json() -> None:
    doc = interpretation_to_json(braf_crc_interpretation())
    assert doc["schema"] == SCHEMA
    assert doc["alterations"][0]["type"] == "variant"
    assert doc["alterations"][0]["position"] == {
        "build": "GRCh38",
        "chrom": "7",
        "pos": 140753336,
        "ref": "A",
        "alt": "T",
    }
    assert doc["therapeutic"][0]["tier"] == {"tier": "I", "level": "A"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema="other/9"), r"\$\.schema"),
        (lambda d: d["alterations"][0].update(type="mystery"), r"alterations\[0\]\.type"),
        (lambda d: d["therapeutic"][0]["tier"].update(tier="V"), r"tier\.tier"),
        (lambda d: d["alterations"][0].update(allele_frequency="high"), "allele_frequency"),
        (lambda d: d["alterations"][0].update(colour="red"), "unknown field 'colour'"),
        (lambda d: d.pop("context"), r"\$\.context: missing"),
    ],
)
def test_bad_documents_name_the_path(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = interpretation_to_json(braf_crc_interpretation())
    mutate(doc)
    with pytest.raises(SerializationError, match=message):
        interpretation_from_json(doc)


def test_round_trip_of_a_real_interpretation() -> None:
    """Everything interpret() fills (tiers per alteration, resistance flags) survives JSON."""
    from inference.genomics import PatientContext, interpret, resolve_tumour_type
    from inference.genomics.model import Gene, Medication, Variant

    interpretation = interpret(
        [
            Variant(gene=Gene("BRAF"), protein_change="V600E"),
            Variant(gene=Gene("KRAS"), protein_change="G12D"),
        ],
        PatientContext(
            tumour_type=resolve_tumour_type("COAD"), medications=(Medication("cetuximab"),)
        ),
    )
    assert interpretation.alteration_tiers
    assert any(f.current_medication for f in interpretation.therapeutic)
    text = json.dumps(interpretation_to_json(interpretation))
    assert interpretation_from_json(json.loads(text)) == interpretation


def test_every_kind_of_value_encodes_as_documented() -> None:
    """Enums as their values (a StrEnum too, not as a str), tuples and lists as arrays,
    frozensets sorted, tagged alterations, nested dataclasses, scalars and None as themselves;
    the per-type encoders must give this for the first and every later value of a type."""
    import dataclasses
    import enum

    from inference.genomics.model import Tier
    from inference.genomics.serialize import to_jsonable

    class Colour(enum.Enum):
        RED = 1

    @dataclasses.dataclass(frozen=True)
    class Inner:
        tier: Tier
        tags: frozenset[str]

    @dataclasses.dataclass(frozen=True)
    class Outer:
        name: str
        count: int
        ratio: float
        flag: bool
        missing: None
        items: tuple[Inner, ...]
        colours: list[Colour]

    value = Outer(
        name="x",
        count=3,
        ratio=0.5,
        flag=True,
        missing=None,
        items=(Inner(Tier.II, frozenset({"b", "a", "c"})), Inner(Tier.I, frozenset())),
        colours=[Colour.RED],
    )
    expected = {
        "name": "x",
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "missing": None,
        "items": [{"tier": "II", "tags": ["a", "b", "c"]}, {"tier": "I", "tags": []}],
        "colours": [1],
    }
    for _ in range(2):
        encoded = to_jsonable(value)
        assert encoded == expected
        assert type(encoded["items"][0]["tier"]) is str  # the value, not the StrEnum member
    variant = braf_crc_interpretation().alterations[0]
    assert to_jsonable(variant)["type"] == "variant"
    assert to_jsonable((variant,))[0]["type"] == "variant"
