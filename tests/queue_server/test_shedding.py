"""Load shedding (issue 20, Deliver 3): beyond the admission bounds a request is answered ``busy``
at once — nothing applied, nothing written — instead of queueing for tens of seconds, and a retry
with the same idempotency key gets exactly one ticket.

Shedding is forced deterministically, never by wall time: the writer is held inside its commit
by a store whose ``write`` waits for the test (a real SQLite write once released), so exactly
``max_queue`` requests queue and every further one is shed. The live-process flood beside it
runs the real ``run.py server --shed-queue`` and checks only what holds however fast the machine is.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections import Counter

import pytest

from queue_server.core.admission import MAX_RETRY, MIN_RETRY, READS, Bounds, recent_lag, shed
from queue_server.storage import Store
from tests.support.live_server import Client, LiveServer

from .writer_support import assert_same_as_database, state

INF = float("inf")


# ---------------------------------------------------------------------------- the rule (pure)


def test_the_rule_admits_below_both_bounds_and_sheds_at_either():
    b = Bounds(max_queue=10, max_wait=1.0)
    assert shed("issue", 9, 0.99, b) is None
    assert shed("issue", 10, 0.0, b) == 1.0  # the queue bound
    assert shed("issue", 0, 1.0, b) == 1.0  # the wait bound
    assert shed("issue", 0, 3.14, b) == 3.2  # the hint: the oldest's wait, rounded up
    assert shed("issue", 0, 60.0, b) == MAX_RETRY
    assert shed("issue", 10, 0.0, Bounds(max_queue=10, max_wait=0.0)) == MIN_RETRY
    assert shed("issue", 10, 0.0, Bounds(max_queue=10, max_wait=INF)) == MIN_RETRY


def test_reads_are_shed_first():
    b = Bounds(max_queue=10, max_wait=1.0, read_share=0.5)
    for kind in READS:
        assert shed(kind, 4, 0.49, b) is None
        assert shed(kind, 5, 0.0, b) is not None and shed(kind, 0, 0.5, b) is not None
    assert shed("complete", 5, 0.5, b) is None


def test_a_stalled_loop_counts_until_it_fades():
    assert recent_lag(0.0, 0.002) == 0.002
    assert recent_lag(0.0, 1.5) == 1.5  # a stall of 1.5 s: the frames that waited through it are shed
    assert recent_lag(1.5, 0.0) == 0.75 and recent_lag(0.75, 0.0) == 0.375  # then it fades, tick by tick
    assert recent_lag(0.1, -0.001) == 0.05  # (a tick a hair early is no lag)
    b = Bounds(max_wait=0.5)
    assert shed("issue", 0, recent_lag(0.0, 0.6), b) is not None and shed("issue", 0, recent_lag(0.6, 0.0), b) is None


@pytest.mark.parametrize("bad", [{"max_queue": -1}, {"max_wait": -0.1}, {"max_wait": float("nan")},
                                 {"read_share": 0.0}, {"read_share": 1.5}])
def test_bad_bounds_are_refused(bad):
    with pytest.raises(ValueError, match="bad admission bounds"):
        Bounds(**bad)


# ---------------------------------------------------------------------------- a real server, held writer


def _hellos(srv):
    tokens = srv.tokens()
    kiosk = {"role": "kiosk", "device": "k-shed", "token": tokens.roles["kiosk"], "site": "honcho"}
    counter = {"role": "counter", "site": "honcho", "counter": 1, "token": tokens.counters["honcho"][1]}
    return kiosk, counter


def _issue(key: str) -> dict:
    return {"purposes": ["certificate"], "answers": {}, "lang": "ja", "idempotency_key": key}


def _metrics(srv) -> str:
    with urllib.request.urlopen(f"{srv.http}/metrics", timeout=10) as r:
        return r.read().decode()


def _busy_total(text: str, kind: str) -> int:
    m = re.search(rf'^madoguchi_busy_total{{type="{kind}"}} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


def _is_busy(reply: dict) -> bool:
    err = reply.get("error") or {}
    return err.get("code") == "busy" and err["retry_after"] >= MIN_RETRY and "not applied" in err["message"]


def test_a_shed_request_changes_nothing_and_a_committed_key_is_never_shed(held):
    qs = held.qs
    kh, ch = _hellos(held)

    async def scenario():
        k, _ = await Client.open(held.url, **kh)
        c, _ = await Client.open(held.url, **ch)
        await c.ok("open")
        first = await k.ok("issue", **_issue("first"))
        before = state(qs)
        qs.admission = Bounds(max_queue=0)  # every request that needs the writer is shed
        replies = [await k.request_once("issue", **_issue("shed-1")),
                   await k.request_once("help", reason="x"),
                   await c.request_once("call_next"),
                   await c.request_once("queue")]
        assert all(_is_busy(r) for r in replies), replies
        # what needs no writer is still served
        assert "result" in await k.request_once("ping")
        assert "result" in await k.request_once("plan", purposes=["certificate"], answers={}, lang="ja")
        # the committed key's retry is answered its first reply, never busy
        again = await k.request_once("issue", **_issue("first"))
        assert again.get("result") == first, again
        assert state(qs) == before  # nothing applied: memory as before, and as the database holds
        assert_same_as_database(qs)
        text = await asyncio.to_thread(_metrics, held)
        assert {kind: _busy_total(text, kind) for kind in ("issue", "help", "call_next", "queue")} == \
            {"issue": 1, "help": 1, "call_next": 1, "queue": 1}
        assert 'madoguchi_errors_total{code="busy"} 4' in text
        qs.admission = Bounds()
        later = await k.ok("issue", **_issue("shed-1"))
        assert later["ticket"]["number"] == "2"  # the shed request used no number
        for x in (k, c):
            await x.close()

    asyncio.run(scenario())


def test_beyond_the_queue_bound_every_request_is_answered_and_retries_get_one_ticket_each(held):
    """A connection's requests are answered in order (one at a time), so a flood is many
    connections: each of ten kiosks sends one issue while the writer is held."""
    qs, store = held.qs, held.qs.store
    qs.admission = Bounds(max_queue=4, max_wait=INF)
    kh, ch = _hellos(held)
    flood = 10

    async def scenario():
        k, _ = await Client.open(held.url, **kh)
        c, _ = await Client.open(held.url, **ch)
        w, _ = await Client.open(held.url, **{**kh, "device": "k-writing"})
        kiosks = [(await Client.open(held.url, **{**kh, "device": f"k{i}"}))[0] for i in range(flood)]
        await c.ok("open")
        first = await k.ok("issue", **_issue("first"))
        store.hold()
        writing = asyncio.create_task(w.request_once("issue", **_issue("a0")))  # the writer takes it and waits
        assert await asyncio.to_thread(store.entered.wait, 30)
        tasks = [asyncio.create_task(x.request_once("issue", **_issue("b"))) for x in kiosks]
        while sum(t.done() for t in tasks) < flood - 4:  # 4 queue; the rest are answered at once
            await asyncio.sleep(0.01)
        shed_ones = [i for i, t in enumerate(tasks) if t.done()]
        assert len(shed_ones) == flood - 4 and all(_is_busy(tasks[i].result()) for i in shed_ones)
        assert qs.queue.qsize() == 4
        # even now: a committed key's retry queues (beyond the bound) for its first reply; a read
        # is shed; a ping is answered while the writer is held
        retry_first = asyncio.create_task(k.request_once("issue", **_issue("first")))
        assert _is_busy(await c.request_once("queue"))
        assert "result" in await c.request_once("ping")
        assert not retry_first.done()
        store.release()
        admitted = [await t for i, t in enumerate(tasks) if i not in shed_ones]
        assert all("result" in r for r in [await writing, *admitted]), admitted
        assert (await retry_first)["result"] == first
        # the shed ones again, with their keys (twice): exactly one ticket each
        for i in shed_ones:
            r1 = await kiosks[i].ok("issue", **_issue("b"))
            assert await kiosks[i].ok("issue", **_issue("b")) == r1
        for x in (k, c, w, *kiosks):
            await x.close()

    asyncio.run(scenario())
    assert_same_as_database(qs)
    hub = qs.hubs["honcho"]
    stored = Store(qs.store.url).load_tickets("honcho", hub.day)
    assert len(stored) == 2 + flood  # first, a0 and one per flooding kiosk: none lost, none twice
    assert sorted(t.number for t in stored) == list(range(1, 3 + flood))


def test_a_pipelining_connection_is_shed_as_it_sends_and_answered_in_order(held):
    """One connection sends ten issues without waiting: the server reads them all as they come
    (it does not wait for the writer before reading the next), admits four, sheds six, and
    answers all ten in the order they were sent."""
    qs, store = held.qs, held.qs.store
    qs.admission = Bounds(max_queue=4, max_wait=INF)
    kh, _ = _hellos(held)

    async def scenario():
        w, _ = await Client.open(held.url, **{**kh, "device": "k-writing"})
        k, _ = await Client.open(held.url, **kh)
        store.hold()
        writing = asyncio.create_task(w.request_once("issue", **_issue("a0")))
        assert await asyncio.to_thread(store.entered.wait, 30)
        arrived: list[int] = []
        rids = list(range(1000, 1010))
        futs = [asyncio.get_running_loop().create_future() for _ in rids]
        for i, (rid, f) in enumerate(zip(rids, futs, strict=True)):
            f.add_done_callback(lambda _, rid=rid: arrived.append(rid))  # in the order the replies come
            k._waiting[rid] = f
            await k.ws.send(json.dumps({"type": "issue", "id": rid, **_issue(f"p{i}")}))
        while qs.metrics.busy.get("issue", 0) < 6:  # read and judged while the writer is held
            await asyncio.sleep(0.01)
        assert qs.queue.qsize() == 4 and not any(f.done() for f in futs)
        store.release()
        replies = [await f for f in futs]
        await asyncio.sleep(0)  # (the done-callbacks run)
        assert arrived == rids
        assert "result" in await writing
        assert ["result" in r for r in replies] == [True] * 4 + [False] * 6
        assert all(_is_busy(r) for r in replies[4:])
        for x in (w, k):
            await x.close()

    asyncio.run(scenario())
    assert_same_as_database(qs)


# ---------------------------------------------------------------------------- the real process, flooded


def test_a_flood_on_the_real_server_loses_and_duplicates_nothing(tmp_path):
    """Eight kiosks send 25 issues each at once and four counters call and complete meanwhile,
    against `run.py server --shed-queue 3`: every request is answered (a result, or busy and
    retried with its key), and the database holds exactly the acknowledged tickets, once each."""
    live = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "s.toml",
                      extra=["--shed-queue", "3"]).start()
    tokens = live.tokens()
    acked: dict[str, dict] = {}
    seen: Counter[str] = Counter()
    stop = asyncio.Event()

    async def kiosk(i: int) -> None:
        k, _ = await Client.open(live.url, role="kiosk", device=f"k{i}", token=tokens.roles["kiosk"], site="honcho")

        async def one(n: int) -> None:
            key = f"f{i}-{n}"
            r = await k.request_once("issue", **_issue(key))  # all at once: beyond the bound
            seen["busy" if _is_busy(r) else "result" if "result" in r else r["error"]["code"]] += 1
            if "result" not in r:
                r = await k.request("issue", **_issue(key))  # retried on busy with the same key
            acked[f"k{i}:{key}"] = r["result"]

        await asyncio.gather(*(one(n) for n in range(25)))
        await k.close()

    async def counter(n: int) -> None:
        c, _ = await Client.open(live.url, role="counter", site="honcho", counter=n,
                                 token=tokens.counters["honcho"][n])
        await c.ok("open")
        while not stop.is_set():
            got = await c.ok("call_next")
            if got["ticket"] is None:
                await asyncio.sleep(0.01)
                continue
            await c.ok("start")
            await c.ok("complete")
        await c.close()

    async def scenario() -> None:
        staff = [asyncio.create_task(counter(n)) for n in (1, 2, 3, 4)]
        await asyncio.gather(*(kiosk(i) for i in range(8)))
        stop.set()
        await asyncio.gather(*staff)

    try:
        asyncio.run(scenario())
        metrics = urllib.request.urlopen(f"{live.http}/metrics", timeout=10).read().decode()
    finally:
        live.kill()
    print(f"\nflood: first answers {dict(seen)}; /metrics busy issue {_busy_total(metrics, 'issue')}")
    assert set(seen) <= {"busy", "result"} and sum(seen.values()) == 200, seen
    assert _busy_total(metrics, "issue") >= seen["busy"]  # (the retries may have met busy again)
    store = Store(live.db_url)
    day = next(iter(acked.values()))["ticket"]["day"]
    stored = {t.id: t for t in store.load_tickets("honcho", day)}
    ids = [r["ticket"]["id"] for r in acked.values()]
    assert len(set(ids)) == len(acked) == 200 and set(ids) == set(stored)  # none lost, none twice
    assert sorted(int(r["ticket"]["number"]) for r in acked.values()) == list(range(1, 201))
    store.engine.dispose()


def test_a_reconnect_storm_resyncs_every_board_and_console_while_the_writer_goes_on(live):
    """Thirty boards and every other console of the site drop and reconnect all at once (boards with their
    last_seq) while a counter keeps calling: every hello is answered, every call reaches every
    board exactly once (before the drop, replayed, or live), and the calls made during the storm
    are committed and acknowledged."""
    tokens = live.tokens()
    board_hello = {"role": "display", "site": "honcho", "token": tokens.roles["display"]}

    def consoles_hello(n):
        return {"role": "counter", "site": "honcho", "counter": n, "token": tokens.counters["honcho"][n]}

    async def scenario():
        k, _ = await Client.open(live.url, role="kiosk", device="k-storm", token=tokens.roles["kiosk"], site="honcho")
        caller, _ = await Client.open(live.url, **consoles_hello(1))
        await caller.ok("open")
        for i in range(12):
            await k.ok("issue", **_issue(f"s{i}"))
        boards = [(await Client.open(live.url, **board_hello, device=f"b{i}"))[0] for i in range(30)]
        counters = [n for n in live_counters() if n != 1]
        consoles = [(await Client.open(live.url, **consoles_hello(n)))[0] for n in counters]
        called: list[int] = []

        async def call_one():
            got = await caller.ok("call_next")
            called.append(got["ticket"]["number"])
            await caller.ok("start")
            await caller.ok("complete")

        for _ in range(3):
            await call_one()
        while sum(1 for p in boards[-1].pushes if p["push"] == "call") < 3:
            await asyncio.sleep(0.01)
        seen = [[p["data"]["seq"] for p in b.pushes if p["push"] == "call"] for b in boards]
        last = [max(s) for s in seen]
        for x in boards + consoles:
            await x.close()
        # all at once: forty-one hellos (boards resync from last_seq) while the counter goes on calling
        reopened = [Client.open(live.url, **board_hello, device=f"b{i}", last_seq=last[i]) for i in range(30)]
        reopened += [Client.open(live.url, **consoles_hello(n)) for n in counters]
        storm = asyncio.gather(*reopened)
        for _ in range(5):
            await call_one()
        clients = await storm
        assert all("result" in hello for _, hello in clients)
        boards2 = [c for c, _ in clients[:30]]
        want = 8
        for b in boards2:  # (a guard against hanging: the count is checked exactly below)
            for _ in range(3000):
                if sum(1 for p in b.pushes if p["push"] == "call") + 3 >= want:
                    break
                await asyncio.sleep(0.01)
        for i, b in enumerate(boards2):
            seqs = seen[i] + [p["data"]["seq"] for p in b.pushes if p["push"] == "call"]
            assert len(seqs) == len(set(seqs)) == want, (i, seqs)  # each call once
        for x in [k, caller, *(c for c, _ in clients)]:
            await x.close()
        return called

    called = asyncio.run(scenario())
    assert len(called) == 8 and len(set(called)) == 8


def live_counters() -> list[int]:
    from queue_server.config import load_city

    return sorted(c.number for c in load_city().sites["honcho"].counters)


def test_the_server_refuses_bad_bounds(tmp_path):
    live = LiveServer(db_url=f"sqlite:///{tmp_path / 'x.db'}", secrets=tmp_path / "s.toml",
                      extra=["--shed-wait", "-1"])
    with pytest.raises(RuntimeError, match="bad admission bounds"):
        live.start()


def test_a_board_that_says_hello_during_a_commit_resumes_before_its_calls(held):
    """The seq a board is told (hello) is the last one pushed, not one of a batch still being
    committed: a board that said hello while a call was being written, and lost its connection
    before the call's push, resumes from before the call and is replayed it (it used to be told
    the call's seq and never saw the call)."""
    store = held.qs.store
    kh, ch = _hellos(held)
    dh = {"role": "display", "site": "honcho", "device": "board-h", "token": held.tokens().roles["display"]}

    async def scenario():
        k, _ = await Client.open(held.url, **kh)
        c, _ = await Client.open(held.url, **ch)
        await c.ok("open")
        await k.ok("issue", **_issue("h1"))
        store.hold()
        calling = asyncio.create_task(c.request_once("call_next"))
        assert await asyncio.to_thread(store.entered.wait, 30)  # the call is applied, being written
        b, hello = await Client.open(held.url, **dh)
        told = hello["result"]["seq"]
        await b.close()  # gone before the call's push
        store.release()
        called = await calling
        number = called["result"]["ticket"]["number"]
        b2, again = await Client.open(held.url, **dh, last_seq=told)
        assert again["result"]["missed"] == 1 and not again["result"]["truncated"], again["result"]
        call = await b2.wait_push(lambda p: p["push"] == "call")
        assert call["data"]["number"] == number
        for x in (k, c, b2):
            await x.close()

    asyncio.run(scenario())


