"""The SQL of queue_server.kpi against a plain Python reading of the same definitions (docs/kpi.md),
on random lobby histories made by the real pure core (queue_server.core.lobby): issues, calls, recalls,
starts, completions, transfers, procedures added, requeues and no-shows in random order.

The reference walks each ticket's events once, in sequence order — a second, independent
implementation: where the window-function SQL and this loop disagree, one of them is wrong.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from dataclasses import replace

import pytest
from sqlalchemy import insert

from queue_server.core.model import CounterState, RouteStep
from queue_server.core.transitions import TransitionError
from queue_server.kpi import Period, compute
from queue_server.storage import EventRow, Store

from .core_helpers import lobby, ticket
from .kpi_log import TZ

DAY = dt.date(2026, 4, 1)
ROUTES = [
    (RouteStep("shimin", ("juminhyo",), (), 5),),
    (RouteStep("shimin", ("juminhyo", "inkan"), (), 8),),
    (RouteStep("shimin", ("tenshutsu",), (), 10), RouteStep("hoken_nenkin", ("nhi_loss",), (0,), 6)),
    (RouteStep("hoken_nenkin", ("nhi_join",), (), 6), RouteStep("kosodate", ("child",), (), 8)),  # both ready at once
]
COUNTERS = ((1, ("shimin",)), (2, ("shimin", "hoken_nenkin")), (3, ("hoken_nenkin", "kosodate")))


def random_log(seed: int, moves: int = 400) -> list[dict]:
    rng = random.Random(seed)
    lb = lobby(*COUNTERS)
    now = dt.datetime.combine(DAY, dt.time(8, 30), TZ).timestamp()
    out: list[dict] = []

    def log(change) -> None:
        for ev in change.events:
            out.append({"site": "honcho", "seq": len(out) + 1, "at": now, "kind": ev.kind, "ticket": ev.ticket,
                        "step": ev.step, "counter": ev.counter, "actor": "", "payload": dict(ev.payload)})

    for n, _ in COUNTERS:  # the helper's counters start open: close them, then open with a logged event
        lb.counters[n] = replace(lb.counters[n], state=CounterState.CLOSED)
        log(lb.set_counter(n, CounterState.OPEN))
    issued = 0
    for _ in range(moves):
        now += rng.choice([0, 5, 30, 60, 120, 240])
        try:
            if rng.random() < 0.25:
                issued += 1
                t = ticket(issued, rng.choice(ROUTES), now=now, reserved_for=now if rng.random() < 0.1 else None)
                log(lb.issue(t, {"prefilled": rng.random() < 0.3, "online_capable": rng.random() < 0.2}))
                continue
            n = rng.choice([c for c, _ in COUNTERS])
            cur = lb.ticket_at(n)
            if cur is None:
                _, ch = lb.call_next(n, now)
                log(ch)
                continue
            step = cur.active_step
            r = rng.random()
            if step.state.value == "called":
                if step.recalls >= lb.max_recalls and r < 0.5:
                    log(lb.no_show(n, now))
                elif r < 0.55:
                    log(lb.start(n, now))
                elif r < 0.8:
                    log(lb.recall(n, now))
                elif r < 0.9:
                    log(lb.requeue(n, now))
                else:
                    log(lb.transfer(n, rng.choice(["shimin", "hoken_nenkin", "kosodate"]), now))
            else:
                if r < 0.8:
                    _, ch = lb.complete(n, now)
                    log(ch)
                elif r < 0.9:
                    log(lb.add_procedure(n, rng.choice(["hoken_nenkin", step.department]), ["extra"], 4, now))
                else:
                    log(lb.transfer(n, rng.choice(["shimin", "hoken_nenkin", "kosodate"]), now))
        except TransitionError:
            pass  # an illegal move (e.g. no-show before the recalls, transfer to its own department)
    return out


def reference(events: list[dict]) -> dict:
    """Every interval of docs/kpi.md, by walking each ticket's events in order."""
    waits: dict[str, list[float]] = defaultdict(list)
    service: dict[str, list[float]] = defaultdict(list)
    stays: list[float] = []
    occupied: dict[int, float] = defaultdict(float)
    serving: dict[int, float] = defaultdict(float)
    depts: dict[str, set] = defaultdict(set)
    by_ticket: dict[str, list[dict]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e["seq"]):
        if e["ticket"]:
            by_ticket[e["ticket"]].append(e)
    for evs in by_ticket.values():
        issued_at = release = last_call = last_start = None
        waiting = False
        for e in evs:
            k, p = e["kind"], e["payload"]
            if k == "issued":
                issued_at = release = e["at"]
                waiting = True
            elif k == "called":
                if waiting:
                    waits[p["department"]].append(e["at"] - release)
                    waiting = False
                last_call = e["at"]
            elif k == "started":
                last_start = e["at"]
                depts[e["ticket"]].add(p["department"])
            if k in ("completed", "transferred", "no_show", "requeued") and e["counter"] is not None:
                occupied[e["counter"]] += e["at"] - last_call
                if last_start is not None and last_start >= last_call:
                    serving[e["counter"]] += e["at"] - last_start
            if k == "completed":
                service[p["department"]].append(e["at"] - last_start)
                release, waiting = e["at"], True
                if p["closed"]:
                    stays.append(e["at"] - issued_at)
            elif k == "transferred":
                release, waiting = e["at"], True
    return {"waits": waits, "service": service, "stays": stays, "occupied": occupied, "serving": serving,
            "depts": depts}


