"""来庁予約 (visit booking) rules. Pure: no I/O, no clock — ``now`` and the bookings come in.

A booking is one place in one slot of one department: the first department on the citizen's route
that takes bookings (config ``[booking.capacity]``), because that is where the ticket is called at
the slot start; later steps follow as the ticket moves through the lobby. It holds the purposes
and the answers given at home and nothing personal (no name, no contact). Its 6-digit code is
unique among the site's open bookings, so the code alone finds it; the QR carries the same code.

Booking rows are plain dicts (the ``reservations`` table, storage.ReservationRow):
``id, site, day, slot_start, slot_end, purposes, code, ticket`` and, since migration
0003_bookings, ``answers, lang, department, created_at, cancelled_at``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import RequestError
from .problems import ConfigError, Problem


class BookingError(RequestError):
    """A booking request the rules refuse; ``code`` is a protocol error code (docs/protocol.md)."""


@dataclass(frozen=True, slots=True)
class BookingConfig:
    """``[booking]`` of site.toml (a site may override ``capacity`` in ``[sites.X.booking]``)."""

    slot_minutes: int = 30
    days_ahead: int = 10  # opening days offered, today included
    min_lead_minutes: int = 30  # a slot must start at least this long after the booking
    late_minutes: int = 15  # checked in later than slot start + this: served as a walk-in
    no_show_minutes: int = 30  # not checked in by slot start + this: counted as a no-show
    closed_dates: frozenset[str] = frozenset()  # holidays and 年末年始
    weekdays: frozenset[int] = frozenset(range(5))  # opening weekdays, Monday = 0
    capacity: Mapping[str, int] = field(default_factory=dict)  # department -> places per slot

    def places(self, department: str) -> int:
        return int(self.capacity.get(department, 0))


def load_booking(raw: Mapping[str, Any], site: str, file: str = "site.toml") -> BookingConfig:
    """The booking rules for ``site`` from the parsed site.toml; ConfigError lists every problem."""
    base = raw.get("booking", {}) or {}
    over = ((raw.get("sites", {}) or {}).get(site, {}) or {}).get("booking", {}) or {}
    merged = {**base, **over}
    problems: list[Problem] = []
    ints: dict[str, int] = {}
    for key, lo, default in (("slot_minutes", 5, 30), ("days_ahead", 1, 10), ("min_lead_minutes", 0, 30),
                             ("late_minutes", 0, 15), ("no_show_minutes", 0, 30)):
        v = merged.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            problems.append(Problem(file, f"booking.{key}", f"must be an integer ≥ {lo}, got {v!r}"))
        else:
            ints[key] = v
    cap = merged.get("capacity", {})
    known = set(((raw.get("sites", {}) or {}).get(site, {}) or {}).get("departments", []))
    capacity: dict[str, int] = {}
    for d, n in (cap.items() if isinstance(cap, Mapping) else []):
        if known and d not in known:
            problems.append(Problem(file, f"booking.capacity.{d}", f"site {site} has no department {d!r}"))
        elif not isinstance(n, int) or isinstance(n, bool) or n < 0:
            problems.append(Problem(file, f"booking.capacity.{d}", f"places per slot must be an integer ≥ 0, got {n!r}"))
        else:
            capacity[d] = n
    closed = merged.get("closed_dates", [])
    for d in closed:
        try:
            dt.date.fromisoformat(str(d))
        except ValueError:
            problems.append(Problem(file, "booking.closed_dates", f"expected YYYY-MM-DD, got {d!r}"))
    weekdays = merged.get("weekdays", [0, 1, 2, 3, 4])
    if not isinstance(weekdays, list) or not all(isinstance(w, int) and 0 <= w <= 6 for w in weekdays):
        problems.append(Problem(file, "booking.weekdays", f"expected a list of 0 (Monday) … 6, got {weekdays!r}"))
    if ints.get("no_show_minutes", 0) < ints.get("late_minutes", 0):
        problems.append(Problem(file, "booking.no_show_minutes", "must not be shorter than late_minutes"))
    if problems:
        raise ConfigError(problems)
    return BookingConfig(capacity=capacity, closed_dates=frozenset(str(d) for d in closed),
                         weekdays=frozenset(weekdays), **ints)


# ------------------------------------------------------------------ days and slots
def opening_days(first: dt.date, n: int, cfg: BookingConfig) -> list[dt.date]:
    """The next ``n`` opening days from ``first`` (included): opening weekdays not in closed_dates."""
    out, d = [], first
    while len(out) < n and cfg.weekdays:
        if d.weekday() in cfg.weekdays and d.isoformat() not in cfg.closed_dates:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def slot_times(open_hhmm: str, close_hhmm: str, cfg: BookingConfig) -> list[str]:
    """Slot starts ("HH:MM") of a day: every slot_minutes from opening, ending by closing."""
    o = _minutes(open_hhmm)
    c = _minutes(close_hhmm)
    return [f"{m // 60:02d}:{m % 60:02d}" for m in range(o, c - cfg.slot_minutes + 1, cfg.slot_minutes)]


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def active(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Bookings that hold a place: not cancelled."""
    return [r for r in rows if not r.get("cancelled_at")]


