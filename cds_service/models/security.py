"""Security state shared by every worker: the JWT ``jti`` replay store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cds_service.db.base import Base


class JwtReplay(Base):
    """A seen client-JWT ``(iss, jti)`` pair, kept until the token's expiry plus skew."""

    __tablename__ = "jwt_replay"
    __table_args__ = (Index("ix_jwt_replay_expires_at", "expires_at"),)

    #: SHA-256 hex of ``iss`` NUL ``jti``: fixed width, and the token is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime]
    seen_at: Mapped[datetime]
