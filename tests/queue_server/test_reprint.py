"""A ticket that did not print, flagged for the consoles and printed again on a kiosk (reprint.py),
over real websockets against the real server on a loopback port. The Kivy kiosk and the browser
console do the same in tests/kiosk/test_kiosk_reprint.py."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.support.live_server import Client, LiveServer

_keys = itertools.count(1)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    d = tmp_path_factory.mktemp("reprint")
    srv = LiveServer(db_url=f"sqlite:///{d / 'lobby.db'}", secrets=d / "secrets.toml").start()
    yield srv
    srv.kill()


async def kiosk(live: LiveServer, device: str, site: str = "honcho") -> Client:
    k, r = await Client.open(live.url, role="kiosk", device=device, token=live.tokens().roles["kiosk"], site=site)
    assert "result" in r, r
    return k


async def counter(live: LiveServer, n: int = 1) -> tuple[Client, dict]:
    c, r = await Client.open(live.url, role="counter", site="honcho", counter=n,
                             token=live.tokens().counters["honcho"][n], staff="試験")
    assert "result" in r, r
    return c, r["result"]


async def issue(k: Client, purposes=("certificate",)) -> dict:
    return await k.ok("issue", purposes=list(purposes), answers={}, lang="en", idempotency_key=f"rp-{next(_keys)}")


def test_a_failed_print_is_flagged_reprinted_on_a_working_kiosk_once_and_cleared(live):
    async def go():
        ka = await kiosk(live, "kiosk-a")
        kb = await kiosk(live, "kiosk-b")
        console, _ = await counter(live)
        issued = await issue(ka, ("death",))
        t = issued["ticket"]
        # the kiosk's printer went offline after the job: the ticket did not come out
        await ka.ok("print_result", ticket=t["id"], printed=False, code="offline")
        push = await console.wait_push(lambda p: p.get("push") == "print" and p["data"]["ticket"] == t["id"])
        assert push["data"]["printed"] is False and push["data"]["code"] == "offline"
        assert push["data"]["number"] == t["number"] and push["data"]["device"] == "kiosk-a"
        # a console signing in now sees it flagged, and so does the staff view of the ticket
        other, snap = await counter(live, 2)
        flagged = snap["snapshot"]["not_printed"]
        assert [(x["ticket"], x["number"], x["code"]) for x in flagged] == [(t["id"], t["number"], "offline")]
        admin, r = await Client.open(live.url, role="admin", token=live.tokens().roles["admin"], site="honcho")
        views = {x["id"]: x for x in (await admin.ok("snapshot"))["tickets"]}
        assert views[t["id"]]["not_printed"] is True

        # reprint: not back to kiosk-a, whose printer has just failed, but to kiosk-b, whose works;
        # the same number, QR and route; the reply says why and lists the kiosks
        key = f"c1-reprint-{next(_keys)}"
        r1 = await console.ok("reprint", ticket=t["id"], idempotency_key=key)
        assert (r1["kiosk"], r1["fallback"], r1["why"], r1["printer_code"]) == ("kiosk-b", True, "printer", "offline")
        assert r1["number"] == t["number"] and r1["issued_by"] == "kiosk-a"
        mine = [k for k in r1["kiosks"] if k["device"] in ("kiosk-a", "kiosk-b")]
        assert mine == [{"device": "kiosk-a", "printer": "offline"}, {"device": "kiosk-b", "printer": "ok"}]
        job = await kb.wait_push(lambda p: p.get("push") == "reprint")
        data = job["data"]
        assert data["job"] == r1["job"] and data["lang"] == "en"
        again = data["result"]
        assert again["ticket"]["number"] == t["number"] and again["ticket"]["status_url"] == t["status_url"]
        assert again["ticket"]["issued_at"] == t["issued_at"]
        assert [s["department"] for s in again["route"]] == [s["department"] for s in issued["route"]]
        assert [s["counters"] for s in again["route"]] == [s["counters"] for s in issued["route"]]
        assert again["plan"]["documents"], "the documents every procedure needs are printed too"

        # the same key again: the first reply, and no second job for any kiosk
        assert await console.ok("reprint", ticket=t["id"], idempotency_key=key) == r1
        await ka.ok("ping")  # pushes sent before the reply above would be in front of this one
        await kb.ok("ping")
        assert [p["data"]["job"] for p in kb.pushes if p.get("push") == "reprint"] == [r1["job"]]
        assert not [p for p in ka.pushes if p.get("push") == "reprint"]

        # kiosk-b is out of paper too; staff mended kiosk-a and ask for it by name
        await kb.ok("print_result", ticket=t["id"], printed=False, code="paper_out", job=r1["job"])
        r = await console.request("reprint", ticket=t["id"], kiosk="kiosk-zz")
        assert r["error"]["code"] == "kiosk_offline" and r["error"]["field"] == "kiosk"
        assert "kiosk-a" in r["error"]["message"] and "kiosk-b" in r["error"]["message"]
        r2 = await console.ok("reprint", ticket=t["id"], kiosk="kiosk-a")
        assert (r2["kiosk"], r2["fallback"], r2["why"]) == ("kiosk-a", False, "chosen") and "printer_code" not in r2
        assert {k["device"]: k["printer"] for k in r2["kiosks"]}["kiosk-b"] == "paper_out"
        job = await ka.wait_push(lambda p: p.get("push") == "reprint")
        assert job["data"]["job"] == r2["job"]

        # kiosk-a printed it: every console hears the outcome, the flag is gone, and kiosk-a's
        # printer counts as working again (its next ticket's reprint goes back to it)
        await ka.ok("print_result", ticket=t["id"], printed=True, job=r2["job"])
        done = await other.wait_push(lambda p: p.get("push") == "print" and p["data"]["printed"])
        assert done["data"]["job"] == r2["job"] and done["data"]["ticket"] == t["id"]
        _, snap = await counter(live, 3)
        assert snap["snapshot"]["not_printed"] == []
        views = {x["id"]: x for x in (await admin.ok("snapshot"))["tickets"]}
        assert views[t["id"]]["not_printed"] is False
        t2 = (await issue(ka))["ticket"]
        r3 = await console.ok("reprint", ticket=t2["id"])
        assert (r3["kiosk"], r3["fallback"], r3["why"]) == ("kiosk-a", False, None)
        for c in (ka, kb, console, other, admin):
            await c.close()

    asyncio.run(go())


def test_consoles_hear_which_kiosks_are_connected_with_their_printers(live):
    def seen(console: Client, device: str) -> list[dict]:
        return [p["data"] for p in console.pushes if p.get("push") == "kiosks"
                and any(k["device"] == device for k in p["data"])]

    async def go():
        console, snap = await counter(live)
        assert all(set(k) == {"device", "printer"} for k in snap["snapshot"]["kiosks"])
        assert "kiosk-k" not in [k["device"] for k in snap["snapshot"]["kiosks"]]
        kk = await kiosk(live, "kiosk-k")
        came = await console.wait_push(lambda p: p.get("push") == "kiosks"
                                       and {"device": "kiosk-k", "printer": "ok"} in p["data"])
        assert came["site"] == "honcho"
        t = (await issue(kk))["ticket"]
        await kk.ok("print_result", ticket=t["id"], printed=False, code="cover_open")
        _, again = await counter(live, 2)  # a console signing in now: kiosk-k with its printer's state
        assert {"device": "kiosk-k", "printer": "cover_open"} in again["snapshot"]["kiosks"]
        await kk.close()
        await console.wait_push(lambda p: p.get("push") == "kiosks" and len(seen(console, "kiosk-k")) == 1
                                and all(k["device"] != "kiosk-k" for k in p["data"]))
        await console.close()

    asyncio.run(go())


def test_the_kiosk_a_reprint_goes_to():
    from queue_server.reprint import choose_kiosk

    down = {"k2": {"code": "paper_out", "at": 1.0}}
    assert choose_kiosk("k1", ["k1", "k2", "k3"], down) == ("k1", None)  # the issuing kiosk, working
    assert choose_kiosk("k2", ["k1", "k2", "k3"], down) == ("k1", "printer")  # its printer failed
    assert choose_kiosk("k9", ["k2", "k3"], down) == ("k3", "offline")  # not connected: a working one
    assert choose_kiosk("k2", ["k2"], down) == ("k2", None)  # no other: try it again (staff may have mended it)
    assert choose_kiosk("k9", ["k2"], down) == ("k2", "offline")  # every connected printer failed
    assert choose_kiosk("", ["k2", "k3"], down) == ("k3", None)  # a kiosk with no name has none to miss
    assert choose_kiosk("", ["k2"], down) == ("k2", None)


def test_an_offline_issuing_kiosk_falls_back_to_another_and_none_is_a_clear_error(live):
    async def go():
        ka = await kiosk(live, "kiosk-c")
        t = (await issue(ka))["ticket"]
        await ka.close()
        kb = await kiosk(live, "kiosk-d")
        console, _ = await counter(live)
        r = await console.ok("reprint", ticket=t["id"])
        assert r["kiosk"] == "kiosk-d" and r["fallback"] is True and r["issued_by"] == "kiosk-c"
        push = await kb.wait_push(lambda p: p.get("push") == "reprint")
        assert push["data"]["result"]["ticket"]["number"] == t["number"]
        await kb.close()
        for _ in range(300):  # the server forgets the closed connection on its own loop, soon after
            r = await console.request("reprint", ticket=t["id"])
            if "error" in r:
                break
            await asyncio.sleep(0.1)
        assert r["error"]["code"] == "no_kiosk" and "honcho" in r["error"]["message"]
        assert t["number"] in r["error"]["message"] and r["error"]["field"] == "ticket"
        await console.close()

    asyncio.run(go())


def test_bad_reprint_requests_name_what_is_wrong(live):
    async def go():
        ka = await kiosk(live, "kiosk-e")
        ky = await kiosk(live, "kiosk-y", site="yawata")
        console, _ = await counter(live)
        r = await console.request("reprint", ticket="no-such-ticket")
        assert r["error"]["code"] == "unknown_ticket" and r["error"]["field"] == "ticket"
        r = await console.request("reprint", ticket="bad id!")
        assert r["error"]["code"] == "bad_field" and r["error"]["field"] == "ticket"
        r = await console.request("reprint")
        assert r["error"]["code"] == "missing_field"
        elsewhere = (await issue(ky))["ticket"]
        r = await console.request("reprint", ticket=elsewhere["id"])
        assert r["error"]["code"] == "ticket_other_site" and "yawata" in r["error"]["message"]
        closed = (await issue(ka))["ticket"]
        admin, _ = await Client.open(live.url, role="admin", token=live.tokens().roles["admin"], site="honcho")
        await admin.ok("cancel", ticket=closed["id"], reason="test")
        r = await console.request("reprint", ticket=closed["id"])
        assert r["error"]["code"] == "ticket_closed" and closed["number"] in r["error"]["message"]
        # roles: a kiosk cannot order reprints, a console cannot report prints
        r = await ka.request("reprint", ticket=closed["id"])
        assert r["error"]["code"] == "not_allowed"
        r = await console.request("print_result", ticket=closed["id"], printed=False)
        assert r["error"]["code"] == "not_allowed"
        r = await ka.request("print_result", ticket="no-such-ticket", printed=False)
        assert r["error"]["code"] == "unknown_ticket"
        r = await ka.request("print_result", ticket=closed["id"], printed="no")
        assert r["error"]["code"] == "bad_field" and r["error"]["field"] == "printed"
        assert not [p for p in ka.pushes if p.get("push") == "reprint"]
        for c in (ka, ky, console, admin):
            await c.close()

    asyncio.run(go())


def test_the_not_printed_flag_survives_a_restart(tmp_path):
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml").start()
    try:
        async def before():
            k = await kiosk(srv, "kiosk-r")
            t = (await issue(k))["ticket"]
            ok = (await issue(k))["ticket"]
            await k.ok("print_result", ticket=t["id"], printed=False, code="paper_out")
            await k.ok("print_result", ticket=ok["id"], printed=False, code="cover_open")
            await k.ok("print_result", ticket=ok["id"], printed=True)  # 「もう一度印刷する」 worked
            s = await kiosk(srv, "kiosk-s")
            await s.ok("print_result", ticket=t["id"], printed=False, code="offline")  # a reprint failed there
            for x in (k, s):
                await x.close()
            return t

        t = asyncio.run(before())
        srv.kill()
        srv.start()

        async def after():
            c, snap = await counter(srv)
            k = await kiosk(srv, "kiosk-r")
            s = await kiosk(srv, "kiosk-s")
            r = await c.ok("reprint", ticket=t["id"])
            for x in (c, k, s):
                await x.close()
            return snap["snapshot"]["not_printed"], r

        flagged, r = asyncio.run(after())
        assert [(x["ticket"], x["code"], x["device"]) for x in flagged] == [(t["id"], "offline", "kiosk-s")]
        # kiosk-r printed after its failure, kiosk-s failed last: the reprint goes to kiosk-r
        assert (r["kiosk"], r["why"]) == ("kiosk-r", None)
        assert [(x["device"], x["printer"]) for x in r["kiosks"]] == [("kiosk-r", "ok"), ("kiosk-s", "offline")]
    finally:
        srv.kill()