def used(rows: Iterable[Mapping[str, Any]], day: str, slot_start: float, department: str) -> int:
    """Places taken in one slot of one department."""
    return sum(1 for r in active(rows) if r["day"] == day and r["slot_start"] == slot_start
               and r.get("department") == department)


def booking_department(route_departments: Sequence[str], cfg: BookingConfig) -> str | None:
    """The department whose place a booking takes: the first one on the route that takes bookings."""
    return next((d for d in route_departments if cfg.places(d) > 0), None)


def check_slot(*, cfg: BookingConfig, department: str | None, day: str, start: str, slot_start: float,
               now: float, today: str, open_days: Sequence[str], day_slots: Sequence[str],
               taken: int) -> None:
    """Refuse a slot that cannot be booked, naming why (BookingError); return None when it can."""
    if department is None:
        raise BookingError("not_bookable", "none of these procedures takes bookings: come without one", "purposes")
    if day < today or (day == today and slot_start < now):
        raise BookingError("slot_past", f"the slot {day} {start} has already begun", "start")
    if day not in open_days:
        raise BookingError("slot_closed", f"{day} is not an opening day offered for booking", "day")
    if start not in day_slots:
        raise BookingError("slot_closed", f"{start} is not a slot start (slots: {', '.join(day_slots)})", "start")
    if slot_start - now < cfg.min_lead_minutes * 60:
        raise BookingError("slot_past", f"book at least {cfg.min_lead_minutes} minutes before the slot", "start")
    if taken >= cfg.places(department):
        raise BookingError("slot_full", f"the slot {day} {start} of {department} is full", "start")


def check_reservation_slot(day: str, start: str) -> None:
    """A reservation made at the admin page (``reserve``): the day as YYYY-MM-DD and the start as
    HH:MM, or BookingError ``bad_field`` naming the field."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise BookingError("bad_field", "day must be YYYY-MM-DD", "day")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", start):
        raise BookingError("bad_field", "start must be HH:MM", "start")


def check_reservation_minutes(minutes: float) -> None:
    """A reservation's length: 5 to 480 minutes, or BookingError ``bad_field``."""
    if not 5 <= minutes <= 480:
        raise BookingError("bad_field", "minutes must be between 5 and 480", "minutes")


def new_code(taken: set[str], draw: int) -> str | None:
    """A 6-digit code from a random ``draw`` not among ``taken`` (None: try another draw)."""
    code = f"{draw % 10**6:06d}"
    return None if code in taken else code


# ------------------------------------------------------------------ check-in
def find(rows: Iterable[Mapping[str, Any]], code: str) -> list[Mapping[str, Any]]:
    """Bookings with this code, newest slot first (a code may be reused on a much later day)."""
    return sorted((r for r in rows if r["code"] == code), key=lambda r: -r["slot_start"])


def check_in_target(found: Sequence[Mapping[str, Any]], today: str, other_sites: Sequence[str] = ()) -> Mapping[str, Any]:
    """The booking a kiosk may check in today from the bookings with the scanned code.

    Each refusal names what is wrong so the citizen is told what to do next: a cancelled
    booking, one for another day, one at another site (``other_sites``: sites where the code is
    booked today), or one already used.
    """
    todays = [r for r in found if r["day"] == today]
    live = [r for r in todays if not r.get("cancelled_at")]
    if live:
        r = live[0]
        if r.get("ticket"):
            raise BookingError("reservation_used", "that reservation has already been checked in", "reservation_code")
        return r
    if todays:
        raise BookingError("booking_cancelled", "that booking was cancelled: book again or take a number",
                           "reservation_code")
    if other_sites:
        raise BookingError("booking_other_site", f"that booking is for another office ({', '.join(other_sites)})",
                           "reservation_code")
    future = [r for r in found if r["day"] > today and not r.get("cancelled_at")]
    if future:
        raise BookingError("booking_other_day", f"that booking is for {future[-1]['day']}, not today",
                           "reservation_code")
    if found:
        raise BookingError("booking_expired", "that booking's day has passed: take a number or book again",
                           "reservation_code")
    raise BookingError("unknown_reservation", "no reservation with that code today", "reservation_code")


