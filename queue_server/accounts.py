"""Staff accounts (職員): password checking behind a directory seam, sign-in slowing, sessions.

Pure apart from Argon2 hashing (CPU only). No clock: callers pass ``now``.

- ``Directory`` is the seam: ``LocalDirectory`` checks Argon2id hashes kept in the database (set
  with `run.py staff-account add`); a city with LDAP / Active Directory implements ``verify`` with
  its own bind and names it in config/consultation.toml (``directory = "ldap"``: ``LdapDirectory``
  below is the stub to fill in). Departments and roles always come from config, never from the
  directory, so the access rules stay in one reviewed file.
- ``Throttle`` slows brute force: after a few failures per identifier *and* per address, each
  further attempt must wait an exponentially growing delay. Kept in memory: a restart forgets it,
  which costs an attacker a restart they cannot cause.
- Sessions: a fresh random token at every sign-in (never one the client chose: no fixation); the
  database keeps only its SHA-256; idle and absolute expiry.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # Argon2id with the library's current recommended parameters
# checked when an identifier has no hash, so an unknown identifier costs the same time as a wrong password
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    """An Argon2id hash string (salt and parameters inside it). Refuses short passwords."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; a missing hash still spends one verification."""
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


class Directory(Protocol):
    """Where a staff member's password is checked. Implement this for the city's directory."""

    def verify(self, identifier: str, password: str) -> bool: ...


@dataclass
class LocalDirectory:
    """Argon2id hashes from the database: ``lookup(identifier)`` returns the stored hash or None."""

    lookup: Callable[[str], str | None]

    def verify(self, identifier: str, password: str) -> bool:
        return verify_password(self.lookup(identifier), password)


class LdapDirectory:
    """Stub for a city directory (LDAP / AD): bind as ``uid=<identifier>,<base_dn>`` with the password
    over LDAPS, return whether the bind succeeded. Not implemented here: no directory to test with."""

    def __init__(self, url: str, base_dn: str):
        self.url, self.base_dn = url, base_dn

    def verify(self, identifier: str, password: str) -> bool:
        raise NotImplementedError("connect the city's directory here (see docs/consultation.md)")


# ---------------------------------------------------------------------------- sign-in slowing


@dataclass
class Throttle:
    free: int = 3  # per identifier
    free_address: int = 20  # per address: staff PCs behind one NAT share it, so allow more typos
    first_delay: float = 2.0
    max_delay: float = 300.0
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (count, last failure)

    def wait(self, keys: list[str], now: float) -> float:
        """Seconds until an attempt for these keys (identifier, address) will be checked; 0: now."""
        left = 0.0
        for k in keys:
            n, last = self.failures.get(k, (0, 0.0))
            free = self.free_address if k.startswith("ip:") else self.free
            if n >= free:
                delay = min(self.max_delay, self.first_delay * 2 ** (n - free))
                left = max(left, last + delay - now)
        return max(0.0, left)

    def failed(self, keys: list[str], now: float) -> None:
        for k in keys:
            n, _ = self.failures.get(k, (0, 0.0))
            self.failures[k] = (n + 1, now)
        if len(self.failures) > 10000:  # bounded memory under a spray of identifiers
            for k, _ in sorted(self.failures.items(), key=lambda kv: kv[1][1])[:5000]:
                del self.failures[k]

    def succeeded(self, identifier_key: str) -> None:
        """A correct password clears the identifier's count (not the address's: a shared PC stays slowed)."""
        self.failures.pop(identifier_key, None)


# ---------------------------------------------------------------------------- sessions


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of a session token: a stolen table does not give working sessions."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_alive(created: float, last_seen: float, now: float, idle: float, absolute: float) -> bool:
    """A session lives while used within ``idle`` seconds and for at most ``absolute`` seconds."""
    return now - last_seen < idle and now - created < absolute
