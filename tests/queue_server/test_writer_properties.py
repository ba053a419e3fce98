"""Property: whatever fails where — a request raising before or after it changed memory, a
commit failing at any statement, one request's rows refused — after every batch the running
server holds exactly what a server freshly loaded from the database would hold, every
acknowledged ticket is stored, and ticket numbers have no gap (a number is used only when its
ticket is committed)."""

import asyncio
import tempfile
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .writer_support import FaultyStore, admin, assert_same_as_database, counter, job, kiosk, make_server, run

COUNTERS = (1, 2, 5)
COUNTER_MOVES = ("open", "pause", "close", "call_next", "start", "complete", "recall", "no_show", "requeue",
                 "transfer", "add_procedure")

boom = st.sampled_from([None] * 8 + ["before", "after"])
op = st.one_of(
    st.tuples(st.just("issue"), st.sampled_from(["certificate", "death", "move_in", "nonsense"]),
              st.sampled_from([None, "k0", "k1", "k2", "k3"]), boom),
    st.tuples(st.just("counter"), st.sampled_from(COUNTERS), st.sampled_from(COUNTER_MOVES), boom),
    st.tuples(st.just("help"), st.sampled_from(["x", "poison"]), boom),
    st.tuples(st.just("cancel"), st.integers(0, 50), boom),
    st.tuples(st.just("reserve"), boom),
    st.tuples(st.just("checkin"), st.integers(0, 10), boom),
)
fault = st.one_of(st.none(), st.none(), st.integers(1, 8), st.just("poison"))
batches = st.lists(st.tuples(st.lists(op, min_size=1, max_size=8), fault), min_size=1, max_size=10)


def _job(qs, o, fresh_key):
    hub = qs.hubs["honcho"]
    extra = {"_boom": o[-1]} if o[-1] else {}
    kind = o[0]
    if kind == "issue":
        return job(kiosk(), "issue", purposes=[o[1]], answers={}, lang="ja",
                   idempotency_key=o[2] or fresh_key(), **extra)
    if kind == "counter":
        body = {}
        if o[2] == "transfer":
            body = {"department": "hoken_nenkin"}
        elif o[2] == "add_procedure":
            body = {"department": "kaigo", "procedures": ["care_loss"], "minutes": 5}
        return job(counter(o[1]), o[2], **body, **extra)
    if kind == "help":
        return job(kiosk(), "help", reason=o[1], **extra)
    if kind == "cancel":
        ids = sorted(hub.lobby.tickets)
        return job(admin(), "cancel", ticket=ids[o[1] % len(ids)] if ids else "none", **extra)
    if kind == "reserve":
        return job(admin(), "reserve", day=hub.day, start="10:00", purposes=["certificate"], **extra)
    codes = sorted(c for (d, c) in hub.reservations)
    code = codes[o[1] % len(codes)] if codes else "000000"
    return job(kiosk(), "issue", reservation_code=code, answers={}, lang="ja", idempotency_key=fresh_key(), **extra)


def _check(plan, url: str, tmp: Path) -> None:
    qs = make_server(tmp, store=FaultyStore(url))
    store = qs.store
    n = iter(range(10**6))

    async def scenario():
        for ops, fault in plan:
            store.fail_after = fault if isinstance(fault, int) else None
            store.poison = "poison" if fault == "poison" else None
            jobs = [_job(qs, o, lambda: f"u{next(n)}") for o in ops]
            replies = await run(qs, jobs)
            store.fail_after = None
            assert_same_as_database(qs)
            for j, r in zip(jobs, replies, strict=True):
                assert "re" in r and r["re"] == j.req.id
                if j.req.type == "issue" and "result" in r:
                    assert r["result"]["ticket"]["id"] in qs.hubs["honcho"].lobby.tickets, "acked ticket lost"
            numbers = defaultdict(list)
            for t in qs.hubs["honcho"].lobby.tickets.values():
                numbers[(t.day, t.prefix)].append(t.number)
            for key, ns in numbers.items():
                assert sorted(ns) == list(range(1, len(ns) + 1)), f"numbers {key} have a gap: {sorted(ns)}"
                assert qs.hubs["honcho"].numbers[key] == len(ns)

    try:
        asyncio.run(scenario())
    finally:
        qs.store.engine.dispose()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_memory_always_equals_the_database_whatever_fails(plan):
    with tempfile.TemporaryDirectory() as d:
        _check(plan, f"sqlite:///{Path(d) / 'w.db'}", Path(d))


_pg_names = iter(range(1, 10**6))


def test_memory_always_equals_the_database_whatever_fails_on_postgresql(postgres_url):
    """The same property on PostgreSQL (fewer examples: each needs a new database)."""
    import psycopg

    base = postgres_url.rsplit("/", 1)[0]
    host, port = base.split("@", 1)[1].split(":")

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(batches)
    def prop(plan):
        name = f"wprop{next(_pg_names)}"
        with psycopg.connect(host=host, port=int(port), user="madoguchi", dbname="postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        try:
            with tempfile.TemporaryDirectory() as d:
                _check(plan, f"{base}/{name}", Path(d))
        finally:
            with psycopg.connect(host=host, port=int(port), user="madoguchi", dbname="postgres",
                                 autocommit=True) as c:
                c.execute(f"DROP DATABASE {name} WITH (FORCE)")

    prop()
