"""Consultation bookings (相談の予約): slots per desk and consultant, in person or online, against
the real server and the shipped config/consultation.toml; the pure slot rules on their own."""

import asyncio

import pytest

from queue_server.core import booking as B
from queue_server.core.problems import ConfigError
from tests.queue_server.test_booking import planner, second_opening_day
from tests.support.live_server import Client


class _Staff:
    def __init__(self, *departments: str):
        self.departments = frozenset(departments)


STAFF = {"a": _Staff("kosodate"), "b": _Staff("kosodate"), "c": _Staff("shogai")}


def _cfg() -> B.ConsultConfig:
    raw = {"booking": {"slot_minutes": 60, "desks": {"child": "kosodate", "dis": "shogai"}, "consultants": [
        {"staff": "a", "desk": "kosodate", "modes": ["in_person", "online"], "online_link": "https://m.example/a"},
        {"staff": "b", "desk": "kosodate", "modes": ["in_person"]},
        {"staff": "c", "modes": ["online"], "online_link": "https://m.example/c"}]}}
    return B.load_consult(raw, STAFF, {"kosodate", "shogai"}, ["child", "dis"])


def test_a_slot_is_free_while_one_consultant_of_the_desk_in_that_mode_has_nothing_overlapping():
    cfg = _cfg()
    t = 1_000_000.0
    assert [c.staff for c in B.free_consultants(cfg, [], "kosodate", "in_person", t)] == ["a", "b"]
    assert [c.staff for c in B.free_consultants(cfg, [], "kosodate", "online", t)] == ["a"]
    a_online = {"day": "d", "slot_start": t, "slot_end": t + 3600, "consultant": "a", "code": "1"}
    assert B.free_consultants(cfg, [a_online], "kosodate", "online", t) == []
    assert [c.staff for c in B.free_consultants(cfg, [a_online], "kosodate", "in_person", t)] == ["b"]
    # a 30-minute booking half an hour in still overlaps the hour slot; one ending at its start does not
    half = {**a_online, "slot_start": t + 1800, "slot_end": t + 3600, "consultant": "b"}
    before = {**a_online, "slot_start": t - 3600, "slot_end": t}
    assert B.free_consultants(cfg, [half, before], "kosodate", "in_person", t)[0].staff == "a"
    assert B.free_consultants(cfg, [{**a_online, "cancelled_at": 5.0}], "kosodate", "online", t)[0].staff == "a"
    assert B.check_consult(cfg, "dis", "online") == "shogai"
    with pytest.raises(B.BookingError) as e:
        B.check_consult(cfg, "dis", "in_person")
    assert e.value.code == "not_bookable" and e.value.field == "mode"
    with pytest.raises(B.BookingError) as e:
        B.check_consult(cfg, "tax", "online")
    assert e.value.code == "unknown_topic"


def test_bad_booking_config_names_every_problem_by_path():
    raw = {"booking": {"slot_minutes": 5, "desks": {"child": "mars", "nope": "kosodate"}, "consultants": [
        {"staff": "zz"}, {"staff": "c", "desk": "kosodate"}, {"staff": "a", "modes": ["video"]},
        {"staff": "b", "modes": ["online"], "online_link": "http://insecure"}]}}
    with pytest.raises(ConfigError) as e:
        B.load_consult(raw, STAFF, {"kosodate", "shogai"}, ["child"])
    paths = [p.where for p in e.value.problems]
    assert paths == ["booking.slot_minutes", "booking.desks.child", "booking.desks.nope",
                     "booking.consultants[0].staff", "booking.consultants[1].desk", "booking.consultants[2].modes",
                     "booking.consultants[3].online_link"]


def test_citizen_books_online_sees_the_link_only_with_the_code_and_the_consultant_is_taken(live):
    day = second_opening_day()

    async def scenario():
        p, hello = await Client.open(live.url, role="planner", site="honcho")
        topics = {t["key"]: t for t in hello["result"]["snapshot"]["consult"]["topics"]}
        assert topics["child_development"]["modes"] == ["in_person", "online"]
        assert topics["livelihood"]["modes"] == ["in_person"] and "elder_care" not in topics
        slots = await p.ok("consult_slots", topic="child_development", mode="online")
        assert slots["department"] == "kosodate" and slots["slot_minutes"] == 60
        ten = next(s for s in next(d for d in slots["days"] if d["day"] == day)["slots"] if s["start"] == "10:30")
        assert ten["free"] == 1 and "online_link" not in str(slots)
        booked = (await p.ok("consult_book", day=day, start="10:30", topic="child_development", mode="online"))["booking"]
        assert booked["consult"] == {"topic": "child_development", "mode": "online",
                                     "online_link": "https://meet.example.jp/sakata-kosodate01"}
        # the only online consultant of 子育て支援課 is taken at 10:30, in person too
        again = await p.request("consult_book", day=day, start="10:30", topic="child_development", mode="in_person")
        assert again["error"]["code"] == "slot_full"
        in_person = (await p.ok("consult_book", day=day, start="11:30", topic="child_development",
                                mode="in_person"))["booking"]
        assert in_person["consult"]["online_link"] is None and in_person["purposes"] == ["consultation"]
        bad = await p.request("consult_book", day=day, start="10:30", topic="livelihood", mode="online")
        assert bad["error"]["code"] == "not_bookable" and bad["error"]["field"] == "mode"
        unknown = await p.request("consult_slots", topic="tax", mode="online")
        assert unknown["error"]["code"] == "unknown_topic"
        await p.close()
        return booked["code"]

    code = asyncio.run(scenario())
    live.kill()  # committed before confirmed: consultant, mode and topic survive a restart
    live.start()

    async def after():
        p = await planner(live)
        again = (await p.ok("booking", code=code))["booking"]
        assert again["consult"]["online_link"] == "https://meet.example.jp/sakata-kosodate01"
        slots = await p.ok("consult_slots", topic="child_development", mode="online")
        assert next(s for s in next(d for d in slots["days"] if d["day"] == day)["slots"]
                    if s["start"] == "10:30")["free"] == 0
        await p.close()

    asyncio.run(after())


