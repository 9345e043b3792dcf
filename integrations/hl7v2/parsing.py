"""hl7apy parsing behind one function, its exceptions mapped to :class:`Hl7ParseError`.

hl7apy decomposes segments, fields and components (tolerant mode); its strict ``validate()`` is
not used because it flags the MSH of conformant v2.5.1 messages (hl7apy 1.3.5: "Invalid children
detected for <Segment MSH>"), so the checks that matter are made by the readers themselves
(:mod:`integrations.hl7v2.message` for MSH, :mod:`integrations.hl7v2.oru` for PID/OBR/OBX).

hl7apy ships no type information (a mypy override in ``pyproject.toml`` allows that); it is kept
to this module and :mod:`integrations.hl7v2.oru`. hl7apy messages may quote field values, so
only the exception type reaches our error reasons (field values may be PHI).
"""

from __future__ import annotations

from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message as _hl7apy_parse

from integrations.hl7v2.errors import (
    SEGMENT_SEQUENCE_ERROR,
    UNSUPPORTED_VERSION_ID,
    Hl7ParseError,
)

#: HL7 versions hl7apy 1.3 has structures for (it refuses others).
SUPPORTED_VERSIONS = frozenset(
    {"2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8", "2.8.1", "2.8.2"}
)


def parse_message(text: str, *, find_groups: bool = False) -> Any:
    """Parse an ER7 message with hl7apy in tolerant mode.

    Args:
        text: the decoded message, segments terminated by CR.
        find_groups: build the message structure's groups (slower; validates segment order
            against the message structure, e.g. ORU_R01).

    Returns:
        The hl7apy ``Message``.

    Raises:
        Hl7ParseError: the version is unsupported or hl7apy cannot parse the text.
    """
    version = _version(text)
    if version not in SUPPORTED_VERSIONS:
        raise Hl7ParseError(
            "MSH-12 names an HL7 version the parser does not support",
            code=UNSUPPORTED_VERSION_ID,
            location="MSH^1^12",
        )
    try:
        return _hl7apy_parse(
            text.rstrip("\r"), find_groups=find_groups, validation_level=VALIDATION_LEVEL.TOLERANT
        )
    except (HL7apyException, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise Hl7ParseError(
            f"hl7apy could not parse the message ({type(exc).__name__})",
            code=SEGMENT_SEQUENCE_ERROR,
        ) from exc


def _version(text: str) -> str:
    end = text.find("\r")
    msh = text if end < 0 else text[:end]
    if len(msh) < 4:
        return ""
    fields = msh.split(msh[3])
    if len(fields) < 12:
        return ""
    component = fields[1][:1] or "^"
    return fields[11].split(component)[0]


def components(field: Any) -> list[str]:
    """Positional component strings of an hl7apy field: index 0 is component 1.

    hl7apy lists only the components that are present, so they are placed by the number in
    their names (``CX_4`` → index 3); absent ones are empty strings.
    """
    children = list(getattr(field, "children", ()) or ())
    if not children:
        return [_text(field)]
    values: dict[int, str] = {}
    for child in children:
        suffix = str(getattr(child, "name", "")).rsplit("_", 1)[-1]
        index = int(suffix) - 1 if suffix.isdigit() else len(values)
        values[index] = _text(child)
    return [values.get(i, "") for i in range(max(values) + 1)]


def _text(element: Any) -> str:
    try:
        text = element.to_er7()
    except (HL7apyException, AttributeError, ValueError):
        value = getattr(element, "value", "")
        return value if isinstance(value, str) else ""
    return text if isinstance(text, str) else ""


def field_text(segment: Any, name: str) -> str:
    """The ER7 text of ``segment.<name>`` (first repetition), empty when absent."""
    try:
        field = getattr(segment, name)
    except (HL7apyException, AttributeError, ValueError):
        return ""
    return _text(field)
