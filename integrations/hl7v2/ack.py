"""Acknowledgement messages (HL7 v2.5.1 ch. 2.9 and 2.14: MSH, MSA, ERR).

Original mode (MSH-15 and MSH-16 empty) answers AA, AE or AR. Enhanced mode (either set) answers
the *accept* acknowledgement with CA, CE or CR ("committed to safe storage") when MSH-15 asks for
it, and the *application* acknowledgement with AA, AE or AR when MSH-16 asks for it (HL7 table
0008 and table 0155: AL always, NE never, ER on error only, SU on success only). An empty
condition in enhanced mode is treated as AL (the conservative reading: the sender gets an answer).

The ACK's MSH mirrors the message (ch. 2.9.2 / 2.14.9): sending application and facility are the
original's receiving ones (MSH-5/6 → MSH-3/4) and vice versa, MSH-10 is a new control id, MSA-2
echoes the original MSH-10, MSH-11/12 and MSH-18 are kept.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from integrations.hl7v2.errors import ERROR_CODE_TEXT, Hl7Error
from integrations.hl7v2.message import (
    CHARSETS,
    DEFAULT_ENCODING_CHARACTERS,
    DEFAULT_FIELD_SEPARATOR,
    MessageHeader,
)

DEFAULT_VERSION: Final = "2.5.1"


class AckCode(StrEnum):
    """HL7 table 0008."""

    AA = "AA"
    AE = "AE"
    AR = "AR"
    CA = "CA"
    CE = "CE"
    CR = "CR"


class Outcome(StrEnum):
    """What happened to a message, independent of acknowledgement mode."""

    ACCEPT = "accept"
    ERROR = "error"
    REJECT = "reject"


_ORIGINAL = {Outcome.ACCEPT: AckCode.AA, Outcome.ERROR: AckCode.AE, Outcome.REJECT: AckCode.AR}
_COMMIT = {Outcome.ACCEPT: AckCode.CA, Outcome.ERROR: AckCode.CE, Outcome.REJECT: AckCode.CR}


def ack_due(condition: str, outcome: Outcome) -> bool:
    """Whether HL7 table 0155 condition ``condition`` asks for an ACK after ``outcome``."""
    value = condition.strip().upper()
    if value == "NE":
        return False
    if value == "ER":
        return outcome is not Outcome.ACCEPT
    if value == "SU":
        return outcome is Outcome.ACCEPT
    return True  # AL, or empty (see module docstring)


def accept_ack_code(header: MessageHeader | None, outcome: Outcome) -> AckCode | None:
    """The code of the immediate answer to a received message, or None when none is due.

    Original mode: AA/AE/AR. Enhanced mode: CA/CE/CR if MSH-15 asks for it, else None.
    """
    if header is None or not header.enhanced_mode:
        return _ORIGINAL[outcome]
    return _COMMIT[outcome] if ack_due(header.accept_ack_type, outcome) else None


def application_ack_code(header: MessageHeader, outcome: Outcome) -> AckCode | None:
    """Enhanced mode only: the application ACK code after processing, or None when not due."""
    if not header.enhanced_mode:
        return None
    return _ORIGINAL[outcome] if ack_due(header.application_ack_type, outcome) else None


@dataclass(frozen=True, slots=True)
class AckError:
    """One ERR segment: ERR-2 location, ERR-3 code (table 0357), ERR-4 severity, ERR-8 text."""

    reason: str
    code: str
    location: str = ""
    severity: str = "E"

    @classmethod
    def from_error(cls, error: Hl7Error) -> AckError:
        return cls(reason=error.reason, code=error.code, location=error.location)


@dataclass(frozen=True, slots=True)
class Responder:
    """Who OncoCDS is when a message leaves MSH-5/MSH-6 empty."""

    application: str = "ONCOCDS"
    facility: str = ""


def new_control_id() -> str:
    """A fresh MSH-10 of 20 characters (the v2.5.1 ST length for MSH-10)."""
    return uuid.uuid4().hex[:20].upper()


def _escape(text: str, field_sep: str, encoding: str) -> str:
    # HL7 v2.5.1 ch. 2.7.1: delimiters inside text are written as escape sequences; the escape
    # character itself first. CR/LF would end the segment, so they become spaces.
    comp, rep, esc, sub = encoding[0], encoding[1], encoding[2], encoding[3]
    out = text.replace(esc, f"{esc}E{esc}")
    for char, code in ((field_sep, "F"), (comp, "S"), (rep, "R"), (sub, "T")):
        out = out.replace(char, f"{esc}{code}{esc}")
    return out.replace("\r", " ").replace("\n", " ")


def _timestamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "+0000"


def build_ack(
    header: MessageHeader | None,
    code: AckCode,
    *,
    errors: tuple[AckError, ...] = (),
    responder: Responder = Responder(),
    control_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Build the text of an ACK to ``header`` (None when the MSH could not be read).

    Args:
        header: the original message's header; None yields an ACK with an empty MSA-2.
        code: the acknowledgement code.
        errors: one ERR segment each (required for AE/AR/CE/CR to say why).
        responder: our application and facility when the message names none.
        control_id: MSH-10 of the ACK (a new one when None).
        now: MSH-7 (the current UTC time when None).

    Returns:
        The ACK message, segments terminated by CR (encode it in :func:`ack_codec`).
    """
    fs = header.field_separator if header else DEFAULT_FIELD_SEPARATOR
    enc = header.encoding_characters if header else DEFAULT_ENCODING_CHARACTERS
    comp = enc[0]
    trigger = header.trigger_event if header else ""
    sending_app = (header.receiving_application if header else "") or responder.application
    sending_fac = (header.receiving_facility if header else "") or responder.facility
    enhanced_ack = code in (AckCode.CA, AckCode.CE, AckCode.CR)
    msh = [
        "MSH",
        enc,
        sending_app,
        sending_fac,
        header.sending_application if header else "",
        header.sending_facility if header else "",
        _timestamp(now or datetime.now(tz=UTC)),
        "",
        f"ACK{comp}{trigger}{comp}ACK" if trigger else f"ACK{comp}{comp}ACK",
        control_id or new_control_id(),
        (header.processing_id if header else "") or "P",
        (header.version if header else "") or DEFAULT_VERSION,
        "",
        "",
        # An accept ACK asks for no acknowledgement of itself (ch. 2.9.3.2).
        "NE" if enhanced_ack else "",
        "NE" if enhanced_ack else "",
        "",
        header.charset if header else "",
    ]
    while msh and msh[-1] == "":
        msh.pop()
    # MSH-1 is the field separator itself, so joining "MSH", MSH-2, MSH-3 … on it is exact.
    segments = [fs.join(msh)]
    segments.append(fs.join(["MSA", code.value, header.control_id if header else ""]))
    for error in errors:
        text = ERROR_CODE_TEXT.get(error.code, "")
        segments.append(
            fs.join(
                [
                    "ERR",
                    "",
                    error.location.replace("^", comp),
                    f"{error.code}{comp}{_escape(text, fs, enc)}{comp}HL70357",
                    error.severity,
                    "",
                    "",
                    "",
                    _escape(error.reason, fs, enc),
                ]
            )
        )
    return "\r".join(segments) + "\r"


def ack_codec(header: MessageHeader | None) -> str:
    """The codec an ACK is encoded with: the message's MSH-18 when known, else UTF-8."""
    if header is not None and header.charset:
        return CHARSETS.get(header.charset.upper(), "utf-8")
    return "utf-8"


def encode_ack(text: str, header: MessageHeader | None) -> bytes:
    """Encode an ACK for the wire (characters the codec lacks become ``?``)."""
    return text.encode(ack_codec(header), errors="replace")
