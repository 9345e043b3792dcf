"""Malformed input: each case gets the right error ACK or a clean close, and the listener keeps
serving (a good message on the same connection where it stays open, and on a new one)."""

from __future__ import annotations

import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from cds_service.models.hl7 import Hl7InboxMessage
from cds_service.settings import Hl7Settings
from tests.hl7_support import (
    Ack,
    MllpClient,
    RunningListener,
    frame,
    make_oru,
    run_hl7_jobs,
    running_listener,
)


def _rows(engine: Engine) -> list[Hl7InboxMessage]:
    with Session(engine) as session:
        rows = list(session.scalars(select(Hl7InboxMessage).order_by(Hl7InboxMessage.id)))
        session.expunge_all()
    return rows


def _still_serving(listener: RunningListener, client: MllpClient | None, tag: str) -> None:
    if client is not None:
        ack = client.request(make_oru(f"OK-SAME-{tag}"))
        assert (ack.code, ack.acked_control_id) == ("AA", f"OK-SAME-{tag}")
    fresh = listener.client()
    ack = fresh.request(make_oru(f"OK-NEW-{tag}"))
    assert (ack.code, ack.acked_control_id) == ("AA", f"OK-NEW-{tag}")


def _err(ack: Ack) -> tuple[str, str]:
    err = ack.err
    assert err is not None, "an error ACK must carry an ERR segment"
    assert err[8], "ERR-8 must give a readable reason"
    return err[2], err[3].split("^")[0]


def test_lf_separators_are_rejected_when_normalising_is_off(sqlite_engine: Engine) -> None:
    settings = Hl7Settings(worker_in_process=False, normalise_line_endings=False)
    with running_listener(sqlite_engine, settings) as listener:
        client = listener.client()
        ack = client.request(make_oru("LF1").replace(b"\r", b"\n"))
        assert (ack.code, ack.acked_control_id) == ("AR", "LF1")
        assert _err(ack) == ("MSH^1", "100")
        assert "CR" in ack.err[8]  # type: ignore[index]
        _still_serving(listener, client, "lf")
    assert [r.control_id for r in _rows(sqlite_engine)] == ["OK-SAME-lf", "OK-NEW-lf"]


@pytest.mark.parametrize("separator", [b"\n", b"\r\n"])
def test_lf_and_crlf_separators_are_read_as_cr_by_default(
    sqlite_listener: RunningListener, sqlite_engine: Engine, separator: bytes
) -> None:
    from cds_service.audit import AuditTrail
    from cds_service.hl7.processing import GeneticResultProcessor
    from cds_service.hl7.worker import Worker

    client = sqlite_listener.client()
    payload = make_oru("LF2").replace(b"\r", separator)
    ack = client.request(payload)
    assert (ack.code, ack.acked_control_id) == ("AA", "LF2")
    assert ack.msh(9) == "ACK^R01^ACK"
    _still_serving(sqlite_listener, client, "lf2")
    (row,) = [r for r in _rows(sqlite_engine) if r.control_id == "LF2"]
    assert row.raw == payload  # kept as received
    worker = Worker(
        sqlite_listener.repository,
        GeneticResultProcessor(),
        Hl7Settings(worker_in_process=False),
        audit=AuditTrail(sqlite_engine, source_observer="test"),
    )
    assert run_hl7_jobs(sqlite_engine, worker) == 3
    (row,) = [r for r in _rows(sqlite_engine) if r.control_id == "LF2"]
    assert row.status == "processed"
    assert row.result is not None
    assert [v["gene"] for v in row.result["variants"]] == ["BRAF"]


def test_missing_msh_is_rejected(sqlite_listener: RunningListener, sqlite_engine: Engine) -> None:
    client = sqlite_listener.client()
    ack = client.request(b"PID|1||X^^^H^MR\rOBX|1|ST|1^x^LN||y\r")
    assert (ack.code, ack.acked_control_id) == ("AR", "")
    assert _err(ack) == ("MSH^1", "100")
    _still_serving(sqlite_listener, client, "nomsh")


@pytest.mark.parametrize("msh2", ["^^\\&", "^~", "a~\\&", "^~\\&^|"])
def test_bad_encoding_characters_are_rejected(sqlite_listener: RunningListener, msh2: str) -> None:
    client = sqlite_listener.client()
    payload = make_oru("ENC1").replace(b"^~\\&", msh2.encode(), 1)
    ack = client.request(payload)
    assert ack.code == "AR"
    assert _err(ack) == ("MSH^1^2", "102")
    _still_serving(sqlite_listener, client, "enc")


def test_oversize_frame_is_rejected_and_the_connection_continues(
    sqlite_listener: RunningListener, sqlite_engine: Engine
) -> None:
    client = sqlite_listener.client()
    big = make_oru("BIG1") + b"NTE|1||" + b"x" * 20_000 + b"\r"
    ack = client.request(big)
    assert (ack.code, ack.acked_control_id) == ("AR", "BIG1")
    assert _err(ack)[1] == "104"
    assert "4096" in ack.err[8]  # type: ignore[index]
    _still_serving(sqlite_listener, client, "big")
    assert "BIG1" not in [r.control_id for r in _rows(sqlite_engine)]


