"""The shift plan: who sits at which physical counter in each slot, within the site's limits. Pure.

The advisor first finds how many standard-speed counters each counter group needs per slot
(Erlang C, then simulation). A planner cannot staff that table as it stands: the lobby has so
many desks, each wired for some departments; the staff of the day have skills, lunch breaks,
and in April newcomers who serve at 0.75 speed. :func:`plan_day` turns the need into such a plan,
greedily, slot by slot:

1. Busy groups first (the largest need): keep whoever sat at a counter for this group in the
   previous slot (no musical chairs), then add the best free (counter, person) pair — a desk
   that serves more of the group, a faster person available for more of the slot, with fewer
   other skills (keep the versatile ones for later) — until the group's capacity
   Σ speed × (share of the slot not at lunch) reaches its need. A newcomer counts 0.75.
2. Quiet groups (need ≤ 1): a counter already open for another quiet group that serves the
   department covers it (the site's pairing, e.g. 子育て支援課+健康課 at one desk), else a
   counter is opened for it.
3. Minimum opening (``[advisor] min_open``, default one counter for every department with
   demand): counters are opened until each department has that many.

Whatever cannot be staffed — no free desk that serves the group, or nobody free with the skill —
is reported as a limit with the capacity missing; the plan never seats two people at one desk
nor anyone at lunch. Counters become :class:`CounterPlan` s the model runs (lunch cut out of the
windows, the person's speed), numbered ``desk × 100 + k`` for the k-th shift at that desk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .scenario import CounterPlan, Scenario, StaffMember

Group = tuple[str, ...]


@dataclass
class DayPlan:
    day: str
    slots: list[tuple[float, float]]
    desks: list[tuple[int, tuple[str, ...]]]
    seats: list[dict[int, tuple[str, Group]]]  # per slot: desk -> (person, group served)
    capacity: dict[Group, list[float]]  # standard-speed counters per slot per group
    limits: list[tuple[Group, int, float]] = field(default_factory=list)  # (group, slot, capacity missing)
    reliefs: list[dict[int, tuple[str, float, float]]] = field(default_factory=list)  # per slot: desk -> (person, from, to)
    counters: tuple[CounterPlan, ...] = ()

    def open_per_slot(self) -> list[int]:
        return [len(s) for s in self.seats]

    def person_hours(self) -> float:
        return sum(
            (b - a) / 60.0 * len(seats) for seats, (a, b) in zip(self.seats, self.slots, strict=True)
        )


def desks_of(sc: Scenario) -> list[tuple[int, tuple[str, ...]]]:
    """Physical counters and the departments each can serve: ``[advisor] counters``, else the scenario's."""
    if sc.advisor and sc.advisor.counters is not None:
        return list(sc.advisor.counters)
    return [(c.number, tuple(c.departments)) for c in sc.counters]


def staff_of(sc: Scenario) -> list[StaffMember]:
    """The staff: ``[advisor] staff``, else one person per scenario counter — its departments,
    its speed (a newcomer's 0.75) and its lunch break (the gap in its windows)."""
    if sc.advisor and sc.advisor.staff is not None:
        return list(sc.advisor.staff)
    out = []
    for c in sc.counters:
        gaps = [(a[1], b[0]) for a, b in zip(c.windows, c.windows[1:], strict=False) if b[0] > a[1]]
        lunch = gaps[0] if gaps else None
        hours = (c.windows[0][0], c.windows[-1][1]) if c.windows else None
        out.append(StaffMember(f"#{c.number}", tuple(c.departments), c.speed, lunch, frozenset(range(5)), hours))
    return out


def available(s: StaffMember, a: float, b: float, open_m: float, close_m: float) -> float:
    """Share of the slot [a, b) the person can sit at a counter (inside their hours, not at lunch)."""
    lo, hi = s.hours or (open_m, close_m)
    x0, x1 = max(a, lo), min(b, hi)
    free = max(0.0, x1 - x0)
    if s.lunch and free > 0:
        free -= max(0.0, min(x1, s.lunch[1]) - max(x0, s.lunch[0]))
    return max(0.0, free) / (b - a) if b > a else 0.0


