"""Password hashing with argon2id (pwdlib); bcrypt hashes from imports still verify and are
re-hashed on the next successful login. Hashing runs in a worker thread: it is deliberately slow
and must not stall the event loop."""

from __future__ import annotations

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from catalog.config import Settings

MIN_LENGTH = 10
MAX_LENGTH = 128
BCRYPT_MAX_BYTES = 72  # bcrypt only ever hashes this many bytes

# The most common passwords of at least MIN_LENGTH characters in public breach corpora.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "0123456789",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwerty12345",
        "qwerty123456",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "iloveyou123",
        "abcdefghij",
        "abc1234567",
        "aaaaaaaaaa",
        "1111111111",
        "0000000000",
        "letmein123",
        "welcome123",
        "administrator",
        "changeme123",
        "football123",
        "baseball123",
        "princess123",
        "sunshine123",
        "superman123",
        "trustno1234",
        "zaq12wsxcde",
        "asdfghjkl1",
        "zxcvbnm123",
        "monkey12345",
        "dragon12345",
        "master12345",
        "catalog123",
        "secret1234",
    }
)


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why `password` is unacceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(lowered)) <= 2:
        return "is too common"
    if email and lowered == email.lower():
        return "must not be the email address"
    return None


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.argon2_time_cost,
                    memory_cost=settings.argon2_memory_cost_kib,
                ),
                BcryptHasher(),
            )
        )
        self._bcrypt = BcryptHasher()
        self._dummy_hash = self._hash.hash("timing-equaliser-not-a-password")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """(valid, new hash when the stored one uses an outdated algorithm or parameters)."""
        return await anyio.to_thread.run_sync(self._verify_and_update, password, password_hash)

    def _verify_and_update(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        if self._bcrypt.identify(password_hash):
            # Imported bcrypt hashes cover only the first 72 bytes (older libraries truncated
            # silently; bcrypt >= 5 raises instead of answering): check those bytes, and re-hash
            # the whole password with argon2id.
            if not self._bcrypt.verify(password.encode()[:BCRYPT_MAX_BYTES], password_hash):
                return False, None
            return True, self._hash.hash(password)
        try:
            return self._hash.verify_and_update(password, password_hash)
        except UnknownHashError:
            # A disabled account ("!") or a foreign format: no password matches it.
            return False, None

    async def burn(self, password: str) -> None:
        """Spend the time of a real verification, so unknown accounts answer as slowly."""
        await anyio.to_thread.run_sync(self._hash.verify, password, self._dummy_hash)
