"""The ``staff`` websocket role: sign-in, the consultation index, handovers and the audit log.

A thin shell over consultation.py (rules), accounts.py (passwords, slowing, sessions) and
consultation_store.py (tables). The queue server hands every message of a ``staff`` connection
here (session.py: one line in ``on_message``); these messages never enter the lobby's writer.

Security measures (docs/consultation.md, tests/queue_server/test_consultation_api.py):
- every message except hello, sign_in, resume and ping needs a live session; the session is
  checked against the database at every message (a sign-out or password change elsewhere counts);
- sign-in always issues a fresh random token and ends the one the browser held (no fixation);
- the token travels in the message body, never in a cookie, so another site's page cannot ride on
  it (CSRF); the handshake's ``Origin``, when a browser sends one, must be this server's host;
- failed sign-ins are slowed per identifier and per address;
- records a staff member may not see answer exactly as records that do not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import accounts
from . import consultation_store as db
from . import protocol as P
from .core import consultation
from .core.consultation import InputError, Rules, StaffAccount
from .core.errors import RequestError

log = logging.getLogger("madoguchi.consultation")

# The staff role's messages, checked by the same edge checker as every device's (protocol.parse,
# queue_server/schema.py): valid Unicode without control characters, bounded lengths and depth.
_F = P.Field
_TEXT = P.Text(consultation.MAX_TEXT)
_KEY = P.Text(64, 1)
_SESSION = P.Text(128, 1)
FIELDS: dict[str, dict[str, P.Field]] = {
    "hello": {"role": _F(P.OneOf(("staff",)), True), "site": _F(P.SITE), "session": _F(_SESSION),
              "device": _F(P.DEVICE)},
    "ping": {},
    "sign_in": {"identifier": _F(_KEY, True), "password": _F(P.Text(256, 1), True)},
    "resume": {"session": _F(_SESSION, True)},
    "sign_out": {},
    "options": {},
    "record": {"citizen": _F(P.Obj({"name": P.Text(200), "birth_date": P.Text(32)}), True),
               "department": _F(_KEY, True), "topic": _F(_KEY, True), "consent": _F(P.Bool(), True),
               "status": _F(_KEY)},
    "search": {"citizen": _F(P.Obj({"name": P.Text(200), "birth_date": P.Text(32)}), True),
               "reason": _F(P.Text(200, 1), True)},
    "handover_create": {"consultation": _F(_KEY, True), "to_department": _F(_KEY, True),
                        "asked": _F(_TEXT, True), "done": _F(_TEXT), "needed": _F(_TEXT, True),
                        "documents": _F(P.Array(P.Text(100), 30)), "ticket": _F(_KEY)},
    "handovers": {"ticket": _F(_KEY)},
    "handover": {"handover": _F(_KEY, True), "reason": _F(P.Text(200))},  # not "id": that is the request's own id
    "take_over": {"handover": _F(_KEY, True)},
    "audit": {"limit": _F(P.Int(1, 10000))},
    "kpi": {"from": _F(P.Text(10, 1), True), "to": _F(P.Text(10, 1), True)},  # bad_period names a bad date
    "called": {"counter": _F(P.Int(0, 9999), True)},
    # consultation bookings (相談の予約; planner_api.consult_*): the desk's bookings, and booking by phone
    "consult_bookings": {"day": _F(P.Date())},
    "consult_slots": {"topic": _F(_KEY, True), "mode": _F(_KEY, True)},
    "consult_book": {"topic": _F(_KEY, True), "mode": _F(_KEY, True), "day": _F(P.Date(), True),
                     "start": _F(P.HHMM, True), "consultant": _F(_KEY)},
}
PURGE_EVERY = 3600.0  # seconds between retention runs
OPEN_MESSAGES = frozenset({"hello", "ping", "sign_in", "resume"})

ERRORS = {
    "not_configured": "consultations are not configured on this server (config/consultation.toml)",
    "bad_origin": "this page's origin may not open a staff connection",
    "bad_credentials": "identifier or password is wrong",
    "slow_down": "too many failed sign-ins: wait before trying again",
    "sign_in_required": "sign in first",
    "session_expired": "the session has expired: sign in again",
    "no_rights": "your account may not do this",
    "unknown_department": "no such department",
    "unknown_topic": "no such topic category",
    "unknown_consultation": "no such consultation record",
    "unknown_handover": "no such handover",
    "unknown_ticket": "no ticket with that number today",
    "consent_required": "the citizen did not consent to sharing: no handover to another department",
    "already_taken": "the handover was already taken over",
    "bad_citizen": "the citizen key is incomplete or malformed",
    "bad_status": "no such status",
    "unknown_consultant": "no such consultant at this desk",
    "bad_period": "from and to must be dates (YYYY-MM-DD), from not after to, at most 366 days",
}


class Refusal(RequestError):
    """A staff request refused; the message defaults to the code's text in ERRORS."""

    def __init__(self, code: str, field: str | None = None, message: str | None = None, **extra: Any):
        super().__init__(code, message or ERRORS.get(code) or P.ERROR_CODES.get(code, code), field, **extra)


