"""Tokens: how the admin and each robot prove who they are.

* The **admin token** is a random string in a file, ``STORE/admin.token`` by default, created with
  mode 0600 on the server's first start. The server keeps only its SHA-256.
* A **robot token** is ``<token_id>.<secret>``: ``token_id`` (16 hex digits, not secret) finds the
  robot's row, and only SHA-256 of the whole token is stored. A token is shown once, when it is
  issued; rotating it invalidates the old one.

Every comparison is ``hmac.compare_digest`` of hashes, so it takes the same time wherever the
strings differ. Tokens carry 256 bits of randomness, so a plain SHA-256 is a safe way to store them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ADMIN_TOKEN_FILE = "admin.token"
_MIN_ADMIN_TOKEN = 16


@dataclass(frozen=True)
class Principal:
    """Who made a request: the admin (``robot_id`` None) or one robot."""

    robot_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.robot_id is None

    def __str__(self) -> str:
        return "the admin" if self.is_admin else f"robot {self.robot_id!r}"


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_hash: str) -> bool:
    """Whether ``token`` hashes to ``stored_hash`` (constant-time comparison)."""
    return hmac.compare_digest(token_hash(token), stored_hash)


def new_robot_token() -> tuple[str, str]:
    """A fresh robot token and its ``token_id``."""
    token_id = secrets.token_hex(8)
    return f"{token_id}.{secrets.token_urlsafe(32)}", token_id


def robot_token_id(token: str) -> str | None:
    """The ``token_id`` part of a robot token, or None if ``token`` is not shaped like one."""
    token_id, dot, secret = token.partition(".")
    if not dot or len(token_id) != 16 or not secret:
        return None
    return token_id


def load_or_create_admin_token(path: Path) -> tuple[str, bool]:
    """The admin token in ``path``, creating the file (mode 0600) with a new token if it is missing.

    Returns the token and whether it was created. Raises ValueError if the file holds no usable token.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if len(token) < _MIN_ADMIN_TOKEN or any(c.isspace() for c in token):
            raise ValueError(
                f"admin token file {path} must hold one token of at least {_MIN_ADMIN_TOKEN} characters "
                "without spaces; delete it to have a new one generated"
            ) from None
        return token, False
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    return token, True


def readable_by_others(path: Path) -> bool:
    """Whether group or others may read ``path`` (a token file should be 0600)."""
    return bool(path.stat().st_mode & 0o077)
