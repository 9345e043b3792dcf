"""What a clinical CDS service may use beyond its request: storing an analysis for the report.

The genomic services store their interpretation as an analysis (report page, write-back, "save
to chart" action) in a short transaction of their own, committed at once, so the request
session never holds SQLite's single write lock while the audit trail writes.

A chart is opened many times with the same results. The environment remembers the last
``cds_hooks.recent_reports`` analyses it stored, keyed by patient and the whole interpretation
or the fingerprint of the inputs it came from (:func:`inference.genomics.interpret` is pure), and
links the stored analysis again instead of storing a copy; the report link is signed afresh on
every call. Any change in the results, the knowledge base or the OncoCDS version gives a
different interpretation, hence a new analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from cds_service.analyses.service import store_analysis
from cds_service.audit import AuditTrail
from cds_service.cdshooks.call_audit import CallAudit
from cds_service.explanations.service import enqueue_for_analysis as enqueue_explanation
from cds_service.reports.tokens import report_link
from cds_service.settings import Settings
from inference.genomics import Interpretation
from integrations.fhir.genomics_report import report_with_contained
from integrations.memo import LruCache


@dataclass(frozen=True, slots=True)
class SavedAnalysis:
    id: str
    report_url: str
    #: The DiagnosticReport with its Observations contained: one resource for a card action.
    report_resource: dict[str, Any]
    #: False when an analysis stored earlier for the same patient and results was linked.
    created: bool


@dataclass(frozen=True, slots=True)
class ServiceEnvironment:
    settings: Settings
    session_factory: sessionmaker[Session]
    audit: AuditTrail
    #: (patient, input fingerprint or interpretation) → (analysis id, report resource).
    _recent: LruCache[tuple[str, object], tuple[str, dict[str, Any]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_recent", LruCache(self.settings.cds_hooks.recent_reports))

    def save_analysis(
        self,
        interpretation: Interpretation,
        patient_ref: str,
        *,
        agent: str,
        hook_instance: str,
        request_id: str | None,
        call_audit: CallAudit | None = None,
        fingerprint: str | None = None,
    ) -> SavedAnalysis:
        """Store the interpretation and its report Bundle (or link the one stored for the same
        patient and results); return the report link.

        The ``analysis.create`` audit record is added to ``call_audit`` when given (the CDS
        Hooks runtime writes it in one transaction with the call's own record), else
        recorded at once. ``fingerprint`` (of the inputs the interpretation was computed from)
        is a cheaper key than the interpretation itself, which is hashed in full otherwise.
        """
        key: tuple[str, object] = (patient_ref, fingerprint or interpretation)
        recent = self._recent.get(key)
        if recent is not None:
            analysis_id, resource = recent
            return SavedAnalysis(
                id=analysis_id,
                report_url=report_link(self.settings, analysis_id),
                report_resource=resource,
                created=False,
            )
        with self.session_factory.begin() as session:
            analysis = store_analysis(session, interpretation, patient_ref, "cds-hook")
            analysis_id = analysis.id
            if self.settings.llm.enabled:  # issue 16: one job row; the card never waits
                enqueue_explanation(session, analysis_id)
            bundle = dict(analysis.report_bundle)
        event: dict[str, Any] = {
            "action": "C",
            "event_type": "analysis.create",
            "agent_who": agent,
            "patient_id": patient_ref,
            "entities": [{"type": "Analysis", "id": analysis_id}],
            "hook_instance": hook_instance,
            "request_id": request_id,
            "details": {
                "source_kind": "cds-hook",
                "alterations": len(interpretation.alterations),
            },
        }
        if call_audit is None:
            self.audit.record(**event)
        else:
            call_audit.add_event(event)
        resource = report_with_contained(bundle, validate=False)
        self._recent.put(key, (analysis_id, resource))
        return SavedAnalysis(
            id=analysis_id,
            report_url=report_link(self.settings, analysis_id),
            report_resource=resource,
            created=True,
        )