def plan_day(
    sc: Scenario, day, need: Mapping[Group, Sequence[int]], quiet_limit: int = 1
) -> DayPlan:
    """The shift plan of one day for ``need`` (standard-speed counters per group and slot)."""
    slots = sc.slots()
    desks = desks_of(sc)
    staff = [s for s in staff_of(sc) if day.weekday() in s.weekdays]
    min_open = dict(sc.advisor.min_open) if sc.advisor else {}
    demand_depts = {d for g, cs in need.items() if any(cs) for d in g}
    for d in demand_depts:
        min_open.setdefault(d, 1)
    plan = DayPlan(day.isoformat(), slots, desks, [], {g: [0.0] * len(slots) for g in need})
    prev: dict[int, tuple[str, Group]] = {}
    by_name = {s.name: s for s in staff}
    groups = list(need)
    cap = plan.capacity
    for k, (a, b) in enumerate(slots):
        st = _Slot(k, desks, staff, cap, {s.name: available(s, a, b, sc.open_minute, sc.close_minute) for s in staff})
        seats, used, avail, seat, best = st.seats, st.used, st.avail, st.seat, st.best

        busy = sorted((g for g in groups if need[g][k] > quiet_limit), key=lambda g: -need[g][k])
        for g in busy:
            for desk_no, (name, pg) in prev.items():  # the same people at the same desks
                desk = next(d for d in desks if d[0] == desk_no)
                if pg == g and cap[g][k] < need[g][k] - 1e-9 and name not in used and avail.get(name, 0) > 0 and desk_no not in seats:
                    seat(desk, by_name[name], g)
            while cap[g][k] < need[g][k] - 1e-9:
                pick = best(g)
                if pick is None:
                    plan.limits.append((g, k, need[g][k] - cap[g][k]))
                    break
                seat(*pick, g)
        busy_set = set(busy)
        for g in (g for g in groups if 0 < need[g][k] <= quiet_limit):
            for d in g:
                covered = any(d in desk[1] and d in by_name[seats[desk[0]][0]].skills and seats[desk[0]][1] not in busy_set
                              for desk in desks if desk[0] in seats)
                shared = any(d in desk[1] and d in by_name[seats[desk[0]][0]].skills for desk in desks if desk[0] in seats)
                if covered:
                    cap[g][k] = max(cap[g][k], 1.0)
                    continue
                kept = next((desk_no for desk_no, (name, pg) in prev.items() if pg == g and desk_no not in seats and name not in used
                             and avail.get(name, 0) > 0 and d in by_name[name].skills
                             and d in next(x for x in desks if x[0] == desk_no)[1]), None)
                if kept is not None:
                    seat(next(x for x in desks if x[0] == kept), by_name[prev[kept][0]], g)
                    continue
                pick = best(g, (d,))
                if pick is None:
                    if not shared:  # a busy group's desk that also serves d is better than nothing
                        plan.limits.append((g, k, 1.0))
                    continue
                seat(*pick, g)
        for d, n in min_open.items():
            while sum(1 for desk in desks if desk[0] in seats and d in desk[1] and d in by_name[seats[desk[0]][0]].skills) < n:
                g = next((g for g in groups if d in g), (d,))
                pick = best(g, (d,))
                if pick is None:
                    plan.limits.append((g, k, 1.0))
                    break
                seat(*pick, g)
        plan.seats.append(seats)
        plan.reliefs.append(_relieve(st, by_name, a, b))
        prev = seats
    plan.counters = counters_of(sc, plan, by_name)
    return plan


