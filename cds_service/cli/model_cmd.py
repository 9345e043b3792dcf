"""``oncocds model verify|info BUNDLE``: check an imaging model bundle, show its card.

Both read bytes and JSON only (:func:`inference.imaging.bundle.verify_bundle`), so they run
without torch. ``verify`` exits 0 when every file matches the bundle's sha256 manifest and the
metadata meets the contract, else prints the first problem in one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cds_service.errors import OncoCDSError


def register(sub: Any) -> None:
    parser = sub.add_parser("model", help="imaging model bundle: verify checksums, show card")
    model_sub = parser.add_subparsers(dest="model_command", required=True)
    verify = model_sub.add_parser("verify", help="check files, sha256 manifest and metadata")
    verify.add_argument("bundle")
    verify.set_defaults(func=_verify)
    info = model_sub.add_parser("info", help="name, version, calibration, metrics and card")
    info.add_argument("bundle")
    info.add_argument("--json", action="store_true", help="metadata as JSON")
    info.set_defaults(func=_info)


def _load(path: str) -> Any:
    from inference.errors import ModelBundleError
    from inference.imaging.bundle import verify_bundle

    try:
        return verify_bundle(path)
    except ModelBundleError as exc:
        raise OncoCDSError(f"bundle {path}: {exc.message}") from exc
    except OSError as exc:
        raise OncoCDSError(f"bundle {path}: cannot read ({exc.strerror})") from exc


def _verify(args: argparse.Namespace) -> int:
    info = _load(args.bundle)
    meta = info.metadata
    sys.stdout.write(
        f"ok: {meta.name} {meta.version}, {len(info.files)} files match checksums.sha256 "
        f"(bundle sha256 {info.bundle_sha256})\n"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    from inference.imaging.bundle import MODEL_CARD

    info = _load(args.bundle)
    meta = info.metadata
    if args.json:
        sys.stdout.write(json.dumps(meta.model_dump(mode="json", by_alias=True), indent=2) + "\n")
        return 0
    cal = meta.calibration
    lines = [
        f"bundle: {info.path}",
        f"model: {meta.name} {meta.version} ({info.inference['network_def']['_target_']})",
        f"bundle sha256: {info.bundle_sha256}",
        f"patch size: {meta.preprocessing.patch_size}",
        f"temperature: {cal.temperature:.4f}  threshold: {cal.threshold:.4f} "
        f"(target sensitivity {cal.target_sensitivity})",
        f"training data: {meta.training_data.source} ({meta.training_data.licence})",
    ]
    lines += [f"  {k}: {v}" for k, v in meta.eval_metrics.items()]
    sys.stdout.write("\n".join(lines) + "\n\n")
    sys.stdout.write((info.path / MODEL_CARD).read_text(encoding="utf-8"))
    return 0
