"""Wire models of the write-back API (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from cds_service.models.analysis import WritebackJob


class WritebackJobOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: str
    analysis_id: str
    fhir_base_url: str
    status: str
    attempts: int
    created: datetime
    updated: datetime
    next_attempt: datetime | None
    last_error: str | None
    response_locations: list[str]

    @classmethod
    def of(cls, job: WritebackJob) -> WritebackJobOut:
        return cls(
            id=job.id,
            analysis_id=job.analysis_id,
            fhir_base_url=job.fhir_base_url,
            status=job.status,
            attempts=job.attempts,
            created=job.created,
            updated=job.updated,
            next_attempt=job.next_attempt,
            last_error=job.last_error,
            response_locations=list(job.response_locations or []),
        )


class WritebackJobList(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    jobs: list[WritebackJobOut]
