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

from queue_server.core.erlang import staffing_by_slot

from .arrivals import expected_by_slot
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
    # the shift plan that fits the site (shiftplan.py), its simulated result, and whether it meets
    plan: Any = None
    plan_result: dict[str, Any] = field(default_factory=dict)
    plan_met: bool = False
    plan_short: list[tuple[str, int, float]] = field(default_factory=list)
    plan_replications: int = 0

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
    planned: bool = False

    @property
    def met(self) -> bool:
        if self.planned:
            return all(d.plan_met for d in self.days)
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
    plan: bool = True,
    precision: float = 0.03,
    max_replications: int = 24,
) -> Advice:
    """Erlang C per slot, then simulate and adjust each day (module docstring); with ``plan``, the
    shift plan that fits the site's counters and staff, checked by simulation with replications
    added until the interval of each department's daily share within the target is ±``precision``."""
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
        if plan and sc.kind == "lobby":
            _plan(sc, day, adv, share, replications, seed, jobs, rounds, precision, max_replications, say)
        days.append(adv)
    return Advice(sc.name, sc.title, share, within, replications, days, planned=plan and sc.kind == "lobby")


def simulate_precise(
    sc: Scenario, replications: int, seed: int, jobs: int, precision: float, max_replications: int
) -> tuple[dict[str, Any], int]:
    """Replicate until every department with citizens has its share within the target known to
    ±``precision`` (95%), or ``max_replications``: the answer does not move with the seed."""
    reps = run_replications(sc, replications, seed, jobs=jobs)
    while True:
        summary = combine(sc, reps)
        wide = [
            f["within_target"]["ci"]
            for f in summary["departments"].values()
            if (f["served"]["mean"] or 0) >= MIN_EXITS and f["within_target"]["ci"] is not None
        ]
        if not wide or max(wide) <= precision or len(reps) >= max_replications:
            return summary, len(reps)
        more = min(len(reps), max_replications - len(reps))
        reps += run_replications(sc, more, seed, jobs=jobs, first=len(reps))


def _plan(sc, day, adv: DayAdvice, share, replications, seed, jobs, rounds, precision, max_reps, say) -> None:
    """Shift plan for the day's need; where its simulation misses, ask one counter more there."""
    from .shiftplan import plan_day

    need = {g: list(cs) for g, cs in adv.counters.items()}
    for rnd in range(rounds):
        p = plan_day(sc, day, need)
        day_sc = dataclasses.replace(sc, days=(day,), counters=p.counters)
        summary, n = simulate_precise(day_sc, replications, seed, jobs, precision, max_reps)
        short = _shortfalls(summary, share)
        adv.plan, adv.plan_result, adv.plan_short, adv.plan_replications = p, summary, short, n
        say(f"  plan round {rnd + 1}: {max(p.open_per_slot(), default=0)} desks at most, {len(short)} shortfall(s), "
            f"{len(p.limits)} limit(s), {n} replications")
        if not short:
            adv.plan_met = True
            return
        group_of = {d: g for g in need for d in g}
        limited = {(g, k) for g, k, _ in p.limits}
        bumped = False
        for d, k, _got in short:
            g = group_of.get(d)
            if g is None:
                continue
            ks = [k] if k >= 0 else [max(range(len(need[g])), key=lambda j: need[g][j])]
            for j in ks:
                if (g, j) not in limited:
                    need[g][j] += 1
                    bumped = True
        if not bumped:  # every miss is where the site has no desk or nobody free: that is the answer
            return


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
        if d.plan is not None:
            lines += _format_plan(sc, d, names)
    lines.append("")
    lines.append(f"result: {'every day meets the target' if adv.met else 'NOT met on every day'}")
    return "\n".join(lines)


