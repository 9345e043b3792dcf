"""``oncocds dev-token``: print a development token for curl.

A clinical client JWT, signed by the development client, whose ``aud`` is the public URL of the
endpoint it is for (CDS Hooks 2.0 §Trusting CDS Clients), chosen by one of the *target*
options::

    oncocds dev-token                     discovery   {base}/cds-services
    oncocds dev-token --service ID        a hook call {base}/cds-services/ID
    oncocds dev-token --feedback ID       feedback    {base}/cds-services/ID/feedback
    oncocds dev-token --analyses          upload      {base}/api/v1/analyses
    oncocds dev-token --analysis ID       read        {base}/api/v1/analyses/ID

Or a staff bearer token from the development OIDC issuer (the same as ``oncocds compliance
dev-token``), for the audit, HL7, write-back and feedback-summary APIs::

    oncocds dev-token --role compliance|integration|governance|...

Targets are entries of :data:`TARGETS`. Development only; production refuses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, overload

from cds_service.cli.devsetup_cmd import DEV_ISS, PRIVATE_KEY_FILE

if TYPE_CHECKING:
    from cds_service.settings import Settings

#: option name → (help, metavar or None for a flag, path builder from the option value)
TARGETS: Final[dict[str, tuple[str, str | None, Callable[[Any], str]]]] = {
    "service": ("token for POST /cds-services/ID", "ID", lambda v: f"/cds-services/{v}"),
    "feedback": (
        "token for POST /cds-services/ID/feedback",
        "ID",
        lambda v: f"/cds-services/{v}/feedback",
    ),
    "analyses": ("token for POST /api/v1/analyses", None, lambda v: "/api/v1/analyses"),
    "analysis": (
        "token for GET /api/v1/analyses/ID",
        "ID",
        lambda v: f"/api/v1/analyses/{v}",
    ),
}
DISCOVERY_PATH: Final = "/cds-services"


class RoleChoices(Sequence[str]):
    """The ``--role`` names (the keys of ``compliance.devtoken.ROLE_PRESETS``), read when argparse
    first checks or shows them: the presets live beside the token-minting code (joserfc, the
    settings), which declaring the commands must not import. Give the argument a ``metavar``,
    or argparse lists the choices while the argument is added."""

    def _names(self) -> list[str]:
        from cds_service.compliance.devtoken import ROLE_PRESETS

        return sorted(ROLE_PRESETS)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "dev-token", help="print a development client JWT for curl (development only)"
    )
    group = parser.add_mutually_exclusive_group()
    for name, (help_text, metavar, _) in TARGETS.items():
        if metavar is None:
            group.add_argument(f"--{name}", action="store_true", help=help_text)
        else:
            group.add_argument(f"--{name}", metavar=metavar, help=help_text)
    group.add_argument(
        "--role",
        choices=RoleChoices(),
        metavar="ROLE",
        help="a staff bearer token from the development OIDC issuer instead of a client JWT "
        "(ROLE: %(choices)s)",
    )
    parser.add_argument("--lifetime", type=int, default=300, help="seconds (default 300)")
    parser.set_defaults(func=run)


def audience_path(args: argparse.Namespace) -> str:
    """The endpoint path the token is for, from whichever target option was given."""
    for name, (_, _, build) in TARGETS.items():
        value = getattr(args, name, None)
        if value:
            return build(value)
    return DISCOVERY_PATH


def run(args: argparse.Namespace) -> int:
    from cds_service.security.signing import load_private_key, sign_client_jwt
    from cds_service.settings import Settings

    settings = Settings()
    if settings.is_production:
        sys.stderr.write("oncocds: error: dev-token is for development only\n")
        return 2
    if args.role is not None:
        return _staff_token(settings, args)
    if not 30 <= args.lifetime <= settings.cds_hooks.jwt_max_lifetime_s:
        sys.stderr.write("oncocds: error: --lifetime out of range\n")
        return 2
    key_file = settings.cds_hooks.dev_dir / PRIVATE_KEY_FILE
    if not key_file.is_file():
        sys.stderr.write("oncocds: error: no dev client; run `oncocds dev-setup` first\n")
        return 2
    key = load_private_key(key_file)
    token = sign_client_jwt(
        key, iss=DEV_ISS, aud=settings.base_url + audience_path(args), lifetime_s=args.lifetime
    )
    sys.stdout.write(token + "\n")
    return 0


def _staff_token(settings: Settings, args: argparse.Namespace) -> int:
    """A staff token (``--role``), exactly as ``oncocds compliance dev-token`` mints it."""
    from cds_service.compliance.devtoken import mint_dev_token

    if not 60 <= args.lifetime <= settings.compliance.max_token_lifetime_seconds:
        sys.stderr.write("oncocds: error: --lifetime out of range\n")
        return 2
    token = mint_dev_token(settings, role=args.role, ttl_seconds=args.lifetime)
    sys.stdout.write(token + "\n")
    return 0
