"""The planning page's side of the queue server: the no-token ``planner`` role (docs/planning.md).

A citizen at home plans a visit (the same pure planner and catalogue as the kiosk), sees when to
come, and books a slot. Read-only requests (plan, slots, forecast, booking) are answered at once;
``book`` and ``cancel_booking`` go through the server's single writer like every other change,
so two citizens taking the last place of a slot at the same instant cannot both get it (the
writer applies them one after the other, and the second finds the slot full).

Nothing here is personal: a booking holds purposes and answers, never a name. Anyone can open a
planner connection, so every connection is rate-limited and unknown codes are counted per site.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
import uuid
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import plan_preview
from . import protocol as P
from .core import booking as B
from .http_files import response
from .jobs import Client, Outcome, Reply
from .storage import reservation_row

if TYPE_CHECKING:
    from .hub import SiteHub
    from .server import QueueServer

READS = frozenset({"plan", "slots", "forecast", "booking", "consult_slots"})
# The kiosk's order of life events (kiosk/flow.py PURPOSES): births and deaths first, as in the seed.
LIFE_EVENT_ORDER = ("birth", "death", "move_in", "move_within", "move_out", "marriage", "divorce")
WRITES = frozenset({"book", "cancel_booking", "consult_book", "staff_consult_book"})
# staff_consult_book: internal (consultation_api, a signed-in consultant books for a citizen on the
# phone); not in protocol.ALLOWED, so no client can send it, but it goes through the same writer.
FORECAST_MAX_AGE = 15 * 60.0  # seconds a site's history profile is reused (history changes slowly)
# Per connection: a burst of requests then a steady rate (a person answers a question every few
# seconds); bookings and cancellations far fewer. Unknown codes per site and minute: guessing a
# code to cancel someone else's booking would need ~10^3 tries per hit.
RATE = {"read": (40, 2.0), "write": (12, 1 / 30)}  # (burst, refill per second)
UNKNOWN_CODES_PER_MINUTE = 60


class _Bucket:
    def __init__(self, burst: float, rate: float, now: float):
        self.tokens, self.burst, self.rate, self.at = burst, burst, rate, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


_buckets: weakref.WeakKeyDictionary[Any, dict[str, _Bucket]] = weakref.WeakKeyDictionary()
_unknown: dict[str, list[float]] = {}
# per server (weak: keyed by the server itself, not its id(), which a later server may reuse)
_configs: weakref.WeakKeyDictionary[Any, dict[str, B.BookingConfig]] = weakref.WeakKeyDictionary()
_profiles: weakref.WeakKeyDictionary[Any, dict[str, tuple[float, Any]]] = weakref.WeakKeyDictionary()


def admit(client: Client, kind: str) -> None:
    """Refuse a planner request over the connection's rate (raises the server's Reply)."""

    now = time.monotonic()
    per = _buckets.setdefault(client, {})
    bucket = per.get(kind) or per.setdefault(kind, _Bucket(*RATE[kind], now))
    if not bucket.take(now):
        raise Reply("rate_limited", "too many requests on this connection: wait a minute and try again")


def config(server: QueueServer, site: str) -> B.BookingConfig:
    """``[booking]`` of site.toml for ``site`` (checked at start by cli._setup; parsed once)."""
    per = _configs.setdefault(server, {})
    if site not in per:
        per[site] = B.load_booking(server.city.raw, site, server.city.source)
    return per[site]


def consult_config(server: QueueServer) -> B.ConsultConfig | None:
    """``[booking]`` of config/consultation.toml (None: no consultation booking at this office).
    Read once at server start (loaders.load_consultation, on ``server.consultation``)."""
    cc = server.consultation
    return cc.booking if cc is not None else None


def consult_options(server: QueueServer) -> dict[str, Any]:
    """Bookable consultation topics (with their names) and, per topic, the modes some consultant offers."""
    cfg = consult_config(server)
    if cfg is None or server.consultation is None:
        return {"topics": [], "slot_minutes": 0}
    names = server.consultation.rules.topics
    return {"slot_minutes": cfg.slot_minutes,
            "topics": [{"key": t, "name": dict(names.get(t, {})),
                        "modes": [m for m in B.MODES if cfg.of_desk(d, m)]} for t, d in cfg.desks.items()]}


def _consult_day_cfg(server: QueueServer, hub: SiteHub) -> tuple[B.ConsultConfig, B.BookingConfig]:
    import dataclasses

    cfg = consult_config(server)
    if cfg is None:
        raise B.BookingError("not_bookable", "consultations are not booked at this office", "topic")
    return cfg, dataclasses.replace(config(server, hub.key), slot_minutes=cfg.slot_minutes)


def consult_slots(server: QueueServer, hub: SiteHub, b: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Free consultants per consultation slot of the topic's desk in the chosen mode."""
    cfg, day_cfg = _consult_day_cfg(server, hub)
    desk = B.check_consult(cfg, b["topic"], b["mode"])
    rows = list(hub.reservations.values())
    today = dt.date.fromisoformat(server.local_day(now))
    days = []
    for d in B.opening_days(today, day_cfg.days_ahead, day_cfg):
        iso = d.isoformat()
        out = []
        for start in B.slot_times(hub.config.open, hub.config.close, day_cfg):
            ts = _ts(server, iso, start)
            if ts - now < day_cfg.min_lead_minutes * 60:
                continue
            out.append({"start": start, "slot_start": ts,
                        "free": len(B.free_consultants(cfg, rows, desk, b["mode"], ts))})
        days.append({"day": iso, "weekday": d.weekday(), "slots": out})
    return {"department": desk, "mode": b["mode"], "slot_minutes": cfg.slot_minutes, "days": days}


