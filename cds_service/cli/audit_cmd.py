"""``oncocds audit verify``: recompute the audit hash chain."""

from __future__ import annotations

import argparse
from typing import Any

from cds_service.audit import AuditTrail
from cds_service.db.engine import make_engine
from cds_service.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("audit", help="audit trail tools")
    audit_sub = parser.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain; exit 1 at the first break")
    verify.add_argument("--from-seq", type=int, default=1)
    verify.add_argument("--to-seq", type=int, default=None)
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    settings = Settings()
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        trail = AuditTrail(engine, source_observer=settings.instance_id)
        result = trail.verify(from_seq=args.from_seq, to_seq=args.to_seq)
    finally:
        engine.dispose()
    if result.first_break is not None:
        brk = result.first_break
        print(f"audit chain BROKEN at seq {brk.seq} (record {brk.id}): {brk.reason}")
        print(f"records checked: {result.checked}; breaks found: {len(result.breaks)}")
        return 1
    print(f"audit chain ok: {result.checked} records, last seq {result.last_seq}")
    return 0
