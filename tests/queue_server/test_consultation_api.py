"""The staff role over the real server: sign-in, sessions, the index, handovers, audit, and the
security matrix (every message × every role and session state returns no consultation data)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from websockets.asyncio.client import connect

from queue_server import accounts
from queue_server import consultation_store as db
from queue_server.consultation_api import FIELDS, OPEN_MESSAGES
from queue_server.storage import make_engine
from tests.queue_server.test_booking import second_opening_day
from tests.support.live_server import ROOT, Client, LiveServer

pytestmark = pytest.mark.slow  # a real server process
PASSWORD = "sakata-soudan-2026"
ACCOUNTS = ("kosodate01", "fukushi01", "zeimu01", "soudan01", "admin01", "slow01")
CITIZEN = {"name": "髙橋 花子", "birth_date": "1990-05-06"}


def make_config(tmp) -> object:
    cfg = tmp / "config"
    cfg.mkdir()
    shutil.copy(ROOT / "config" / "site.toml", cfg / "site.toml")
    (cfg / "catalogue").symlink_to(ROOT / "config" / "catalogue")
    extra = '\n[[staff]]\nidentifier = "slow01"\nname = "試験"\ndepartments = ["kenko"]\nrole = "consultant"\n'
    (cfg / "consultation.toml").write_text((ROOT / "config" / "consultation.toml").read_text(encoding="utf-8") + extra,
                                           encoding="utf-8")
    return cfg


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("consult")
    url = f"sqlite:///{tmp / 'lobby.db'}"
    cfg = make_config(tmp)
    # one password through the real CLI (piped, as a script would), the others directly
    run = subprocess.run([sys.executable, str(ROOT / "run.py"), "staff-account", "add", "kosodate01", "--password-stdin",
                          "--db", url, "--config-dir", str(cfg)], input=PASSWORD + "\n", capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    engine = make_engine(url)
    for ident in ACCOUNTS[1:]:
        db.set_password(engine, ident, accounts.hash_password(PASSWORD), time.time())
    engine.dispose()
    srv = LiveServer(db_url=url, secrets=tmp / "secrets.toml", config_dir=cfg, log_level="INFO").start()
    yield srv
    srv.kill()
    # everything the server printed or logged (INFO) over the module: sign-ins, never a password
    log = "".join(srv.log)
    assert "staff sign-in: kosodate01" in log and "sign-in refused: 'slow01'" in log
    assert PASSWORD not in log and "wrong password" not in log and "髙橋" not in log


def arun(coro):
    return asyncio.run(coro)


async def staff(live, ident: str | None = None, **hello) -> tuple[Client, dict]:
    c, r = await Client.open(live.url, role="staff", **hello)
    assert "result" in r, r
    if ident:
        r = await c.request("sign_in", identifier=ident, password=PASSWORD)
        assert "result" in r, r
    return c, r.get("result", {})


async def issue(live) -> dict:
    k, _ = await Client.open(live.url, role="kiosk", device="k", token=live.tokens().roles["kiosk"], site="honcho")
    try:
        return await k.ok("issue", purposes=["certificate"], answers={}, idempotency_key=f"c-{time.time_ns()}")
    finally:
        await k.close()


def test_the_whole_path_record_search_handover_take_over_and_audit(live):
    async def go():
        ticket = await issue(live)
        ko, me = await staff(live, "kosodate01")
        assert me["staff"]["departments"] == ["kosodate"] and "session" in me
        rec = await ko.ok("record", citizen=CITIZEN, department="kosodate", topic="child_development", consent=True)
        # the same citizen typed with new kanji and half-width digits is found
        found = await ko.ok("search", citizen={"name": "高橋花子", "birth_date": "１９９０/５/６"}, reason="相談対応")
        assert [r["id"] for r in found["records"]] == [rec["id"]]
        h = await ko.ok("handover_create", consultation=rec["id"], to_department="shogai", asked="発達の相談",
                        done="面談30分", needed="障がい福祉サービスの案内", documents=["母子手帳"], ticket=ticket["ticket"]["number"])
        assert h["ticket"] == ticket["ticket"]["id"]
        await ko.close()

        fu, _ = await staff(live, "fukushi01")
        assert (await fu.ok("called", counter=1))["ticket"] is None
        tok = live.tokens().counters["honcho"][1]
        counter, _ = await Client.open(live.url, role="counter", site="honcho", counter=1, token=tok)
        await counter.ok("open")
        await counter.ok("call", ticket=ticket["ticket"]["id"])
        await counter.close()
        assert (await fu.ok("called", counter=1))["ticket"] == ticket["ticket"]["number"]
        assert (await fu.request("called", counter=99))["error"]["code"] == "unknown_counter"
        by_ticket = await fu.ok("handovers", ticket=ticket["ticket"]["number"])
        assert [s["id"] for s in by_ticket["handovers"]] == [h["id"]]
        sheet = by_ticket["handovers"][0]
        assert sheet["needed"] == "障がい福祉サービスの案内" and sheet["ticket"] == ticket["ticket"]["number"]
        assert sheet["documents"] == ["母子手帳"] and sheet["status"] == "open"
        assert (await fu.ok("handover", handover=h["id"], reason="来庁"))["handover"]["asked"] == "発達の相談"
        assert (await fu.ok("take_over", handover=h["id"]))["status"] == "taken"
        again = await fu.request("take_over", handover=h["id"])
        assert again["error"]["code"] == "already_taken"
        assert (await fu.ok("handovers", ticket=ticket["ticket"]["number"]))["handovers"] == []  # closed
        await fu.close()

        ze, _ = await staff(live, "zeimu01")
        r = await ze.request("search", citizen=CITIZEN, reason="確認")
        assert r["error"]["code"] == "no_rights" and "records" not in json.dumps(r)
        r = await ze.request("handover", handover=h["id"])
        assert r["error"]["code"] == "unknown_handover"
        await ze.close()

        so, _ = await staff(live, "soudan01")
        records = (await so.ok("search", citizen=CITIZEN, reason="総合相談"))["records"]
        assert len(records) == 1 and records[0]["status"] == "referred"  # handed over
        await so.close()

        ad, _ = await staff(live, "admin01")
        entries = (await ad.ok("audit"))["entries"]
        await ad.close()
        seen = {(e["actor"], e["action"], e["outcome"]) for e in entries}
        assert ("kosodate01", "record", "consent") in seen
        assert ("kosodate01", "search", "shown:1") in seen
        assert ("kosodate01", "handover_create", "shogai") in seen
        assert ("fukushi01", "handover_view", "") in seen and ("fukushi01", "take_over", "") in seen
        assert ("zeimu01", "search", "denied") in seen
        assert ("soudan01", "search", "shown:1") in seen
        assert any(e["reason"] == "相談対応" for e in entries)
        assert not any("髙橋" in json.dumps(e, ensure_ascii=False) or "花子" in json.dumps(e, ensure_ascii=False)
                       for e in entries)
    arun(go())


def test_without_consent_the_record_stays_in_its_department_and_cannot_be_handed_over(live):
    citizen = {"name": "佐藤 一", "birth_date": "1975-01-02"}

    async def go():
        ko, _ = await staff(live, "kosodate01")
        rec = await ko.ok("record", citizen=citizen, department="kosodate", topic="childcare", consent=False)
        r = await ko.request("handover_create", consultation=rec["id"], to_department="shogai", asked="a", needed="n")
        assert r["error"]["code"] == "consent_required"
        # to the 福祉総合相談係 it may always go
        await ko.ok("handover_create", consultation=rec["id"], to_department="soudan", asked="a", needed="n")
        assert len((await ko.ok("search", citizen=citizen, reason="r"))["records"]) == 1
        await ko.close()
        fu, _ = await staff(live, "fukushi01")
        assert await fu.ok("search", citizen=citizen, reason="r") == {"records": [], "found": False}
        await fu.close()
        so, _ = await staff(live, "soudan01")
        assert len((await so.ok("search", citizen=citizen, reason="r"))["records"]) == 1
        assert any(s["to_department"] == "soudan" for s in (await so.ok("handovers"))["handovers"])
        await so.close()
    arun(go())


def test_bad_input_gets_clear_errors_that_leak_nothing(live):
    async def go():
        ko, _ = await staff(live, "kosodate01")
        unknown = await ko.ok("search", citizen={"name": "存在 しない", "birth_date": "2001-01-01"}, reason="r")
        assert unknown == {"records": [], "found": False}
        cases = [
            (("search", {"citizen": {"name": "山田"}, "reason": "r"}), "bad_citizen", "citizen.birth_date"),
            (("search", {"citizen": {"name": "山田", "birth_date": "1980-02-30"}, "reason": "r"}), "bad_citizen",
             "citizen.birth_date"),
            (("record", {"citizen": CITIZEN, "department": "mars", "topic": "other", "consent": True}),
             "unknown_department", "department"),
            (("record", {"citizen": CITIZEN, "department": "shogai", "topic": "other", "consent": True}),
             "no_rights", "department"),
            (("record", {"citizen": CITIZEN, "department": "kosodate", "topic": "gossip", "consent": True}),
             "unknown_topic", "topic"),
            (("handover_create", {"consultation": "nope", "to_department": "shogai", "asked": "a", "needed": "n"}),
             "unknown_consultation", "consultation"),
            (("handovers", {"ticket": "9999"}), "unknown_ticket", "ticket"),
            (("audit", {}), "no_rights", None),
            (("record", {"citizen": CITIZEN, "department": "kosodate", "topic": "other"}), "missing_field", "consent"),
        ]
        for (mtype, body), code, field in cases:
            r = await ko.request(mtype, **body)
            assert r["error"]["code"] == code and r["error"]["field"] == field, (mtype, r)
            assert "山田" not in r["error"]["message"] and "Traceback" not in r["error"]["message"]
        rec = await ko.ok("record", citizen=CITIZEN, department="kosodate", topic="other", consent=True)
        r = await ko.request("handover_create", consultation=rec["id"], to_department="atlantis", asked="a", needed="n")
        assert r["error"]["code"] == "unknown_department" and r["error"]["field"] == "to_department"
        await ko.close()
    arun(go())


def test_every_staff_message_without_a_live_session_of_an_allowed_department_returns_no_data(live):
    """Every message × (no hello, hello without sign-in, expired session, 税務課, admin) and every device role."""
    body = {"counter": 1, "from": "2026-01-01", "to": "2026-12-31", "citizen": CITIZEN, "reason": "r", "department": "kosodate", "topic": "other", "consent": True,
            "consultation": "x", "to_department": "shogai", "asked": "a", "needed": "n", "handover": "x", "ticket": None,
            "mode": "in_person", "day": "2026-12-01", "start": "09:30"}
    data_words = ("records", "handovers", "handover", "entries", "asked", "needed", "bookings", "booking", "days")

    def leaks(reply: dict) -> bool:
        result = reply.get("result")  # an empty list is "nothing"; any record, sheet or audit row is data
        return isinstance(result, dict) and any(result.get(w) for w in data_words)

    async def go():
        ko, _ = await staff(live, "kosodate01")
        rec = await ko.ok("record", citizen=CITIZEN, department="kosodate", topic="other", consent=True)
        h = await ko.ok("handover_create", consultation=rec["id"], to_department="shogai", asked="a", needed="n")
        await ko.close()
        targets = {**body, "consultation": rec["id"], "handover": h["id"]}

        def own(m: str) -> dict:  # each message with its own fields (the edge refuses unknown ones)
            return {k: v for k, v in targets.items() if k in FIELDS[m]}
        guarded = sorted((m for m in FIELDS if m not in OPEN_MESSAGES), key=lambda m: m == "sign_out")  # last
        assert len(guarded) == 14

        # no hello at all: a staff message from an unknown connection is an unknown type
        ws = await connect(live.url)
        for m in guarded:
            await ws.send(json.dumps({"type": m, "id": 1, **own(m)}))
            reply = json.loads(await ws.recv())
            assert "error" in reply and not leaks(reply), (m, reply)
        await ws.close()

        # hello, never signed in
        anon, _ = await staff(live)
        for m in guarded:
            r = await anon.request(m, **own(m))
            assert r["error"]["code"] == "sign_in_required", (m, r)
        await anon.close()

        # a signed-in session that has expired (the database says so: no waiting on the clock)
        fu, me = await staff(live, "fukushi01")
        engine = make_engine(live.db_url)
        with engine.begin() as c:
            c.execute(text("UPDATE staff_sessions SET last_seen = 0 WHERE digest = :d"),
                      {"d": accounts.token_digest(me["session"])})
        for m in guarded:
            r = await fu.request(m, **own(m))
            assert r["error"]["code"] in ("session_expired", "sign_in_required") and not leaks(r), (m, r)
        await fu.close()
        # and presenting the old token on a new connection does not bring it back
        again, res = await staff(live, session=me["session"])
        assert res["staff"] is None and res["session_error"] == "session_expired"
        await again.close()

        # 税務課 and the admin: signed in, but no index or handover data
        for ident in ("zeimu01", "admin01"):
            c, _ = await staff(live, ident)
            for m in guarded:
                if m in ("sign_out", "options", "audit", "kpi") and ident == "admin01":
                    continue
                r = await c.request(m, **own(m))
                assert not leaks(r), (ident, m, r)
                assert m == "sign_out" or r.get("error", {}).get("code") != "sign_in_required", (ident, m, r)
            await c.close()

        # device roles (kiosk, counter, display, admin token, public) cannot send staff messages
        toks = live.tokens()
        for role, hello in [("kiosk", {"token": toks.roles["kiosk"]}), ("display", {"token": toks.roles["display"]}),
                            ("admin", {"token": toks.roles["admin"]}),
                            ("counter", {"token": toks.counters["honcho"][1], "counter": 1})]:
            c, r = await Client.open(live.url, role=role, site="honcho", **hello)
            assert "result" in r, r
            for m in guarded:
                reply = await c.request(m, **own(m))
                assert "error" in reply and not leaks(reply), (role, m, reply)
            await c.close()
        engine.dispose()
    arun(go())


def test_sign_in_rotates_the_session_and_sign_out_ends_it(live):
    async def go():
        a, first = await staff(live, "soudan01")
        old = first["session"]
        second = await a.ok("sign_in", identifier="soudan01", password=PASSWORD)
        assert second["session"] != old
        b, res = await staff(live, session=old)
        assert res["staff"] is None  # the token the page held before signing in again is dead
        c, res = await staff(live, session=second["session"])
        assert res["staff"]["identifier"] == "soudan01"  # a reload resumes
        await c.ok("sign_out")
        assert (await c.request("options"))["error"]["code"] == "sign_in_required"
        d, res = await staff(live, session=second["session"])
        assert res["staff"] is None
        for x in (a, b, c, d):
            await x.close()
    arun(go())


def test_wrong_passwords_are_slowed_and_unknown_identifiers_answer_the_same(live):
    async def go():
        c, _ = await staff(live)
        r = await c.request("sign_in", identifier="nobody99", password=PASSWORD)
        assert r["error"]["code"] == "bad_credentials"
        for _ in range(3):
            r = await c.request("sign_in", identifier="slow01", password="wrong password!")
            assert r["error"]["code"] == "bad_credentials" and r["error"]["message"] == "identifier or password is wrong"
        r = await c.request("sign_in", identifier="slow01", password=PASSWORD)  # even the right one waits
        assert r["error"]["code"] == "slow_down" and r["error"]["retry_after"] >= 1
        await c.close()
        engine = make_engine(live.db_url)
        with engine.connect() as conn:
            hashes = [row[0] for row in conn.execute(text("SELECT hash FROM staff_passwords"))]
            audit = json.dumps([list(row) for row in conn.execute(text("SELECT * FROM consultation_audit"))])
        engine.dispose()
        assert all(h.startswith("$argon2id$") for h in hashes)
        assert PASSWORD not in audit and "wrong password" not in audit and PASSWORD not in "".join(live.log)
    arun(go())


def test_a_page_from_another_origin_cannot_open_a_staff_connection(live):
    async def go():
        ws = await connect(live.url, origin="http://evil.example")
        await ws.send(json.dumps({"type": "hello", "id": 1, "role": "staff"}))
        assert json.loads(await ws.recv())["error"]["code"] == "bad_origin"
        await ws.close()
        ws = await connect(live.url, origin=f"http://127.0.0.1:{live.port}")
        await ws.send(json.dumps({"type": "hello", "id": 1, "role": "staff"}))
        assert json.loads(await ws.recv())["result"]["role"] == "staff"
        await ws.close()
    arun(go())


def test_kpis_count_consultations_repeats_and_handover_take_over_for_admins_only(live):
    citizen = {"name": "鈴木 三郎", "birth_date": "1960-03-03"}

    async def go():
        ko, _ = await staff(live, "kosodate01")
        a = await ko.ok("record", citizen=citizen, department="kosodate", topic="childcare", consent=True)
        await ko.ok("record", citizen={"name": "鈴木三郎", "birth_date": "19600303"}, department="kosodate",
                    topic="childcare", consent=True)
        await ko.ok("handover_create", consultation=a["id"], to_department="shogai", asked="a", needed="n")
        r = await ko.request("kpi", **{"from": "2000-01-01", "to": "2000-01-02"})
        assert r["error"]["code"] == "no_rights"
        await ko.close()
        ad, _ = await staff(live, "admin01")
        from datetime import datetime, timedelta
        from zoneinfo import ZoneInfo

        today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
        k = await ad.ok("kpi", **{"from": str(today - timedelta(days=1)), "to": str(today)})
        assert k["departments"]["kosodate"]["consultations"] >= 2 and k["repeat_citizens"] >= 1
        assert k["handovers"]["created"] >= 1
        assert "citizen_key" not in json.dumps(k)
        bad = await ad.request("kpi", **{"from": "2026-13-01", "to": "2026-12-01"})
        assert bad["error"]["code"] == "bad_period" and bad["error"]["field"] == "from"
        await ad.close()
    arun(go())


def test_hostile_frames_before_and_after_a_staff_hello_get_an_error_reply_and_the_socket_stays_open(live):
    """Found by the fuzz run after the staff role joined: the server looked for a staff hello with
    plain json.loads, so 20,000 brackets before any hello raised RecursionError and closed the
    socket (1011). Staff messages now go through the edge's checker like every device's."""
    async def go():
        ws = await connect(live.url)
        try:
            hostile = ["[" * 20000, '{"type": "hello", "id": 1, "role": "staff", "site": "\\ud800"}',
                       '{"type": "hello", "id": 2, "role": "staff", "site": NaN}']
            for raw in hostile:
                await ws.send(raw)
                reply = json.loads(await ws.recv())
                assert reply["error"]["code"] in ("bad_json", "bad_field"), (raw[:40], reply)
            await ws.send(json.dumps({"type": "hello", "id": 3, "role": "staff", "site": "honcho"}))
            assert "result" in json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "sign_in", "id": 4, "identifier": "kosodate01", "password": "x\u0000"}))
            assert json.loads(await ws.recv())["error"]["field"] == "password"
        finally:
            await ws.close()
    arun(go())


# ------------------------------------------------------------------ consultation bookings (相談の予約)
def test_consultant_sees_the_citizens_online_booking_and_books_one_by_phone(live):
    day = second_opening_day()

    async def go():
        p, _ = await Client.open(live.url, role="planner", site="honcho")
        online = (await p.ok("consult_book", day=day, start="13:30", topic="childcare", mode="online"))["booking"]
        ko, _ = await staff(live, "kosodate01")
        listed = (await ko.ok("consult_bookings"))["bookings"]
        mine = next(b for b in listed if b["code"] == online["code"])
        assert mine == {"code": online["code"], "day": day, "start": "13:30", "end": "14:30", "department": "kosodate",
                        "topic": "childcare", "mode": "online", "consultant": "kosodate01", "state": "booked"}
        # by phone: in person at 14:30; the slot the citizen took is no longer free for the same consultant
        slots = await ko.ok("consult_slots", topic="child_development", mode="in_person")
        at = {s["start"]: s["free"] for d in slots["days"] if d["day"] == day for s in d["slots"]}
        assert at["13:30"] == 0 and at["14:30"] == 1
        for bad_day, bad_start, where in (("2026-13-45", "10:30", "day"), ("tomorrow", "10:30", "day"),
                                          (day, "25:00", "start")):
            r = await ko.request("consult_book", topic="child_development", mode="in_person", day=bad_day,
                                 start=bad_start)
            assert r["error"]["code"] == "bad_field" and r["error"]["field"] == where, r
        full = await ko.request("consult_book", topic="child_development", mode="in_person", day=day, start="13:30")
        assert full["error"]["code"] == "slot_full"
        made = (await ko.ok("consult_book", topic="child_development", mode="in_person", day=day, start="14:30"))
        assert made["booking"]["consult"]["mode"] == "in_person" and made["booking"]["consult"]["online_link"] is None
        # the citizen's page finds the staff-made booking by its code
        seen = (await p.ok("booking", code=made["booking"]["code"]))["booking"]
        assert seen["consult"]["topic"] == "child_development" and seen["state"] == "booked"
        # another desk's consultant sees none of these and may not book for 子育て支援課
        fu, _ = await staff(live, "fukushi01")
        assert not [b for b in (await fu.ok("consult_bookings"))["bookings"] if b["department"] == "kosodate"]
        no = await fu.request("consult_book", topic="childcare", mode="in_person", day=day, start="15:30")
        assert no["error"]["code"] == "no_rights"
        # the 福祉総合相談係 sees every desk; the admin none
        so, _ = await staff(live, "soudan01")
        assert {b["code"] for b in (await so.ok("consult_bookings"))["bookings"]} >= {online["code"], made["booking"]["code"]}
        ad, _ = await staff(live, "admin01")
        assert (await ad.request("consult_bookings"))["error"]["code"] == "no_rights"
        # the desk KPIs (福祉総合相談係): 子育て支援課 one online and one in-person booking, a walk-in at 総合相談
        k, _ = await Client.open(live.url, role="kiosk", device="k2", token=live.tokens().roles["kiosk"], site="honcho")
        await k.ok("issue", purposes=["consultation"], answers={}, idempotency_key=f"w-{day}-{id(k)}")
        await k.close()
        today = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()  # the city's day
        kpi = (await so.ok("kpi", **{"from": min(today, day), "to": max(today, day)}))["desks"]
        assert kpi["kosodate"]["booked_online"] >= 1 and kpi["kosodate"]["booked_in_person"] >= 1
        assert kpi["soudan"]["walk_ins"] >= 1
        # each listing is in the audit log
        entries = (await ad.ok("audit", limit=50))["entries"]
        assert {"bookings_list", "booking_made"} <= {e["action"] for e in entries}
        for c in (p, ko, fu, so, ad):
            await c.close()

    arun(go())
