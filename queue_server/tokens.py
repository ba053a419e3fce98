"""Device tokens: the secrets file that `run.py init` (and `make demo`) writes. Never committed.

var/secrets.toml holds one token per role (kiosk, display, admin) and one per counter, so a
counter console can act only as its own counter.
"""

from __future__ import annotations

import hmac
import secrets
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import CityConfig

DEFAULT_SECRETS = Path("var/secrets.toml")


@dataclass(frozen=True)
class Tokens:
    roles: dict[str, str]  # kiosk, display, admin
    counters: dict[str, dict[int, str]]  # site -> counter number -> token
    staff_pin: str = ""  # kiosk staff-assist mode ([kiosk] staff_pin); empty: the mode is off

    def check(self, role: str, token: str | None, site: str | None = None, counter: int | None = None) -> bool:
        """Constant-time comparison of a presented token with the expected one."""
        if role == "counter":
            expected = self.counters.get(site or "", {}).get(counter or -1)
        else:
            expected = self.roles.get(role)
        if not expected or type(token) is not str or not token.isascii():
            return False  # compare_digest refuses non-ASCII str: a wrong token is just wrong, never an exception
        return hmac.compare_digest(expected.encode(), token.encode())


def generate(sites: Iterable[tuple[str, Iterable[int]]]) -> Tokens:
    return Tokens(
        roles={r: secrets.token_urlsafe(18) for r in ("kiosk", "display", "admin")},
        counters={site: {n: secrets.token_urlsafe(18) for n in numbers} for site, numbers in sites},
        staff_pin=f"{secrets.randbelow(10**6):06d}",
    )


def write(tokens: Tokens, path: Path = DEFAULT_SECRETS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# madoguchi device tokens, written by `python run.py init`. Keep private; never commit.", "[roles]"]
    lines += [f'{r} = "{t}"' for r, t in tokens.roles.items()]
    if tokens.staff_pin:
        lines += ["\n[kiosk]", "# staff-assist mode at the kiosks: tell counter staff, not citizens", f'staff_pin = "{tokens.staff_pin}"']
    for site, counters in tokens.counters.items():
        lines.append(f"\n[counters.{site}]")
        lines += [f'"{n}" = "{t}"' for n, t in sorted(counters.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


def read(path: Path = DEFAULT_SECRETS) -> Tokens:
    with path.open("rb") as f:
        raw = tomllib.load(f)
    return Tokens(
        roles=dict(raw.get("roles", {})),
        counters={s: {int(n): t for n, t in cs.items()} for s, cs in raw.get("counters", {}).items()},
        staff_pin=str((raw.get("kiosk") or {}).get("staff_pin", "")),
    )


def ensure(path: Path, sites: Iterable[tuple[str, Iterable[int]]]) -> tuple[Tokens, bool]:
    """Read the secrets file, creating it (and tokens for any new counter) when needed."""
    sites = [(s, list(ns)) for s, ns in sites]
    if path.exists():
        tokens = read(path)
        missing = [(s, [n for n in ns if n not in tokens.counters.get(s, {})]) for s, ns in sites]
        if not any(ns for _, ns in missing) and all(r in tokens.roles for r in ("kiosk", "display", "admin")):
            return tokens, False
        extra = generate(missing)
        roles = {**extra.roles, **tokens.roles}
        counters = {s: {**extra.counters.get(s, {}), **tokens.counters.get(s, {})} for s, _ in sites}
        tokens = Tokens(roles, counters, tokens.staff_pin)  # an existing staff PIN is kept
    else:
        tokens = generate(sites)
    write(tokens, path)
    return tokens, True


def ensure_for_city(path: Path, city: CityConfig) -> tuple[Tokens, bool]:
    """:func:`ensure` for every counter of every site of the city's configuration."""
    return ensure(path, [(key, [c.number for c in site.counters]) for key, site in city.sites.items()])
