"""Helpers for the Celery/RabbitMQ tests: the machine's broker, per-run queue names, a TCP proxy
the test controls (to cut the broker connection), and queue clean-up.

The broker is the machine's real RabbitMQ (``ONCOCDS_TEST_BROKER_URL``, default guest/guest on
127.0.0.1:5672). Each test uses its own queue prefix, so runs never take each other's jobs.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

BROKER_URL = os.environ.get("ONCOCDS_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
QUEUES = ("hl7", "writeback", "imaging", "llm", "maintenance", "default")


def require_broker() -> str:
    """The broker URL; fail under CI when RabbitMQ is unreachable, skip elsewhere."""
    host_port = BROKER_URL.split("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port or 5672)), timeout=2).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"RabbitMQ is required under CI and unreachable at {host_port}")
        pytest.skip(f"RabbitMQ unreachable at {host_port}")
    return BROKER_URL


def unique_prefix() -> str:
    return f"oncocds-test-{uuid.uuid4().hex[:10]}."


def delete_queues(broker_url: str, prefix: str) -> None:
    """Remove this test's queues and exchange from the broker."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as conn:
        channel: Any = conn.channel()
        for queue in QUEUES:
            with contextlib.suppress(Exception):
                channel.queue_delete(f"{prefix}{queue}")
        with contextlib.suppress(Exception):
            channel.exchange_delete(f"{prefix}jobs")


def queue_depth(broker_url: str, prefix: str, queue: str) -> int:
    """Messages ready in one of this test's queues (passive declare)."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as conn:
        channel: Any = conn.channel()
        _name, count, _consumers = channel.queue_declare(f"{prefix}{queue}", passive=True)
        return int(count)


def consumers(broker_url: str, prefix: str, queue: str) -> int:
    """Consumers of one of this test's queues (0 when it does not exist yet)."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as conn:
        channel: Any = conn.channel()
        try:
            _name, _count, count = channel.queue_declare(f"{prefix}{queue}", passive=True)
        except Exception:  # noqa: BLE001 - NOT_FOUND closes the channel: not declared yet
            return 0
        return int(count)


class TcpProxy:
    """A TCP forwarder to ``target`` that the test can cut: :meth:`cut` closes every open
    connection and refuses new ones (accepted, then closed at once) until :meth:`restore`.

    A fake only in the sense of a cable the test can pull: both ends are real (the broker and
    the client library)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    def url(self, broker_url: str) -> str:
        scheme, rest = broker_url.split("://", 1)
        creds, tail = rest.split("@", 1)
        vhost = tail.split("/", 1)[1] if "/" in tail else "/"
        return f"{scheme}://{creds}@127.0.0.1:{self.port}/{vhost}"

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sockets = [a, b]
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except OSError:
            return
        finally:
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self.cut()
        self._stop.set()
        self._server.close()
        self._thread.join(5)


@contextlib.contextmanager
def proxy_to_broker(broker_url: str) -> Iterator[TcpProxy]:
    host_port = broker_url.split("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    proxy = TcpProxy((host or "127.0.0.1", int(port or 5672)))
    try:
        yield proxy
    finally:
        proxy.close()
