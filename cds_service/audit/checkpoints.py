"""Signed checkpoints over the audit chain, integrity verification, and inclusion proofs.

A *checkpoint* seals the records ``first_seq..last_seq`` that no earlier checkpoint sealed: an
RFC 6962 Merkle tree head over their record hashes (leaf data = the 32 raw bytes of
``record_hash``, which commits to the record's canonical JSON and to its predecessor) signed
with the service's Ed25519 key. The signed statement is the canonical JSON of
:func:`tree_head_statement`.

This module is the public face; the work is in one module per idea:

- :mod:`cds_service.audit.tree_head`: what a checkpoint is and the bytes its signature covers;
- :mod:`cds_service.audit.sealing`: creating checkpoints (:func:`seal`);
- :mod:`cds_service.audit.verification`: what each layer catches (:func:`verify_integrity`);
- :mod:`cds_service.audit.proofs`: inclusion proofs (:func:`prove`, :func:`check_proof`);
- :mod:`cds_service.audit.repository`: their SQL.
"""

from __future__ import annotations

from cds_service.audit.proofs import PROOF_FORMAT, ProofCheck, ProofError, check_proof, prove
from cds_service.audit.repository import checkpoints_covering, last_checkpoint, list_checkpoints
from cds_service.audit.sealing import seal
from cds_service.audit.tree_head import STATEMENT_TYPE, CheckpointInfo, tree_head_statement
from cds_service.audit.verification import (
    ARCHIVE_EVENT_TYPE,
    IntegrityProblem,
    IntegrityReport,
    verify_integrity,
)

__all__ = [
    "ARCHIVE_EVENT_TYPE",
    "PROOF_FORMAT",
    "STATEMENT_TYPE",
    "CheckpointInfo",
    "IntegrityProblem",
    "IntegrityReport",
    "ProofCheck",
    "ProofError",
    "check_proof",
    "checkpoints_covering",
    "last_checkpoint",
    "list_checkpoints",
    "prove",
    "seal",
    "tree_head_statement",
    "verify_integrity",
]
