"""One result per DICOM study (issue #15 §4 "results are stored per study … and reused"): the
same study asked for as ``ImagingStudy/x`` through the API and by its study UID (a PACS
notification) is one result row, in either order, once the job has read the ImagingStudy's UID
(:func:`repository.adopt_study_uid`, which the job calls at that point). Rows are counted with
plain SQL, not through the code under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cds_service.db.engine import make_engine
from cds_service.db.session import make_sessionmaker
from cds_service.imaging import repository
from cds_service.imaging.service import ImageReference, InstalledModel, TokenVault, ensure_results
from cds_service.models.imaging import ImagingResult

UID = "1.2.826.0.1.3680043.10.1234.1"
MODEL = InstalledModel("idc", "1.0", "ab" * 32, Path("/nonexistent"), 0.5)
FHIR = ImageReference(
    kind="fhir-resource", endpoint="https://fhir.example.org/r4", resource="ImagingStudy/x"
)
PACS = ImageReference(
    kind="dicomweb-study", endpoint="http://pacs.example.org/dicom-web", study_uid=UID
)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def _ask(session: Session, ref: ImageReference) -> str:
    (row,) = ensure_results(session, MODEL, [ref], patient_ref="Patient/1", vault=TokenVault())
    session.commit()
    return row.id


def _rows(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ImagingResult)) or 0)


def _read_uid(session: Session, result_id: str) -> None:
    """What the job does once it has read the ImagingStudy (its DICOM UID)."""
    repository.adopt_study_uid(session, result_id, UID)
    session.commit()


def test_asked_as_imaging_study_first_then_by_uid_is_one_result(session: Session) -> None:
    first = _ask(session, FHIR)
    _read_uid(session, first)
    assert _ask(session, PACS) == first
    assert _ask(session, FHIR) == first
    assert _rows(session) == 1


def test_announced_by_the_pacs_first_then_asked_as_imaging_study_reuses_the_study(
    session: Session,
) -> None:
    study = _ask(session, PACS)
    before_uid_known = _ask(session, FHIR)  # the UID is not known until its job reads it
    assert before_uid_known != study
    _read_uid(session, before_uid_known)
    assert _ask(session, FHIR) == study
    assert _ask(session, PACS) == study
    # The earlier row stays for the request that already names it; no third row.
    assert _rows(session) == 2


def test_other_studies_stay_apart(session: Session) -> None:
    first = _ask(session, FHIR)
    _read_uid(session, first)
    other = ImageReference(kind="dicomweb-study", endpoint=PACS.endpoint, study_uid=UID + ".9")
    assert _ask(session, other) != first
    assert _rows(session) == 2
