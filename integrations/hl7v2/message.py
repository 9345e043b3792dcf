"""Reading the MSH header and decoding a message's bytes in its character set.

The listener must answer every frame, even one hl7apy would refuse, so the header is read here
with plain string operations (HL7 v2.5.1 ch. 2.5, 2.14.9): MSH-1 is the field separator (the
fourth byte), MSH-2 the encoding characters, and MSH-n is the n-1'th piece of the MSH segment
split on the field separator. Full parsing and validation happen later, in the worker, with
hl7apy (:mod:`integrations.hl7v2.parsing`).
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from integrations.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    VALUE_TOO_LONG,
    Hl7CharsetError,
    Hl7HeaderError,
)

SEGMENT_TERMINATOR: Final = "\r"
DEFAULT_FIELD_SEPARATOR: Final = "|"
DEFAULT_ENCODING_CHARACTERS: Final = "^~\\&"

#: Longest MSH-10 kept (the inbox and audit columns hold 64; HL7 v2.5.1 allows 20, v2.7 199).
MAX_CONTROL_ID: Final = 64
#: Longest MSH-3/MSH-4 kept (HD is 227 characters in v2.5.1).
MAX_SENDER_FIELD: Final = 227
MAX_TYPE_FIELD: Final = 64

#: HL7 table 0211 (alternate character sets) → Python codec. Values HL7 defines that Python
#: cannot decode (ISO IR87/159 need an ISO 2022 escape context) are left out: they are refused.
CHARSETS: Final = {
    "ASCII": "ascii",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "ISO IR6": "ascii",
    "ISO IR100": "iso8859-1",
    "ISO IR192": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "BIG-5": "big5",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc-kr",
}


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """The MSH fields OncoCDS routes, stores and acknowledges by (verbatim field text)."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_type: str
    control_id: str
    processing_id: str
    version: str
    accept_ack_type: str
    application_ack_type: str
    charset: str

    @property
    def component_separator(self) -> str:
        return self.encoding_characters[0]

    @property
    def message_code(self) -> str:
        """MSG.1, e.g. ``ORU``."""
        return self.message_type.split(self.component_separator)[0]

    @property
    def trigger_event(self) -> str:
        """MSG.2, e.g. ``R01`` (empty when absent)."""
        parts = self.message_type.split(self.component_separator)
        return parts[1] if len(parts) > 1 else ""

    @property
    def type_key(self) -> str:
        """``ORU^R01``: code and trigger joined with ``^`` whatever the sender's separators."""
        return (
            f"{self.message_code}^{self.trigger_event}"
            if self.trigger_event
            else (self.message_code)
        )

    @property
    def enhanced_mode(self) -> bool:
        """HL7 v2.5.1 ch. 2.9.3: enhanced acknowledgement applies when MSH-15 or MSH-16 is set."""
        return bool(self.accept_ack_type or self.application_ack_type)


def normalise_line_endings(text: str) -> str:
    """CRLF and LF segment separators as CR.

    HL7 v2.5.1 ch. 2.5.4 terminates segments with CR alone, but messages that passed through a
    file or a text-mode transfer arrive with CRLF or LF; integration engines commonly read them
    as CR.
    A data value cannot hold a raw LF (it is escaped as ``\\X0A\\`` or ``\\.br\\``,
    ch. 2.7), so every LF is a separator.
    """
    if "\n" not in text:
        return text
    return text.replace("\r\n", "\r").replace("\n", "\r")


def _first_segment(text: str) -> str:
    end = text.find(SEGMENT_TERMINATOR)
    return text if end < 0 else text[:end]