def _format_plan(sc: Scenario, d: DayAdvice, names: dict[str, str]) -> list[str]:
    """The shift plan: who sits at which desk in each slot, and what it achieves in simulation."""
    from .report import _fmt, _grid

    p = d.plan
    head = ["desk", *[_clock(a) for a, _ in p.slots]]
    rows = []
    for desk, caps in p.desks:
        cells = [
            s.get(desk, ("", ()))[0] + (f"/{r[desk][0]}" if desk in r else "")
            for s, r in zip(p.seats, p.reliefs or [{}] * len(p.seats), strict=True)
        ]
        if any(cells):
            rows.append([f"{desk} {'+'.join(caps)}", *[c or "·" for c in cells]])
    rows.append(["open / desks", *[f"{n}/{len(p.desks)}" for n in p.open_per_slot()]])
    out = ["", f"  shift plan {d.day}: {'MET' if d.plan_met else 'NOT MET'} with the site's {len(p.desks)} desks "
           f"({p.person_hours():.1f} person-hours at desks; {d.plan_replications} replications)"]
    out += ["  " + r for r in _grid(head, rows)]
    if any(p.reliefs):
        out.append("  (A/B: B sits at the desk while A is at lunch)")
    res = d.plan_result
    figs = []
    for dept, f in res.get("departments", {}).items():
        if (f["served"]["mean"] or 0) >= 1:
            figs.append(f"{names.get(dept, dept)} {_fmt(f['within_target'], 1, pct=True)}% ≤target, wait {_fmt(f['wait_mean'])}")
    out.append("  simulated: " + "; ".join(figs))
    c = res.get("citizens")
    if c:
        out.append(f"  citizens lost: {_fmt(c['lost_share'], 1, pct=True)}% (abandoned {_fmt(c['abandoned'], 0)}, "
                   f"balked {_fmt(c['balked'], 0)}, cutoff {_fmt(c['cutoff'], 0)})")
    if p.limits:
        worst: dict[tuple[Group, int], float] = {}
        for g, k, miss in p.limits:
            worst[(g, k)] = max(worst.get((g, k), 0.0), miss)
        out.append("  limits — standard counters missing (no free desk, or nobody free with the skill):")
        for g in dict.fromkeys(g for g, _ in worst):
            out.append(f"    {'+'.join(g)}: " + ", ".join(
                f"{_clock(p.slots[k][0])} −{m:.2f}" for (gg, k), m in sorted(worst.items(), key=lambda x: x[0][1]) if gg == g))
    return out


def format_spread(results: list[Advice]) -> str:
    """How much the answer moves with the seed: per day, counter-hours and desk person-hours over the runs."""
    lines = [f"spread over {len(results)} seeds (seed, seed+1, …): counter-hours of the need table; "
             "person-hours of the shift plan; met"]
    for i, d in enumerate(results[0].days):
        ch = [r.days[i].counter_hours() for r in results]
        ph = [r.days[i].plan.person_hours() for r in results if r.days[i].plan is not None]
        met = [r.days[i].plan_met if r.planned else r.days[i].met for r in results]
        line = f"  {d.day}: counter-hours {min(ch):.1f}–{max(ch):.1f} (mean {sum(ch) / len(ch):.1f})"
        if ph:
            line += f"; plan person-hours {min(ph):.1f}–{max(ph):.1f}"
        lines.append(line + f"; met {sum(met)}/{len(met)}")
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
                **({"plan": _plan_dict(d)} if d.plan is not None else {}),
            }
            for d in adv.days
        ],
    }


def _plan_dict(d: DayAdvice) -> dict[str, Any]:
    p = d.plan
    return {
        "met": d.plan_met,
        "replications": d.plan_replications,
        "desks": len(p.desks),
        "open_per_slot": p.open_per_slot(),
        "seats": [{str(k): {"staff": v[0], "group": "+".join(v[1])} for k, v in s.items()} for s in p.seats],
        "capacity": {"+".join(g): cs for g, cs in p.capacity.items()},
        "limits": [{"group": "+".join(g), "slot": _clock(p.slots[k][0]), "missing": m} for g, k, m in p.limits],
        "counters": [
            {"number": c.number, "departments": list(c.departments), "windows": [[_clock(a), _clock(b)] for a, b in c.windows],
             "speed": c.speed, "note": c.note}
            for c in p.counters
        ],
        "departments": {
            k: {m: v[m] for m in ("within_target", "wait_mean", "lost_share")}
            for k, v in d.plan_result.get("departments", {}).items()
        },
        "citizens": d.plan_result.get("citizens"),
    }


__all__ = ["MIN", "advise", "format_result", "parse_target", "result_to_dict"]
