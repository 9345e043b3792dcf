"""Wire models of the imaging API (camelCase JSON)."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

#: ``Patient/123``: a reference, never a name.
PATIENT_REF: Final = r"^Patient/[A-Za-z0-9.\-]{1,64}$"
#: The FHIR resources an analysis may be asked for by reference.
RESOURCE_REF: Final = r"^(ImagingStudy|DocumentReference|Media)/[A-Za-z0-9.\-]{1,64}$"
DICOM_UID: Final = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$"


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class FhirAuthorization(_Wire):
    """The client's token for its FHIR server / PACS (CDS Hooks ``fhirAuthorization`` shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: SecretStr = Field(max_length=8192)
    expires_in: int | None = Field(default=None, ge=1, le=86400)


class StudyReference(_Wire):
    """A study on a DICOMweb service: its root (on the allowlist) and Study Instance UID."""

    endpoint: str = Field(max_length=512)
    study_uid: str = Field(max_length=64, pattern=DICOM_UID)


class ImagingAnalysisRequest(_Wire):
    """``POST /api/v1/imaging-analyses`` with ``application/json``.

    ``references`` are read from ``fhirServer`` (DocumentReference/Media attachments; an
    ImagingStudy by its DICOM UID and Endpoint), ``studies`` straight from DICOMweb.
    """

    patient: str = Field(pattern=PATIENT_REF)
    fhir_server: str | None = Field(default=None, max_length=512)
    fhir_authorization: FhirAuthorization | None = None
    references: list[str] = Field(default_factory=list, max_length=50)
    studies: list[StudyReference] = Field(default_factory=list, max_length=50)


class ResultStatus(_Wire):
    id: str
    status: Literal["pending", "running", "done", "failed"]
    error: str | None = None
    images: int = 0


class ImagingAnalysisStatus(_Wire):
    """The answer to POST (202), and to GET while not every result is done."""

    id: str
    status: Literal["in-progress", "done", "failed"]
    model: str
    results: list[ResultStatus]


class PacsNotification(_Wire):
    """What the PACS's ``OnStableStudy`` Lua script posts (identifiers only)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    study_uid: str = Field(max_length=64, pattern=DICOM_UID)
    #: The PACS's own id of the study (for the log; never a patient detail).
    orthanc_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")