def read_header(text: str) -> MessageHeader:
    """Read the MSH segment of a decoded (or latin-1 viewed) message.

    Raises:
        Hl7HeaderError: no MSH first, LF separators, bad encoding characters, missing MSH-9,
            MSH-10 or MSH-12, or an identifier longer than OncoCDS stores.
    """
    if not text.startswith("MSH"):
        raise Hl7HeaderError(
            "the message does not start with an MSH segment",
            code=SEGMENT_SEQUENCE_ERROR,
            location="MSH^1",
        )
    if "\n" in text:
        # HL7 v2.5.1 ch. 2.5.4: the segment terminator is CR (0x0D) alone; an LF means the
        # sender's line endings were converted and segment boundaries are unreliable.
        raise Hl7HeaderError(
            "line feed (0x0A) found: HL7 v2 segments must be terminated by CR (0x0D) only",
            code=SEGMENT_SEQUENCE_ERROR,
            location="MSH^1",
        )
    msh = _first_segment(text)
    if len(msh) < 8:
        raise Hl7HeaderError(
            "the MSH segment is truncated", code=SEGMENT_SEQUENCE_ERROR, location="MSH^1"
        )
    field_sep = msh[3]
    fields = msh.split(field_sep)
    encoding = fields[1] if len(fields) > 1 else ""
    _check_delimiters(field_sep, encoding)

    def field(n: int) -> str:
        index = n - 1
        return fields[index] if index < len(fields) else ""

    rep = encoding[1]
    header = MessageHeader(
        field_separator=field_sep,
        encoding_characters=encoding,
        sending_application=field(3),
        sending_facility=field(4),
        receiving_application=field(5),
        receiving_facility=field(6),
        message_type=field(9),
        control_id=field(10),
        processing_id=field(11),
        version=field(12).split(encoding[0])[0],
        accept_ack_type=field(15),
        application_ack_type=field(16),
        charset=field(18).split(rep)[0],
    )
    for number, value, name in (
        (9, header.message_type, "message type"),
        (10, header.control_id, "message control id"),
        (12, header.version, "version id"),
    ):
        if not value:
            raise Hl7HeaderError(
                f"MSH-{number} ({name}) is empty",
                code=REQUIRED_FIELD_MISSING,
                location=f"MSH^1^{number}",
            )
    for number, value, limit in (
        (3, header.sending_application, MAX_SENDER_FIELD),
        (4, header.sending_facility, MAX_SENDER_FIELD),
        (9, header.message_type, MAX_TYPE_FIELD),
        (10, header.control_id, MAX_CONTROL_ID),
    ):
        if len(value) > limit:
            raise Hl7HeaderError(
                f"MSH-{number} is longer than {limit} characters",
                code=VALUE_TOO_LONG,
                location=f"MSH^1^{number}",
            )
    return header


def _check_delimiters(field_sep: str, encoding: str) -> None:
    # HL7 v2.5.1 ch. 2.5.4 / 2.14.9.2: four encoding characters (component, repetition, escape,
    # subcomponent; v2.7 adds a fifth, truncation), all distinct, none alphanumeric, none equal
    # to the field separator.
    chars = field_sep + encoding
    if (
        field_sep.isalnum()
        or field_sep in "\r\n "
        or len(encoding) not in (4, 5)
        or len(set(chars)) != len(chars)
        or any(c.isalnum() or c in "\r\n " for c in encoding)
    ):
        raise Hl7HeaderError(
            "MSH-1/MSH-2 delimiters are invalid (need a field separator and 4 distinct "
            "non-alphanumeric encoding characters)",
            code=DATA_TYPE_ERROR,
            location="MSH^1^2",
        )


def peek_header(raw: bytes) -> MessageHeader | None:
    """Best-effort header from raw bytes (latin-1 view, byte-transparent); None if unreadable."""
    try:
        return read_header(raw.decode("iso8859-1"))
    except Hl7HeaderError:
        return None


@dataclass(frozen=True, slots=True)
class CharsetPolicy:
    """How message bytes become text.

    Args:
        default: codec used when MSH-18 is empty (Python codec name, e.g. ``utf-8``).
        fallbacks: codecs tried in order when MSH-18 is empty and ``default`` fails. Note that
            single-byte codecs such as ``iso8859-1`` decode any byte string, so listing one
            makes every message decodable (choose it only for a sender known to use it).
    """

    default: str = "utf-8"
    fallbacks: Sequence[str] = ()

    def __post_init__(self) -> None:
        for name in (self.default, *self.fallbacks):
            codecs.lookup(name)  # raises LookupError for an unknown codec at configuration time


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    text: str
    #: The Python codec that decoded it.
    codec: str


def decode_message(
    raw: bytes, policy: CharsetPolicy, *, declared: str | None = None
) -> DecodedMessage:
    """Decode ``raw`` by MSH-18 when present, else by the policy's default and fallbacks.

    ``declared`` is MSH-18 when the caller already read the header (saves reading it again).

    Raises:
        Hl7CharsetError: MSH-18 names a character set OncoCDS cannot decode, or the bytes are
            invalid in every candidate character set (never decoded with replacement
            characters: a silently altered HGVS string is worse than a rejected message).
    """
    declared = _declared_charset(raw) if declared is None else declared.strip()
    if declared:
        codec = CHARSETS.get(declared.upper())
        if codec is None:
            raise Hl7CharsetError(
                "MSH-18 names a character set this receiver does not support",
                code=DATA_TYPE_ERROR,
                location="MSH^1^18",
            )
        candidates: Sequence[str] = (codec,)
    else:
        candidates = (policy.default, *policy.fallbacks)
    first_error: UnicodeDecodeError | None = None
    for codec in candidates:
        try:
            return DecodedMessage(raw.decode(codec), codec)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
    assert first_error is not None
    source = "MSH-18" if declared else "the configured default/fallback character sets"
    raise Hl7CharsetError(
        f"bytes not valid in {'/'.join(candidates)} (from {source}) at byte offset "
        f"{first_error.start}",
        code=DATA_TYPE_ERROR,
        location="MSH^1^18",
    )


def _declared_charset(raw: bytes) -> str:
    header = peek_header(raw)
    return header.charset.strip() if header is not None else ""
