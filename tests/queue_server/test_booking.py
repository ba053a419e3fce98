"""Booking from the planning page (planner role) against the real server: places, codes, bad input."""

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from queue_server.core import booking as B
from tests.support.booking_config import booking_config_dir
from tests.support.live_server import Client, LiveServer

TZ = ZoneInfo("Asia/Tokyo")
DEATH = {"purposes": ["death"], "answers": {"death_filed": "yes", "deceased_age": "80"}, "lang": "ja"}


def second_opening_day() -> str:
    """An opening day after today (Mon–Fri, no holiday in the shipped config): always bookable."""
    cfg = B.BookingConfig(closed_dates=frozenset({"2026-12-29", "2026-12-30", "2026-12-31", "2027-01-01",
                                                  "2027-01-02", "2027-01-03"}))
    days = B.opening_days(dt.datetime.now(TZ).date(), 3, cfg)
    return next(d for d in days if d > dt.datetime.now(TZ).date()).isoformat()


async def planner(live: LiveServer, site: str = "honcho") -> Client:
    c, r = await Client.open(live.url, role="planner", site=site)
    assert "result" in r, r
    return c


@pytest.fixture
def ten_places(tmp_path):
    cfg = booking_config_dir(tmp_path, capacity={"shimin": 10})
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml", config_dir=cfg).start()
    yield srv
    srv.kill()


def test_fifty_parallel_bookings_for_ten_places_give_exactly_ten(ten_places):
    day = second_opening_day()

    async def scenario():
        clients = await asyncio.gather(*(planner(ten_places) for _ in range(50)))
        replies = await asyncio.gather(*(c.request("book", day=day, start="10:00", **DEATH) for c in clients))
        ok = [r["result"]["booking"] for r in replies if "result" in r]
        refused = [r["error"]["code"] for r in replies if "error" in r]
        assert len(ok) == 10 and refused == ["slot_full"] * 40
        assert len({b["code"] for b in ok}) == 10 and all(b["department"] == "shimin" for b in ok)
        slots = await clients[0].ok("slots", **DEATH)
        today = next(d for d in slots["days"] if d["day"] == day)
        assert next(s for s in today["slots"] if s["start"] == "10:00")["free"] == 0
        assert next(s for s in today["slots"] if s["start"] == "10:30")["free"] == 10
        for c in clients:
            await c.close()

    asyncio.run(scenario())
    ten_places.kill()  # the bookings were committed before they were confirmed: a restart keeps all ten
    ten_places.start()

    async def after_restart():
        c = await planner(ten_places)
        slots = await c.ok("slots", **DEATH)
        assert next(s for s in next(d for d in slots["days"] if d["day"] == day)["slots"] if s["start"] == "10:00")["free"] == 0
        await c.close()

    asyncio.run(after_restart())