def stats(xs: list[float]) -> tuple:
    """n, mean, nearest-rank p50 and p90, max — in minutes, rounded as the report rounds."""
    if not xs:
        return (0, None, None, None, None)
    s = sorted(x / 60 for x in xs)
    rank = lambda p: s[max(1, math.ceil(p * len(s) / 100)) - 1]  # noqa: E731
    return (len(s), round(sum(s) / len(s), 2), round(rank(50), 2), round(rank(90), 2), round(s[-1], 2))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_agrees_with_a_python_walk_of_the_log(seed, tmp_path):
    events = random_log(seed)
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(insert(EventRow), events)
    rep = compute(store.engine, Period("honcho", DAY, DAY), now=dt.datetime.combine(DAY, dt.time(23), TZ).timestamp())
    ref = reference(events)
    kinds = defaultdict(int)
    for e in events:
        kinds[e["kind"]] += 1
    assert kinds["called"] > 40 and kinds["transferred"] and kinds["requeued"] and kinds["no_show"]  # a rich history

    waits = {r["department"]: r for r in rep.tables["waits"].as_dicts()}
    for dept, xs in ref["waits"].items():
        r = waits[dept]
        assert (r["n"], r["mean"], r["p50"], r["p90"], r["max"]) == stats(xs), dept
    everyone = [x for xs in ref["waits"].values() for x in xs]
    r = waits["(all)"]
    assert (r["n"], r["mean"], r["p50"], r["p90"], r["max"]) == stats(everyone)
    assert r["within_target"] == round(sum(1 for x in everyone if x <= 1800) / len(everyone), 4)

    svc = {r["department"]: r for r in rep.tables["service_step"].as_dicts()}
    for dept, xs in ref["service"].items():
        r = svc[dept]
        assert (r["n"], r["mean"], r["p50"], r["p90"], r["max"]) == stats(xs), dept

    s = rep.summary()
    st = stats(ref["stays"])
    assert (s["stay_mean"], s["stay_p50"], s["stay_p90"], s["stay_max"]) == st[1:]
    visitors = len(ref["depts"])
    assert s["visitors"] == visitors
    assert s["departments_per_visitor"] == round(sum(len(d) for d in ref["depts"].values()) / visitors, 2)
    assert s["rework"] == kinds["procedure_added"] and s["transfers"] == kinds["transferred"]
    assert s["no_shows"] == kinds["no_show"] and s["recalls"] == kinds["recalled"]

    counters = {r["counter"]: r for r in rep.tables["counters"].as_dicts()}
    for c, occ in ref["occupied"].items():
        assert counters[c]["occupied_minutes"] == round(occ / 60, 2), c
        assert counters[c]["serving_minutes"] == round(ref["serving"][c] / 60, 2), c
