"""Compliance features over the audit trail: audited access, disclosures, streaming exports.

Every function here that reads the trail on behalf of a person appends an audit record of that
read first (45 CFR 164.312(b): examining the logs is itself activity on a system holding PHI).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from cds_service.audit import AuditTrail, Outcome
from cds_service.audit.chain import HASHED_FIELDS
from cds_service.audit.checkpoints import CheckpointInfo, checkpoints_covering
from cds_service.audit.service import Action, RecordedRef
from cds_service.compliance.auth import Principal
from cds_service.compliance.repository import AuditFilter, AuditRepository
from cds_service.compliance.schemas import Disclosure, DisclosureReport
from cds_service.db.base import utcnow
from integrations.fhir.audit_event import audit_event

#: v3 PurposeOfUse codes for treatment, payment and health-care operations: disclosures for
#: these are exempt from the accounting (45 CFR 164.528(a)(1)(i)) but still listed, flagged.
TPO_PURPOSES: Final = frozenset({"TREAT", "ETREAT", "HPAYMT", "HOPERAT", "CAREMGT", "PATRQT"})
#: Event types that are not disclosures: the trail's own housekeeping and refused requests.
_NOT_DISCLOSURE_PREFIXES: Final = ("audit.", "auth.", "system.")
MAX_DISCLOSURES: Final = 10_000
CHECKPOINT_EXTENSION: Final = "urn:oncocds:fhir:extension:audit-checkpoint"
#: Columns of the CSV export, in order (``checkpoint_id`` = the checkpoint sealing the row).
CSV_COLUMNS: Final = (
    # The chained record fields up to remote_addr (details and prev_hash stay out of the CSV),
    # then the record's own hash and the checkpoint sealing it.
    *HASHED_FIELDS[: HASHED_FIELDS.index("details")],
    "record_hash",
    "checkpoint_id",
)


def audit_access(
    trail: AuditTrail,
    principal: Principal,
    *,
    event_type: str,
    action: Action = "E",
    patient_id: str | None = None,
    request_id: str | None,
    remote_addr: str | None,
    details: dict[str, Any] | None = None,
) -> RecordedRef:
    """Record one access of a compliance user to the audit trail."""
    return trail.record(
        action=action,
        event_type=event_type,
        outcome=Outcome.SUCCESS,
        agent_type="user",
        agent_who=principal.subject,
        agent_user=principal.username,
        patient_id=patient_id,
        purpose_of_use="HOPERAT",
        request_id=request_id,
        remote_addr=remote_addr,
        details={
            "issuer": principal.issuer,
            "clientId": principal.client_id,
            "jti": principal.token_id,
            **(details or {}),
        },
    )


def _describe(record: dict[str, Any]) -> str:
    counts = Counter(str(e.get("type")) for e in record.get("entities") or [] if e.get("type"))
    parts = [f"{kind} x{n}" if n > 1 else kind for kind, n in sorted(counts.items())]
    return f"{record['event_type']}" + (f": {', '.join(parts)}" if parts else "")


def is_disclosure(record: dict[str, Any]) -> bool:
    """A successful access to the patient's data by a system or user other than OncoCDS."""
    return (
        record["outcome"] == Outcome.SUCCESS
        and record["agent_type"] != "system"
        and not str(record["event_type"]).startswith(_NOT_DISCLOSURE_PREFIXES)
    )


def disclosures(
    repo: AuditRepository, patient: str, *, since: datetime, until: datetime
) -> DisclosureReport:
    """The accounting of disclosures of one patient's data (45 CFR 164.528(b)).

    Each entry: date, recipient (the client system), user, a brief description of what (event
    type and the kinds of resources, never their content) and the purpose (or "unknown").
    """
    flt = AuditFilter(patient=patient, since=since, until=until)
    items: list[Disclosure] = []
    truncated = False
    cursor: int | None = None
    while True:
        rows, cursor = repo.search(flt, cursor=cursor, limit=500)
        for row in rows:
            if not is_disclosure(row):
                continue
            if len(items) >= MAX_DISCLOSURES:
                truncated = True
                break
            purpose = row.get("purpose_of_use")
            items.append(
                Disclosure(
                    date=row["recorded"],
                    recipient=row["agent_who"],
                    user=row.get("agent_user"),
                    what=_describe(row),
                    purpose=purpose or "unknown",
                    event_type=row["event_type"],
                    record_id=row["id"],
                    tpo_exempt=purpose in TPO_PURPOSES,
                )
            )
        if truncated or cursor is None:
            break
    return DisclosureReport(
        patient=patient, since=since, until=until, disclosures=items, truncated=truncated
    )


