"""The Ed25519 key that signs audit checkpoints, and the keyring that verifies them.

The private key lives in a PKCS#8 PEM file the service holds (``ONCOCDS_AUDIT__SIGNING_KEY_PATH``,
written by ``oncocds audit keygen`` with mode 0600). Development creates one on first use under
``./var/``; production refuses to start without it (``Settings.insecure_reasons``). A key is
named by its *key id*: the first 16 hex digits of SHA-256 over the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cds_service.errors import OncoCDSError


class SigningKeyError(OncoCDSError):
    """The checkpoint signing key is missing, unreadable or not an Ed25519 key."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """RFC 8037 OKP JWK of an Ed25519 public key, with our key id as ``kid``."""
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(_raw_public(key)), "kid": key_id_of(key)}


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """Parse an RFC 8037 Ed25519 JWK.

    Raises:
        SigningKeyError: not an Ed25519 OKP key.
    """
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise SigningKeyError("public key is not an Ed25519 OKP JWK")
    try:
        return Ed25519PublicKey.from_public_bytes(b64url_decode(str(jwk["x"])))
    except ValueError as exc:
        raise SigningKeyError("public key is not a valid Ed25519 key") from exc


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key_pem(path: Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key (SubjectPublicKeyInfo PEM).

    Raises:
        SigningKeyError: unreadable or not Ed25519.
    """
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"cannot read public key {path}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} is not an Ed25519 public key")
    return key


@dataclass(frozen=True, slots=True)
class CheckpointSigner:
    """The service's checkpoint signing key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def sign(self, message: bytes) -> str:
        return b64url(self.private_key.sign(message))

    @classmethod
    def generate(cls) -> CheckpointSigner:
        return cls(Ed25519PrivateKey.generate())

    def write(self, path: Path) -> None:
        """Write the private key as PKCS#8 PEM, readable by the owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)

    @classmethod
    def load(cls, path: Path) -> CheckpointSigner:
        """Read the private key.

        Raises:
            SigningKeyError: missing, unreadable or not Ed25519.
        """
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError as exc:
            raise SigningKeyError(
                f"audit signing key {path} not found (run `oncocds audit keygen`)"
            ) from exc
        except (OSError, ValueError, TypeError) as exc:
            raise SigningKeyError(f"cannot read audit signing key {path}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path, *, create: bool) -> CheckpointSigner:
        """Load the key; create it first when missing and ``create`` (development only)."""
        if create and not path.exists():
            signer = cls.generate()
            try:
                signer.write(path)
            except FileExistsError:
                pass  # another process created it first; load theirs
            else:
                return signer
        return cls.load(path)


class Keyring:
    """The public keys whose checkpoint signatures are trusted, by key id."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id_of(k): k for k in keys}

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def get(self, key_id: str) -> Ed25519PublicKey | None:
        return self._keys.get(key_id)

    def verify(self, key_id: str, message: bytes, signature: str) -> str | None:
        """Return ``None`` when the signature is valid, else the reason it is not."""
        key = self._keys.get(key_id)
        if key is None:
            return f"signed by untrusted key {key_id}"
        try:
            key.verify(b64url_decode(signature), message)
        except (InvalidSignature, ValueError):
            return "signature does not verify"
        return None


def signer_for(path: Path, *, development: bool) -> CheckpointSigner:
    """The service's signer: created on first use in development, required in production."""
    return CheckpointSigner.load_or_create(path, create=development)


def keyring_for(signer: CheckpointSigner, trusted_public_keys: Iterable[Path] = ()) -> Keyring:
    """The signer's public key plus the configured older keys (rotation)."""
    return Keyring([signer.public_key, *(load_public_key_pem(p) for p in trusted_public_keys)])
