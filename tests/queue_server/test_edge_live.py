"""Issue 12's findings replayed against the real server process: each bad request gets an error
reply naming the field, the connection stays open, and nobody else's state or result changes."""

import asyncio
import json
import sqlite3

from tests.support.live_server import Client

from .test_server_integration import counter, issue, kiosk


def run(coro):
    return asyncio.run(coro)


async def expect(c: Client, raw: str, rid, code: str, field: str | None = None) -> dict:
    r = await c.send_raw(raw, rid)
    assert r["error"]["code"] == code, (raw[:80], r)
    if field is not None:
        assert r["error"]["field"] == field, r
    return r


def test_bad_numbers_never_poison_the_batch_or_reach_the_board(live):
    async def scenario():
        k = await kiosk(live)
        c1 = await counter(live, 1)
        await issue(k, "before", purposes=("certificate",))
        await c1.ok("call_next")
        for i, minutes in enumerate(["1e999", "NaN", "Infinity", str(10**400), "-5", "0", "481"]):
            raw = (f'{{"type":"add_procedure","id":{100 + i},"department":"shimin","procedures":["x"],'
                   f'"minutes":{minutes}}}')
            # pipelined with good issues: they must commit and be answered normally
            sends = [k.request("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"b{i}-{j}")
                     for j in range(3)]
            bad = c1.send_raw(raw, 100 + i)
            results = await asyncio.gather(bad, *sends)
            assert results[0]["error"]["code"] == "bad_field" and results[0]["error"]["field"] == "minutes"
            assert all("result" in r for r in results[1:]), results[1:]
        q = await c1.ok("queue")
        assert len(q["queue"]) == 21
        return sorted(int(t["number"]) for t in q["queue"])

    numbers = run(scenario())
    assert numbers == list(range(2, 23))
    live.kill()
    live.start()

    async def after():  # the acknowledged tickets are all there after a restart
        c1 = await counter(live, 2)
        q = await c1.ok("queue")
        assert sorted(int(t["number"]) for t in q["queue"]) == numbers

    run(after())


def test_lone_surrogates_and_controls_are_refused_and_consoles_keep_working(live):
    async def scenario():
        k = await kiosk(live)
        await expect(k, '{"type":"help","id":1,"reason":"\\ud800"}', 1, "bad_field", "reason")
        await expect(k, '{"type":"help","id":2,"reason":"a\\u0000b"}', 2, "bad_field", "reason")
        await expect(k, '{"type":"device_fault","id":3,"device_kind":"printer","code":"\\udfff"}', 3, "bad_field", "code")
        c1 = await counter(live, 1)  # a new console at the site still gets its hello reply
        await issue(k, "s1", purposes=("certificate",))
        await c1.ok("call_next")
        await expect(c1, json.dumps({"type": "add_procedure", "id": 4, "department": "shimin", "procedures": ["\ud800"]}),
                     4, "bad_field", "procedures")
        await expect(c1, json.dumps({"type": "open", "id": 5, "staff": "佐藤\x00"}), 5, "bad_field", "staff")
        assert (await c1.ok("start"))["ticket"]["number"] == "1"
        c2, hello = await Client.open(live.url, role="counter", site="honcho", counter=2,
                                      token=live.tokens().counters["honcho"][2])
        assert "result" in hello
        await k.ok("help", reason="紙詰まり 😀")  # valid non-ASCII text passes
        await c2.wait_push(lambda p: p.get("push") == "help")

    run(scenario())
    live.kill()
    live.start()

    async def after():  # and after a restart (the surrogate was never stored)
        c, hello = await Client.open(live.url, role="counter", site="honcho", counter=1,
                                     token=live.tokens().counters["honcho"][1])
        assert hello["result"]["snapshot"]["current"]["number"] == "1"

    run(after())


def test_non_ascii_token_answers_bad_token_and_the_socket_stays_open(live):
    async def scenario():
        for token in ["é", "\ud800", "トークン", "x" * 256]:
            c, r = await Client.open(live.url, role="kiosk", device="kiosk-9", token=token)
            assert r["error"]["code"] == "bad_token", (token, r)
            ok = await c.request("hello", role="kiosk", device="kiosk-9", token=live.tokens().roles["kiosk"])
            assert "result" in ok  # same connection: it was not closed
            await c.close()
        c, r = await Client.open(live.url, role="counter", site="honcho", counter=1, token="\ud800")
        assert r["error"]["code"] == "bad_token"

    run(scenario())


def test_deep_nesting_answers_bad_json_and_the_socket_stays_open(live):
    async def scenario():
        k = await kiosk(live)
        r = await k.send_raw("[" * 20000 + "]" * 20000, None)
        assert r["error"]["code"] == "bad_json" and "nested" in r["error"]["message"]
        r = await k.send_raw('{"type":"help","id":1,"reason":' + "{\"a\":" * 5000 + "1" + "}" * 5000 + "}", None)
        assert r["error"]["code"] == "bad_json"
        assert "pong" in await k.ok("ping")

    run(scenario())


def test_idempotency_keys_are_scoped_required_and_need_an_id(live):
    async def scenario():
        k = await kiosk(live)
        first = await issue(k, "shared-1", purposes=("certificate",))
        c1 = await counter(live, 1)
        called = await c1.ok("call_next", idempotency_key="shared-1")  # the kiosk's key, from a counter
        assert "public_token" not in json.dumps(called)
        assert called["ticket"]["id"] == first["ticket"]["id"] and called["ticket"]["state"] == "called"
        again = await c1.ok("call_next", idempotency_key="shared-1")  # a retry of the counter's own request
        assert again == called
        k2, _ = await Client.open(live.url, role="kiosk", device="kiosk-2", token=live.tokens().roles["kiosk"])
        other = await issue(k2, "shared-1", purposes=("certificate",))  # same key, another kiosk: a new ticket
        assert other["ticket"]["id"] != first["ticket"]["id"]
        assert (await issue(k, "shared-1", purposes=("certificate",))) == first
        await expect(k, json.dumps({"type": "issue", "id": 9, "purposes": ["death"], "idempotency_key": ""}), 9,
                     "bad_field", "idempotency_key")
        r = await expect(k, json.dumps({"type": "issue", "purposes": ["death"], "idempotency_key": "no-id"}), None,
                         "bad_field", "id")
        assert r["re"] is None
        assert len((await c1.ok("queue"))["queue"]) == 1  # neither refused request issued anything
        return first, other, called

    first, other, called = run(scenario())
    live.kill()
    live.start()

    async def after():  # the scopes survive a restart (they are part of the stored key)
        k = await kiosk(live)
        assert await issue(k, "shared-1", purposes=("certificate",)) == first
        k2, _ = await Client.open(live.url, role="kiosk", device="kiosk-2", token=live.tokens().roles["kiosk"])
        assert await issue(k2, "shared-1", purposes=("certificate",)) == other
        c1, _ = await Client.open(live.url, role="counter", site="honcho", counter=1,
                                  token=live.tokens().counters["honcho"][1])
        assert await c1.ok("call_next", idempotency_key="shared-1") == called

    run(after())


def test_keys_stored_before_scoping_still_return_the_kiosks_ticket(live):
    async def scenario():
        k = await kiosk(live)
        return await issue(k, "legacy-1", purposes=("certificate",))

    first = run(scenario())
    live.kill()
    db = live.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:  # rewrite the row as the server wrote it before keys were scoped
        n = conn.execute("UPDATE requests SET key = 'legacy-1' WHERE key = 'kiosk:kiosk-1:legacy-1'").rowcount
    assert n == 1
    live.start()

    async def after():
        k = await kiosk(live)
        assert await issue(k, "legacy-1", purposes=("certificate",)) == first
        k2, _ = await Client.open(live.url, role="kiosk", device="kiosk-2", token=live.tokens().roles["kiosk"])
        assert (await issue(k2, "legacy-1", purposes=("certificate",)))["ticket"]["id"] != first["ticket"]["id"]

    run(after())


def test_a_booking_for_a_later_day_survives_a_restart(live):
    """Found by the fuzz run: only today's bookings were loaded at start, so a booking made for a
    later day vanished from the server after a restart (and could not be checked in that day)."""
    from tests.support.fuzz import future_day

    day = future_day(7)

    async def book():
        a, _ = await Client.open(live.url, role="admin", site="honcho", token=live.tokens().roles["admin"])
        r = await a.ok("reserve", day=day, start="10:00", minutes=30, purposes=["death"])
        return r["reservation"]

    booked = run(book())
    live.kill()
    live.start()

    async def listed():
        a, _ = await Client.open(live.url, role="admin", site="honcho", token=live.tokens().roles["admin"])
        return (await a.ok("reservations", day=day))["reservations"]

    keys = ("id", "day", "code", "slot_start", "slot_end", "purposes")  # the list view adds plan details
    assert [{k: r[k] for k in keys} for r in run(listed())] == [{k: booked[k] for k in keys}]


def test_the_longest_scoped_key_fits_postgresql(fresh_postgres, tmp_path):
    """A 32-character Japanese device name and a 56-character key: the scoped key is stored in
    requests.key (VARCHAR(100), characters) and a retry after a restart gets the same ticket."""
    from tests.support.live_server import LiveServer

    live = LiveServer(db_url=fresh_postgres, secrets=tmp_path / "s.toml").start()
    device, key = "本庁舎一階" + "発" * 27, "k" * 56
    assert len(device) == 32

    async def issue_once():
        k, hello = await Client.open(live.url, role="kiosk", device=device, token=live.tokens().roles["kiosk"])
        assert "result" in hello, hello
        return await issue(k, key, purposes=("certificate",))

    try:
        first = run(issue_once())
        live.kill()
        live.start()
        assert run(issue_once()) == first
    finally:
        live.kill()