def on_time(row: Mapping[str, Any], now: float, cfg: BookingConfig) -> bool:
    """Checked in by slot start + late_minutes: the booking's priority holds (docs/planning.md)."""
    return now <= row["slot_start"] + cfg.late_minutes * 60


def state(row: Mapping[str, Any], now: float, cfg: BookingConfig) -> str:
    """booked, checked_in, cancelled or no_show (not checked in by slot start + no_show_minutes)."""
    if row.get("cancelled_at"):
        return "cancelled"
    if row.get("ticket"):
        return "checked_in"
    if now > row["slot_start"] + cfg.no_show_minutes * 60:
        return "no_show"
    return "booked"


def public_view(row: Mapping[str, Any], now: float, cfg: BookingConfig) -> dict[str, Any]:
    """What the citizen's page shows of a booking: no ticket id, nothing personal."""
    return {
        "code": row["code"], "site": row["site"], "day": row["day"], "slot_start": row["slot_start"],
        "slot_end": row["slot_end"], "purposes": list(row["purposes"]), "answers": dict(row.get("answers") or {}),
        "lang": row.get("lang") or "ja", "department": row.get("department"), "state": state(row, now, cfg),
    }


def booking_problems(raw: Mapping[str, Any], file: str = "site.toml") -> list[Problem]:
    """Every problem of ``[booking]`` for every site (check-config and server start-up)."""
    problems: list[Problem] = []
    for site in (raw.get("sites") or {}):
        try:
            load_booking(raw, site, file)
        except ConfigError as e:
            problems += [p for p in e.problems if p not in problems]
    return problems


# ------------------------------------------------------------------ consultation slots (相談の予約)
# A consultation booking is a booking like any other (same table, code, check-in and priority
# rule) with a consultant dimension: a slot is free for a mode when one consultant of the topic's
# desk who offers that mode has no booking overlapping it. In person: the kiosk checks the code in
# and the ticket gets the booking's priority at its slot (dispatch.py rule 1), so reservations
# come first and walk-ins are served whenever a consultant has no due booking. Online: the system
# does not host video; the consultant's meeting link from config is shown with the code only.
MODES = ("in_person", "online")


@dataclass(frozen=True, slots=True)
class Consultant:
    staff: str  # staff identifier (config/consultation.toml [[staff]])
    desk: str  # department key
    modes: frozenset[str]
    online_link: str = ""


@dataclass(frozen=True, slots=True)
class ConsultConfig:
    """``[booking]`` of config/consultation.toml."""

    slot_minutes: int = 60
    desks: Mapping[str, str] = field(default_factory=dict)  # topic -> desk (department)
    consultants: tuple[Consultant, ...] = ()

    def of_desk(self, desk: str, mode: str) -> list[Consultant]:
        return [c for c in self.consultants if c.desk == desk and mode in c.modes]


