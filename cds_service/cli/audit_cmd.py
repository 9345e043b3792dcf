"""``oncocds audit``: verify, checkpoint, keygen, prove, check-proof, archive, verify-archive.

Commands that read records (prove, archive, verify) append an audit event naming the operating
system user, as the API does for compliance staff. ``check-proof`` and ``verify-archive`` read
only files and need no database. Handlers import the audit, database and signing modules
themselves: declaring the commands loads none of them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cds_service.cli.common import operator_id as _operator
from cds_service.cli.common import out as _out

if TYPE_CHECKING:
    from cds_service.audit import AuditTrail
    from cds_service.audit.signing import CheckpointSigner, Keyring
    from cds_service.settings import Settings

_MAX_PROOF_BYTES = 1024 * 1024


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def register(sub: Any) -> None:
    parser = sub.add_parser("audit", help="audit trail tools")
    audit_sub = parser.add_subparsers(dest="audit_command", required=True)

    verify = audit_sub.add_parser(
        "verify", help="check chain, checkpoint tree heads and signatures; exit 1 if broken"
    )
    verify.add_argument("--from", "--from-seq", dest="from_seq", type=int, default=None)
    verify.add_argument("--to", "--to-seq", dest="to_seq", type=int, default=None)
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    verify.set_defaults(func=_verify)

    checkpoint = audit_sub.add_parser("checkpoint", help="seal unsealed records (signed tree head)")
    checkpoint.set_defaults(func=_checkpoint)

    keygen = audit_sub.add_parser("keygen", help="create the Ed25519 checkpoint signing key")
    keygen.add_argument("--out", type=Path, default=None, help="default: the configured path")
    keygen.add_argument("--public-out", type=Path, default=None, help="also write the public key")
    keygen.set_defaults(func=_keygen)

    pub = audit_sub.add_parser("public-key", help="print the checkpoint public key (PEM)")
    pub.set_defaults(func=_public_key)

    prove_p = audit_sub.add_parser("prove", help="write an inclusion proof for one record")
    prove_p.add_argument("record_id")
    prove_p.add_argument("--out", type=Path, default=None, help="default: stdout")
    prove_p.set_defaults(func=_prove)

    check = audit_sub.add_parser("check-proof", help="check an inclusion proof offline (no DB)")
    check.add_argument("file", type=Path)
    check.add_argument("--public-key", type=Path, default=None, help="pin the signer (PEM)")
    check.set_defaults(func=_check_proof)

    arch = audit_sub.add_parser(
        "archive", help="archive sealed records older than DATE to a verified file, then remove"
    )
    arch.add_argument("--before", default=None, help="YYYY-MM-DD (default: the retention window)")
    arch.add_argument("--out-dir", type=Path, default=None)
    arch.add_argument(
        "--inside-retention",
        action="store_true",
        help="allow a DATE inside the retention window (recorded in the audit event)",
    )
    arch.set_defaults(func=_archive)

    varch = audit_sub.add_parser("verify-archive", help="verify an archive file offline")
    varch.add_argument("file", type=Path)
    varch.add_argument("--public-key", type=Path, action="append", default=[])
    varch.set_defaults(func=_verify_archive)


def _open(settings: Settings) -> tuple[Any, AuditTrail, CheckpointSigner, Keyring]:
    from cds_service.audit import AuditTrail
    from cds_service.audit.signing import keyring_for, signer_for
    from cds_service.db.engine import make_engine

    engine = make_engine(settings.database_url, pool_size=1)
    trail = AuditTrail(engine, source_observer=settings.instance_id)
    signer = signer_for(settings.audit.signing_key_path, development=not settings.is_production)
    return engine, trail, signer, keyring_for(signer, settings.audit.trusted_public_keys)


def _verify(args: argparse.Namespace) -> int:
    from cds_service.audit import Outcome
    from cds_service.audit.checkpoints import verify_integrity
    from cds_service.settings import Settings

    settings = Settings()
    engine, trail, _signer, keyring = _open(settings)
    try:
        report = verify_integrity(engine, keyring, from_seq=args.from_seq, to_seq=args.to_seq)
        first = report.first_problem
        trail.record(
            action="E",
            event_type="audit.verify",
            agent_type="user",
            agent_who=_operator(),
            outcome=Outcome.SUCCESS,
            details={
                "from": args.from_seq,
                "to": args.to_seq,
                "ok": report.ok,
                "checked": report.records_checked,
                "firstBrokenSeq": first.seq if first else None,
            },
        )
    finally:
        engine.dispose()
    if args.json:
        _out(json.dumps(report.as_json(), indent=2))
    if first is not None:
        record = f" (record {first.record_id})" if first.record_id else ""
        _err(
            f"audit trail BROKEN at seq {first.seq}{record}: {first.reason}; "
            f"{len(report.problems)} problem(s) in total"
        )
        return 1
    sealed = f", sealed to seq {report.sealed_to}" if report.sealed_to else ", nothing sealed yet"
    _out(
        f"audit trail intact: {report.records_checked} records, "
        f"{report.checkpoints_checked} signed checkpoints{sealed}"
        f" ({report.unsealed} unsealed)"
    )
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    from cds_service.audit.checkpoints import seal
    from cds_service.settings import Settings

    settings = Settings()
    engine, _trail, signer, _keyring = _open(settings)
    try:
        created = seal(engine, signer, max_records=settings.audit.checkpoint_max_records)
    finally:
        engine.dispose()
    for cp in created:
        _out(
            f"checkpoint {cp.id}: seq {cp.first_seq}..{cp.last_seq} "
            f"(tree size {cp.tree_size}) root {cp.root_hash} key {cp.key_id}"
        )
    if not created:
        _out("nothing to seal: every record is covered by a checkpoint")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from cds_service.audit.signing import CheckpointSigner, SigningKeyError, public_key_pem
    from cds_service.settings import Settings

    settings = Settings()
    path: Path = args.out or settings.audit.signing_key_path
    if path.exists():
        raise SigningKeyError(f"{path} exists; refusing to overwrite a signing key")
    signer = CheckpointSigner.generate()
    signer.write(path)
    if args.public_out:
        args.public_out.write_bytes(public_key_pem(signer.public_key))
    _out(f"wrote Ed25519 checkpoint key {signer.key_id} to {path}")
    return 0


def _public_key(args: argparse.Namespace) -> int:
    from cds_service.audit.signing import public_key_pem, signer_for
    from cds_service.settings import Settings

    settings = Settings()
    signer = signer_for(settings.audit.signing_key_path, development=not settings.is_production)
    sys.stdout.write(public_key_pem(signer.public_key).decode())
    return 0


def _prove(args: argparse.Namespace) -> int:
    from cds_service.audit.checkpoints import prove
    from cds_service.settings import Settings

    settings = Settings()
    engine, trail, signer, _keyring = _open(settings)
    try:
        proof = prove(engine, args.record_id, signer)
        trail.record(
            action="R",
            event_type="audit.prove",
            agent_type="user",
            agent_who=_operator(),
            patient_id=proof["record"].get("patient_id"),
            details={"recordId": args.record_id, "checkpointId": proof["treeHead"]["id"]},
        )
    finally:
        engine.dispose()
    text = json.dumps(proof, indent=2, sort_keys=True) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        _out(f"wrote inclusion proof of record {args.record_id} to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _check_proof(args: argparse.Namespace) -> int:
    from cds_service.audit.checkpoints import ProofError, check_proof
    from cds_service.audit.signing import Keyring, load_public_key_pem

    try:
        if args.file.stat().st_size > _MAX_PROOF_BYTES:
            raise ProofError("proof file too large")
        proof = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProofError(f"cannot read proof {args.file}: {type(exc).__name__}") from exc
    if not isinstance(proof, dict):
        raise ProofError("proof is not a JSON object")
    pinned = None
    if args.public_key:
        pinned = Keyring([load_public_key_pem(args.public_key)]).key_ids[0]
    result = check_proof(proof, pinned_key_id=pinned)
    origin = "pinned key" if pinned else "the key in the proof (pass --public-key to pin it)"
    _out(
        f"proof valid: record {result.record_id} (seq {result.seq}) is leaf of checkpoint "
        f"{result.checkpoint_id} (tree size {result.tree_size}), signed by {result.key_id}, "
        f"checked against {origin}"
    )
    return 0


def _parse_date(value: str) -> datetime:
    from cds_service.errors import BadRequestError

    try:
        day = datetime.strptime(value + "+0000", "%Y-%m-%d%z").date()
        return datetime.combine(day, time(), tzinfo=UTC)
    except ValueError as exc:
        raise BadRequestError(f"--before must be YYYY-MM-DD, not {value!r}") from exc


def _archive(args: argparse.Namespace) -> int:
    from cds_service.compliance.retention import archive_expired
    from cds_service.settings import Settings

    settings = Settings()
    before = _parse_date(args.before) if args.before else None
    engine, trail, signer, keyring = _open(settings)
    try:
        # The same function as the audit.archive job (cds_service/compliance/jobs.py).
        run = archive_expired(
            engine,
            trail,
            signer,
            keyring,
            settings.audit,
            agent_who=_operator(),
            before=before,
            inside_retention=args.inside_retention,
            out_dir=args.out_dir,
        )
    finally:
        engine.dispose()
    result, after = run.archived, run.remaining
    if result.path is None or after is None:  # nothing archived, so nothing verified again
        _out(f"nothing to archive: no sealed batch is entirely older than {run.before.date()}")
        return 0
    _out(
        f"archived seq {result.first_seq}..{result.through_seq} ({result.records} records, "
        f"{result.checkpoints} checkpoints) to {result.path} sha256 {result.sha256}; removed"
    )
    if not after.ok:
        first = after.first_problem
        _err(f"audit trail does not verify after archiving: {first}")
        return 1
    _out(f"remaining trail verifies from seq {after.first_seq}")
    return 0


def _verify_archive(args: argparse.Namespace) -> int:
    from cds_service.audit.archive import verify_archive_file
    from cds_service.audit.signing import Keyring, load_public_key_pem, signer_for
    from cds_service.settings import Settings

    keys = [load_public_key_pem(p) for p in args.public_key]
    if not keys:
        settings = Settings()
        signer = signer_for(settings.audit.signing_key_path, development=False)
        keys = [signer.public_key]
    result = verify_archive_file(args.file, Keyring(keys))
    _out(
        f"archive valid: seq {result.first_seq}..{result.through_seq}, {result.records} records, "
        f"{result.checkpoints} signed checkpoints"
    )
    return 0


__all__ = ["register"]
