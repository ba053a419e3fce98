"""Consultations (相談), the pure rules: configuration, citizen keys, and who may see what.

No I/O (queue_server/loaders.py reads the TOML file once, at server start); no clock (callers pass ``now``).
The consultation index (相談記録索引) records only *that* a consultation happened — citizen key,
date, department, consultant, topic, status, consent — never what was said. The handover sheet
(つなぐシート) carries the structured fields a receiving department needs so the citizen does not
repeat the story. docs/consultation.md describes the rules for a city.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .problems import ConfigError, Problem

ROLES = ("consultant", "general", "admin")
STATUSES = ("open", "referred", "closed")

# Common old (旧字体) and variant forms found in names, mapped to the forms most registers use, so a
# name typed as 高橋 finds the 髙橋 read from a card. Not exhaustive: extend it where a city meets more.
OLD_TO_NEW = str.maketrans({
    "髙": "高", "﨑": "崎", "嵜": "崎", "邊": "辺", "邉": "辺", "齋": "斎", "齊": "斎", "澤": "沢",
    "濱": "浜", "國": "国", "櫻": "桜", "廣": "広", "德": "徳", "眞": "真", "圓": "円", "龍": "竜",
    "榮": "栄", "藏": "蔵", "實": "実", "壽": "寿", "惠": "恵", "瀨": "瀬", "槇": "槙", "冨": "富",
    "嶋": "島", "嶌": "島", "峯": "峰", "淵": "渕", "條": "条", "舘": "館", "萬": "万", "彌": "弥",
    "增": "増", "應": "応", "黑": "黒", "靜": "静", "驛": "駅", "團": "団", "學": "学",
})
_SPACES = re.compile(r"[\s\u3000・･]+")
_DATE = re.compile(r"^(\d{4})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})日?$")


class InputError(ValueError):
    """A citizen key that cannot be used; ``field`` names the part."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class StaffAccount:
    identifier: str
    name: str
    departments: frozenset[str]
    role: str  # consultant | general | admin


@dataclass(frozen=True, slots=True)
class Rules:
    general_department: str
    search_departments: frozenset[str]
    topics: Mapping[str, Mapping[str, str]]
    staff: Mapping[str, StaffAccount]
    idle_seconds: float
    absolute_seconds: float
    free_attempts: int
    free_attempts_address: int
    first_delay: float
    max_delay: float
    retention_days: Mapping[str, int]  # consultation, handover, audit, session
    directory: str = "local"

    def is_general(self, s: StaffAccount) -> bool:
        return s.role == "general"


class RulesError(ConfigError, ValueError):
    """A bad consultation.toml: every problem by key path (a ConfigError, so the server refuses to
    start on it and check-config lists it like any other configuration problem)."""


def parse_rules(raw: Mapping[str, Any], departments: set[str], source: str = "consultation.toml") -> Rules:
    """Check and freeze config/consultation.toml; every problem is listed at once, by key path."""
    problems: list[Problem] = []

    def bad(key: str, reason: str) -> None:
        problems.append(Problem(source, key, reason))

    general = raw.get("general_department", "")
    if general not in departments:
        bad("general_department", f"{general!r} is not a department in site.toml")
    search = raw.get("search", {}).get("departments", [])
    for d in search:
        if d not in departments:
            bad("search.departments", f"{d!r} is not a department in site.toml")
    staff: dict[str, StaffAccount] = {}
    for i, s in enumerate(raw.get("staff", [])):
        ident = s.get("identifier", "")
        if not isinstance(ident, str) or not re.fullmatch(r"[A-Za-z0-9._-]{2,64}", ident):
            bad(f"staff[{i}].identifier", f"2–64 letters, digits, '.', '_' or '-' (got {ident!r})")
            continue
        if ident in staff:
            bad(f"staff[{i}].identifier", f"{ident!r} appears twice")
        if s.get("role") not in ROLES:
            bad(f"staff[{i}].role", f"must be one of {', '.join(ROLES)} (got {s.get('role')!r})")
        for d in s.get("departments", []):
            if d not in departments:
                bad(f"staff[{i}].departments", f"{d!r} is not a department in site.toml")
        staff[ident] = StaffAccount(ident, str(s.get("name", ident)), frozenset(s.get("departments", [])),
                                    str(s.get("role")))
    topics = raw.get("topics", {})
    if not topics:
        bad("topics", "define at least one topic category")
    for k, names in topics.items():
        if not isinstance(names, Mapping) or not names.get("ja"):
            bad(f"topics.{k}", "needs at least a ja name")
    ses, sign, ret = raw.get("sessions", {}), raw.get("sign_in", {}), raw.get("retention", {})
    retention = {k: int(ret.get(f"{k}_days", d)) for k, d in
                 (("consultation", 1825), ("handover", 365), ("audit", 1825), ("session", 1))}
    for k, v in retention.items():
        if v < 1:
            bad(f"retention.{k}_days", f"must be at least 1 (got {v})")
    if problems:
        raise RulesError(problems)
    return Rules(
        general_department=general,
        search_departments=frozenset(search),
        topics={k: dict(v) for k, v in topics.items()},
        staff=staff,
        idle_seconds=float(ses.get("idle_minutes", 30)) * 60,
        absolute_seconds=float(ses.get("absolute_hours", 10)) * 3600,
        free_attempts=int(sign.get("free_attempts", 3)),
        free_attempts_address=int(sign.get("free_attempts_per_address", 20)),
        first_delay=float(sign.get("first_delay_seconds", 2)),
        max_delay=float(sign.get("max_delay_seconds", 300)),
        retention_days=retention,
        directory=str(raw.get("directory", "local")),
    )