def load_consult(raw: Mapping[str, Any], staff: Mapping[str, Any], departments: set[str],
                 topics: Iterable[str], file: str = "consultation.toml") -> ConsultConfig:
    """Check ``[booking]`` of consultation.toml; ConfigError lists every problem by key path."""
    b = raw.get("booking", {}) or {}
    problems: list[Problem] = []
    slot = b.get("slot_minutes", 60)
    if not isinstance(slot, int) or isinstance(slot, bool) or slot < 10:
        problems.append(Problem(file, "booking.slot_minutes", f"must be an integer ≥ 10, got {slot!r}"))
        slot = 60
    topics = set(topics)
    desks: dict[str, str] = {}
    for t, d in (b.get("desks", {}) or {}).items():
        if t not in topics:
            problems.append(Problem(file, f"booking.desks.{t}", f"{t!r} is not a topic in [topics]"))
        elif d not in departments:
            problems.append(Problem(file, f"booking.desks.{t}", f"{d!r} is not a department in site.toml"))
        else:
            desks[t] = d
    consultants: list[Consultant] = []
    for i, c in enumerate(b.get("consultants", []) or []):
        where = f"booking.consultants[{i}]"
        sid, modes, link = c.get("staff"), c.get("modes", ["in_person"]), str(c.get("online_link", ""))
        if sid not in staff:
            problems.append(Problem(file, f"{where}.staff", f"{sid!r} is not in [[staff]]"))
            continue
        desk = c.get("desk") or next(iter(sorted(getattr(staff[sid], "departments", ()))), None)
        if desk not in departments or desk not in getattr(staff[sid], "departments", {desk}):
            problems.append(Problem(file, f"{where}.desk", f"{desk!r} is not a department of {sid}"))
            continue
        if not isinstance(modes, list) or not modes or any(m not in MODES for m in modes):
            problems.append(Problem(file, f"{where}.modes", f"a list of {', '.join(MODES)}, got {modes!r}"))
            continue
        if "online" in modes and not link.startswith("https://"):
            problems.append(Problem(file, f"{where}.online_link", "an online consultant needs an https:// link"))
            continue
        consultants.append(Consultant(sid, desk, frozenset(modes), link))
    if problems:
        raise ConfigError(problems)
    return ConsultConfig(slot_minutes=slot, desks=desks, consultants=tuple(consultants))


def consultant_busy(rows: Iterable[Mapping[str, Any]], staff: str, start: float, end: float) -> bool:
    """Has ``staff`` an active booking overlapping [start, end)? (Slots of different lengths may meet.)"""
    return any(r.get("consultant") == staff and r["slot_start"] < end and start < r["slot_end"]
               for r in active(rows))


def free_consultants(cfg: ConsultConfig, rows: Iterable[Mapping[str, Any]], desk: str, mode: str,
                     start: float) -> list[Consultant]:
    """Consultants of ``desk`` offering ``mode`` with nothing booked in the slot starting at ``start``,
    the least booked of the day first (so the work is spread over the desk)."""
    rows = list(rows)
    end = start + cfg.slot_minutes * 60
    free = [c for c in cfg.of_desk(desk, mode) if not consultant_busy(rows, c.staff, start, end)]
    load = {c.staff: sum(1 for r in active(rows) if r.get("consultant") == c.staff
                         and abs(r["slot_start"] - start) < 86400) for c in free}
    return sorted(free, key=lambda c: (load[c.staff], c.staff))


def check_consult(cfg: ConsultConfig, topic: str, mode: str) -> str:
    """The desk that books ``topic`` in ``mode`` (BookingError naming the field when there is none)."""
    if topic not in cfg.desks:
        raise BookingError("unknown_topic", f"no consultation desk books the topic {topic!r}", "topic")
    if mode not in MODES:
        raise BookingError("bad_field", f"mode must be one of {', '.join(MODES)}", "mode")
    desk = cfg.desks[topic]
    if not cfg.of_desk(desk, mode):
        raise BookingError("not_bookable", f"the desk {desk} has no consultant for {mode} bookings", "mode")
    return desk


def consult_view(row: Mapping[str, Any], cfg: ConsultConfig) -> dict[str, Any]:
    """The consultation part of a booking, for whoever holds its code: the online link only here."""
    if not row.get("topic"):
        return {}
    link = next((c.online_link for c in cfg.consultants if c.staff == row.get("consultant")), "")
    return {"consult": {"topic": row["topic"], "mode": row.get("mode"),
                        "online_link": link if row.get("mode") == "online" else None}}


def consult_route(route: Sequence[Any], row: Mapping[str, Any] | None) -> Sequence[Any]:
    """The route of a ticket checked in with ``row``: a consultation booking is served at the desk it
    booked (the catalogue routes every walk-in 相談 to the general desk), so its first step moves
    there and the booking's priority applies at that desk's counters. Other tickets: unchanged."""
    import dataclasses

    if not row or not row.get("topic") or not row.get("department") or not route:
        return route  # the planner's own route, untouched
    moved = list(route)
    first = next(i for i, r in enumerate(moved) if not r.after)
    moved[first] = dataclasses.replace(moved[first], department=row["department"])
    return type(route)(moved) if isinstance(route, tuple) else moved
