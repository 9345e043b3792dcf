"""MSH header reading, charsets (MSH-18 and configured fallbacks) and ACK construction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.hl7v2.ack import (
    AckCode,
    AckError,
    Outcome,
    accept_ack_code,
    application_ack_code,
    build_ack,
    encode_ack,
)
from integrations.hl7v2.errors import Hl7CharsetError, Hl7HeaderError
from integrations.hl7v2.message import CharsetPolicy, decode_message, read_header
from tests.hl7_support import make_oru, parse_ack

MSH = "MSH|^~\\&|LAB_APP|LAB_FAC|RCV_APP|RCV_FAC|20260115093000||ORU^R01^ORU_R01|CTRL1|P|2.5.1"


def test_header_fields() -> None:
    header = read_header(MSH + "|||AL|ER||8859/1\rPID|1\r")
    assert header.sending_application == "LAB_APP"
    assert header.sending_facility == "LAB_FAC"
    assert header.receiving_application == "RCV_APP"
    assert header.control_id == "CTRL1"
    assert header.type_key == "ORU^R01"
    assert header.version == "2.5.1"
    assert (header.accept_ack_type, header.application_ack_type) == ("AL", "ER")
    assert header.charset == "8859/1"
    assert header.enhanced_mode


@pytest.mark.parametrize(
    ("text", "code", "location"),
    [
        ("PID|1\r" + MSH, "100", "MSH^1"),
        (MSH.replace("\r", "") + "\nPID|1\n", "100", "MSH^1"),
        ("MSH|^^\\&|A|B|C|D|1||ORU^R01|X|P|2.5.1\r", "102", "MSH^1^2"),
        ("MSH|^~|A|B|C|D|1||ORU^R01|X|P|2.5.1\r", "102", "MSH^1^2"),
        ("MSH|^~\\&|A|B|C|D|1||ORU^R01||P|2.5.1\r", "101", "MSH^1^10"),
        ("MSH|^~\\&|A|B|C|D|1|||X|P|2.5.1\r", "101", "MSH^1^9"),
        ("MSH|^~\\&|A|B|C|D|1||ORU^R01|" + "9" * 65 + "|P|2.5.1\r", "104", "MSH^1^10"),
    ],
)
def test_bad_headers(text: str, code: str, location: str) -> None:
    with pytest.raises(Hl7HeaderError) as info:
        read_header(text)
    assert info.value.code == code
    assert info.value.location == location


def test_charset_from_msh18_latin1() -> None:
    raw = make_oru("C1", charset="8859/1", patient_name="MÜLLER^JÖRG", encoding="iso8859-1")
    decoded = decode_message(raw, CharsetPolicy())
    assert decoded.codec == "iso8859-1"
    assert "MÜLLER^JÖRG" in decoded.text


def test_declared_charset_is_strict() -> None:
    raw = make_oru("C1", charset="UNICODE UTF-8", patient_name="MÜLLER", encoding="iso8859-1")
    with pytest.raises(Hl7CharsetError) as info:
        decode_message(raw, CharsetPolicy(fallbacks=("iso8859-1",)))
    assert info.value.location == "MSH^1^18"
    assert "MÜLLER" not in info.value.reason


def test_default_then_fallbacks_when_msh18_empty() -> None:
    raw = make_oru("C1", charset="", patient_name="MÜLLER", encoding="iso8859-1")
    with pytest.raises(Hl7CharsetError):
        decode_message(raw, CharsetPolicy(default="utf-8"))
    decoded = decode_message(raw, CharsetPolicy(default="utf-8", fallbacks=("iso8859-1",)))
    assert decoded.codec == "iso8859-1"
    assert "MÜLLER" in decoded.text


def test_unknown_msh18_is_refused() -> None:
    with pytest.raises(Hl7CharsetError, match="does not support"):
        decode_message(make_oru("C1", charset="KLINGON"), CharsetPolicy())


def test_unknown_configured_codec_fails_at_configuration() -> None:
    with pytest.raises(LookupError):
        CharsetPolicy(default="no-such-codec")


def test_original_mode_ack_mirrors_msh() -> None:
    header = read_header(MSH + "\r")
    now = datetime(2026, 1, 15, 9, 30, 1, tzinfo=UTC)
    ack = parse_ack(encode_ack(build_ack(header, AckCode.AA, control_id="ACK1", now=now), header))
    # HL7 v2.5.1 ch. 2.14.9: the responder's MSH-3/4 are the original MSH-5/6 and vice versa.
    assert ack.msh(3) == "RCV_APP"
    assert ack.msh(4) == "RCV_FAC"
    assert ack.msh(5) == "LAB_APP"
    assert ack.msh(6) == "LAB_FAC"
    assert ack.msh(7) == "20260115093001+0000"
    assert ack.msh(9) == "ACK^R01^ACK"
    assert ack.msh(10) == "ACK1"
    assert ack.msh(11) == "P"
    assert ack.msh(12) == "2.5.1"
    assert ack.segments["MSA"] == ["MSA", "AA", "CTRL1"]
    assert ack.err is None


def test_error_ack_has_err_with_location_code_and_escaped_reason() -> None:
    header = read_header(MSH + "\r")
    text = build_ack(
        header,
        AckCode.AR,
        errors=(AckError(reason="a|b^c", code="101", location="MSH^1^10"),),
    )
    ack = parse_ack(text.encode())
    assert ack.code == "AR"
    err = ack.err
    assert err is not None
    assert err[2] == "MSH^1^10"
    assert err[3] == "101^Required field missing^HL70357"
    assert err[4] == "E"
    assert err[8] == "a\\F\\b\\S\\c"


def test_ack_without_header_uses_responder_and_empty_msa2() -> None:
    ack = parse_ack(build_ack(None, AckCode.AR).encode())
    assert ack.msh(3) == "ONCOCDS"
    assert ack.segments["MSA"] == ["MSA", "AR", ""]


@pytest.mark.parametrize(
    ("msh15", "msh16", "outcome", "accept", "application"),
    [
        ("", "", Outcome.ACCEPT, AckCode.AA, None),
        ("", "", Outcome.ERROR, AckCode.AE, None),
        ("", "", Outcome.REJECT, AckCode.AR, None),
        ("AL", "NE", Outcome.ACCEPT, AckCode.CA, None),
        ("AL", "AL", Outcome.ERROR, AckCode.CE, AckCode.AE),
        ("NE", "AL", Outcome.ACCEPT, None, AckCode.AA),
        ("ER", "SU", Outcome.ACCEPT, None, AckCode.AA),
        ("ER", "SU", Outcome.REJECT, AckCode.CR, None),
        ("SU", "ER", Outcome.ERROR, None, AckCode.AE),
    ],
)
def test_ack_modes(
    msh15: str, msh16: str, outcome: Outcome, accept: AckCode | None, application: AckCode | None
) -> None:
    header = read_header(MSH + f"|||{msh15}|{msh16}\r")
    assert accept_ack_code(header, outcome) == accept
    assert application_ack_code(header, outcome) == application


def test_enhanced_commit_ack_asks_for_no_ack_itself() -> None:
    header = read_header(MSH + "|||AL|AL\r")
    ack = parse_ack(build_ack(header, AckCode.CA).encode())
    assert ack.code == "CA"
    assert (ack.msh(15), ack.msh(16)) == ("NE", "NE")
