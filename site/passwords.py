"""Password hashing with argon2id; tests switch to cheap parameters through app config."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

_hashers: dict[str, PasswordHasher] = {}

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 hashes any length, but unbounded input is a cheap way to burn our CPU


def _hasher() -> PasswordHasher:
    profile = current_app.config.get("KASSA_PASSWORD_HASH_PROFILE", "default")
    if profile not in _hashers:
        # "fast" exists only so the test suite does not spend minutes hashing; never use it in production.
        _hashers[profile] = (
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            if profile == "fast"
            else PasswordHasher()
        )
    return _hashers[profile]


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


# A real hash to verify against when the email is unknown, so response time does not reveal accounts.
def dummy_verify(password: str) -> None:
    key = "_dummy_hash"
    dummy = current_app.extensions.get(key)
    if dummy is None:
        dummy = current_app.extensions[key] = hash_password("not-a-real-password-0")
    verify_password(dummy, password)