def _relieve(st: _Slot, by_name: Mapping[str, StaffMember], a: float, b: float) -> dict[int, tuple[str, float, float]]:
    """Lunch relief: a person left free in the slot sits at a desk while its person is at lunch
    (the busiest desks first), so the lunch rotation does not close desks at the midday peak."""
    out: dict[int, tuple[str, float, float]] = {}
    gaps = []
    for desk_no, (name, g) in st.seats.items():
        lunch = by_name[name].lunch
        if lunch and lunch[0] < b and lunch[1] > a:
            gaps.append((-st.cap[g][st.k], desk_no, g, max(a, lunch[0]), min(b, lunch[1])))
    desks = dict(st.desks)
    for _, desk_no, g, x0, x1 in sorted(gaps):
        for p in sorted(st.staff, key=lambda p: (-p.speed, len(p.skills), p.name)):
            if p.name in st.used or st.avail[p.name] < 1.0:
                continue
            if not any(d in g and d in p.skills for d in desks[desk_no]):
                continue
            if p.lunch and p.lunch[0] < x1 and p.lunch[1] > x0:
                continue
            out[desk_no] = (p.name, x0, x1)
            st.used.add(p.name)
            st.cap[g][st.k] += p.speed * (x1 - x0) / (b - a)
            break
    return out


class _Slot:
    """One slot being seated: who sits where, who is taken, each person's availability."""

    def __init__(self, k: int, desks, staff, cap, avail: dict[str, float]):
        self.k, self.desks, self.staff, self.cap, self.avail = k, desks, staff, cap, avail
        self.seats: dict[int, tuple[str, Group]] = {}
        self.used: set[str] = set()

    def seat(self, desk: tuple[int, tuple[str, ...]], person: StaffMember, g: Group) -> None:
        self.seats[desk[0]] = (person.name, g)
        self.used.add(person.name)
        self.cap[g][self.k] += person.speed * self.avail[person.name]

    def best(self, g: Group, depts: Group | None = None) -> tuple[tuple[int, tuple[str, ...]], StaffMember] | None:
        """The free desk and free person serving most of ``depts`` (default the group), fastest first."""
        want = depts or g
        cands = []
        for desk in self.desks:
            if desk[0] in self.seats or not any(d in want for d in desk[1]):
                continue
            for p in self.staff:
                if p.name in self.used or self.avail[p.name] <= 0:
                    continue
                sv = [d for d in desk[1] if d in want and d in p.skills]
                if sv:
                    key = (-len(sv), -p.speed * self.avail[p.name], len(p.skills), len(desk[1]), desk[0], p.name)
                    cands.append((key, desk, p))
        if not cands:
            return None
        _, desk, p = min(cands, key=lambda c: c[0])
        return desk, p


def counters_of(sc: Scenario, plan: DayPlan, by_name: Mapping[str, StaffMember]) -> tuple[CounterPlan, ...]:
    """The plan as the model's counters: one per (desk, uninterrupted shift of one person)."""
    out: list[CounterPlan] = []
    for desk_no, caps in plan.desks:
        k = 0
        shift: list[tuple[str, float, float]] = []  # (person, start, end) of consecutive slots
        for seats, (a, b) in zip(plan.seats, plan.slots, strict=True):
            who = seats.get(desk_no)
            if who and shift and shift[-1][0] == who[0] and shift[-1][2] == a:
                shift[-1] = (who[0], shift[-1][1], b)
            elif who:
                shift.append((who[0], a, b))
        for name, a, b in shift:
            p = by_name[name]
            lo, hi = p.hours or (sc.open_minute, sc.close_minute)
            a, b = max(a, lo), min(b, hi)
            wins = [(a, b)]
            if p.lunch:
                la, lb = p.lunch
                wins = [w for w in ((a, min(b, la)), (max(a, lb), b)) if w[1] > w[0]] if la < b and lb > a else wins
            depts = tuple(d for d in caps if d in p.skills)
            if wins and depts:
                out.append(CounterPlan(desk_no * 100 + k, depts, tuple(wins), p.speed, f"desk {desk_no}: {name}"))
                k += 1
        for j, reliefs in enumerate(plan.reliefs):  # lunch reliefs at this desk
            r = reliefs.get(desk_no)
            if r:
                p = by_name[r[0]]
                depts = tuple(d for d in caps if d in p.skills)
                out.append(CounterPlan(desk_no * 100 + 50 + j, depts, ((r[1], r[2]),), p.speed, f"desk {desk_no}: {r[0]} (lunch relief)"))
    return tuple(out)