# ---------------------------------------------------------------------------- citizen key


def normalise_name(name: str) -> str:
    """One spelling per name: NFKC (全角/半角 letters, digits and kana widths), no spaces or dots,
    old kanji forms to new, Latin letters upper-case. 'ﾀｶﾊｼ　髙﨑' and 'タカハシ 高崎' agree."""
    s = unicodedata.normalize("NFKC", name)
    s = _SPACES.sub("", s).translate(OLD_TO_NEW).upper()
    # removing spaces or changing case can leave a sequence that composes further: normalise until
    # stable, so a key computed from an already normalised name is the same key
    for _ in range(4):  # bounded: in practice one more round at most
        t = _SPACES.sub("", unicodedata.normalize("NFKC", s)).upper()
        if t == s:
            break
        s = t
    return s


def normalise_birth_date(text: str) -> str:
    """'1980-04-01', '19800401', '１９８０/4/1', '1980年4月1日' -> '1980-04-01'; anything else is refused."""
    s = _SPACES.sub("", unicodedata.normalize("NFKC", text))
    m = _DATE.match(s)
    if not m:
        raise InputError("birth_date", "birth date must be a date such as 1980-04-01")
    y, mo, d = (int(g) for g in m.groups())
    import datetime

    try:
        return datetime.date(y, mo, d).isoformat()
    except ValueError:
        raise InputError("birth_date", "birth date is not a real calendar date") from None


def citizen_key(name: str, birth_date: str, pepper: bytes) -> str:
    """The index's key for a citizen: a keyed hash of the normalised name and birth date. The index
    never holds the name; without the server's secret the key cannot be tested against guesses."""
    if not isinstance(name, str) or not normalise_name(name):
        raise InputError("name", "a name is required")
    if len(name) > 100:
        raise InputError("name", "a name is at most 100 characters")
    if not isinstance(birth_date, str):
        raise InputError("birth_date", "birth date must be a date such as 1980-04-01")
    text = f"{normalise_name(name)}|{normalise_birth_date(birth_date)}"
    return hmac.new(pepper, text.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------- who sees what


def may_record(s: StaffAccount, department: str) -> bool:
    """A consultant records consultations for their own departments only."""
    return s.role in ("consultant", "general") and department in s.departments


def may_search(s: StaffAccount, rules: Rules) -> bool:
    """Signed-in consultants of the configured departments, and always the 福祉総合相談係."""
    if s.role == "general":
        return True
    return s.role == "consultant" and bool(s.departments & rules.search_departments)


def record_visible(s: StaffAccount, rules: Rules, record: Mapping[str, Any]) -> bool:
    """One index record for one searcher. Without consent nothing leaves the recording department
    (except to the 福祉総合相談係, whom the city's process always includes)."""
    if s.role == "general":
        return True
    if s.role != "consultant":
        return False
    if record["department"] in s.departments:
        return True
    return bool(record["consent"]) and may_search(s, rules)


def handover_visible(s: StaffAccount, sheet: Mapping[str, Any]) -> bool:
    """A handover is seen by the receiving department, the sending department and the 福祉総合相談係."""
    if s.role == "general":
        return True
    return s.role == "consultant" and (sheet["to_department"] in s.departments
                                       or sheet["from_department"] in s.departments)


def may_take_over(s: StaffAccount, sheet: Mapping[str, Any]) -> bool:
    """Only the receiving department (or the 福祉総合相談係) closes a handover by taking it over."""
    return s.role == "general" or (s.role == "consultant" and sheet["to_department"] in s.departments)


def may_read_audit(s: StaffAccount) -> bool:
    return s.role == "admin"


# ---------------------------------------------------------------------------- handover fields

HANDOVER_TEXT_FIELDS = ("asked", "done", "needed")
MAX_TEXT = 1000


def check_handover(body: Mapping[str, Any], departments: set[str], topics: Mapping[str, Any]) -> dict[str, Any]:
    """The structured sheet from a request, or InputError naming the field at fault."""
    to = body.get("to_department")
    if not isinstance(to, str) or to not in departments:
        raise InputError("to_department", "no such department")
    sheet: dict[str, Any] = {"to_department": to}
    for f in HANDOVER_TEXT_FIELDS:
        v = body.get(f, "")
        if not isinstance(v, str) or len(v) > MAX_TEXT:
            raise InputError(f, f"{f}: text of at most {MAX_TEXT} characters")
        sheet[f] = v.strip()
    if not sheet["asked"] or not sheet["needed"]:
        raise InputError("asked" if not sheet["asked"] else "needed", "what was asked and what is needed next are required")
    docs = body.get("documents", [])
    if not isinstance(docs, list) or not all(isinstance(d, str) and len(d) <= 100 for d in docs) or len(docs) > 30:
        raise InputError("documents", "documents: a list of at most 30 short names")
    sheet["documents"] = [d.strip() for d in docs if d.strip()]
    return sheet


def purge_before(now: float, retention_days: Mapping[str, int]) -> dict[str, float]:
    """The cut-off time per record type: rows older than this are deleted by the retention job."""
    return {kind: now - days * 86400 for kind, days in retention_days.items()}
