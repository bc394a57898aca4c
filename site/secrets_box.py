"""Secrets stored encrypted at rest (K5): processor keys a merchant pastes, e.g. a Stripe secret key.

Fernet (AES-128-CBC + HMAC-SHA256) through MultiFernet over KASSA_ENCRYPTION_KEYS, newest first: the first
key encrypts, every key decrypts, so a new key can be added in front and `flask kassa rotate-keys`
re-encrypts the stored secrets with it before the old key is removed (docs/stripe.md).
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

__all__ = ["InvalidToken", "decrypt", "encrypt", "rotate"]


@lru_cache(maxsize=4)
def _box(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise RuntimeError("KASSA_ENCRYPTION_KEYS is empty: no key to encrypt stored secrets with.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise RuntimeError("KASSA_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                           "(32 bytes in URL-safe base64).") from exc


def _current() -> MultiFernet:
    return _box(tuple(current_app.config["KASSA_ENCRYPTION_KEYS"]))


def encrypt(secret: str) -> str:
    return _current().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    """The secret; InvalidToken when no configured key opens it (a key removed before rotating)."""
    return _current().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """The same secret encrypted with the newest key."""
    return _current().rotate(token.encode()).decode()