def test_desk_kpis_count_booked_and_walk_in_consultations_and_their_waits():
    from queue_server.consultation_kpi import desks

    bookings = [{"department": "kosodate", "mode": "online", "ticket": None, "cancelled_at": None},
                {"department": "kosodate", "mode": "in_person", "ticket": "t1", "cancelled_at": None},
                {"department": "kosodate", "mode": "in_person", "ticket": None, "cancelled_at": 5.0},
                {"department": "shogai", "mode": "in_person", "ticket": None, "cancelled_at": None}]
    visits = [{"department": "kosodate", "booked": True, "wait": 2.0},
              {"department": "kosodate", "booked": False, "wait": 30.0},
              {"department": "kosodate", "booked": False, "wait": 10.0},
              {"department": "kosodate", "booked": False, "wait": None},  # not called yet: no wait
              {"department": "soudan", "booked": False, "wait": 4.0}]
    k = desks(bookings, visits)
    assert k["kosodate"] == {"booked_online": 1, "booked_in_person": 1, "cancelled": 1, "checked_in": 1,
                             "visits_booked": 1, "walk_ins": 3, "wait_booked_median": 2.0, "wait_booked_p90": 2.0,
                             "wait_walk_in_median": 10.0, "wait_walk_in_p90": 30.0}
    assert k["shogai"]["booked_in_person"] == 1 and k["shogai"]["walk_ins"] == 0
    assert k["shogai"]["wait_walk_in_median"] is None
    assert k["soudan"]["walk_ins"] == 1 and k["soudan"]["wait_walk_in_median"] == 4.0
    assert desks([], []) == {}


def test_consult_route_moves_the_first_step_of_a_consultation_booking_to_its_desk():
    from queue_server.core.model import RouteStep

    route = [RouteStep("soudan", ("consultation_intake",), (), 20.0), RouteStep("shogai", (), (0,), 10.0)]
    moved = B.consult_route(route, {"topic": "child_development", "department": "kosodate"})
    assert [r.department for r in moved] == ["kosodate", "shogai"] and moved[0].minutes == 20.0
    assert B.consult_route(route, {"topic": None, "department": "shimin"}) == route  # a visit booking
    assert B.consult_route(route, None) == route


@pytest.fixture
def all_day(tmp_path):
    from tests.support.booking_config import booking_config_dir, noon_clock
    from tests.support.live_server import LiveServer

    cfg = booking_config_dir(tmp_path, all_day=True, min_lead_minutes=0)
    toml = cfg / "consultation.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("slot_minutes = 60", "slot_minutes = 10"), encoding="utf-8")
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml", config_dir=cfg,
                     extra=noon_clock(tmp_path)).start()  # today's slots, whatever the hour
    yield srv
    srv.kill()


def test_an_in_person_consultation_booking_checks_in_at_the_kiosk_for_its_desk_with_priority(all_day):
    import datetime as dt
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()

    async def go():
        p = await planner(all_day)
        slots = await p.ok("consult_slots", topic="child_development", mode="in_person")
        todays = [s for d in slots["days"] if d["day"] == today for s in d["slots"] if s["free"]]
        if not todays:
            await p.close()
            pytest.skip("no 10-minute consultation slot left today (after 23:40 in Sakata)")
        slot = todays[0]
        booked = (await p.ok("consult_book", day=today, start=slot["start"], topic="child_development",
                             mode="in_person"))["booking"]
        k, _ = await Client.open(all_day.url, role="kiosk", device="k", token=all_day.tokens().roles["kiosk"],
                                 site="honcho")
        issued = await k.ok("issue", reservation_code=booked["code"], idempotency_key="consult-checkin")
        # served at 子育て支援課 (not the general 相談 desk the catalogue sends walk-ins to), as a booking
        assert [r["department"] for r in issued["route"]][0] == "kosodate"
        assert issued["ticket"]["number"].startswith("R")
        again = await p.ok("booking", code=booked["code"])
        assert again["booking"]["state"] == "checked_in"
        walk_in = await k.ok("issue", purposes=["consultation"], answers={}, idempotency_key="walk-in")
        assert walk_in["route"][0]["department"] == "soudan" and not walk_in["ticket"]["number"].startswith("R")
        await k.close()
        await p.close()

    asyncio.run(go())


def test_twenty_citizens_at_once_for_one_online_consultant_give_exactly_one_booking(live):
    day = second_opening_day()

    async def go():
        clients = await asyncio.gather(*(planner(live) for _ in range(20)))
        replies = await asyncio.gather(*(c.request("consult_book", day=day, start="15:30", topic="disability",
                                                   mode="online") for c in clients))
        ok = [r["result"]["booking"] for r in replies if "result" in r]
        assert len(ok) == 1, [r.get("error") for r in replies][:3]
        assert ok[0]["consult"]["online_link"] == "https://meet.example.jp/sakata-fukushi01"
        assert sorted({r["error"]["code"] for r in replies if "error" in r}) == ["slot_full"]
        for c in clients:
            await c.close()

    asyncio.run(go())
