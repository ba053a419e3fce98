"""The real server process on a loopback port, driven by real websocket clients."""

import asyncio
import json
import urllib.request

from tests.support.live_server import Client, LiveServer


def run(coro):
    return asyncio.run(coro)


async def kiosk(live):
    c, r = await Client.open(live.url, role="kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"], site="honcho")
    assert "result" in r, r
    return c


async def counter(live, n, staff="佐藤"):
    tok = live.tokens().counters["honcho"][n]
    c, r = await Client.open(live.url, role="counter", site="honcho", counter=n, token=tok, staff=staff)
    assert "result" in r, r
    await c.ok("open")
    return c


async def issue(k, key, purposes=("death",), **kw):
    return await k.ok("issue", purposes=list(purposes), answers={}, lang="ja", idempotency_key=key, **kw)


def test_issue_call_start_complete_routes_to_the_next_department(live):
    async def scenario():
        k = await kiosk(live)
        shimin, hoken = await counter(live, 1), await counter(live, 5)
        issued = await issue(k, "k1-0001")
        route = [s["department"] for s in issued["route"]]
        assert route[0] == "shimin" and "hoken_nenkin" in route
        assert issued["ticket"]["number"] == "1"
        # hoken_nenkin must wait for shimin (registration first)
        assert (await hoken.ok("call_next"))["ticket"] is None
        called = await shimin.ok("call_next")
        assert called["ticket"]["number"] == "1"
        await shimin.ok("start")
        done = await shimin.ok("complete")
        assert "hoken_nenkin" in [n["department"] for n in done["next"]]
        got = await hoken.ok("call_next")
        assert got["ticket"]["id"] == issued["ticket"]["id"]
        step = next(s for s in got["ticket"]["steps"] if s["state"] == "called")
        assert step["department"] == "hoken_nenkin" and step["counter"] == 5
        await hoken.ok("start")
        await hoken.ok("complete")
        for c in (k, shimin, hoken):
            await c.close()

    run(scenario())


def test_two_counters_calling_at_the_same_instant_get_different_tickets(live):
    async def scenario():
        k = await kiosk(live)
        for i in range(3):
            await issue(k, f"cert-{i}", purposes=("certificate",))
        counters = [await counter(live, n) for n in (1, 2, 3, 4)]
        results = await asyncio.gather(*(c.ok("call_next") for c in counters))
        ids = [r["ticket"]["id"] for r in results if r["ticket"]]
        assert len(ids) == 3 and len(set(ids)) == 3
        assert sum(1 for r in results if r["ticket"] is None) == 1

    run(scenario())


def test_retried_issue_with_the_same_idempotency_key_returns_the_same_ticket(live):
    async def scenario():
        k = await kiosk(live)
        a = await issue(k, "same-key", purposes=("certificate",))
        b = await issue(k, "same-key", purposes=("certificate",))
        c = await issue(k, "other-key", purposes=("certificate",))
        assert a["ticket"]["id"] == b["ticket"]["id"] and a["ticket"]["number"] == b["ticket"]["number"]
        assert c["ticket"]["number"] != a["ticket"]["number"]
        await k.close()

    run(scenario())
    live.kill()
    live.start()

    async def after_restart():
        k = await kiosk(live)
        again = await issue(k, "same-key", purposes=("certificate",))
        fresh = await issue(k, "third-key", purposes=("certificate",))
        assert again["ticket"]["number"] == "1"
        assert fresh["ticket"]["number"] == "3"  # numbers continue, never reused

    run(after_restart())


def test_board_reconnecting_after_a_missed_push_catches_up(live):
    async def scenario():
        tok = live.tokens().roles["display"]
        board, hello = await Client.open(live.url, role="display", token=tok, site="honcho")
        k = await kiosk(live)
        c1 = await counter(live, 1)
        await issue(k, "a", purposes=("certificate",))
        await c1.ok("call_next")
        first = await board.wait_push(lambda p: p["push"] == "call")
        last_seq = first["seq"]
        await board.close()
        # while the board is away: two more calls
        await issue(k, "b", purposes=("certificate",))
        await c1.ok("start")
        await c1.ok("complete")
        await c1.ok("call_next")
        await c1.ok("recall")
        board2, hello2 = await Client.open(live.url, role="display", token=tok, site="honcho", last_seq=last_seq)
        assert hello2["result"]["missed"] == 2
        calls = [await board2.wait_push(lambda p: p["push"] == "call" and p["data"]["number"] == "2")]
        recall = await board2.wait_push(lambda p: p["push"] == "call" and p["data"]["recall"])
        assert calls[0]["seq"] > last_seq and recall["seq"] > calls[0]["seq"]
        assert all(p["data"]["number"] != "1" for p in board2.pushes if p["push"] == "call")

    run(scenario())


