"""The one place FHIR classes are imported from (FHIR R4 via ``fhir.resources.R4B``).

EHRs speak R4; fhir.resources ships no plain R4 package, and R4B is wire-compatible with R4 for
the resources OncoCDS reads and writes. Keeping the import here means a future move to another
FHIR version touches one file (import-linter enforces it).
"""

from fhir.resources.R4B.auditevent import (
    AuditEvent,
    AuditEventAgent,
    AuditEventAgentNetwork,
    AuditEventEntity,
    AuditEventEntityDetail,
    AuditEventSource,
)
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.servicerequest import ServiceRequest

__all__ = [
    "AuditEvent",
    "AuditEventAgent",
    "AuditEventAgentNetwork",
    "AuditEventEntity",
    "AuditEventEntityDetail",
    "AuditEventSource",
    "Bundle",
    "BundleEntry",
    "CodeableConcept",
    "Coding",
    "Condition",
    "Device",
    "DiagnosticReport",
    "Media",
    "MedicationRequest",
    "Observation",
    "ObservationComponent",
    "OperationOutcome",
    "OperationOutcomeIssue",
    "Patient",
    "Provenance",
    "ServiceRequest",
]