def test_invalid_bytes_for_charset_get_ae_and_are_kept_as_failed(
    sqlite_listener: RunningListener, sqlite_engine: Engine
) -> None:
    client = sqlite_listener.client()
    payload = make_oru("CS1", charset="UNICODE UTF-8", patient_name="MÜLLER", encoding="latin-1")
    ack = client.request(payload)
    assert (ack.code, ack.acked_control_id) == ("AE", "CS1")
    assert _err(ack) == ("MSH^1^18", "102")
    assert "MÜLLER" not in ack.raw.decode("utf-8", "replace")
    _still_serving(sqlite_listener, client, "cs")
    (row,) = [r for r in _rows(sqlite_engine) if r.control_id == "CS1"]
    assert row.status == "failed"
    assert row.raw == payload  # nothing lost: the bytes are kept for replay
    assert row.last_error is not None
    assert "offset" in row.last_error


def test_garbage_between_frames_is_skipped(sqlite_listener: RunningListener) -> None:
    client = sqlite_listener.client()
    client.send_raw(b"junk\r\n" + frame(make_oru("G1")) + b"\r\n\x00noise" + frame(make_oru("G2")))
    acks = [client.read_ack(), client.read_ack()]
    assert [(a.code, a.acked_control_id) for a in acks if a] == [("AA", "G1"), ("AA", "G2")]
    _still_serving(sqlite_listener, client, "garbage")


def test_unknown_type_is_stored_not_processed_by_default(
    sqlite_listener: RunningListener, sqlite_engine: Engine
) -> None:
    client = sqlite_listener.client()
    ack = client.request(make_oru("U1", message_type="ZZZ^Z99"))
    assert (ack.code, ack.acked_control_id) == ("AA", "U1")
    (row,) = _rows(sqlite_engine)
    assert (row.status, row.message_type) == ("not-processed", "ZZZ^Z99")


def test_unknown_type_is_refused_when_configured(sqlite_engine: Engine) -> None:
    settings = Hl7Settings(worker_in_process=False, other_types="refuse")
    with running_listener(sqlite_engine, settings) as listener:
        client = listener.client()
        ack = client.request(make_oru("U2", message_type="ZZZ^Z99"))
        assert (ack.code, ack.acked_control_id) == ("AR", "U2")
        assert _err(ack) == ("MSH^1^9", "200")
        _still_serving(listener, client, "refuse")
    assert "U2" not in [r.control_id for r in _rows(sqlite_engine)]


def test_truncated_frame_at_close_is_dropped_cleanly(
    sqlite_listener: RunningListener, sqlite_engine: Engine
) -> None:
    client = sqlite_listener.client()
    client.send_raw(frame(make_oru("T1"))[:-40])
    client.sock.shutdown(socket.SHUT_WR)
    assert client.read_ack() is None  # closed without an ACK: the sender still owns it
    client.close()
    _still_serving(sqlite_listener, None, "trunc")
    assert "T1" not in [r.control_id for r in _rows(sqlite_engine)]


def test_database_unavailable_gives_ae_never_aa(
    sqlite_listener: RunningListener, sqlite_engine: Engine
) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(text("ALTER TABLE hl7_inbox_messages RENAME TO hl7_away"))
    client = sqlite_listener.client()
    ack = client.request(make_oru("DB1"))
    assert (ack.code, ack.acked_control_id) == ("AE", "DB1")
    assert _err(ack)[1] == "207"
    with sqlite_engine.begin() as conn:
        conn.execute(text("ALTER TABLE hl7_away RENAME TO hl7_inbox_messages"))
    ack = client.request(make_oru("DB1"))  # the sender's resend is accepted
    assert ack.code == "AA"


def test_connection_limit(sqlite_engine: Engine) -> None:
    settings = Hl7Settings(worker_in_process=False, max_connections=2)
    with running_listener(sqlite_engine, settings) as listener:
        first, second = listener.client(), listener.client()
        assert first.request(make_oru("L1")).code == "AA"
        assert second.request(make_oru("L2")).code == "AA"
        third = listener.client(timeout=10)
        assert third.read_ack() is None  # closed at once
        first.close()
        deadline = time.monotonic() + 10
        while listener.listener.active_connections >= 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        fourth = listener.client()
        assert fourth.request(make_oru("L4")).code == "AA"


def test_idle_connection_is_closed(sqlite_engine: Engine) -> None:
    settings = Hl7Settings(worker_in_process=False, idle_timeout_seconds=0.2)
    with running_listener(sqlite_engine, settings) as listener:
        client = listener.client(timeout=10)
        assert client.request(make_oru("I1")).code == "AA"
        assert client.read_ack() is None  # the server closed the idle connection


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(tz=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls(sqlite_engine: Engine, tls_files: tuple[Path, Path]) -> None:
    cert_file, key_file = tls_files
    settings = Hl7Settings(worker_in_process=False, tls_cert_file=cert_file, tls_key_file=key_file)
    with running_listener(sqlite_engine, settings) as listener:
        context = ssl.create_default_context(cafile=str(cert_file))
        raw = socket.create_connection((listener.host, listener.port), timeout=10)
        client = MllpClient.__new__(MllpClient)
        client.sock = context.wrap_socket(raw, server_hostname="localhost")
        client._buffer = b""
        try:
            ack = client.request(make_oru("TLS1"))
        finally:
            client.close()
        assert (ack.code, ack.acked_control_id) == ("AA", "TLS1")
        plain = listener.client(timeout=10)
        plain.send(make_oru("PLAIN1"))
        assert plain.read_ack() is None  # a plain-text peer gets no ACK from a TLS listener