def test_public_client_sees_its_ticket_and_nothing_personal(tmp_path):
    live = LiveServer(db_url=f"sqlite:///{tmp_path / 'p.db'}", secrets=tmp_path / "s.toml", log_level="DEBUG").start()

    async def scenario():
        k = await kiosk(live)
        prefill = {"name": "黒桐　幹也", "address": "東京都清瀬市観布子南１２－７－２０２", "birth_date": "19800217", "sex": "1"}
        a = await issue(k, "p1", purposes=("certificate",), prefill=prefill)
        b = await issue(k, "p2", purposes=("certificate",))
        phone, hello = await Client.open(live.url, role="public", site="honcho", ticket=b["ticket"]["public_token"])
        status = hello["result"]["snapshot"]["status"]
        assert status["number"] == "2" and status["position"] == 1 and status["state"] == "waiting"
        c1 = await counter(live, 1)
        await c1.ok("call_next")
        cur = await c1.ok("current")
        assert cur["ticket"]["prefill"]["name"] == "黒桐　幹也"  # only the counter sees it
        await c1.ok("start")
        await c1.ok("complete")
        await c1.ok("call_next")
        st = await phone.wait_push(lambda p: p["push"] == "status" and p["data"]["called"])
        assert st["data"]["called"]["counter"] == 1
        board, bh = await Client.open(live.url, role="display", token=live.tokens().roles["display"], site="honcho")
        await asyncio.sleep(0.5)
        everything = json.dumps([hello, bh, *phone.pushes, *board.pushes], ensure_ascii=False)
        for secret in prefill.values():
            if len(secret) > 1:
                assert secret not in everything
        # the card data is erased when the visit closes
        assert a["prefilled"] is True
        return prefill

    prefill = run(scenario())
    live.kill()
    server_log = "".join(live.log)
    assert "DEBUG" in server_log or "INFO" in server_log  # the log was really captured at debug level
    for secret in prefill.values():
        if len(secret) > 1:
            assert secret not in server_log


def test_bad_input_gets_a_clear_error_and_the_connection_keeps_working(live):
    async def scenario():
        k = await kiosk(live)
        cases = [
            ("{not json", None, "bad_json"),
            ("[1,2]", None, "not_an_object"),
            (json.dumps({"type": "launch_rockets", "id": 1}), 1, "unknown_type"),
            (json.dumps({"type": "issue", "id": 2, "purposes": ["death"]}), 2, "missing_field"),
            (json.dumps({"type": "issue", "id": 3, "purposes": "death", "idempotency_key": "x"}), 3, "bad_field"),
            (json.dumps({"type": "call_next", "id": 4}), 4, "not_allowed"),
            (json.dumps({"type": "issue", "id": 5, "purposes": ["no_such_event"], "idempotency_key": "y"}), 5, "bad_purpose"),
            ("x" * 70000, None, "too_large"),
        ]
        for raw, rid, code in cases:
            r = await k.send_raw(raw, rid)
            assert r["error"]["code"] == code, (raw[:40], r)
            assert r["error"]["message"]
        field = (await k.send_raw(json.dumps({"type": "issue", "id": 9, "purposes": ["death"]}), 9))["error"]["field"]
        assert field == "idempotency_key"
        assert "pong" in await k.ok("ping")
        # wrong token, unknown counter
        c, r = await Client.open(live.url, role="counter", site="honcho", counter=1, token="wrong")
        assert r["error"]["code"] == "bad_token"
        c, r = await Client.open(live.url, role="counter", site="honcho", counter=99, token="x")
        assert r["error"]["code"] == "unknown_counter"
        c, r = await Client.open(live.url, role="public", site="honcho", ticket="guess")
        assert r["error"]["code"] == "unknown_ticket"
        # illegal transition: complete with nothing called; nothing is written
        c1 = await counter(live, 1)
        r = await c1.request("complete")
        assert r["error"]["code"] == "no_current_ticket"
        await issue(k, "valid", purposes=("certificate",))
        assert (await c1.ok("call_next"))["ticket"]["number"] == "1"  # the refused requests wrote nothing
        r = await c1.request("complete")
        assert r["error"]["code"] == "illegal_transition" and "called" in r["error"]["message"]
        r = await c1.request("transfer", department="nowhere")
        assert r["error"]["code"] == "unknown_department"
        r = await c1.request("no_show")
        assert r["error"]["code"] == "too_early"

    run(scenario())