def test_a_connection_that_drops_during_its_commit_stops_no_answer_or_push(held, caplog):
    """A console that drops while its call is being committed: the call is still committed, every
    other request of the batch answered and the call pushed to the boards (the closing
    connection used to cancel its request's future, and the writer's answer to it raised out of
    the batch: the others got `internal` and the boards never saw the call)."""
    qs, store = held.qs, held.qs.store
    kh, ch = _hellos(held)
    dh = {"role": "display", "site": "honcho", "device": "board-d", "token": held.tokens().roles["display"]}

    async def scenario():
        k, _ = await Client.open(held.url, **kh)
        c, _ = await Client.open(held.url, **ch)
        b, _ = await Client.open(held.url, **dh)
        await c.ok("open")
        await k.ok("issue", **_issue("d1"))
        store.hold()
        await c.ws.send(json.dumps({"type": "call_next", "id": 77, "idempotency_key": "drop-call"}))
        assert await asyncio.to_thread(store.entered.wait, 30)  # applied, being written
        other = asyncio.create_task(k.request_once("issue", **_issue("d2")))  # in the next batch
        await c.close()
        while any(cl.counter == 1 for cl in qs.clients):  # the server saw the connection go
            await asyncio.sleep(0.01)
        store.release()
        call = await b.wait_push(lambda p: p["push"] == "call", timeout=30)
        assert call["data"]["number"] == "1" and call["data"]["counter"] == 1
        assert "result" in await other
        c2, _ = await Client.open(held.url, **ch)
        again = await c2.ok("call_next", idempotency_key="drop-call")  # the retry: the same call
        assert again["ticket"]["number"] == "1"
        for x in (k, b, c2):
            await x.close()

    with caplog.at_level("ERROR", logger="madoguchi.writer"):
        asyncio.run(scenario())
    assert not [r for r in caplog.records if r.name == "madoguchi.writer"], caplog.text
    assert_same_as_database(qs)


