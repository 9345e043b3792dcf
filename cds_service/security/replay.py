"""The ``jti`` replay store, in the database so every worker process shares it.

CDS Hooks best practice: "store processed jtis for the maximum JWT lifetime". A row holds a
SHA-256 of ``iss`` and ``jti`` (not the token) and when it may be forgotten. The primary key makes
the check-and-set atomic across processes: a second insert of the same pair fails. Rows past
their expiry are purged now and then by whichever request comes by.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime
from typing import Final

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError, OperationalError

from cds_service.db.base import utcnow
from cds_service.errors import DatabaseError
from cds_service.models.security import JwtReplay

PURGE_INTERVAL_S: Final = 60.0


def replay_key(iss: str, jti: str) -> str:
    return hashlib.sha256(f"{iss}\x00{jti}".encode()).hexdigest()


class ReplayStore:
    """Remembers ``(iss, jti)`` pairs until their token expires."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._last_purge = 0.0
        self._lock = threading.Lock()

    def check_and_store(self, iss: str, jti: str, *, expires_at: datetime) -> bool:
        """Store the pair; False when it was already there (a replay).

        Raises:
            DatabaseError: the store is unreachable (the caller must reject the token).
        """
        self._maybe_purge()
        row = {"key_hash": replay_key(iss, jti), "expires_at": expires_at, "seen_at": utcnow()}
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(JwtReplay), [row])
        except IntegrityError:
            return False
        except OperationalError as exc:
            raise DatabaseError("the replay store is unavailable") from exc
        return True

    def purge(self) -> int:
        """Delete forgotten pairs; returns how many."""
        with self._engine.begin() as conn:
            result = conn.execute(delete(JwtReplay).where(JwtReplay.expires_at < utcnow()))
        return int(result.rowcount or 0)

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_purge < PURGE_INTERVAL_S:
                return
            self._last_purge = now
        try:
            self.purge()
        except OperationalError:
            # A purge is housekeeping; the next request tries again.
            with self._lock:
                self._last_purge = 0.0
