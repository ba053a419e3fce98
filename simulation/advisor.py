"""The staffing advisor: the fewest counter-hours per time slot that meet a wait target.

1. **Demand per department and slot.** Citizens of each purpose are planned many times by the
   real router (the planner, with the scenario's answer probabilities) to learn how many steps
   each purpose brings to each department and their mean service minutes; times the expected
   arrivals per slot (arrivals.expected_by_slot) this gives each department's load per slot.
2. **Erlang C per slot** (erlang.staffing_by_slot): each department and slot as a steady M/M/c
   queue — the fewest counters with P(wait ≤ target) ≥ share.
3. **Check and adjust by simulation.** Each day runs with that schedule (one dedicated counter
   per unit of staffing, standard speed, no lunch: lunch is the planner's rota inside the
   counter-hours). Where a department's share within the target in a slot falls short (queues
   carry over from busy slots, service is not exponential, people follow multi-step routes), a
   counter is added there; then one counter is taken away wherever the result stays met with
   room to spare. Repeat until met or out of rounds.

The advice is per day and slot: counters are what a planner staffs, so the output counts
counter-hours, not people.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .arrivals import expected_by_slot
from .erlang import staffing_by_slot
from .model import MIN
from .runner import router_for, run_replications
from .scenario import CounterPlan, Scenario
from .stats import combine

MIN_EXITS = 8  # a slot with fewer pooled queue exits is too thin to judge on its own


def parse_target(text: str) -> tuple[float, float]:
    """'90% within 30 min' -> (0.9, 30.0). Also '80%/10', '0.95 within 20 minutes', '30分以内に90%'."""
    t = text.strip()
    m = re.match(r"^(\d+(?:\.\d+)?)\s*分以内に?\s*(\d+(?:\.\d+)?)\s*(%?)$", t)
    if m:  # Japanese order: minutes first
        minutes, value, pct = float(m.group(1)), float(m.group(2)), m.group(3)
    else:
        m = re.match(
            r"^(\d+(?:\.\d+)?)\s*(%?)\s*(?:within|in|/)\s*(\d+(?:\.\d+)?)\s*(?:min|mins|minutes?|分)?$", t
        )
        if not m:
            raise ValueError(f'expected a target such as "90% within 30 min", got {text!r}')
        value, pct, minutes = float(m.group(1)), m.group(2), float(m.group(3))
    share = value / 100.0 if pct or value > 1 else value
    if not 0 < share < 1 or minutes <= 0:
        raise ValueError(f"the share must be between 0 and 100% and the minutes above 0, got {text!r}")
    return share, minutes


@dataclass
class DayAdvice:
    day: str
    slots: list[tuple[float, float]]
    erlang: dict[tuple[str, ...], list[int]]  # counter group -> counters per slot (the start)
    counters: dict[tuple[str, ...], list[int]]  # the advice
    result: dict[str, Any] = field(default_factory=dict)  # combined simulation summary
    met: bool = False
    shortfalls: list[tuple[str, int, float]] = field(default_factory=list)  # (dept, slot, share)

    def counter_hours(self, which: str = "counters") -> float:
        table = getattr(self, which)
        return sum(c * (b - a) / 60.0 for cs in table.values() for c, (a, b) in zip(cs, self.slots, strict=True))


@dataclass
class Advice:
    scenario: str
    title: str
    share: float
    within: float
    replications: int
    days: list[DayAdvice]

    @property
    def met(self) -> bool:
        return all(d.met for d in self.days)


def department_demand(sc: Scenario, samples: int = 300, seed: int = 0) -> dict[str, dict[str, tuple[float, float]]]:
    """purpose -> department -> (steps per citizen, mean service minutes per step)."""
    router = router_for(sc)
    rng = random.Random(seed)
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for purpose in sc.purposes:
        n = 1 if sc.purposes[purpose].route is not None else samples
        steps: dict[str, list[float]] = {}
        for _ in range(n):
            route, _service = router(purpose, rng)
            for r in route:
                steps.setdefault(r.department, []).append(r.minutes)
        out[purpose] = {d: (len(ms) / n, sum(ms) / len(ms)) for d, ms in steps.items()}
    return out


Group = tuple[str, ...]  # the departments one counter serves


def _loads(sc: Scenario, day, demand) -> dict[str, tuple[list[float], list[float]]]:
    """department -> (expected step arrivals per slot, expected service minutes per slot)."""
    by_slot = expected_by_slot(sc, day)
    depts = sorted({d for per in demand.values() for d in per}, key=lambda d: _rank(sc, d))
    out = {}
    for d in depts:
        ps = [p for p in demand if d in demand[p]]
        arrivals = [sum(per.get(p, 0.0) * demand[p][d][0] for p in ps) for per in by_slot]
        work = [sum(per.get(p, 0.0) * demand[p][d][0] * demand[p][d][1] for p in ps) for per in by_slot]
        out[d] = (arrivals, work)
    return out


def _erlang(sc: Scenario, arrivals: list[float], work: list[float], share: float, within: float) -> list[int]:
    total = sum(arrivals)
    if total <= 0:
        return [0] * len(arrivals)
    needs = staffing_by_slot(arrivals, sc.slot_minutes, sum(work) / total, share, within)
    # a group with any demand keeps one counter open all day: citizens arrive in every slot
    return [max(n.counters, 1) for n in needs]


def counter_groups(sc: Scenario, loads, share: float, within: float) -> list[Group]:
    """Busy departments get their own counters; quiet ones (one counter is enough in every slot)
    share counters the way the site already pairs them (site.toml counters serving several)."""
    quiet = {d for d, (a, w) in loads.items() if max(_erlang(sc, a, w, share, within), default=0) <= 1}
    parent = {d: d for d in loads}

    def root(d: str) -> str:
        while parent[d] != d:
            d = parent[d]
        return d

    for c in sc.counters:
        ds = [d for d in c.departments if d in quiet]
        for x in ds[1:]:
            parent[root(x)] = root(ds[0])
    groups: dict[str, list[str]] = {}
    for d in loads:
        groups.setdefault(root(d), []).append(d)
    return sorted((tuple(g) for g in groups.values()), key=lambda g: _rank(sc, g[0]))


def erlang_schedule(sc: Scenario, day, share: float, within: float, demand, groups: list[Group] | None = None):
    """Counters per counter group and slot from Erlang C on the expected load (pooled per group)."""
    loads = _loads(sc, day, demand)
    groups = groups or counter_groups(sc, loads, share, within)
    out: dict[Group, list[int]] = {}
    for g in groups:
        n = len(sc.slots())
        arrivals = [sum(loads[d][0][k] for d in g) for k in range(n)]
        work = [sum(loads[d][1][k] for d in g) for k in range(n)]
        out[g] = _erlang(sc, arrivals, work, share, within)
    return out


def _rank(sc: Scenario, d: str) -> tuple[int, str]:
    order = list(sc.departments)
    return (order.index(d) if d in order else len(order), d)


def schedule_counters(sc: Scenario, schedule: dict[Group, list[int]]) -> tuple[CounterPlan, ...]:
    """Counters of each group: the k-th is on duty in the slots that need more than k."""
    slots = sc.slots()
    plans = []
    number = 1
    for g, cs in schedule.items():
        for k in range(max(cs, default=0)):
            windows: list[tuple[float, float]] = []
            for (a, b), c in zip(slots, cs, strict=True):
                if c > k:
                    if windows and windows[-1][1] == a:
                        windows[-1] = (windows[-1][0], b)
                    else:
                        windows.append((a, b))
            plans.append(CounterPlan(number, g, tuple(windows), 1.0, f"advisor: {'+'.join(g)} #{k + 1}"))
            number += 1
    return tuple(plans)


def _simulate(sc: Scenario, day, schedule, replications: int, seed: int, jobs: int) -> dict[str, Any]:
    day_sc = dataclasses.replace(sc, days=(day,), counters=schedule_counters(sc, schedule))
    return combine(day_sc, run_replications(day_sc, replications, seed, jobs=jobs))


def _shortfalls(summary: dict[str, Any], share: float) -> list[tuple[str, int, float]]:
    """(department, slot or -1 for the whole day, share) where the target is missed.

    Slots with fewer than MIN_EXITS pooled queue exits are judged only as part of the day.
    """
    out = []
    for d, f in summary["departments"].items():
        for k, (n, ok) in enumerate(zip(f["slot_exits"], f["slot_within"], strict=True)):
            if n >= MIN_EXITS and ok / n < share:
                out.append((d, k, ok / n))
        total = sum(f["slot_exits"])
        if total >= MIN_EXITS and sum(f["slot_within"]) / total < share:
            out.append((d, -1, sum(f["slot_within"]) / total))
    return out


def advise(
    sc: Scenario,
    share: float,
    within: float,
    replications: int = 6,
    seed: int = 1,
    jobs: int = 1,
    rounds: int = 6,
    log: Callable[[str], None] | None = None,
) -> Advice:
    """Erlang C per slot, then simulate and adjust each day (module docstring)."""
    say = log or (lambda _m: None)
    sc = dataclasses.replace(sc, target_share=share, target_minutes=within)
    demand = department_demand(sc, seed=seed)
    slots = sc.slots()
    # the same grouping every day (from the busiest day's loads), so the days compare
    busiest = max(sc.days, key=lambda d: sum(sum(a) for a, _ in _loads(sc, d, demand).values()))
    groups = counter_groups(sc, _loads(sc, busiest, demand), share, within)
    group_of = {d: g for g in groups for d in g}
    days = []
    for day in sc.days:
        start = erlang_schedule(sc, day, share, within, demand, groups)
        schedule = {d: list(cs) for d, cs in start.items()}
        adv = DayAdvice(day.isoformat(), slots, start, schedule)
        say(f"{day}: Erlang C start {adv.counter_hours('erlang'):.1f} counter-hours")
        for rnd in range(rounds):
            summary = _simulate(sc, day, schedule, replications, seed, jobs)
            short = _shortfalls(summary, share)
            adv.result, adv.shortfalls = summary, short
            if not short:
                adv.met = True
                break
            bumped: set[tuple[Group, int]] = set()
            for d, k, _got in short:
                g = group_of[d]
                if k < 0:  # the day as a whole falls short: strengthen the slot with most misses
                    f = summary["departments"][d]
                    misses = [(n - ok) for n, ok in zip(f["slot_exits"], f["slot_within"], strict=True)]
                    k = max(range(len(misses)), key=misses.__getitem__)
                if (g, k) not in bumped:  # two departments of one group short in one slot: one counter
                    schedule[g][k] += 1
                    bumped.add((g, k))
            say(f"  round {rnd + 1}: {len(short)} shortfall(s) → {adv.counter_hours():.1f} counter-hours")
        if adv.met:
            _trim(sc, day, adv, share, replications, seed, jobs, say)
        days.append(adv)
    return Advice(sc.name, sc.title, share, within, replications, days)


TRIM_SLACK = 0.03  # a slot is a trim candidate when it beats the target by this much
TRIM_ROUNDS = 3


def _trim(sc, day, adv: DayAdvice, share, replications, seed, jobs, say) -> None:
    """Take one counter away wherever the result has room to spare; keep the cuts that still meet.

    Candidates: every group-slot with more than one counter whose departments all meet the
    target with TRIM_SLACK to spare in that slot and the next (a queue carries over), or are too
    thin to judge there. All candidates are cut at once; cuts of groups that then fall short are
    restored and the rest confirmed by another simulation. A few rounds, so a cut that only
    works together with another is not chased: the result is a good schedule, not a proven optimum.
    """
    n = len(adv.slots)
    for _ in range(TRIM_ROUNDS):
        depts = adv.result.get("departments", {})

        def slack(d: str, k: int, depts=depts) -> bool:
            f = depts.get(d)
            if not f or k >= n:
                return True
            exits, ok = f["slot_exits"][k], f["slot_within"][k]
            return exits < MIN_EXITS or ok / exits >= share + TRIM_SLACK

        cands = [
            (g, k)
            for g, cs in adv.counters.items()
            for k, c in enumerate(cs)
            if c > 1 and all(slack(d, k) and slack(d, k + 1) for d in g)
        ]
        if not cands:
            return
        trial = {g: list(cs) for g, cs in adv.counters.items()}
        for g, k in cands:
            trial[g][k] -= 1
        summary = _simulate(sc, day, trial, replications, seed, jobs)
        short = _shortfalls(summary, share)
        if short:
            # restore the cuts of groups that fell short (that slot and the one before it, or
            # every slot for a day-level miss), then confirm what is left
            group_of = {d: g for g in adv.counters for d in g}
            failing = {(group_of[d], j) for d, k, _ in short if k >= 0 for j in (k - 1, k)}
            failing |= {(group_of[d], j) for d, k, _ in short if k < 0 for j in range(n)}
            for g, k in cands:
                if (g, k) in failing:
                    trial[g][k] += 1
            if trial == adv.counters:
                return
            summary = _simulate(sc, day, trial, replications, seed, jobs)
            if _shortfalls(summary, share):
                return
        before = adv.counter_hours()
        adv.counters, adv.result = trial, summary
        say(f"  trimmed → {adv.counter_hours():.1f} counter-hours (from {before:.1f})")


def format_result(sc: Scenario, adv: Advice) -> str:
    from .report import _pad, _width, department_names

    names = department_names(sc)
    lines = [
        f"Staffing advice — {adv.title}: target {adv.share * 100:g}% within {adv.within:g} min "
        f"({adv.replications} replications per check)"
    ]
    for d in adv.days:
        hdr = ["", *[_clock(a) for a, _ in d.slots], "counter-h", "≤target %", "wait 平均"]
        rows = []
        for g, cs in d.counters.items():
            ch = sum(c * (b - a) / 60 for c, (a, b) in zip(cs, d.slots, strict=True))
            for i, dept in enumerate(g):
                f = d.result.get("departments", {}).get(dept, {})
                within = f.get("within_target", {}).get("mean")
                wait = f.get("wait_mean", {}).get("mean")
                rows.append(
                    [
                        ("" if i == 0 else "  + ") + f"{names.get(dept, dept)} {dept}",
                        *[str(c) if i == 0 else "" for c in cs],
                        f"{ch:.1f}" if i == 0 else "",
                        f"{within * 100:.1f}" if within is not None else "–",
                        f"{wait:.1f}" if wait is not None else "–",
                    ]
                )
        widths = [max(_width(r[i]) for r in [hdr, *rows]) for i in range(len(hdr))]
        lines.append("")
        lines.append(
            f"{d.day}: {'MET' if d.met else 'NOT MET'} — {d.counter_hours():.1f} counter-hours "
            f"(Erlang C start {d.counter_hours('erlang'):.1f})"
        )
        lines.append("  ".join(_pad(h, widths[i], i > 0) for i, h in enumerate(hdr)))
        for r in rows:
            lines.append("  ".join(_pad(c, widths[i], i > 0) for i, c in enumerate(r)))
        if d.shortfalls and not d.met:
            lines.append(
                "short: " + ", ".join(f"{dd} {_clock(d.slots[k][0]) if k >= 0 else 'day'} {s * 100:.0f}%" for dd, k, s in d.shortfalls)
            )
    lines.append("")
    lines.append(f"result: {'every day meets the target' if adv.met else 'NOT met on every day'}")
    return "\n".join(lines)


def _clock(minute: float) -> str:
    return f"{int(minute // 60):02d}:{int(minute % 60):02d}"


def result_to_dict(adv: Advice) -> dict[str, Any]:
    return {
        "scenario": adv.scenario,
        "target": {"share": adv.share, "within_minutes": adv.within},
        "replications": adv.replications,
        "met": adv.met,
        "days": [
            {
                "day": d.day,
                "met": d.met,
                "slots": [[_clock(a), _clock(b)] for a, b in d.slots],
                "counters": {"+".join(g): cs for g, cs in d.counters.items()},
                "erlang_start": {"+".join(g): cs for g, cs in d.erlang.items()},
                "counter_hours": d.counter_hours(),
                "erlang_counter_hours": d.counter_hours("erlang"),
                "departments": {
                    k: {m: v[m] for m in ("within_target", "wait_mean", "wait_p90", "utilisation")}
                    for k, v in d.result.get("departments", {}).items()
                },
            }
            for d in adv.days
        ],
    }


__all__ = ["MIN", "advise", "format_result", "parse_target", "result_to_dict"]
