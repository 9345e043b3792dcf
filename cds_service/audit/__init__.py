"""The audit trail: append-only, hash-chained records of every access to patient data.

Feature code calls :meth:`AuditTrail.record`; nothing else writes ``audit_records``.
"""

from cds_service.audit.chain import GENESIS_HASH, canonical_bytes, chain_hash
from cds_service.audit.service import (
    AuditEntity,
    AuditTrail,
    ChainBreak,
    Outcome,
    VerificationResult,
)

__all__ = [
    "GENESIS_HASH",
    "AuditEntity",
    "AuditTrail",
    "ChainBreak",
    "Outcome",
    "VerificationResult",
    "canonical_bytes",
    "chain_hash",
]