@dataclass
class StaffState:
    digest: str | None = None
    account: StaffAccount | None = None
    site: str = ""


def is_staff_hello(raw: str | bytes) -> bool:
    """True for a well-formed hello with role "staff" (the server routes the whole connection
    here); anything else, malformed included, is the device protocol's to answer."""
    try:
        req = P.parse(raw, {"hello": FIELDS["hello"]})
    except P.ProtocolError:
        return False
    return req.type == "hello"


def attach(server: Any) -> ConsultationApi:
    """The server's one ConsultationApi, made on first use."""
    api = getattr(server, "_consultation_api", None)
    if api is None:
        api = server._consultation_api = ConsultationApi(server)
    return api


def load_pepper(path: Path) -> bytes:
    """The secret that keys citizen keys, created once beside the device tokens (mode 600)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


class ConsultationApi:
    def __init__(self, server: Any, rules: Rules | None = None, pepper: bytes | None = None):
        self.server = server
        self.engine = server.store.engine
        self.clock = server.clock
        self.departments = set(server.city.departments)
        if rules is None:  # read once at server start (loaders.load_consultation): None when absent
            config = getattr(server, "consultation", None)
            rules = config.rules if config is not None else None
        self.rules = rules
        self.error: str | None = None if rules is not None else "not_configured"
        if pepper is None:
            secrets_path = Path(getattr(server, "secrets_path", None) or "var/secrets.toml")
            secrets_path.parent.mkdir(parents=True, exist_ok=True)
            pepper = load_pepper(secrets_path.with_name("consultation.key"))
        self.pepper = pepper
        r = self.rules
        self.throttle = accounts.Throttle(r.free_attempts, r.free_attempts_address, r.first_delay, r.max_delay) if r else accounts.Throttle()
        self.directory: accounts.Directory = accounts.LocalDirectory(lambda i: db.password_hash(self.engine, i))
        self.states: weakref.WeakKeyDictionary[Any, StaffState] = weakref.WeakKeyDictionary()
        self.last_purge: float | None = None

    async def maybe_purge(self) -> dict[str, int] | None:
        """The retention job, at most hourly, run by staff activity (and by `run.py consultation-purge`
        from cron for a server nobody signs in to)."""
        now = self.clock()
        if self.rules is None or (self.last_purge is not None and now - self.last_purge < PURGE_EVERY):
            return None
        self.last_purge = now
        cutoffs = consultation.purge_before(now, self.rules.retention_days)
        counts = await asyncio.to_thread(db.purge, self.engine, cutoffs, self.rules.idle_seconds)
        if any(counts.values()):
            log.info("consultation retention: deleted %s", counts)
        return counts

    # ------------------------------------------------------------------ framing
    async def on_message(self, client: Any, raw: str | bytes) -> None:
        rid = None
        try:
            await self.maybe_purge()
            req = self._parse(raw)
            rid = req.id
            result = await self._dispatch(client, req)
            await self._send(client, P.reply(rid, result))
        except RequestError as e:  # a refusal of any layer (core/errors.py): the edge's, ours, the booking rules'
            await self._send(client, P.error_reply(e.re if isinstance(e, P.ProtocolError) else rid, e))
        except Exception:  # never a stack trace or a record in an error text
            log.exception("staff request failed")
            await self._send(client, P.error(rid, "internal", P.ERROR_CODES["internal"]))

    async def _send(self, client: Any, msg: str) -> None:
        with contextlib.suppress(Exception):  # a closed connection: nobody left to answer
            await client.ws.send(msg)

    def _parse(self, raw: str | bytes) -> P.Request:
        """The edge's strict JSON and field checks, against the staff role's table."""
        return P.parse(raw, FIELDS)

    async def _dispatch(self, client: Any, req: P.Request) -> Any:
        st = self.states.get(client)
        if req.type == "hello":
            return await self._hello(client, req.body)
        if st is None:
            raise Refusal("hello_first")
        if req.type == "ping":
            return {"pong": self.clock()}
        if req.type == "sign_in":
            return await self._sign_in(client, st, req.body)
        if req.type == "resume":
            return await self._resume(st, req.body["session"])
        who = await self._session(st)  # every other message: a live session, checked now
        handler = getattr(self, f"_m_{req.type}")
        return await handler(st, who, req.body)

    # ------------------------------------------------------------------ hello, sign-in, sessions
    async def _hello(self, client: Any, b: dict[str, Any]) -> dict[str, Any]:
        if client.role:
            raise Refusal("already_hello")
        if self.error:
            raise Refusal(self.error)
        if not origin_allowed(client.ws):
            raise Refusal("bad_origin")
        site = b.get("site") or next(iter(self.server.hubs))
        if site not in self.server.hubs:
            raise Refusal("unknown_site", "site")
        client.role, client.site, client.device = "staff", site, (b.get("device") or "")[:64]
        self.server.clients.placed(client)
        st = self.states[client] = StaffState(site=site)
        result: dict[str, Any] = {"role": "staff", "site": site, "server_time": self.clock(), "staff": None}
        if b.get("session"):
            try:
                result.update(await self._resume(st, b["session"]))
            except Refusal as e:
                result["session_error"] = e.code  # the page shows the sign-in form with this reason
        return result

    async def _sign_in(self, client: Any, st: StaffState, b: dict[str, Any]) -> dict[str, Any]:
        ident = b["identifier"].strip()[:64]
        address = _address(client.ws)
        keys = [f"id:{ident.lower()}", f"ip:{address}"]
        now = self.clock()
        wait = self.throttle.wait(keys, now)
        if wait > 0:
            raise Refusal("slow_down", None, f"too many failed sign-ins: try again in {int(wait) + 1} s",
                          retry_after=int(wait) + 1)
        account = self.rules.staff.get(ident)
        ok = await asyncio.to_thread(self.directory.verify, ident, b["password"])
        if not ok or account is None:
            self.throttle.failed(keys, self.clock())
            log.info("staff sign-in refused: %r from %s", ident, address)  # never the password
            await self._audit(now, ident or "?", "sign_in", outcome="failed")
            raise Refusal("bad_credentials", "password")  # the same for an unknown identifier
        self.throttle.succeeded(keys[0])
        token = accounts.new_session_token()
        digest = accounts.token_digest(token)
        # rotation: whatever session this connection (or the browser) held ends now
        await asyncio.to_thread(db.open_session, self.engine, digest, ident, now, address, st.digest)
        st.digest, st.account = digest, account
        log.info("staff sign-in: %s from %s", ident, address)
        await self._audit(now, ident, "sign_in", outcome="ok")
        return {"session": token, "staff": _me(account), "expires_in": self.rules.idle_seconds}

    async def _resume(self, st: StaffState, token: str) -> dict[str, Any]:
        st.digest = accounts.token_digest(token)
        st.account = None
        who = await self._session(st)
        return {"staff": _me(who), "expires_in": self.rules.idle_seconds}

    async def _session(self, st: StaffState) -> StaffAccount:
        if st.digest is None:
            raise Refusal("sign_in_required")
        row = await asyncio.to_thread(db.get_session, self.engine, st.digest)
        now = self.clock()
        account = self.rules.staff.get(row["identifier"]) if row else None
        if row is None or account is None or not accounts.session_alive(
                row["created_at"], row["last_seen"], now, self.rules.idle_seconds, self.rules.absolute_seconds):
            if row is not None:
                await asyncio.to_thread(db.close_session, self.engine, st.digest)
            st.digest, st.account = None, None
            raise Refusal("session_expired")
        await asyncio.to_thread(db.touch_session, self.engine, st.digest, now)
        st.account = account
        return account

    async def _m_sign_out(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        await asyncio.to_thread(db.close_session, self.engine, st.digest)
        await self._audit(self.clock(), who.identifier, "sign_out")
        st.digest, st.account = None, None
        return {"signed_out": True}

    async def _m_options(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        city = self.server.city
        return {
            "me": _me(who),
            "departments": {k: dict(v) for k, v in city.departments.items()},
            "topics": {k: dict(v) for k, v in self.rules.topics.items()},
            "general_department": self.rules.general_department,
            "may_search": consultation.may_search(who, self.rules),
            "may_audit": consultation.may_read_audit(who),
            "may_kpi": who.role in ("admin", "general"),
        }

    # ------------------------------------------------------------------ the index
    def _key(self, citizen: dict[str, Any]) -> str:
        try:
            return consultation.citizen_key(citizen.get("name"), citizen.get("birth_date"), self.pepper)
        except InputError as e:
            raise Refusal("bad_citizen", f"citizen.{e.field}", str(e)) from None

    async def _m_record(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        if b["department"] not in self.departments:
            raise Refusal("unknown_department", "department")
        if not consultation.may_record(who, b["department"]):
            raise Refusal("no_rights", "department")
        if b["topic"] not in self.rules.topics:
            raise Refusal("unknown_topic", "topic")
        status = b.get("status") or "open"
        if status not in consultation.STATUSES:
            raise Refusal("bad_status", "status")
        now = self.clock()
        cid = await asyncio.to_thread(db.add_consultation, self.engine, {
            "citizen_key": self._key(b["citizen"]), "at": now, "department": b["department"],
            "consultant": who.identifier, "topic": b["topic"], "status": status, "consent": b["consent"]})
        await self._audit(now, who.identifier, "record", "consultation", cid, outcome="consent" if b["consent"] else "no_consent")
        return {"id": cid}

    async def _m_search(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        reason = b["reason"].strip()[:200]
        if not consultation.may_search(who, self.rules):
            await self._audit(now, who.identifier, "search", reason=reason, outcome="denied")
            raise Refusal("no_rights")
        if not reason:
            raise Refusal("missing_field", "reason", "search: say why (reason)")
        key = self._key(b["citizen"])
        rows = await asyncio.to_thread(db.consultations_for, self.engine, key)
        seen = [r for r in rows if consultation.record_visible(who, self.rules, r)]
        await self._audit(now, who.identifier, "search", "citizen", key[:16], reason, f"shown:{len(seen)}")
        return {"records": [self._record_view(r) for r in seen], "found": bool(seen)}

    def _record_view(self, r: dict[str, Any]) -> dict[str, Any]:
        staff = self.rules.staff.get(r["consultant"])
        return {"id": r["id"], "at": r["at"], "day": self._day(r["at"]), "department": r["department"],
                "consultant": staff.name if staff else r["consultant"], "topic": r["topic"], "status": r["status"],
                "consent": r["consent"]}

    def _day(self, at: float) -> str:
        return datetime.fromtimestamp(at, self.server.tz).strftime("%Y-%m-%d %H:%M")

    # ------------------------------------------------------------------ handovers
    async def _m_handover_create(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        rec = await asyncio.to_thread(db.consultation, self.engine, b["consultation"])
        if rec is None or not consultation.record_visible(who, self.rules, rec):
            raise Refusal("unknown_consultation", "consultation")
        if not consultation.may_record(who, rec["department"]):
            raise Refusal("no_rights", "consultation")  # only the recording department hands its case over
        try:
            sheet = consultation.check_handover(b, self.departments, self.rules.topics)
        except InputError as e:
            raise Refusal("unknown_department" if e.field == "to_department" else "bad_field", e.field, str(e)) from None
        if not rec["consent"] and sheet["to_department"] != self.rules.general_department:
            raise Refusal("consent_required", "consultation")
        ticket = self._ticket_id(st.site, b["ticket"]) if b.get("ticket") else None
        now = self.clock()
        hid = await asyncio.to_thread(db.add_handover, self.engine, {
            **sheet, "consultation": rec["id"], "from_department": rec["department"], "created_by": who.identifier,
            "created_at": now, "ticket": ticket})
        await self._audit(now, who.identifier, "handover_create", "handover", hid, outcome=sheet["to_department"])
        return {"id": hid, "ticket": ticket}

    def _ticket_id(self, site: str, number: str) -> str:
        hub = self.server.hubs[site]
        number = number.strip().upper()
        for t in hub.lobby.tickets.values():
            if t.label == number or t.id == number:
                return t.id
        raise Refusal("unknown_ticket", "ticket")

    async def _m_handovers(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        """Open handovers for the caller: all to their departments, or those of one called ticket."""
        if who.role not in ("consultant", "general"):
            raise Refusal("no_rights")
        ticket = self._ticket_id(st.site, b["ticket"]) if b.get("ticket") else None
        depts = None if who.role == "general" or ticket else set(who.departments)
        rows = await asyncio.to_thread(db.handovers, self.engine, ticket=ticket, to_departments=depts)
        seen = [r for r in rows if consultation.handover_visible(who, r)]
        now = self.clock()
        for r in seen:
            await self._audit(now, who.identifier, "handover_list", "handover", r["id"],
                              "ticket_called" if ticket else "inbox")
        return {"handovers": [self._sheet_view(r) for r in seen]}

    async def _m_called(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        """The ticket number now at a counter (what the lobby board shows too), so the consultant's
        page opens that ticket's handovers by itself when their counter calls the citizen."""
        hub = self.server.hubs[st.site]
        if b["counter"] not in hub.lobby.counters:
            raise Refusal("unknown_counter", "counter")
        t = hub.lobby.ticket_at(b["counter"])
        return {"ticket": t.label if t is not None else None}

    async def _m_handover(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        row = await asyncio.to_thread(db.handover, self.engine, b["handover"])
        if row is None or not consultation.handover_visible(who, row):
            raise Refusal("unknown_handover", "handover")  # the same answer whether it exists or not
        await self._audit(self.clock(), who.identifier, "handover_view", "handover", row["id"],
                          (b.get("reason") or "")[:200])
        return {"handover": self._sheet_view(row)}

    async def _m_take_over(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        row = await asyncio.to_thread(db.handover, self.engine, b["handover"])
        if row is None or not consultation.handover_visible(who, row):
            raise Refusal("unknown_handover", "handover")
        if not consultation.may_take_over(who, row):
            raise Refusal("no_rights", "handover")
        now = self.clock()
        if not await asyncio.to_thread(db.take_handover, self.engine, row["id"], who.identifier, now):
            raise Refusal("already_taken", "handover")
        await self._audit(now, who.identifier, "take_over", "handover", row["id"])
        return {"id": row["id"], "status": "taken"}

    def _sheet_view(self, r: dict[str, Any]) -> dict[str, Any]:
        staff = self.rules.staff.get(r["created_by"])
        label = None  # the ticket's number today, for the consultant who calls it
        for hub in self.server.hubs.values():
            t = hub.lobby.tickets.get(r["ticket"]) if r["ticket"] else None
            label = t.label if t is not None else label
        return {"id": r["id"], "consultation": r["consultation"], "from_department": r["from_department"],
                "to_department": r["to_department"], "created_by": staff.name if staff else r["created_by"],
                "created": self._day(r["created_at"]), "asked": r["asked"], "done": r["done"], "needed": r["needed"],
                "documents": list(r["documents"]), "ticket": label, "status": r["status"]}

    # ------------------------------------------------------------------ audit
    # ------------------------------------------------------------------ consultation bookings
    def _desks(self, who: StaffAccount) -> set[str] | None:
        """The desks whose bookings ``who`` sees and makes (None: every desk, the 福祉総合相談係)."""
        if who.role == "general":
            return None
        if who.role != "consultant":
            raise Refusal("no_rights")
        return set(who.departments)

    async def _m_consult_bookings(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        """Consultation bookings of the staff member's desks from ``day`` (default today) on: when,
        topic, mode, consultant, code and state; no person's name (bookings hold none)."""
        from . import planner_api
        from .core import booking as B

        desks = self._desks(who)
        hub = self.server.hubs[st.site]
        now = self.clock()
        day = b.get("day") or self.server.local_day(now)
        cfg = planner_api.config(self.server, hub.key)
        rows = sorted((r for r in hub.reservations.values() if r.get("topic") and r["day"] >= day
                       and (desks is None or r.get("department") in desks)),
                      key=lambda r: (r["slot_start"], r["code"]))
        out = [{"code": r["code"], "day": r["day"], "start": planner_api.clock(self.server, r["slot_start"]),
                "end": planner_api.clock(self.server, r["slot_end"]), "department": r.get("department"),
                "topic": r["topic"], "mode": r.get("mode"), "consultant": r.get("consultant"),
                "state": B.state(r, now, cfg)} for r in rows]
        await self._audit(now, who.identifier, "bookings_list", outcome=f"rows:{len(out)}")
        return {"bookings": out}

    async def _m_consult_slots(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        from . import planner_api

        desks = self._desks(who)
        result = planner_api.consult_slots(self.server, self.server.hubs[st.site], b, self.clock())
        if desks is not None and result["department"] not in desks:
            raise Refusal("no_rights", "topic")
        return result

    async def _m_consult_book(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        """Book a slot for a citizen (on the phone, at the desk): through the lobby's single writer,
        like a citizen's booking, so a slot's last consultant goes to one request only."""
        import asyncio as aio

        from .jobs import Job

        desks = self._desks(who)
        slots = await self._m_consult_slots(st, who, {"topic": b["topic"], "mode": b["mode"]})
        if b.get("consultant") and b["consultant"] not in self.rules.staff:
            raise Refusal("unknown_consultant", "consultant")
        body = {k: b[k] for k in ("topic", "mode", "day", "start", "consultant") if b.get(k)}
        body["by"] = who.identifier
        if desks is not None and slots["department"] not in desks:
            raise Refusal("no_rights", "topic")
        client = next(c for c in self.states if self.states[c] is st)
        job = Job(client, P.Request("staff_consult_book", None, body), aio.get_running_loop().create_future(), None)
        await self.server.queue.put(job)
        reply = json.loads(await job.fut)
        if "error" in reply:
            e = reply["error"]
            raise Refusal(e["code"], e.get("field"), e.get("message"))
        booking = reply["result"]["booking"]
        await self._audit(self.clock(), who.identifier, "booking_made", "booking", booking["code"],
                          outcome=slots["department"])
        return reply["result"]

    async def _audit(self, at: float, actor: str, action: str, kind: str = "", rid: str = "", reason: str = "",
                     outcome: str = "") -> None:
        await asyncio.to_thread(db.audit, self.engine, at, actor, action, kind, rid, reason, outcome)

    async def _m_audit(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        if not consultation.may_read_audit(who):
            await self._audit(now, who.identifier, "audit_read", outcome="denied")
            raise Refusal("no_rights")
        limit = max(1, min(int(b.get("limit") or 200), 1000))
        rows = await asyncio.to_thread(db.audit_entries, self.engine, limit)
        await self._audit(now, who.identifier, "audit_read", outcome=f"rows:{len(rows)}")
        return {"entries": [{**r, "when": self._day(r["at"])} for r in rows]}

    async def _m_kpi(self, st: StaffState, who: StaffAccount, b: dict[str, Any]) -> dict[str, Any]:
        """Aggregates only (consultation_kpi.py), for admins and the 福祉総合相談係."""
        from .consultation_kpi import compute

        if who.role not in ("admin", "general"):
            raise Refusal("no_rights")
        start, end = _period(b, self.server.tz)
        cons, hand = await asyncio.to_thread(db.period_rows, self.engine, start, end)
        await self._audit(self.clock(), who.identifier, "kpi_read", reason=f"{b['from']}..{b['to']}")
        return {"from": b["from"], "to": b["to"], **compute(cons, hand), "desks": await self._desk_kpi(st, start, end)}

    async def _desk_kpi(self, st: StaffState, start: float, end: float) -> dict[str, Any]:
        """Booked vs walk-in consultations and their waits per desk (consultation_kpi.desks)."""
        from . import planner_api
        from .consultation_kpi import desks

        cfg = planner_api.consult_config(self.server)
        cat = self.server.catalogue
        purposes = {p.id for p in cat.purposes.values() if p.kind == "consultation"} if cat else {"consultation"}
        names = set(cfg.desks.values()) if cfg else set()
        names |= {self.rules.general_department}  # the walk-in 総合相談 desk the kiosk routes 相談 to
        books, visits = await asyncio.to_thread(db.desk_rows, self.engine, st.site, start, end, names, purposes)
        return desks(books, visits)


def _period(b: dict[str, Any], tz: Any) -> tuple[float, float]:
    """[start, end) in epoch seconds of the local days from..to inclusive."""
    from datetime import date, timedelta

    try:
        first, last = date.fromisoformat(b["from"]), date.fromisoformat(b["to"])
    except ValueError:
        raise Refusal("bad_period", "from") from None
    if last < first or (last - first).days > 366:
        raise Refusal("bad_period", "to")
    start = datetime.combine(first, datetime.min.time(), tz).timestamp()
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz).timestamp()
    return start, end


def _me(a: StaffAccount) -> dict[str, Any]:
    return {"identifier": a.identifier, "name": a.name, "departments": sorted(a.departments), "role": a.role}


def _address(ws: Any) -> str:
    try:
        return str(ws.remote_address[0])
    except Exception:
        return "?"


def origin_allowed(ws: Any) -> bool:
    """A browser always sends Origin with a websocket handshake; it must name this server's host.
    Clients that are not browsers send none (and could forge one anyway): they still need a session."""
    request = getattr(ws, "request", None)
    if request is None:
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    host = request.headers.get("Host", "")
    try:
        return urlsplit(origin).netloc.lower() == host.lower() and bool(host)
    except ValueError:
        return False
