"""What a clinical CDS service may use beyond its request: storing an analysis for the report.

The genomic services store their interpretation as an analysis (report page, write-back, "save
to chart" action) in a short transaction of their own, committed at once, so the request
session never holds SQLite's single write lock while the audit trail writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from cds_service.analyses.service import store_analysis
from cds_service.audit import AuditTrail
from cds_service.reports.tokens import report_link
from cds_service.settings import Settings
from inference.genomics import Interpretation
from integrations.fhir.genomics_report import report_with_contained


@dataclass(frozen=True, slots=True)
class SavedAnalysis:
    id: str
    report_url: str
    #: The DiagnosticReport with its Observations contained: one resource for a card action.
    report_resource: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ServiceEnvironment:
    settings: Settings
    session_factory: sessionmaker[Session]
    audit: AuditTrail

    def save_analysis(
        self,
        interpretation: Interpretation,
        patient_ref: str,
        *,
        agent: str,
        hook_instance: str,
        request_id: str | None,
    ) -> SavedAnalysis:
        """Store the interpretation and its report Bundle; audit it; return the report link."""
        with self.session_factory.begin() as session:
            analysis = store_analysis(session, interpretation, patient_ref, "cds-hook")
            analysis_id = analysis.id
            bundle = dict(analysis.report_bundle)
        self.audit.record(
            action="C",
            event_type="analysis.create",
            agent_who=agent,
            patient_id=patient_ref,
            entities=[{"type": "Analysis", "id": analysis_id}],
            hook_instance=hook_instance,
            request_id=request_id,
            details={"source_kind": "cds-hook", "alterations": len(interpretation.alterations)},
        )
        return SavedAnalysis(
            id=analysis_id,
            report_url=report_link(self.settings, analysis_id),
            report_resource=report_with_contained(bundle, validate=False),
        )
