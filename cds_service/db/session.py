"""Request-scoped sessions: the dependency commits or rolls back; feature code only flushes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cds_service.errors import DatabaseError

log = logging.getLogger(__name__)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def get_session(request: Request) -> Iterator[Session]:
    """Yield a session bound to the app's engine; commit on success, roll back on error."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    session = factory()
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        # The type and frames only (the formatter withholds messages: they may quote values).
        log.exception("database operation failed", extra={"error_type": type(exc.orig).__name__})
        raise DatabaseError("the database is unavailable") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_session)]
