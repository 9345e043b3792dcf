"""Interpretation ↔ JSON: analyses are stored as JSON and re-rendered later (cards, FHIR, pages).

The encoding is plain JSON (objects, arrays, strings, numbers, booleans, null) and mirrors the
dataclasses of :mod:`inference.genomics.model` field by field (snake_case keys, enum values as
their strings, tuples as arrays, frozensets as sorted arrays). The ``Alteration`` union is tagged
with ``"type": "variant" | "biomarker"``. The document carries ``"schema"`` so a future change of
the model can be migrated rather than misread.

Pure functions, no I/O; :func:`interpretation_from_json` raises :class:`SerializationError` with
the path of the first bad value instead of building a half-valid object.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Final, Union

from inference.genomics import model
from inference.genomics.model import Biomarker, Interpretation, Variant

SCHEMA: Final = "oncocds.interpretation/1"

_ALTERATION_TAGS: Final[dict[type, str]] = {Variant: "variant", Biomarker: "biomarker"}
_TAG_TYPES: Final[dict[str, type]] = {tag: cls for cls, tag in _ALTERATION_TAGS.items()}
_MAX_DEPTH: Final = 12


class SerializationError(ValueError):
    """A stored interpretation document does not match the domain model."""


def interpretation_to_json(interpretation: Interpretation) -> dict[str, Any]:
    """Encode an :class:`Interpretation` as a JSON-ready dict (``json.dumps`` accepts it)."""
    body = _encode(interpretation)
    assert isinstance(body, dict)
    return {"schema": SCHEMA, **body}


def interpretation_from_json(document: dict[str, Any]) -> Interpretation:
    """Decode what :func:`interpretation_to_json` produced.

    Raises:
        SerializationError: unknown schema, missing or mistyped field (names the path).
    """
    if not isinstance(document, dict):
        raise SerializationError("$: an interpretation document must be a JSON object")
    schema = document.get("schema")
    if schema != SCHEMA:
        raise SerializationError(f"$.schema: expected {SCHEMA!r}, found {schema!r}")
    body = {k: v for k, v in document.items() if k != "schema"}
    result = _decode(Interpretation, body, "$", 0)
    assert isinstance(result, Interpretation)
    return result


# ------------------------------------------------------------------ encoding


def to_jsonable(value: Any) -> Any:
    """Any domain value (dataclass, enum, tuple, frozenset, scalar) as plain JSON data."""
    return _encode(value)


_Encoder = typing.Callable[[Any], Any]
#: One encoder per concrete type, chosen on first sight (an analysis and its report ids encode
#: ~90,000 values; testing each against every kind in turn was most of the cost).
_ENCODERS: dict[type, _Encoder] = {}


def _identity(value: Any) -> Any:
    return value


def _enum_value(value: Any) -> Any:
    return value.value


def _sequence(value: Any) -> Any:
    return [_encode(v) for v in value]


def _sorted_set(value: Any) -> Any:
    return sorted(_encode(v) for v in value)


def _dataclass_encoder(cls: type) -> _Encoder:
    names = tuple(f.name for f in dataclasses.fields(cls))
    tag = _ALTERATION_TAGS.get(cls)

    def encode(value: Any) -> Any:
        out: dict[str, Any] = {} if tag is None else {"type": tag}
        for name in names:
            out[name] = _encode(getattr(value, name))
        return out

    return encode


def _encoder_for(cls: type) -> _Encoder:
    if issubclass(cls, enum.Enum):  # before the scalars: a StrEnum is a str
        return _enum_value
    if issubclass(cls, str | int | float | bool | types.NoneType):
        return _identity
    if issubclass(cls, tuple | list):
        return _sequence
    if issubclass(cls, frozenset):
        return _sorted_set
    if dataclasses.is_dataclass(cls):
        return _dataclass_encoder(cls)
    return _identity


def _encode(value: Any) -> Any:
    cls = type(value)
    if cls is str or cls is int or cls is float or cls is bool or value is None:
        return value
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        encoder = _ENCODERS[cls] = _encoder_for(cls)
    return encoder(value)


# ------------------------------------------------------------------ decoding

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, vars(model))
    return _HINTS[cls]


def _decode(tp: Any, value: Any, path: str, depth: int) -> Any:  # noqa: PLR0911, PLR0912
    if depth > _MAX_DEPTH:
        raise SerializationError(f"{path}: nested too deeply")
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise SerializationError(f"{path}: null is not allowed")
        candidates = [a for a in args if a is not type(None)]
        if len(candidates) == 1:
            return _decode(candidates[0], value, path, depth)
        if all(c in _ALTERATION_TAGS for c in candidates):
            return _decode_alteration(value, path, depth)
        raise SerializationError(f"{path}: ambiguous type")
    if origin is tuple:
        if not isinstance(value, list):
            raise SerializationError(f"{path}: expected an array")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(
                _decode(args[0], v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)
            )
        # A fixed-length tuple such as ``tuple[str, TierAssignment]``.
        if len(value) != len(args):
            raise SerializationError(f"{path}: expected {len(args)} items")
        return tuple(
            _decode(item_tp, v, f"{path}[{i}]", depth + 1)
            for i, (item_tp, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is frozenset:
        if not isinstance(value, list):
            raise SerializationError(f"{path}: expected an array")
        (item_tp,) = typing.get_args(tp)
        return frozenset(_decode(item_tp, v, f"{path}[]", depth + 1) for v in value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, path, depth)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError as exc:
            raise SerializationError(f"{path}: {value!r} is not a {tp.__name__}") from exc
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SerializationError(f"{path}: expected a number")
        return float(value)
    if tp in (int, str, bool):
        if type(value) is not tp:
            raise SerializationError(f"{path}: expected {tp.__name__}")
        return value
    raise SerializationError(f"{path}: unsupported type {tp!r}")


def _decode_alteration(value: Any, path: str, depth: int) -> Any:
    if not isinstance(value, dict):
        raise SerializationError(f"{path}: expected an object")
    tag = value.get("type")
    cls = _TAG_TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise SerializationError(f"{path}.type: expected 'variant' or 'biomarker'")
    return _decode_dataclass(cls, {k: v for k, v in value.items() if k != "type"}, path, depth)


def _decode_dataclass(cls: type, value: Any, path: str, depth: int) -> Any:
    if not isinstance(value, dict):
        raise SerializationError(f"{path}: expected an object")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields) - {"type"})
    if unknown:
        raise SerializationError(f"{path}: unknown field {unknown[0]!r}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SerializationError(f"{path}.{name}: missing")
            continue
        kwargs[name] = _decode(hints[name], value[name], f"{path}.{name}", depth + 1)
    return cls(**kwargs)
