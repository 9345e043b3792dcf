"""The modules that register job kinds: one line per feature (imported by ``load_kinds``)."""

from __future__ import annotations

JOB_MODULES: list[str] = [
    "cds_service.jobs.builtin",
    "cds_service.writeback.jobs",
    "cds_service.compliance.jobs",
    "cds_service.explanations.jobs",
    "cds_service.imaging.jobs",
    "cds_service.hl7.jobs",
]