def test_book_look_up_change_cancel_and_every_bad_input(live):
    day = second_opening_day()
    yesterday = (dt.datetime.now(TZ).date() - dt.timedelta(days=1)).isoformat()

    async def scenario():
        p = await planner(live)
        hello_plan = await p.ok("plan", purposes=["death"], answers={}, lang="vi")
        assert hello_plan["question"]["id"] == "death_filed" and hello_plan["booking_department"] == "shimin"
        assert "Đã nộp" in hello_plan["question"]["text"]  # the catalogue's own Vietnamese
        booked = (await p.ok("book", day=day, start="09:00", **DEATH))["booking"]
        assert booked["answers"] == DEATH["answers"] and booked["state"] == "booked" and len(booked["code"]) == 6
        again = await p.request("book", day=day, start="09:00", **DEATH)  # one place per slot in site.toml
        assert again["error"]["code"] == "slot_full" and again["error"]["field"] == "start"
        seen = (await p.ok("booking", code=booked["code"]))["booking"]
        assert seen["day"] == day and seen["slot_start"] == booked["slot_start"]
        moved = (await p.ok("book", day=day, start="09:30", replaces=booked["code"], **DEATH))["booking"]
        assert (await p.ok("booking", code=booked["code"]))["booking"]["state"] == "cancelled"
        free = await p.ok("book", day=day, start="09:00", **DEATH)  # the changed booking freed its place
        assert free["booking"]["code"] not in (booked["code"], moved["code"])
        assert (await p.ok("cancel_booking", code=moved["code"]))["booking"]["state"] == "cancelled"
        twice = await p.request("cancel_booking", code=moved["code"])
        assert twice["error"]["code"] == "booking_cancelled"
        for body, code, fld in (
            ({"day": yesterday, "start": "10:00"}, "slot_past", "start"),
            ({"day": day, "start": "10:10"}, "slot_closed", "start"),
            ({"day": "2030-01-01", "start": "10:00"}, "slot_closed", "day"),
            ({"day": "soon", "start": "10:00"}, "bad_field", "day"),
        ):
            r = await p.request("book", **body, **DEATH)
            assert (r["error"]["code"], r["error"]["field"]) == (code, fld), (body, r)
        unknown = await p.request("booking", code="000000" if free["booking"]["code"] != "000000" else "000001")
        assert unknown["error"]["code"] == "unknown_reservation"
        # the kiosk today: a booking for another day, a cancelled one
        k, _ = await Client.open(live.url, role="kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"], site="honcho")
        other_day = await k.request("issue", reservation_code=free["booking"]["code"], lang="ja", idempotency_key="b-1")
        assert other_day["error"]["code"] == "booking_other_day"
        # another office's kiosk with this office's code
        y, _ = await Client.open(live.url, role="kiosk", device="kiosk-9", token=live.tokens().roles["kiosk"], site="yawata")
        elsewhere = await y.request("issue", reservation_code=free["booking"]["code"], lang="ja", idempotency_key="b-2")
        assert elsewhere["error"]["code"] in ("booking_other_day", "unknown_reservation")
        # the planner role may not do anything else
        denied = await p.request("issue", purposes=["death"], idempotency_key="x")
        assert denied["error"]["code"] == "not_allowed"
        for c in (p, k, y):
            await c.close()

    asyncio.run(scenario())


def test_rate_limit_per_connection(live):
    async def scenario():
        p = await planner(live)
        codes = [("result" in r) or r["error"]["code"]
                 for r in await asyncio.gather(*(p.request("booking", code=f"{i:06d}") for i in range(45)))]
        assert "rate_limited" in codes
        await p.close()

    asyncio.run(scenario())


def test_a_kiosk_plans_a_typed_booking_code_before_checking_it_in(live):
    """``plan`` with ``reservation_code``: the booking's list and waits, no ticket; bad codes named."""
    today = dt.datetime.now(TZ).date().isoformat()
    day = second_opening_day()

    async def scenario():
        a, _ = await Client.open(live.url, role="admin", token=live.tokens().roles["admin"], site="honcho")
        code = (await a.ok("reserve", day=today, start="08:30", minutes=60, purposes=["death"]))["reservation"]["code"]
        k, _ = await Client.open(live.url, role="kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"], site="honcho")
        listed = await k.ok("plan", reservation_code=code, lang="en")
        assert listed["booking"] == {"purposes": ["death"], "answers": {}}
        assert listed["plan"]["purposes"] == ["death"] and listed["plan"]["steps"] and "visit_minutes" in listed
        assert not [t for t in (await a.ok("snapshot"))["tickets"] if t["number"].startswith("R")]  # nothing issued
        issued = await k.ok("issue", reservation_code=code, lang="en", idempotency_key="typed-1")
        assert issued["ticket"]["number"].startswith("R")
        used = await k.request("plan", reservation_code=code, lang="en")
        assert (used["error"]["code"], used["error"]["field"]) == ("reservation_used", "reservation_code")
        p = await planner(live)
        later = (await p.ok("book", day=day, start="09:00", **DEATH))["booking"]["code"]
        other_day = await k.request("plan", reservation_code=later, lang="ja")
        assert other_day["error"]["code"] == "booking_other_day"
        unknown = await k.request("plan", reservation_code="000000" if code != "000000" else "000001", lang="ja")
        assert unknown["error"]["code"] == "unknown_reservation"
        denied = await p.request("plan", reservation_code=later, lang="ja")  # the public page reads "booking"
        assert denied["error"]["code"] == "not_allowed"
        for c in (a, k, p):
            await c.close()

    asyncio.run(scenario())
