"""``oncocds dev-setup``: a local development CDS client for ``make run`` (development only).

When no ``ONCOCDS_CLIENTS_FILE`` is configured, writes under ``ONCOCDS_CDS_HOOKS__DEV_DIR``
(default ``./var/dev-client``) an ES384 key pair and a clients file trusting its public key,
marked ``development_only`` so that production settings refuse it. Idempotent: an existing dev
client is kept. ``oncocds dev-token`` signs tokens with the private key.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

DEV_ISS: Final = "urn:oncocds:dev-client"
PRIVATE_KEY_FILE: Final = "private-key.jwk.json"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "dev-setup", help="create a local development CDS client (development only)"
    )
    parser.add_argument(
        "--fhir-server",
        action="append",
        default=[],
        metavar="URL",
        help="a FHIR base URL the dev client may send as fhirServer (repeatable)",
    )
    parser.set_defaults(func=run)


def _error(message: str) -> int:
    sys.stderr.write(f"oncocds: error: {message}\n")
    return 2


def run(args: argparse.Namespace) -> int:
    from cds_service.security.clients import CLIENTS_FILE_NAME
    from cds_service.security.signing import generate_signing_key, public_jwks, save_private_key
    from cds_service.settings import Settings

    settings = Settings()
    if settings.is_production:
        return _error("dev-setup is for development only (ONCOCDS_ENVIRONMENT=production)")
    if settings.clients_file is not None:
        sys.stdout.write(f"clients file configured ({settings.clients_file}); no dev client\n")
        return 0
    directory: Path = settings.cds_hooks.dev_dir
    clients_file = directory / CLIENTS_FILE_NAME
    key_file = directory / PRIVATE_KEY_FILE
    if clients_file.is_file() and key_file.is_file():
        sys.stdout.write(f"dev client ready: {clients_file}\n")
        return 0
    key = generate_signing_key("ES384")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        save_private_key(key, key_file)
        entry = {
            "iss": DEV_ISS,
            "jwks": public_jwks(key),
            "fhir_servers": list(args.fhir_server),
            "algorithms": ["ES384"],
            "development_only": True,
        }
        clients_file.write_text(json.dumps({"clients": [entry]}, indent=2) + "\n")
    except OSError as exc:
        return _error(f"cannot write the dev client under {directory}: {exc.strerror}")
    sys.stdout.write(
        f"dev client created: {clients_file} (iss {DEV_ISS}); "
        "get a token with `oncocds dev-token --service ID`\n"
    )
    return 0