def view(server: QueueServer, hub: SiteHub, row: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A booking as its code holder sees it: with topic, mode and the online link of a consultation."""
    cfg = consult_config(server)
    return {**B.public_view(row, now, config(server, hub.key)), **(B.consult_view(row, cfg) if cfg else {})}


def snapshot(server: QueueServer, hub: SiteHub) -> dict[str, Any]:
    """The planner's hello snapshot: purposes to choose from, sites, booking rules. Public text."""
    cat = server.catalogue
    kinds = ("life_event", "certificate", "consultation")  # life events first, as on the kiosk
    ordered = [] if cat is None else sorted(
        cat.purposes.values(),
        key=lambda p: (kinds.index(p.kind) if p.kind in kinds else len(kinds),
                       LIFE_EVENT_ORDER.index(p.id) if p.id in LIFE_EVENT_ORDER else len(LIFE_EVENT_ORDER)))
    purposes = [{"id": p.id, "kind": p.kind, "name": dict(p.name)} for p in ordered]
    cfg = config(server, hub.key)
    return {
        "site_name": dict(hub.config.name),
        "sites": [{"key": k, "name": dict(h.config.name)} for k, h in server.hubs.items()],
        "purposes": purposes,
        "hours": {"open": hub.config.open, "close": hub.config.close},
        "booking": {"slot_minutes": cfg.slot_minutes, "days_ahead": cfg.days_ahead,
                    "late_minutes": cfg.late_minutes, "departments": sorted(d for d in cfg.capacity if cfg.places(d))},
        "consult": consult_options(server),
    }


# ------------------------------------------------------------------ reads
async def read(server: QueueServer, client: Client, req: P.Request) -> str:
    """Answer a read-only planner request (the reply message); a refusal (the booking rules'
    BookingError, a Reply) is raised as it is and answered by the session."""

    admit(client, "read")
    hub = server.hubs[client.site]
    b = req.body
    if req.type == "plan":
        result = plan(server, client, hub, b)
    elif req.type == "slots":
        result = slots(server, hub, b, server.clock())
    elif req.type == "forecast":
        result = await forecast(server, hub, b)
    elif req.type == "consult_slots":
        result = consult_slots(server, hub, b, server.clock())
    else:
        result = {"booking": lookup(server, hub, b["code"], server.clock())}
    return P.reply(req.id, result)


def plan(server: QueueServer, client: Client, hub: SiteHub, b: Mapping[str, Any]) -> dict[str, Any]:
    """The kiosk's plan reply plus the next question worth asking (None once the list is settled)."""
    from .core.journey import next_question, question_to_dict, questions_for

    if b.get("reservation_code") is not None:  # a booking's answers are read with "booking" and its code
        raise Reply("not_allowed", "plan by reservation_code is for kiosks: use booking", "reservation_code")
    result = plan_preview.plan(server, client, dict(b))
    cat = server.catalogue
    purposes = result["plan"]["purposes"]
    answers = b.get("answers") or {}
    q = next_question(cat, purposes, answers)
    lang = b.get("lang") or "ja"
    result["question"] = None if q is None else question_to_dict(cat, q, lang)
    left = sum(1 for x in questions_for(cat, purposes) if x.id not in answers and (q is None or x.id != q.id))
    result["progress"] = {"asked": len(answers) + (q is not None), "at_most_left": left if q else 0}
    result["booking_department"] = B.booking_department(
        [s["department"] for s in result["plan"]["steps"]], config(server, hub.key))
    return result


def kiosk_plan(server: QueueServer, client: Client, b: Mapping[str, Any]) -> dict[str, Any]:
    """``plan`` from a token role. With ``reservation_code`` (kiosk only) the booking's purposes and
    answers are planned, so the kiosk shows the list of a typed code before the number is taken;
    the reply's ``booking`` carries them back (no name: a booking holds none). The code is checked
    as at check-in (today, this office, not cancelled or used) so a wrong code is named at once."""

    code = b.get("reservation_code")
    if code is None:
        return plan_preview.plan(server, client, dict(b))
    if client.role != "kiosk":
        raise Reply("not_allowed", "only a kiosk plans a booking by its code", "reservation_code")
    row, _ = check_in(server, server.hubs[client.site], code, server.clock())
    answers = dict(row.get("answers") or {})
    result = plan_preview.plan(server, client, {**b, "purposes": list(row["purposes"]), "answers": answers})
    result["booking"] = {"purposes": list(row["purposes"]), "answers": answers}
    return result


def _route_departments(server: QueueServer, b: Mapping[str, Any]) -> tuple[Any, list[str]]:
    plan = plan_preview.make_plan(server, {"purposes": b.get("purposes"), "answers": b.get("answers") or {},
                              "lang": b.get("lang") or "ja"})
    return plan, [r.department for r in plan.route]


def slots(server: QueueServer, hub: SiteHub, b: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Free places per slot for the next opening days, in the department this plan would book."""
    cfg = config(server, hub.key)
    _, route = _route_departments(server, b)
    dept = B.booking_department(route, cfg)
    today = dt.date.fromisoformat(server.local_day(now))
    days = []
    if dept is not None:
        rows = list(hub.reservations.values())
        for d in B.opening_days(today, cfg.days_ahead, cfg):
            iso = d.isoformat()
            out = []
            for start in B.slot_times(hub.config.open, hub.config.close, cfg):
                ts = _ts(server, iso, start)
                if ts - now < cfg.min_lead_minutes * 60:
                    continue
                out.append({"start": start, "slot_start": ts,
                            "free": max(0, cfg.places(dept) - B.used(rows, iso, ts, dept))})
            days.append({"day": iso, "weekday": d.weekday(), "slots": out})
    return {"department": dept, "places": cfg.places(dept) if dept else 0, "slot_minutes": cfg.slot_minutes,
            "days": days}


def lookup(server: QueueServer, hub: SiteHub, code: str, now: float) -> dict[str, Any]:
    found = B.find(hub.reservations.values(), code.strip())
    if not found:
        _count_unknown(hub.key, now)
        raise B.BookingError("unknown_reservation", "no booking with that code at this office", "code")
    return view(server, hub, found[0], now)


def _count_unknown(site: str, now: float) -> None:

    recent = [t for t in _unknown.get(site, []) if now - t < 60] + [now]
    _unknown[site] = recent
    if len(recent) > UNKNOWN_CODES_PER_MINUTE:
        raise Reply("rate_limited", "too many unknown codes at this office: try again in a minute")


async def forecast(server: QueueServer, hub: SiteHub, b: Mapping[str, Any]) -> dict[str, Any]:
    """When to come: expected waits by hour for the next opening days (queue_server.core.forecast)."""
    from .core import forecast as FC
    from .forecast_history import read_history

    now = server.clock()
    cfg = config(server, hub.key)
    plan, route = _route_departments(server, b)
    per = _profiles.setdefault(server, {})
    cached = per.get(hub.key)
    if cached is None or now - cached[0] > FORECAST_MAX_AGE:
        history = await asyncio.to_thread(read_history, server.store.engine, hub.key, now, server.tz)
        cached = per[hub.key] = (now, FC.profile(history, server.tz))
    today = dt.date.fromisoformat(server.local_day(now))
    days = [d.isoformat() for d in B.opening_days(today, cfg.days_ahead, cfg)]
    booked = FC.booked_load(B.active(hub.reservations.values()), server.tz)
    counters = FC.counters_per_department(hub.config.counters)
    priors = {r.department: r.minutes for r in plan.route}
    return FC.forecast(cached[1], route, days, hub.config.open, hub.config.close, counters, booked, priors)


# ------------------------------------------------------------------ writes (inside the writer)
def execute(server: QueueServer, hub: SiteHub, client: Client, t: str, b: Mapping[str, Any], now: float) -> Outcome:
    """Apply ``book`` or ``cancel_booking`` to memory; the writer commits it with its batch (and
    answers a BookingError as the refusal it is)."""

    if t == "book":
        return _book(server, hub, b, now)
    if t == "consult_book":
        return consult_book(server, hub, b, now)
    if t == "staff_consult_book":
        return consult_book(server, hub, b, now, consultant=b.get("consultant"), by=b["by"])
    return _cancel(server, hub, b["code"], now)


def _ts(server: QueueServer, day: str, start: str) -> float:
    return dt.datetime.fromisoformat(f"{day}T{start}").replace(tzinfo=server.tz).timestamp()


def _live(hub: SiteHub, code: str, today: str, now: float) -> Mapping[str, Any]:
    """The booking a citizen may still cancel or change with this code."""
    found = B.find(hub.reservations.values(), code.strip())
    if not found:
        _count_unknown(hub.key, now)  # guessing codes to cancel is as slow as guessing to look up
        raise B.BookingError("unknown_reservation", "no booking with that code at this office", "code")
    r = found[0]
    if r.get("cancelled_at"):
        raise B.BookingError("booking_cancelled", "that booking is already cancelled", "code")
    if r.get("ticket"):
        raise B.BookingError("reservation_used", "that booking has already been checked in", "code")
    if r["day"] < today:
        raise B.BookingError("booking_expired", "that booking's day has passed", "code")
    return r


def _book(server: QueueServer, hub: SiteHub, b: Mapping[str, Any], now: float) -> Outcome:
    import re

    from .core.lobby import Change, Event
    from .storage import Batch

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", b["day"]):
        raise B.BookingError("bad_field", "day must be YYYY-MM-DD", "day")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", b["start"]):
        raise B.BookingError("bad_field", "start must be HH:MM", "start")
    cfg = config(server, hub.key)
    plan, route = _route_departments(server, b)
    dept = B.booking_department(route, cfg)
    today = server.local_day(now)
    old = _live(hub, b["replaces"], today, now) if b.get("replaces") else None
    slot_start = _ts(server, b["day"], b["start"])
    rows = [r for r in hub.reservations.values() if r is not old]
    B.check_slot(cfg=cfg, department=dept, day=b["day"], start=b["start"], slot_start=slot_start, now=now,
                 today=today,
                 open_days=[d.isoformat() for d in B.opening_days(dt.date.fromisoformat(today), cfg.days_ahead, cfg)],
                 day_slots=B.slot_times(hub.config.open, hub.config.close, cfg),
                 taken=B.used(rows, b["day"], slot_start, dept or ""))
    taken = {r["code"] for r in hub.reservations.values() if r["day"] >= today}
    code = None
    while code is None:
        code = B.new_code(taken, secrets.randbelow(10**6))
    answers = {k: str(v)[:40] for k, v in (b.get("answers") or {}).items()}
    row = reservation_row(id=str(uuid.uuid4()), site=hub.key, day=b["day"], slot_start=slot_start,
                          slot_end=slot_start + cfg.slot_minutes * 60, purposes=list(plan.purposes), code=code,
                          answers=answers, lang=b.get("lang") or "ja", department=dept, created_at=now)
    hub.reservations[(b["day"], code)] = row
    written = [row]
    events = [Event("booked", payload={"day": b["day"], "start": b["start"], "department": dept,
                                       "purposes": list(plan.purposes), "lead_days": _lead_days(today, b["day"])})]
    if old is not None:
        old["cancelled_at"] = now  # type: ignore[index]
        written.append(dict(old))
        events.append(Event("booking_cancelled", payload={"day": old["day"], "changed": True}))

    def undo() -> None:
        hub.reservations.pop((b["day"], code), None)
        if old is not None:
            old["cancelled_at"] = None  # type: ignore[index]

    result = {"booking": B.public_view(row, now, cfg),
              "path": f"/plan/?site={hub.key}&b={code}"}
    return Outcome(result, Change(events=tuple(events)), Batch(reservations=written), undo=undo)


def consult_book(server: QueueServer, hub: SiteHub, b: Mapping[str, Any], now: float,
                 consultant: str | None = None, by: str | None = None) -> Outcome:
    """Book a consultation slot: one free consultant of the topic's desk in the chosen mode (the
    least booked that day, or ``consultant`` when staff book for a citizen). Inside the writer, so
    the last free consultant of a slot goes to exactly one request."""
    import re

    from .core.lobby import Change, Event
    from .jobs import Outcome
    from .storage import Batch

    # staff messages are only type-checked at the edge (consultation_api.FIELDS): check the shapes here
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", b["day"]):
        raise B.BookingError("bad_field", "day must be YYYY-MM-DD", "day")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", b["start"]):
        raise B.BookingError("bad_field", "start must be HH:MM", "start")
    cfg, day_cfg = _consult_day_cfg(server, hub)
    desk = B.check_consult(cfg, b["topic"], b["mode"])
    today = server.local_day(now)
    try:
        slot_start = _ts(server, b["day"], b["start"])
    except ValueError:
        raise B.BookingError("bad_field", f"{b['day']} is not a date", "day") from None
    rows = list(hub.reservations.values())
    free = B.free_consultants(cfg, rows, desk, b["mode"], slot_start)
    if consultant is not None:
        free = [c for c in free if c.staff == consultant]
    import dataclasses

    # the slot's places are the free consultants (not site.toml's [booking.capacity]): one place
    # when one is free, none otherwise
    slot_cfg = dataclasses.replace(day_cfg, capacity={desk: 1})
    B.check_slot(cfg=slot_cfg, department=desk, day=b["day"], start=b["start"], slot_start=slot_start, now=now,
                 today=today,
                 open_days=[d.isoformat() for d in B.opening_days(dt.date.fromisoformat(today), day_cfg.days_ahead,
                                                                   day_cfg)],
                 day_slots=B.slot_times(hub.config.open, hub.config.close, day_cfg),
                 taken=0 if free else 1 << 30)
    taken = {r["code"] for r in rows if r["day"] >= today}
    code = None
    while code is None:
        code = B.new_code(taken, secrets.randbelow(10**6))
    purposes = ["consultation"] if server.catalogue and "consultation" in server.catalogue.purposes else []
    row = reservation_row(id=str(uuid.uuid4()), site=hub.key, day=b["day"], slot_start=slot_start,
                          slot_end=slot_start + cfg.slot_minutes * 60, purposes=purposes, code=code,
                          lang=b.get("lang") or "ja", department=desk, created_at=now,
                          consultant=free[0].staff, mode=b["mode"], topic=b["topic"])
    hub.reservations[(b["day"], code)] = row

    def undo() -> None:
        hub.reservations.pop((b["day"], code), None)

    ev = Event("booked", payload={"day": b["day"], "start": b["start"], "department": desk, "purposes": purposes,
                                  "lead_days": _lead_days(today, b["day"]), "mode": b["mode"], "topic": b["topic"],
                                  "by": "staff" if by else "citizen"})
    result = {"booking": view(server, hub, row, now), "path": f"/plan/?site={hub.key}&b={code}"}
    return Outcome(result, Change(events=(ev,)), Batch(reservations=[row]), undo=undo)


def _lead_days(today: str, day: str) -> int:
    return (dt.date.fromisoformat(day) - dt.date.fromisoformat(today)).days


def _cancel(server: QueueServer, hub: SiteHub, code: str, now: float) -> Outcome:
    from .core.lobby import Change, Event
    from .storage import Batch

    r = _live(hub, code, server.local_day(now), now)
    r["cancelled_at"] = now  # type: ignore[index]

    def undo() -> None:
        r["cancelled_at"] = None  # type: ignore[index]

    ev = Event("booking_cancelled", payload={"day": r["day"], "changed": False})
    return Outcome({"booking": view(server, hub, r, now)}, Change(events=(ev,)),
                   Batch(reservations=[dict(r)]), undo=undo)


# ------------------------------------------------------------------ kiosk check-in
def check_in(server: QueueServer, hub: SiteHub, code: str, now: float) -> tuple[dict, float | None]:
    """The booking a kiosk checks in with ``code`` and the ticket's ``reserved_for``.

    A late check-in (after slot start + late_minutes) keeps the answers but not the priority:
    the ticket is served as a walk-in (docs/planning.md, the priority rule).
    """

    code = code.strip()
    today = server.local_day(now)
    others = [k for k, h in server.hubs.items() if k != hub.key
              and any(r["code"] == code and r["day"] == today and not r.get("cancelled_at")
                      for r in h.reservations.values())]
    try:
        row = B.check_in_target(B.find(hub.reservations.values(), code), today, others)
    except B.BookingError as e:
        raise Reply(e.code, e.message, e.field) from None
    cfg = config(server, hub.key)
    return row, (row["slot_start"] if B.on_time(row, now, cfg) else None)  # type: ignore[return-value]


# ------------------------------------------------------------------ QR
QR_MAX_TEXT = 1200  # a list link with ~20 answers is ~450 characters


def qr_svg(text: str) -> bytes:
    """An SVG QR code of ``text`` (a booking or list link: no personal data)."""
    import io

    import qrcode
    import qrcode.image.svg

    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2,
                      error_correction=qrcode.constants.ERROR_CORRECT_M)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


def qr_response(request: Any) -> Any:
    """GET /plan/qr.svg?t=<text>: the page's QR, drawn here so the page needs no QR library."""
    from http import HTTPStatus
    from urllib.parse import parse_qs, urlsplit


    text = (parse_qs(urlsplit(request.path).query).get("t") or [""])[-1]
    if not text or len(text) > QR_MAX_TEXT:
        return response(HTTPStatus.BAD_REQUEST, f"t must be 1–{QR_MAX_TEXT} characters".encode(), "text/plain")
    return response(HTTPStatus.OK, qr_svg(text), "image/svg+xml")


# ------------------------------------------------------------------ staff view
def reservations_view(server: QueueServer, hub: SiteHub, day: str, now: float) -> dict[str, Any]:
    """The admin's day of bookings: each with its state and procedure list (to prepare forms the
    day before), and the capacity per department and slot. Purposes and answers only."""
    from .core.journey import PlanError, plan_to_dict, plan_visit

    cfg = config(server, hub.key)
    rows = sorted((r for (d, _), r in hub.reservations.items() if d == day), key=lambda r: (r["slot_start"], r["code"]))
    out = []
    for r in rows:
        item = {**r, "state": B.state(r, now, cfg), "start": clock(server, r["slot_start"])}
        cat = server.catalogue
        item["purpose_names"] = [cat.purposes[p].name.get("ja", p) if cat and p in cat.purposes else p
                                 for p in r["purposes"]]
        if server.catalogue is not None:
            try:
                plan = plan_to_dict(plan_visit(server.catalogue, r["purposes"], r.get("answers") or {}, "ja"))
                item["procedures"] = [{"department": s["department"], "department_name": s["department_name"],
                                       "procedures": [p["name"] for p in s["procedures"]],
                                       "documents": list(dict.fromkeys(d["name"] for p in s["procedures"]
                                                                       for d in p["documents"]))}
                                      for s in plan["steps"]]
            except PlanError:
                item["procedures"] = []
        out.append(item)
    counts: dict[str, int] = {}
    for r in out:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return {"reservations": out, "day": day, "counts": counts,
            "capacity": {d: n for d, n in cfg.capacity.items() if n}, "slot_minutes": cfg.slot_minutes,
            "slots": B.slot_times(hub.config.open, hub.config.close, cfg)}


def clock(server: QueueServer, ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, server.tz).strftime("%H:%M")


# (the page's files and its first screen: queue_server/plan_page.py)


# ------------------------------------------------------------------ end of day
def erase_answers_before(engine: Any, site: str, day: str) -> int:
    """The answers of bookings of days before ``day`` go (purposes, times and states stay for the
    KPIs): what a family said about a death is kept no longer than the visit needs it."""
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from .storage import ReservationRow

    with Session(engine) as s, s.begin():
        result = s.execute(update(ReservationRow).where(ReservationRow.site == site, ReservationRow.day < day)
                           .values(answers={}))
        return int(getattr(result, "rowcount", 0) or 0)


def forget_answers_before(hub: SiteHub, day: str) -> None:
    """The same in memory (the rows of past days stay so an old code is answered 'expired')."""
    for r in hub.reservations.values():
        if r["day"] < day:
            r["answers"] = {}