def test_metrics_count_every_reply_in_the_reply_time_histogram(held):
    """/metrics madoguchi_reply_seconds: the server's own part of each request (the open-loop
    bench reads it beside its client-side figures); cumulative buckets, one count per reply,
    queued (writer) and direct (ping) replies alike."""
    from queue_server.metrics import Histogram

    h = Histogram((0.001, 0.01))
    for x in (0.0005, 0.005, 0.005, 3.0):
        h.observe(x)
    assert h.lines("m")[:3] == ['m_bucket{le="0.001"} 1', 'm_bucket{le="0.01"} 3', 'm_bucket{le="+Inf"} 4']
    assert h.lines("m")[-1] == "m_count 4"
    kh, _ = _hellos(held)

    def count(text: str) -> int:
        return int(re.search(r"^madoguchi_reply_seconds_count (\d+)$", text, re.M).group(1))

    async def scenario():
        k, _ = await Client.open(held.url, **kh)
        before = count(await asyncio.to_thread(_metrics, held))
        await k.ok("issue", **_issue("m1"))
        await k.ok("ping")
        await k.ok("issue", **_issue("m2"))
        after = count(await asyncio.to_thread(_metrics, held))
        await k.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert after - before == 3


def test_metrics_split_a_writer_request_into_its_stages(held):
    """/metrics madoguchi_request_stage_seconds: every request the writer applies is counted once
    in each stage (metrics.STAGES), and its stages add up to its reply time; a read answered at
    once (the writer idle: writer.Writer.read), a refused request and a ping are in the reply
    times only."""
    from queue_server.metrics import STAGES

    kh, ch = _hellos(held)

    def read(text: str) -> dict[str, tuple[int, float]]:
        out = {}
        for stage in STAGES:
            n = re.search(rf'^madoguchi_request_stage_seconds_count{{stage="{stage}"}} (\d+)$', text, re.M)
            t = re.search(rf'^madoguchi_request_stage_seconds_sum{{stage="{stage}"}} ([\d.]+)$', text, re.M)
            out[stage] = (int(n.group(1)), float(t.group(1)))
        n = re.search(r"^madoguchi_reply_seconds_count (\d+)$", text, re.M)
        t = re.search(r"^madoguchi_reply_seconds_sum ([\d.]+)$", text, re.M)
        out["reply"] = (int(n.group(1)), float(t.group(1)))
        return out

    async def scenario():
        k, _ = await Client.open(held.url, **kh)
        c, _ = await Client.open(held.url, **ch)
        t0 = read(await asyncio.to_thread(_metrics, held))
        await k.ok("issue", **_issue("st1"))
        t1 = read(await asyncio.to_thread(_metrics, held))
        await c.ok("queue")  # the writer is idle: answered at once, not through the writer
        await k.ok("ping")
        refused = await k.request("issue", purposes=["no-such-purpose"], answers={}, lang="ja", idempotency_key="st2")
        t2 = read(await asyncio.to_thread(_metrics, held))
        for x in (k, c):
            await x.close()
        return t0, t1, t2, refused

    t0, t1, t2, refused = asyncio.run(scenario())
    assert "error" in refused, refused
    for stage in STAGES:
        assert t1[stage][0] - t0[stage][0] == 1, stage
        assert t2[stage][0] == t1[stage][0], stage  # the read, the ping and the refusal have no stages
    assert t1["reply"][0] - t0["reply"][0] == 1 and t2["reply"][0] - t1["reply"][0] == 3
    staged = sum(t1[s][1] - t0[s][1] for s in STAGES)
    assert abs(staged - (t1["reply"][1] - t0["reply"][1])) < 1e-5, (staged, t1["reply"], t0["reply"])
