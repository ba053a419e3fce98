"""Consultation KPIs (相談の指標), pure: from index records and handovers of a period.

- consultations per department, and the share recorded with consent to sharing;
- repeat consultations: citizens (by citizen key) with more than one consultation in the period,
  and those seen by more than one department — the people the handover sheet is for;
- handovers: created, taken over, still open, per route (from → to), and the hours from creation
  to take-over (median and 90th percentile, nearest-rank).

- per consultation desk (:func:`desks`): bookings by mode (online / in person), cancelled, in-person
  bookings checked in, walk-ins, and the wait from joining the desk's queue to being called for
  booked and walk-in visits (median and 90th percentile, minutes).

Aggregates only: no citizen key, name or sheet text leaves this function.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any


def _rank(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of values; None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def compute(consultations: Iterable[Mapping[str, Any]], handovers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The KPIs of one period. ``consultations`` rows have department, consent, citizen_key;
    ``handovers`` rows have from_department, to_department, created_at, status, taken_at."""
    per_dept: dict[str, dict[str, int]] = defaultdict(lambda: {"consultations": 0, "with_consent": 0})
    by_citizen: dict[str, set[str]] = defaultdict(set)
    visits: Counter[str] = Counter()
    total = 0
    for c in consultations:
        total += 1
        d = per_dept[c["department"]]
        d["consultations"] += 1
        d["with_consent"] += 1 if c["consent"] else 0
        by_citizen[c["citizen_key"]].add(c["department"])
        visits[c["citizen_key"]] += 1
    routes: Counter[tuple[str, str]] = Counter()
    hours: list[float] = []
    created = taken = 0
    for h in handovers:
        created += 1
        routes[(h["from_department"], h["to_department"])] += 1
        if h["status"] == "taken" and h.get("taken_at") is not None:
            taken += 1
            hours.append((h["taken_at"] - h["created_at"]) / 3600)
    median, p90 = _rank(hours, 0.5), _rank(hours, 0.9)
    return {
        "consultations": total,
        "departments": {k: {**v, "consent_share": round(v["with_consent"] / v["consultations"], 2)}
                        for k, v in sorted(per_dept.items())},
        "citizens": len(visits),
        "repeat_citizens": sum(1 for n in visits.values() if n > 1),
        "multi_department_citizens": sum(1 for ds in by_citizen.values() if len(ds) > 1),
        "handovers": {
            "created": created, "taken": taken, "open": created - taken,
            "routes": [{"from": f, "to": t, "count": n} for (f, t), n in sorted(routes.items())],
            "hours_to_take_over_median": None if median is None else round(median, 2),
            "hours_to_take_over_p90": None if p90 is None else round(p90, 2),
        },
    }


def desks(bookings: Iterable[Mapping[str, Any]], visits: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Booked vs walk-in consultations per desk, and their waits. Pure.

    ``bookings``: consultation bookings whose slot is in the period (``department``, ``mode``,
    ``ticket``, ``cancelled_at``). ``visits``: one row per consultation ticket's step at a desk
    (``department``, ``booked`` — checked in on time with a booking, so served with its priority —
    and ``wait`` in minutes from ready to called, None if never called).
    """
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "booked_online": 0, "booked_in_person": 0, "cancelled": 0, "checked_in": 0,
        "visits_booked": 0, "walk_ins": 0, "_wb": [], "_ww": []})
    for b in bookings:
        d = out[b["department"]]
        if b.get("cancelled_at"):
            d["cancelled"] += 1
            continue
        d["booked_online" if b.get("mode") == "online" else "booked_in_person"] += 1
        d["checked_in"] += 1 if b.get("ticket") else 0
    for v in visits:
        d = out[v["department"]]
        d["visits_booked" if v["booked"] else "walk_ins"] += 1
        if v.get("wait") is not None:
            d["_wb" if v["booked"] else "_ww"].append(float(v["wait"]))
    result = {}
    for k, d in sorted(out.items()):
        wb, ww = d.pop("_wb"), d.pop("_ww")
        rnd = lambda x: None if x is None else round(x, 1)  # noqa: E731
        result[k] = {**d, "wait_booked_median": rnd(_rank(wb, 0.5)), "wait_booked_p90": rnd(_rank(wb, 0.9)),
                     "wait_walk_in_median": rnd(_rank(ww, 0.5)), "wait_walk_in_p90": rnd(_rank(ww, 0.9))}
    return result
