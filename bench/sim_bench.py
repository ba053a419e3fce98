#!/usr/bin/env python3
"""Simulation throughput: our lobby model on the M/M/c station beside Ciw and a bare SimPy M/M/c,
same parameters, same run; then the wall time of 30 replications of the April peak week.

Prints a table and JSON; never asserts a time. Usage:

    python bench/sim_bench.py [--customers 50000] [--replications 30] [--jobs 2] [--repeat 3] [--json FILE]

On a shared machine a single pass swings with the load of the moment, and the rows run one after
another, so a spike lands on one row only. ``--repeat N`` runs the four M/M/c rows N times, in
rotated order each round, and keeps each row's fastest round (as timeit does); the ratio line
compares the model with Ciw on those, by wall time (the table) and by CPU time (process time:
not counting the moments another job held the core). ``--repeat 1`` is a single pass. A full garbage collection
before each row keeps one row's cyclic garbage from being collected on the next row's time.

Rows:
- ``model``: simulation.model on config/scenarios/mmc_station.toml — every ticket goes through
  queue_server.core.transitions and every call through dispatch.choose_next.
- ``transitions only``: new_ticket + call + start + complete per customer, no SimPy.
- ``bare SimPy``: one process per customer and a ``simpy.Resource`` (tech.md's reference).
- ``Ciw``: ``ciw.Simulation`` with exponential arrivals and service, c servers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from queue_server.core import transitions  # noqa: E402
from queue_server.core.erlang import mean_wait  # noqa: E402
from queue_server.core.model import RouteStep  # noqa: E402
from simulation.model import SERVED, LobbyDay, scenario_router  # noqa: E402
from simulation.runner import run_replications  # noqa: E402
from simulation.scenario import load_scenario  # noqa: E402
from simulation.stats import combine, summarise_replication  # noqa: E402


def _station(customers: int):
    sc = load_scenario(ROOT / "config" / "scenarios" / "mmc_station.toml")
    st = sc.purposes["service"]
    lam_h = st.yearly  # arrivals per hour
    hours = customers / lam_h
    sc = dataclasses.replace(sc, close_minute=hours * 60.0, warmup_minutes=0.0)
    sc = dataclasses.replace(
        sc, counters=tuple(dataclasses.replace(c, windows=((0.0, hours * 60.0),)) for c in sc.counters)
    )
    c = len(sc.counters)
    svc = st.route[0].minutes
    return sc, c, lam_h / 60.0, 1.0 / svc, hours * 60.0  # per minute


def bench_model(customers: int, seed: int = 1) -> dict:
    sc, c, lam, mu, _ = _station(customers)
    c0, t0 = time.process_time(), time.perf_counter()
    rec = LobbyDay(sc, scenario_router(sc), sc.days[0], random.Random(seed)).run()
    el, cpu = time.perf_counter() - t0, time.process_time() - c0
    waits = [w for w, o in zip(rec.st_wait, rec.st_outcome, strict=True) if o == SERVED]
    # the summary of that one long run (stats.summarise_replication), timed on its own: it was
    # quadratic once (a slot scan per customer), so the bench keeps an eye on it
    s0 = time.perf_counter()
    summarise_replication(sc, [rec])
    return {
        "customers": len(waits), "seconds": el, "cpu_seconds": cpu, "wait_min": sum(waits) / len(waits) / 60.0,
        "summary_seconds": time.perf_counter() - s0,
    }


def bench_transitions(customers: int) -> dict:
    return _bench_transitions(customers)


def _bench_transitions(customers: int) -> dict:
    route = (RouteStep("shimin", (), (), 5.0),)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(customers):
        t = transitions.new_ticket(
            ticket_id=str(i), site="s", day="d", prefix="", number=i, purposes=("x",), lang="ja",
            route=route, now=1.0, public_token="",
        )
        t = transitions.call(t, 0, 1, 2.0)
        t = transitions.start(t, 0, 1, 2.0)
        t = transitions.complete(t, 0, 1, 3.0)
    el, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"customers": customers, "seconds": el, "cpu_seconds": cpu, "wait_min": None}


def bench_simpy(customers: int, seed: int = 1) -> dict:
    import simpy

    _, c, lam, mu, horizon = _station(customers)
    rng = random.Random(seed)
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=c)
    waits: list[float] = []

    def customer():
        t = env.now
        with res.request() as req:
            yield req
            waits.append(env.now - t)
            yield env.timeout(rng.expovariate(mu))

    def source():
        while True:
            yield env.timeout(rng.expovariate(lam))
            if env.now >= horizon:
                return
            env.process(customer())

    env.process(source())
    c0, t0 = time.process_time(), time.perf_counter()
    env.run()
    el, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"customers": len(waits), "seconds": el, "cpu_seconds": cpu, "wait_min": sum(waits) / len(waits)}


def bench_ciw(customers: int, seed: int = 1) -> dict | None:
    try:
        import ciw
    except ImportError:
        return None
    _, c, lam, mu, horizon = _station(customers)
    net = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(lam)],
        service_distributions=[ciw.dists.Exponential(mu)],
        number_of_servers=[c],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(net)
    c0, t0 = time.process_time(), time.perf_counter()
    sim.simulate_until_max_time(horizon)
    el, cpu = time.perf_counter() - t0, time.process_time() - c0
    recs = sim.get_all_records()
    return {
        "customers": len(recs),
        "seconds": el,
        "cpu_seconds": cpu,
        "wait_min": sum(r.waiting_time for r in recs) / len(recs),
    }


def bench_april(replications: int, jobs: int, seed: int = 1) -> dict:
    """30 April-week replications, each simulated *and summarised* (run_replications does both),
    then combined across replications as `run.py simulate` does."""
    sc = load_scenario(ROOT / "config" / "scenarios" / "april_peak_week.toml")
    t0 = time.perf_counter()
    reps = run_replications(sc, replications, seed, jobs=jobs)
    combine(sc, reps)
    el = time.perf_counter() - t0
    tickets = sum(sum(r["tickets"].values()) for r in reps)
    steps = sum(r["overall"]["exits"] for r in reps)
    return {
        "replications": replications,
        "jobs": jobs,
        "seconds": el,
        "tickets": tickets,
        "steps": steps,
        "days": len(sc.days) * replications,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=50_000, help="customers per M/M/c run (tech.md used 200,000)")
    ap.add_argument("--replications", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the M/M/c rows; each row keeps its fastest")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)

    _, c, lam, mu, _ = _station(args.customers)
    rho = lam / (c * mu)
    erlang = mean_wait(lam, mu, c)
    benches = [
        ("model (transitions + choose_next)", bench_model),
        ("transitions only (no SimPy)", bench_transitions),
        ("bare SimPy (process + Resource)", bench_simpy),
        ("Ciw 3.x", bench_ciw),
    ]
    best: dict[str, dict | None] = {}
    rounds: list[dict[str, tuple[float, float]]] = []  # (wall, CPU) seconds per row, per round
    for k in range(max(1, args.repeat)):
        times: dict[str, tuple[float, float]] = {}
        for name, fn in benches[k % len(benches) :] + benches[: k % len(benches)]:  # rotated
            gc.collect()  # the previous row's garbage (Ciw's and SimPy's objects hold cycles) is not this row's
            r = fn(args.customers)
            if r is not None:
                times[name] = (r["seconds"], r["cpu_seconds"])
                if name not in best or best[name] is None or r["seconds"] < best[name]["seconds"]:
                    best[name] = r
            else:
                best.setdefault(name, None)
        rounds.append(times)
    rows = [(name, best.get(name)) for name, _ in benches]
    april = bench_april(args.replications, args.jobs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"M/M/{c}, rho = {rho:.2f}, mean service {1 / mu:g} min, ~{args.customers:,} customers per run; "
          f"Erlang C Wq = {erlang:.2f} min")
    print(f"{'implementation':36} {'customers':>10} {'seconds':>8} {'customers/s':>12} {'mean wait':>10}")
    out_rows = {}
    for name, r in rows:
        if r is None:
            print(f"{name:36} {'(not installed)':>10}")
            continue
        rate = r["customers"] / r["seconds"]
        w = f"{r['wait_min']:.2f}" if r["wait_min"] is not None else "–"
        print(f"{name:36} {r['customers']:>10,} {r['seconds']:>8.2f} {rate:>12,.0f} {w:>10}")
        out_rows[name] = {**r, "customers_per_s": rate}
    model_row, ciw_row = out_rows.get(benches[0][0]), out_rows.get(benches[3][0])
    ratio = per_round = cpu_ratio = cpu_per_round = None
    if model_row and ciw_row:
        m, c_ = benches[0][0], benches[3][0]
        nm, nc = model_row["customers"], ciw_row["customers"]
        both = [t for t in rounds if m in t and c_ in t]
        ratio = model_row["customers_per_s"] / ciw_row["customers_per_s"]
        per_round = [(t[c_][0] / nc) / (t[m][0] / nm) for t in both]
        cpu_ratio = (min(t[c_][1] for t in both) / nc) / (min(t[m][1] for t in both) / nm)
        cpu_per_round = [(t[c_][1] / nc) / (t[m][1] / nm) for t in both]
        print(
            f"model ÷ Ciw, fastest of {len(rounds)} round(s) each: wall {ratio:.2f} "
            f"(per round {', '.join(f'{x:.2f}' for x in per_round)}); "
            f"CPU time {cpu_ratio:.2f} (per round {', '.join(f'{x:.2f}' for x in cpu_per_round)})"
        )
    if model_row and "summary_seconds" in model_row:
        print(
            f"summary of the model's run ({model_row['customers']:,} customers): "
            f"{model_row['summary_seconds']:.2f} s (simulation {model_row['seconds']:.2f} s)"
        )
    print()
    print(
        f"April peak week: {april['replications']} replications × 5 days on {april['jobs']} processes: "
        f"{april['seconds']:.1f} s wall, summaries included ({april['tickets'] / april['replications']:.0f} tickets and "
        f"{april['steps'] / april['replications']:.0f} counter steps per replication)"
    )
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_1min": load,
        },
        "mmc": {
            "c": c,
            "rho": rho,
            "service_minutes": 1 / mu,
            "erlang_wq_minutes": erlang,
            "repeat": len(rounds),
            "rows": out_rows,
            "model_over_ciw": ratio,
            "model_over_ciw_per_round": per_round,
            "model_over_ciw_cpu": cpu_ratio,
            "model_over_ciw_cpu_per_round": cpu_per_round,
        },
        "april_peak_week": april,
    }
    if args.json:  # before stdout, which a pager or `head` may close early
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
