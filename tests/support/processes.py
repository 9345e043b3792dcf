"""Real server processes in tests: a free TCP port, and waiting until a started process listens.

A deadline bounds the wait (progress, never a timing assertion); a process that exits first
fails the test with the end of its log.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, *, timeout: float = 90.0
) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; fail the test (with
    the end of ``log``) if ``process`` exits first or nothing listens within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"exited with {process.returncode}: {tail}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on port {port}") from None
            time.sleep(0.05)
        else:
            return
