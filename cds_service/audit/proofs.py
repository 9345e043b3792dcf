"""Inclusion proofs (RFC 9162 §2.1.3): one record against a signed tree head, checked offline
with the proof file and the public key alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine

from cds_service.audit import merkle, repository
from cds_service.audit.chain import chain_hash
from cds_service.audit.sealing import seal
from cds_service.audit.signing import (
    CheckpointSigner,
    Keyring,
    SigningKeyError,
    key_id_of,
    public_jwk,
    public_key_from_jwk,
)
from cds_service.audit.tree_head import record_json, tree_head_statement
from cds_service.errors import NotFoundError, OncoCDSError

PROOF_FORMAT: Final = "oncocds-audit-inclusion-proof/1"


class ProofError(OncoCDSError):
    """An inclusion proof is malformed or does not verify."""


def prove(engine: Engine, record_id: str, signer: CheckpointSigner) -> dict[str, Any]:
    """An inclusion proof for record ``record_id`` against the checkpoint that seals it.

    Seals unsealed records first when the record is not yet covered.

    Raises:
        NotFoundError: no such record.
    """
    record = repository.record_by_id(engine, record_id)
    if record is None:
        raise NotFoundError("no audit record with that id")
    seq = record["seq"]
    cp = repository.checkpoint_sealing(engine, seq)
    if cp is None:
        seal(engine, signer)
        cp = repository.checkpoint_sealing(engine, seq)
    if cp is None:
        raise NotFoundError("the record is not sealed by any checkpoint")
    hashes = [
        merkle.leaf_hash(bytes.fromhex(h))
        for h in repository.record_hashes(engine, cp.first_seq, cp.last_seq)
    ]
    index = seq - cp.first_seq
    path = merkle.inclusion_path(index, hashes)
    return {
        "format": PROOF_FORMAT,
        "record": record_json(record),
        "leafIndex": index,
        "leafHash": hashes[index].hex(),
        "auditPath": [p.hex() for p in path],
        "treeHead": cp.as_json(),
        "publicKey": public_jwk(signer.public_key),
    }


@dataclass(frozen=True, slots=True)
class ProofCheck:
    record_id: str
    seq: int
    checkpoint_id: int
    tree_size: int
    key_id: str


def check_proof(proof: Mapping[str, Any], *, pinned_key_id: str | None = None) -> ProofCheck:
    """Check an inclusion proof offline (no database).

    Recomputes the record hash from the record's fields, the leaf hash, the Merkle root from the
    audit path (RFC 9162 §2.1.3.2), and the Ed25519 signature over the tree head with the
    proof's public key, whose key id must match the tree head's (and ``pinned_key_id`` when
    given: a proof's own key only proves consistency, the pin proves origin).

    Raises:
        ProofError: naming the first check that failed.
    """
    try:
        if proof.get("format") != PROOF_FORMAT:
            raise ProofError(f"not an {PROOF_FORMAT} file")
        record = dict(proof["record"])
        head = dict(proof["treeHead"])
        index = int(proof["leafIndex"])
        path = [bytes.fromhex(p) for p in proof["auditPath"]]
        public_key = public_key_from_jwk(proof["publicKey"])
        first_seq, last_seq = int(head["firstSeq"]), int(head["lastSeq"])
        tree_size = int(head["treeSize"])
        root = bytes.fromhex(head["rootHash"])
    except (KeyError, TypeError, ValueError, SigningKeyError) as exc:
        raise ProofError(f"malformed proof: {type(exc).__name__}") from exc
    recomputed = chain_hash(str(record["prev_hash"]), record)
    if recomputed != record.get("record_hash"):
        raise ProofError("the record's content does not match its record hash")
    if int(record["seq"]) - first_seq != index or not first_seq <= int(record["seq"]) <= last_seq:
        raise ProofError("the record's position does not match the leaf index")
    leaf = merkle.leaf_hash(bytes.fromhex(recomputed))
    if leaf.hex() != proof.get("leafHash"):
        raise ProofError("leaf hash does not match the record hash")
    try:
        computed_root = merkle.root_from_inclusion_path(index, tree_size, leaf, path)
    except ValueError as exc:
        raise ProofError(f"audit path does not fit the tree: {exc}") from exc
    if computed_root != root:
        raise ProofError("audit path does not lead to the signed root")
    key_id = key_id_of(public_key)
    if key_id != head.get("keyId"):
        raise ProofError("the public key is not the key named by the tree head")
    if pinned_key_id is not None and key_id != pinned_key_id:
        raise ProofError(f"signed by key {key_id}, not the trusted key {pinned_key_id}")
    statement = tree_head_statement(
        first_seq=first_seq,
        last_seq=last_seq,
        tree_size=tree_size,
        root_hash=root.hex(),
        last_record_hash=str(head["lastRecordHash"]),
        key_id=key_id,
        created=str(head["created"]),
    )
    if Keyring([public_key]).verify(key_id, statement, str(head["signature"])) is not None:
        raise ProofError("the tree head signature does not verify")
    return ProofCheck(
        record_id=str(record["id"]),
        seq=int(record["seq"]),
        checkpoint_id=int(head["id"]),
        tree_size=tree_size,
        key_id=key_id,
    )
