"""Queries on the imaging tables; driver errors become :class:`DatabaseError`.

Feature code only flushes; the caller's unit of work commits (the request session, a job
handler's own short transactions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from cds_service.errors import DatabaseError
from cds_service.models.imaging import ImagingImage, ImagingRequest, ImagingResult


@contextmanager
def _database_errors(message: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise DatabaseError(message) from exc


def result_for(session: Session, source_key: str, bundle_sha256: str) -> ImagingResult | None:
    with _database_errors("could not read imaging results"):
        return session.scalars(
            select(ImagingResult).where(
                ImagingResult.source_key == source_key,
                ImagingResult.bundle_sha256 == bundle_sha256,
            )
        ).first()


def results_for(
    session: Session, source_keys: Iterable[str], bundle_sha256: str
) -> dict[str, ImagingResult]:
    """The stored results of these sources for one bundle, by source key (one query); a row
    is found by its alias key too (an ImagingStudy re-keyed by its study UID)."""
    keys = list(dict.fromkeys(source_keys))
    if not keys:
        return {}
    with _database_errors("could not read imaging results"):
        rows = session.scalars(
            select(ImagingResult).where(
                or_(ImagingResult.source_key.in_(keys), ImagingResult.alias_key.in_(keys)),
                ImagingResult.bundle_sha256 == bundle_sha256,
            )
        ).all()
    found: dict[str, ImagingResult] = {}
    for row in rows:  # aliases first: a row's own key wins over another row's alias
        if row.alias_key is not None:
            found[row.alias_key] = row
    for row in rows:
        found[row.source_key] = row
    return found


def study_key(study_uid: str) -> str:
    return f"dicom-study:{study_uid}"


def adopt_study_uid(session: Session, result_id: str, study_uid: str) -> ImagingResult | None:
    """The job of a FHIR ``ImagingStudy`` result has read its DICOM study UID: key the result
    by it, so that the study asked for by UID (a PACS notification) and as ``ImagingStudy/x``
    is one result. Returns the result that holds the study from now on.

    - no result holds the UID yet: this row is re-keyed ``dicom-study:<uid>`` and keeps its FHIR
      key as ``alias_key``;
    - another result holds it (the PACS announced the study first): that result takes the FHIR
      key as its alias, so later requests reuse it; this row stays as it is for the requests
      that already name it (its analysis reuses the other's images, same bytes and bundle).
    """
    key = study_key(study_uid)
    with _database_errors("could not key the imaging result by its study"):
        row = session.get(ImagingResult, result_id)
        if row is None or row.source_key == key:
            return row
        fhir_key = row.source_key
        other = result_for(session, key, row.bundle_sha256)
        if other is None:
            row.source_key, row.alias_key = key, fhir_key
            session.flush()
            return row
        if other.alias_key is None:
            # The FHIR key now leads to the study's result (one row per key: it leaves this one).
            row.source_key = f"superseded:{row.id}"
            session.flush()
            other.alias_key = fhir_key
            session.flush()
        return other


def add_result(session: Session, result: ImagingResult) -> ImagingResult:
    """Insert ``result``; when a concurrent request inserted the same source and bundle first,
    return that row instead (the unique constraint decides, in a savepoint)."""
    try:
        with session.begin_nested():
            session.add(result)
            session.flush()
    except IntegrityError:
        existing = result_for(session, result.source_key, result.bundle_sha256)
        if existing is None:
            raise DatabaseError("could not store the imaging result") from None
        return existing
    except SQLAlchemyError as exc:
        raise DatabaseError("could not store the imaging result") from exc
    return result


def get_result(session: Session, result_id: str) -> ImagingResult | None:
    with _database_errors("could not read the imaging result"):
        return session.get(ImagingResult, result_id)


def get_results(session: Session, result_ids: Sequence[str]) -> list[ImagingResult]:
    if not result_ids:
        return []
    with _database_errors("could not read imaging results"):
        rows = session.scalars(
            select(ImagingResult).where(ImagingResult.id.in_(list(result_ids)))
        ).all()
    by_id = {r.id: r for r in rows}
    return [by_id[i] for i in result_ids if i in by_id]


def images_of(session: Session, result_ids: Sequence[str]) -> dict[str, list[ImagingImage]]:
    """The images of these results, in position order, by result id."""
    found: dict[str, list[ImagingImage]] = {i: [] for i in result_ids}
    if not result_ids:
        return found
    with _database_errors("could not read imaging images"):
        rows = session.scalars(
            select(ImagingImage)
            .where(ImagingImage.result_id.in_(list(result_ids)))
            .order_by(ImagingImage.result_id, ImagingImage.position)
        ).all()
    for row in rows:
        found[row.result_id].append(row)
    return found


def image_by_sha256(session: Session, sha256: str, bundle_sha256: str) -> ImagingImage | None:
    """An image with these bytes analysed by this bundle before (any source)."""
    with _database_errors("could not read imaging images"):
        return session.scalars(
            select(ImagingImage)
            .join(ImagingResult, ImagingResult.id == ImagingImage.result_id)
            .where(ImagingImage.sha256 == sha256, ImagingResult.bundle_sha256 == bundle_sha256)
            .limit(1)
        ).first()


def replace_images(session: Session, result_id: str, images: Sequence[ImagingImage]) -> None:
    with _database_errors("could not store imaging images"):
        session.execute(delete(ImagingImage).where(ImagingImage.result_id == result_id))
        session.add_all(images)
        session.flush()


def add_request(session: Session, request: ImagingRequest) -> ImagingRequest:
    with _database_errors("could not store the imaging request"):
        session.add(request)
        session.flush()
    return request


def get_request(session: Session, request_id: str) -> ImagingRequest | None:
    with _database_errors("could not read the imaging request"):
        return session.get(ImagingRequest, request_id)