def retention_start(years: int) -> datetime:
    return utcnow() - timedelta(days=round(365.25 * years))


# --------------------------------------------------------------------------------- exports


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What one export covers: records up to ``through_seq``, sealed by ``checkpoints``."""

    through_seq: int
    checkpoints: list[CheckpointInfo]

    def checkpoint_for(self, seq: int) -> CheckpointInfo | None:
        for cp in self.checkpoints:
            if cp.first_seq <= seq <= cp.last_seq:
                return cp
        return None


def plan_export(trail: AuditTrail, sealed_to: int | None) -> ExportPlan:
    """Exports cover sealed records only: each row carries the checkpoint that proves it."""
    if sealed_to is None:
        return ExportPlan(through_seq=0, checkpoints=[])
    return ExportPlan(
        through_seq=sealed_to, checkpoints=checkpoints_covering(trail.engine, sealed_to)
    )


def _checkpoint_extension(cp: CheckpointInfo) -> dict[str, Any]:
    data = cp.as_json()
    return {
        "url": CHECKPOINT_EXTENSION,
        "extension": [
            {"url": "id", "valueString": str(data["id"])},
            {"url": "firstSeq", "valueString": str(data["firstSeq"])},
            {"url": "lastSeq", "valueString": str(data["lastSeq"])},
            {"url": "treeSize", "valueString": str(data["treeSize"])},
            {"url": "rootHash", "valueString": data["rootHash"]},
            {"url": "lastRecordHash", "valueString": data["lastRecordHash"]},
            {"url": "keyId", "valueString": data["keyId"]},
            {"url": "signature", "valueString": data["signature"]},
            {"url": "created", "valueInstant": data["created"]},
        ],
    }


def fhir_bundle_stream(
    repo: AuditRepository, flt: AuditFilter, plan: ExportPlan, *, export_id: str
) -> Iterator[bytes]:
    """A FHIR R4 Bundle (type collection) of AuditEvents, streamed entry by entry.

    The Bundle's ``meta`` comes last (JSON objects are unordered): it lists, as extensions,
    exactly the checkpoints that seal the exported records, which are only known at the end.
    """
    now = utcnow().isoformat()
    yield (
        '{"resourceType":"Bundle","id":' + json.dumps(export_id) + ',"type":"collection",'
        '"timestamp":' + json.dumps(now)
    ).encode()
    used: dict[int, CheckpointInfo] = {}
    first = True
    for row in repo.iter_ascending(flt, through_seq=plan.through_seq):
        cp = plan.checkpoint_for(row["seq"])
        if cp is not None:
            used[cp.id] = cp
        resource = audit_event(row)
        entry = {"fullUrl": f"urn:uuid:{row['id']}", "resource": resource}
        prefix = ',"entry":[' if first else ","
        first = False
        yield (prefix + json.dumps(entry, separators=(",", ":"))).encode()
    meta: dict[str, Any] = {"lastUpdated": now}
    if used:
        meta["extension"] = [_checkpoint_extension(cp) for cp in used.values()]
    yield (("" if first else "]") + ',"meta":' + json.dumps(meta) + "}").encode()


_CSV_INJECTION = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    # OWASP CSV injection: a spreadsheet would run a cell that starts with a formula sign.
    return "'" + text if text.startswith(_CSV_INJECTION) else text


def csv_stream(repo: AuditRepository, flt: AuditFilter, plan: ExportPlan) -> Iterator[bytes]:
    """RFC 4180 CSV with a header row; ``checkpoint_id`` names the checkpoint sealing each row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(repo.iter_ascending(flt, through_seq=plan.through_seq), 1):
        cp = plan.checkpoint_for(row["seq"])
        values = {**row, "checkpoint_id": cp.id if cp else None}
        writer.writerow([_cell(values.get(col)) for col in CSV_COLUMNS])
        if count % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