def test_health_and_metrics_over_http(live):
    health = json.loads(urllib.request.urlopen(f"{live.http}/healthz", timeout=5).read())
    assert health["ok"] and "honcho" in health["sites"]
    metrics = urllib.request.urlopen(f"{live.http}/metrics", timeout=5).read().decode()
    assert "madoguchi_waiting{site=\"honcho\"}" in metrics


def test_board_is_told_when_a_called_number_goes_back_to_the_queue(live):
    async def scenario():
        board, _ = await Client.open(live.url, role="display", token=live.tokens().roles["display"], site="honcho")
        k = await kiosk(live)
        c1 = await counter(live, 1)
        issued = await issue(k, "back", purposes=("certificate",))
        await c1.ok("call_next")
        call = await board.wait_push(lambda p: p["push"] == "call")
        await c1.ok("requeue")
        end = await board.wait_push(lambda p: p["push"] == "call_end")
        assert end["data"]["number"] == issued["ticket"]["number"] == call["data"]["number"]
        assert end["data"]["counter"] == 1 and end["seq"] > call["seq"]
        assert "&site=honcho" in issued["ticket"]["status_url"]

    run(scenario())


def test_board_away_for_more_than_2000_events_gets_every_call_it_missed(live):
    """Seen 7: a board away for more than 2,000 events got `missed: 0` and never saw the calls."""
    async def scenario():
        tok = live.tokens().roles["display"]
        board, _ = await Client.open(live.url, role="display", token=tok, site="honcho")
        k = await kiosk(live)
        c1, c2 = await counter(live, 1), await counter(live, 2)
        for i in range(3):
            await issue(k, f"t{i}", purposes=("certificate",))
        await c1.ok("call_next")
        first = await board.wait_push(lambda p: p["push"] == "call")
        await board.close()
        # away: a call, then more than 2,000 other events, then more calls
        await c1.ok("start")
        await c1.ok("complete")
        missed_numbers = [(await c1.ok("call_next"))["ticket"]["number"]]
        for _chunk in range(22):
            replies = await asyncio.gather(*(c2.request("open") for _ in range(100)))
            assert all("result" in r for r in replies), replies[0]
        await c1.ok("recall")
        await c1.ok("start")
        await c1.ok("complete")
        missed_numbers.append((await c1.ok("call_next"))["ticket"]["number"])
        health = json.loads(urllib.request.urlopen(f"{live.http}/healthz", timeout=5).read())
        assert health["sites"]["honcho"]["seq"] - first["seq"] > 2000

        board2, hello = await Client.open(live.url, role="display", token=tok, site="honcho", last_seq=first["seq"])
        assert hello["result"]["missed"] == 3 and hello["result"]["truncated"] is False
        for _ in range(200):  # the replayed pushes follow the hello reply
            if len([p for p in board2.pushes if p["push"] == "call"]) >= 3:
                break
            await asyncio.sleep(0.05)
        calls = [p for p in board2.pushes if p["push"] == "call"]
        assert [c["data"]["number"] for c in calls] == [missed_numbers[0], missed_numbers[0], missed_numbers[1]]
        assert [c["data"]["recall"] for c in calls] == [False, True, False]

        # a last_seq this server never gave (another database): an explicit truncation, no replay
        board3, hello3 = await Client.open(live.url, role="display", token=tok, site="honcho", last_seq=10**6)
        assert hello3["result"]["truncated"] is True and hello3["result"]["missed"] == 0
        assert hello3["result"]["snapshot"]["board"]["recent_calls"]

    run(scenario())
