"""Audit records as FHIR R4 AuditEvent resources, shaped after IHE BALP.

Input is a plain mapping with the fields of an OncoCDS audit record (so this module knows no
database); output is a validated ``AuditEvent`` as JSON-ready dict. BALP (IHE ITI Basic Audit Log
Patterns) shapes applied:

- ``agent`` slices: *client* (DCM 110152 Destination Role ID: the system the data went to, with
  ``network`` when the address is known), *server* (DCM 110153 Source Role ID: this OncoCDS
  instance) and *user* (v3 ParticipationType IRCP, ``requestor = true``) when a user is known;
- ``entity[patient]``: type 1 Person, role 1 Patient, ``what`` = Reference(Patient);
- ``entity[transaction]``: the X-Request-Id (BALP BasicAuditEntityType ``XrequestId``); the CDS
  Hooks ``hookInstance`` and the HL7 v2 MSH-10 control id the same way;
- ``entity[data]``: each other entity by reference (type 2 System Object, role 4 Domain Resource);
- ``outcome`` 0/4/8/12 (R4 audit-event-outcome), ``purposeOfEvent`` from v3 PurposeOfUse.

Minimal AuditEvents (BALP): identifiers only, never search results or clinical content.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from integrations.fhir.resources import AuditEvent

DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
PURPOSE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP_ENTITY_TYPE: Final = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
#: OncoCDS's own event-type codes (``cds-hooks.call``, ``hl7.received``, ``audit.query``, …).
EVENT_TYPE_SYSTEM: Final = "urn:oncocds:audit-event-type"
RECORD_HASH_EXTENSION: Final = "urn:oncocds:fhir:extension:audit-record-hash"
SEQ_EXTENSION: Final = "urn:oncocds:fhir:extension:audit-record-seq"


def _reference(kind: str, ident: str) -> str:
    return ident if "/" in ident else f"{kind}/{ident}"


def _identifier_entity(system_code: str, value: str, system: str) -> dict[str, Any]:
    return {
        "what": {"identifier": {"system": system, "value": value}},
        "type": {"system": BALP_ENTITY_TYPE, "code": system_code},
    }


def _recorded(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _agents(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """BALP agent slices: client, server, and user when known."""
    agents: list[dict[str, Any]] = []
    client_address = record.get("remote_addr")
    agent_type = record.get("agent_type")
    user = record.get("agent_user") or (record["agent_who"] if agent_type == "user" else None)
    client: dict[str, Any] = {
        "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": {"identifier": {"system": "urn:oncocds:agent", "value": record["agent_who"]}},
        "requestor": user is None,
    }
    if client_address:
        client["network"] = {"address": client_address, "type": "2"}
    agents.append(client)
    agents.append(
        {
            "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
            "who": {"display": record["source_observer"]},
            "requestor": False,
        }
    )
    if user is not None:
        user_agent: dict[str, Any] = {
            "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]},
            "who": {"identifier": {"system": "urn:oncocds:user", "value": user}},
            "requestor": True,
        }
        if record.get("purpose_of_use"):
            user_agent["purposeOfUse"] = [
                {"coding": [{"system": PURPOSE, "code": record["purpose_of_use"]}]}
            ]
        agents.append(user_agent)
    return agents


def _entities(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """BALP entity slices: patient, transaction (request id), hookInstance, MSH-10, data."""
    entities: list[dict[str, Any]] = []
    if record.get("patient_id"):
        entities.append(
            {
                "what": {"reference": _reference("Patient", str(record["patient_id"]))},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    if record.get("request_id"):
        entities.append(
            _identifier_entity("XrequestId", str(record["request_id"]), "urn:oncocds:request-id")
        )
    if record.get("hook_instance"):
        entities.append(
            {
                "what": {
                    "identifier": {
                        "system": "urn:oncocds:cds-hooks:hookInstance",
                        "value": str(record["hook_instance"]),
                    }
                },
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "name": "hookInstance",
            }
        )
    if record.get("control_id"):
        entities.append(
            {
                "what": {
                    "identifier": {
                        "system": "urn:oncocds:hl7v2:msh-10",
                        "value": record["control_id"],
                    }
                },
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "name": "MSH-10",
            }
        )
    for entity in record.get("entities") or []:
        kind, ident = entity.get("type"), entity.get("id")
        if not kind or not ident:
            continue
        entities.append(
            {
                "what": {"reference": _reference(str(kind), str(ident))},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            }
        )
    return entities


def audit_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """One audit record as a validated R4 AuditEvent (JSON-ready dict).

    Raises:
        pydantic.ValidationError: the record cannot form a valid AuditEvent.
    """
    agents = _agents(record)
    entities = _entities(record)
    body: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": record["id"],
        "extension": [
            {"url": SEQ_EXTENSION, "valueString": str(record["seq"])},
            {"url": RECORD_HASH_EXTENSION, "valueString": record["record_hash"]},
        ],
        "type": {"system": EVENT_TYPE_SYSTEM, "code": record["event_type"]},
        "action": record["action"],
        "recorded": _recorded(record["recorded"]),
        "outcome": str(record["outcome"]),
        "agent": agents,
        "source": {
            "observer": {"display": record["source_observer"]},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    if record.get("event_subtype"):
        body["subtype"] = [{"system": EVENT_TYPE_SYSTEM, "code": record["event_subtype"]}]
    if record.get("outcome_desc"):
        body["outcomeDesc"] = record["outcome_desc"]
    if record.get("purpose_of_use"):
        body["purposeOfEvent"] = [
            {"coding": [{"system": PURPOSE, "code": record["purpose_of_use"]}]}
        ]
    if entities:
        body["entity"] = entities
    resource = AuditEvent.model_validate(body)
    result: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return result
