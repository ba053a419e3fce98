"""Site configuration: load config/site.toml into plain frozen values, and validate it.

Validation collects every problem (file, line or key path, reason) instead of stopping at the
first, so a city IT team fixes a broken file in one pass.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core.i18n import LANGUAGES
from .core.problems import ConfigError, Problem, where

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Policy:
    max_recalls: int = 2
    aging_bound_minutes: float = 20.0
    wait_target_minutes: float = 30.0
    default_service_minutes: float = 8.0


@dataclass(frozen=True, slots=True)
class CounterConfig:
    number: int
    departments: tuple[str, ...]
    floor: int = 1
    label: Mapping[str, str] | None = None  # optional override of the "N番窓口" label


@dataclass(frozen=True, slots=True)
class LunchSlot:
    counters: tuple[int, ...]
    start: str  # "HH:MM" local time
    end: str


@dataclass(frozen=True, slots=True)
class SiteConfig:
    key: str
    name: Mapping[str, str]
    open: str
    close: str
    departments: tuple[str, ...]
    department_names: Mapping[str, Mapping[str, str]]  # key -> lang -> name, site overrides applied
    counters: tuple[CounterConfig, ...]
    lunch: tuple[LunchSlot, ...]

    def counter(self, number: int) -> CounterConfig | None:
        return next((c for c in self.counters if c.number == number), None)


@dataclass(frozen=True, slots=True)
class CityConfig:
    name: Mapping[str, str]
    timezone: str
    online_base_url: str
    public_base_url: str
    policy: Policy
    numbering: Mapping[str, str]
    departments: Mapping[str, Mapping[str, str]]
    sites: Mapping[str, SiteConfig]
    source: str
    raw: Mapping[str, Any]


def is_loopback_url(url: Any) -> bool:
    """True for a URL whose host is this machine (localhost, 127.x, ::1): fine for a demo, but a
    printed QR code with it opens nothing on a citizen's phone."""
    import ipaddress
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        return False
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def site_warnings(raw: Mapping[str, Any], file: str) -> list[Problem]:
    """What check-config warns about without refusing (the refusals are validate_site_config's)."""
    city = raw.get("city") if isinstance(raw.get("city"), Mapping) else {}
    if is_loopback_url(city.get("public_base_url")) and city.get("production") is not True:
        return [Problem(file, "city.public_base_url",
                        "warning: a loopback address (demo only): the tickets' QR codes will not open on phones; "
                        "set the public https address and production = true before going live")]
    return []


