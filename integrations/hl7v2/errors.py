"""Errors of the HL7 v2 integration (a branch of :class:`integrations.errors.IntegrationError`).

::

    Hl7Error                  base; carries an HL7 table 0357 error code and an ERR-2 location
    ├── Hl7HeaderError        the MSH segment cannot be read (reject: AR / CR)
    ├── Hl7CharsetError       the bytes are not valid in the message's character set (AE / CE)
    └── Hl7ParseError         hl7apy could not parse or validate the message

Messages are written for integration staff and never quote field values (they may be PHI).
"""

from __future__ import annotations

from integrations.errors import IntegrationError

#: HL7 table 0357 (message error condition codes), the subset this package emits.
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
VALUE_TOO_LONG = "104"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_VERSION_ID = "203"
APPLICATION_INTERNAL_ERROR = "207"

ERROR_CODE_TEXT = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    VALUE_TOO_LONG: "Value too long",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}


class Hl7Error(IntegrationError):
    """An HL7 v2 problem that becomes an ERR segment.

    Args:
        reason: readable reason (ERR-8); never quotes field content.
        code: HL7 table 0357 code (ERR-3).
        location: ERR-2 as ``SEG^seq^field`` (e.g. ``MSH^1^10``), empty when unknown.
    """

    def __init__(
        self, reason: str, *, code: str = APPLICATION_INTERNAL_ERROR, location: str = ""
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.location = location


class Hl7HeaderError(Hl7Error):
    """The MSH segment is missing or unreadable; the message is rejected."""


class Hl7CharsetError(Hl7Error):
    """The message's bytes cannot be decoded in its declared or configured character set."""


class Hl7ParseError(Hl7Error):
    """hl7apy could not parse the message structure."""
