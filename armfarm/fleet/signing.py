"""Signed policies: a robot runs only what its own server published.

The server holds an Ed25519 key pair (RFC 8032), made the first time a registry opens the store and
kept in ``STORE/fleet/signing.key`` (PKCS#8 PEM, mode 0600) unless told otherwise. Every published
version is signed over its number and the SHA-256 of its file (:func:`policy_message`), so neither a
tampered file nor an old file offered under a newer number verifies. Robots pin the public key,
written ``ed25519:<base64url of the 32 raw bytes>``: it comes with their registration (and, for a robot
given none, is pinned on first contact and kept in its spool). A version whose signature does not
verify with the pinned key is skipped, like any other version that cannot run.

The private key signs policies only. Whoever can read it can publish to the fleet, just as whoever
can read the admin token can: keep both outside the store where learners read it
(``armfarm serve --signing-key-file``).
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from armfarm.durable import fsync_path

SIGNING_KEY_FILE = "fleet/signing.key"
_PREFIX = "ed25519:"
_DOMAIN = b"armfarm policy signature v1\x00"


def policy_message(version: int, sha256: str) -> bytes:
    """The bytes signed for policy ``version`` whose file has SHA-256 ``sha256`` (hex)."""
    return _DOMAIN + f"{int(version)}\x00{sha256}".encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str, what: str, size: int) -> bytes:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64url") from None
    if len(data) != size:
        raise ValueError(f"{what} has {len(data)} bytes, not {size}")
    return data


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The public key written as ``ed25519:<base64url>``. Raises ValueError saying what is wrong."""
    text = text.strip()
    if not text.startswith(_PREFIX):
        raise ValueError(f"a fleet signing key reads 'ed25519:<base64url>', not {text[:40]!r}")
    return Ed25519PublicKey.from_public_bytes(_unb64(text[len(_PREFIX):], "the signing key", 32))


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _PREFIX + _b64(raw)


def read_public_key(value: str | os.PathLike) -> str:
    """A public key given as its text or as a file holding it; returned as checked text."""
    text = str(value)
    if not text.startswith(_PREFIX):
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"{text!r} is neither a signing key ('ed25519:...') nor a file holding one")
        text = path.read_text().strip()
    return public_key_text(parse_public_key(text))


def verify(public_key: str, version: int, sha256: str, signature: str | None) -> None:
    """Check that ``signature`` signs policy ``version`` with digest ``sha256`` under ``public_key``.

    Raises:
        ValueError: no signature, a malformed one, or one that does not verify.
    """
    if not signature:
        raise ValueError(f"policy version {version} is not signed")
    raw = _unb64(signature, f"the signature of policy version {version}", 64)
    try:
        parse_public_key(public_key).verify(raw, policy_message(version, sha256))
    except InvalidSignature:
        raise ValueError(f"policy version {version}: the signature does not verify with the pinned key "
                         f"{public_key}; it was not published by this robot's server") from None


class Signer:
    """The server's private key, loaded from ``path`` or created there (mode 0600) if missing."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.created = False
        if not self.path.exists():
            self.created = self._create()
        try:
            key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{self.path} does not hold an unencrypted Ed25519 private key in PEM ({e}); "
                             "restore it, or delete it to have a new one made (robots must then be re-pinned)") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{self.path} holds a {type(key).__name__}, not an Ed25519 private key")
        self._key = key
        self.public_key = public_key_text(key.public_key())

    def _create(self) -> bool:
        """Write a new key where none is, atomically: two processes starting at once agree on one key."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        fd, tmp = tempfile.mkstemp(prefix=".signing.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:  # mkstemp makes it 0600
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, self.path)  # fails if another process made the key first
            except FileExistsError:
                return False
            fsync_path(self.path.parent)
            return True
        finally:
            os.unlink(tmp)

    def sign(self, version: int, sha256: str) -> str:
        """The signature (base64url) of policy ``version`` with file digest ``sha256``."""
        return _b64(self._key.sign(policy_message(version, sha256)))