def minutes_of(hhmm: str) -> int:
    """'08:30' -> 510."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _names_problems(names: Any, file: str, text: str, key_path: str, *needles: str) -> list[Problem]:
    if not isinstance(names, Mapping):
        return [Problem(file, where(file, text, key_path, *needles), "expected a table of names by language")]
    missing = [lang for lang in LANGUAGES if not names.get(lang)]
    if missing:
        return [Problem(file, where(file, text, key_path, *needles), f"missing translation: {', '.join(missing)}")]
    # やさしい日本語 names keep the sign's kanji with a reading ({市民課|しみんか}), never bare kanji
    from queue_server.core.easy_japanese import kanji_without_reading

    bare = kanji_without_reading(str(names.get("ja-easy", "")))
    if bare:
        return [Problem(file, where(file, text, key_path, *needles),
                        f"ja-easy name: kanji without a reading {', '.join(bare)} (write {{漢字|かんじ}})")]
    return []


def validate_site_config(raw: Mapping[str, Any], file: str, text: str) -> list[Problem]:
    """Every problem in a parsed site.toml."""
    p: list[Problem] = []
    city = raw.get("city")
    if not isinstance(city, Mapping):
        return [Problem(file, "city", "missing [city] table")]
    p += _names_problems(city.get("name"), file, text, "city.name", "city", "name")
    for k in ("timezone", "online_base_url", "public_base_url"):
        if not isinstance(city.get(k), str) or not city.get(k):
            p.append(Problem(file, where(file, text, f"city.{k}", "city"), f"city.{k} must be a non-empty string"))
    if city.get("production") is True and is_loopback_url(city.get("public_base_url")):
        p.append(Problem(file, where(file, text, "city.public_base_url", "public_base_url"),
                         "production = true but public_base_url is a loopback address: phones cannot open the "
                         "QR code on the tickets; set the city's public https address"))
    pol = raw.get("policy", {})
    for k, lo in (("max_recalls", 0), ("aging_bound_minutes", 1), ("wait_target_minutes", 1), ("default_service_minutes", 0.1)):
        v = pol.get(k, lo)
        if not isinstance(v, int | float) or isinstance(v, bool) or v < lo:
            p.append(Problem(file, where(file, text, f"policy.{k}", k), f"must be a number ≥ {lo}, got {v!r}"))
    depts = raw.get("departments", {})
    if not depts:
        p.append(Problem(file, "departments", "no departments defined"))
    for key, d in depts.items():
        p += _names_problems(d.get("name") if isinstance(d, Mapping) else None, file, text, f"departments.{key}.name", f"departments.{key}")
    sites = raw.get("sites", {})
    if not sites:
        p.append(Problem(file, "sites", "no sites defined"))
    for skey, s in sites.items():
        base = f"sites.{skey}"
        if not isinstance(s, Mapping):
            p.append(Problem(file, base, "expected a table"))
            continue
        loc = (f"[sites.{skey}]",)
        p += _names_problems(s.get("name"), file, text, f"{base}.name", *loc)
        hours = s.get("hours", {})
        for k in ("open", "close"):
            if not isinstance(hours.get(k), str) or not _TIME.match(hours[k]):
                p.append(Problem(file, where(file, text, f"{base}.hours.{k}", *loc, "hours"), f"expected HH:MM, got {hours.get(k)!r}"))
        site_depts = s.get("departments", [])
        for d in site_depts:
            if d not in depts:
                p.append(Problem(file, where(file, text, f"{base}.departments", *loc, "departments"), f"unknown department key {d!r}"))
        for d, names in s.get("department_names", {}).items():
            if d not in depts:
                p.append(Problem(file, where(file, text, f"{base}.department_names.{d}", f"[sites.{skey}.department_names]", d), f"unknown department key {d!r}"))
            p += _names_problems(names, file, text, f"{base}.department_names.{d}", f"[sites.{skey}.department_names]", d)
        seen: set[int] = set()
        served: set[str] = set()
        for i, c in enumerate(s.get("counters", [])):
            cpath = f"{base}.counters[{i}]"
            num = c.get("number")
            cloc = (f"[[sites.{skey}.counters]]",) * (i + 1)
            if not isinstance(num, int) or isinstance(num, bool) or num < 1:
                p.append(Problem(file, where(file, text, f"{cpath}.number", *cloc), f"counter number must be a positive integer, got {num!r}"))
            elif num in seen:
                p.append(Problem(file, where(file, text, f"{cpath}.number", *cloc), f"counter number {num} appears twice"))
            else:
                seen.add(num)
            cdeps = c.get("departments")
            if not cdeps:
                p.append(Problem(file, where(file, text, f"{cpath}.departments", *cloc), "a counter must serve at least one department"))
            for d in cdeps or []:
                if d not in depts:
                    p.append(Problem(file, where(file, text, f"{cpath}.departments", *cloc, "departments"), f"unknown department key {d!r}"))
                elif d not in site_depts:
                    p.append(Problem(file, where(file, text, f"{cpath}.departments", *cloc, "departments"), f"department {d!r} is not listed in {base}.departments"))
                served.add(d)
        if not seen:
            p.append(Problem(file, where(file, text, f"{base}.counters", *loc), "the site has no counters"))
        for d in site_depts:
            if d in depts and d not in served:
                p.append(Problem(file, where(file, text, f"{base}.departments", *loc, "departments"), f"no counter serves department {d!r}"))
        for i, slot in enumerate(s.get("lunch", [])):
            lpath = f"{base}.lunch[{i}]"
            lloc = (f"[[sites.{skey}.lunch]]",) * (i + 1)
            for k in ("from", "to"):
                if not isinstance(slot.get(k), str) or not _TIME.match(slot[k]):
                    p.append(Problem(file, where(file, text, f"{lpath}.{k}", *lloc), f"expected HH:MM, got {slot.get(k)!r}"))
            if all(isinstance(slot.get(k), str) and _TIME.match(slot[k]) for k in ("from", "to")) and minutes_of(slot["from"]) >= minutes_of(slot["to"]):
                p.append(Problem(file, where(file, text, f"{lpath}", *lloc), "lunch slot ends before it starts"))
            for n in slot.get("counters", []):
                if n not in seen:
                    p.append(Problem(file, where(file, text, f"{lpath}.counters", *lloc), f"unknown counter {n!r}"))
    return p


def load_city(path: str | Path | None = None) -> CityConfig:
    """Read and validate site.toml; raise ConfigError listing every problem."""
    path = Path(path) if path else DEFAULT_CONFIG_DIR / "site.toml"
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([Problem(file, "-", f"cannot read: {e.strerror}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([Problem(file, _toml_line(str(e)), f"TOML syntax error: {e}")]) from None
    problems = validate_site_config(raw, file, text)
    if problems:
        raise ConfigError(problems)
    return _build(raw, file)


def _toml_line(message: str) -> str:
    m = re.search(r"line (\d+)", message)
    return f"line {m.group(1)}" if m else "-"


def _build(raw: Mapping[str, Any], file: str) -> CityConfig:
    city = raw["city"]
    depts = {k: dict(v["name"]) for k, v in raw["departments"].items()}
    sites = {}
    for skey, s in raw["sites"].items():
        names = {d: depts[d] for d in s["departments"]}
        names.update({d: dict(n) for d, n in s.get("department_names", {}).items()})
        sites[skey] = SiteConfig(
            key=skey,
            name=dict(s["name"]),
            open=s["hours"]["open"],
            close=s["hours"]["close"],
            departments=tuple(s["departments"]),
            department_names=names,
            counters=tuple(
                CounterConfig(c["number"], tuple(c["departments"]), c.get("floor", 1), c.get("label"))
                for c in s["counters"]
            ),
            lunch=tuple(LunchSlot(tuple(x["counters"]), x["from"], x["to"]) for x in s.get("lunch", [])),
        )
    pol = raw.get("policy", {})
    return CityConfig(
        name=dict(city["name"]),
        timezone=city["timezone"],
        online_base_url=city["online_base_url"],
        public_base_url=city["public_base_url"],
        policy=Policy(**{k: pol[k] for k in Policy.__dataclass_fields__ if k in pol}),
        numbering=dict(raw.get("numbering", {})),
        departments=depts,
        sites=sites,
        source=file,
        raw=raw,
    )
