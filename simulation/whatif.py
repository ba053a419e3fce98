"""What-ifs from the command line, and paired comparisons with common random numbers. Pure.

A what-if changes a loaded scenario without a new TOML file:

- ``--counters 市民課=+1`` (or ``shimin=+1``; ``=-1`` closes one; several, comma-separated):
  an added counter serves only that department from opening to closing with an hour's lunch
  12:00–13:00 (an estimate, as april_extra_counter.toml); a closed one is the highest-numbered
  counter serving the department, one that serves it alone first.
- ``--arrivals ×1.2`` (also ``x1.2``, ``*1.2``, ``1.2``; ``move_in×1.5`` for one purpose): every
  walk-in volume times the factor (reservations unchanged).
- ``--cutoff 16:30`` (受付締切; ``none`` removes a cutoff): no walk-in ticket from then on.
- ``--reservations death@09:00,10:30,13:30/booked=0.9,no_show=0.05`` (``none`` removes them all):
  booked slots for a purpose, replacing that purpose's reservations.
- ``--patience 45`` (``none``: nobody leaves): the mean patience, the assumption the April
  waits depend on most.

:func:`paired` compares two lists of replication summaries made with the same seed: replication
*r* of A and of B drew the same citizens with the same needs (simulation.model draws everything
random about a citizen at arrival, in arrival order), so the per-replication differences have a
much smaller spread than two independent runs, and their Student-t interval is the interval for
the difference.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .scenario import CounterPlan, Reservation, Scenario
from .stats import mean_ci

LUNCH = (12 * 60.0, 13 * 60.0)  # an added counter's lunch hour (estimate)


class WhatIfError(ValueError):
    """A what-if that cannot apply to this scenario; the message names the flag and the value."""


def _department(sc: Scenario, name: str, flag: str) -> str:
    """A department key from its key or any of its names (市民課, Citizens Division, しみんか …)."""
    name = name.strip()
    depts = {d for c in sc.counters for d in c.departments}
    if name in depts:
        return name
    try:
        from queue_server.config import load_city
        from queue_server.core.ruby import plain

        site = load_city().sites[sc.site] if sc.kind == "lobby" else None
    except Exception:  # a station, or no site: keys only
        site = None
    if site is not None:
        for key, names in site.department_names.items():
            if any(name in (plain(v), v) for v in names.values()) and key in depts:
                return key
    raise WhatIfError(f"{flag}: no counter of this scenario serves {name!r} (departments: {', '.join(sorted(depts))})")


def with_counters(sc: Scenario, spec: str) -> Scenario:
    """``DEPT=+N`` / ``DEPT=-N`` (comma-separated): add or close counters for a department."""
    counters = list(sc.counters)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = re.fullmatch(r"(.+?)\s*=\s*([+-]\d+)", part)
        if not m:
            raise WhatIfError(f"--counters: expected DEPARTMENT=+N or DEPARTMENT=-N, got {part!r}")
        dept, n = _department(sc, m.group(1), "--counters"), int(m.group(2))
        if n > 0:
            wins = ((sc.open_minute, sc.close_minute),)
            if sc.kind == "lobby" and sc.open_minute < LUNCH[0] and LUNCH[1] < sc.close_minute:
                wins = ((sc.open_minute, LUNCH[0]), (LUNCH[1], sc.close_minute))
            for _ in range(n):
                num = max((c.number for c in counters), default=0) + 1
                counters.append(CounterPlan(num, (dept,), wins, 1.0, f"what-if: +1 {dept}"))
        for _ in range(-n):
            serving = [c for c in counters if dept in c.departments]
            if not serving:
                raise WhatIfError(f"--counters: {part}: no counter left that serves {dept!r}")
            alone = [c for c in serving if c.departments == (dept,)]
            counters.remove(max(alone or serving, key=lambda c: c.number))
    return dataclasses.replace(sc, counters=tuple(sorted(counters, key=lambda c: c.number)))


def with_arrivals(sc: Scenario, spec: str) -> Scenario:
    """``×F`` for every purpose, ``PURPOSE×F`` for one (comma-separated)."""
    purposes = dict(sc.purposes)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = re.fullmatch(r"()[×xX*]?\s*(\d+(?:\.\d+)?)", part) or re.fullmatch(
            r"([A-Za-z_][\w-]*?)\s*[×xX*=:]\s*(\d+(?:\.\d+)?)", part
        )
        if not m:
            raise WhatIfError(f"--arrivals: expected ×FACTOR or PURPOSE×FACTOR, got {part!r}")
        key, f = m.group(1) or None, float(m.group(2))
        if key is not None and key not in purposes:
            raise WhatIfError(f"--arrivals: unknown purpose {key!r} (purposes: {', '.join(purposes)})")
        for k in [key] if key else list(purposes):
            purposes[k] = dataclasses.replace(purposes[k], yearly=purposes[k].yearly * f)
    return dataclasses.replace(sc, purposes=purposes)


def _hhmm(text: str, flag: str) -> float:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise WhatIfError(f"{flag}: expected a time HH:MM, got {text!r}")
    return int(m.group(1)) * 60.0 + int(m.group(2))


def with_cutoff(sc: Scenario, spec: str) -> Scenario:
    """``HH:MM``: no walk-in ticket from then on (受付締切); ``none``: no cutoff."""
    if spec.strip().lower() == "none":
        return dataclasses.replace(sc, cutoff_minute=None)
    t = _hhmm(spec, "--cutoff")
    if not sc.open_minute < t <= sc.close_minute:
        raise WhatIfError(f"--cutoff: {spec} is outside the opening hours")
    return dataclasses.replace(sc, cutoff_minute=t)


def with_reservations(sc: Scenario, spec: str) -> Scenario:
    """``PURPOSE@HH:MM,HH:MM[/booked=0.9,no_show=0.05,slot_minutes=60]`` (``;`` between purposes)."""
    if spec.strip().lower() == "none":
        return dataclasses.replace(sc, reservations=())
    res = list(sc.reservations)
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        m = re.fullmatch(r"([A-Za-z_][\w-]*)@([\d:,\s]+)(?:/(.*))?", part)
        if not m:
            raise WhatIfError(f"--reservations: expected PURPOSE@HH:MM,HH:MM[/booked=0.9], got {part!r}")
        key = m.group(1)
        if key not in sc.purposes:
            raise WhatIfError(f"--reservations: unknown purpose {key!r} (purposes: {', '.join(sc.purposes)})")
        slots = tuple(_hhmm(x, "--reservations") for x in m.group(2).split(",") if x.strip())
        for s in slots:
            if not sc.open_minute <= s < sc.close_minute:
                raise WhatIfError(f"--reservations: slot {int(s) // 60:02d}:{int(s) % 60:02d} is outside the opening hours")
        opts: dict[str, float] = {"booked": 0.9, "no_show": 0.05, "slot_minutes": 60.0, "early_minutes": 5.0}
        for kv in filter(None, (m.group(3) or "").split(",")):
            k, _, v = kv.partition("=")
            if k.strip() not in opts:
                raise WhatIfError(f"--reservations: unknown option {k.strip()!r} (options: {', '.join(opts)})")
            try:
                opts[k.strip()] = float(v)
            except ValueError:
                raise WhatIfError(f"--reservations: {k.strip()} needs a number, got {v!r}") from None
        res = [r for r in res if r.purpose != key]
        res.append(Reservation(key, slots, opts["slot_minutes"], opts["booked"], opts["no_show"], opts["early_minutes"]))
    return dataclasses.replace(sc, reservations=tuple(res))


def with_patience(sc: Scenario, spec: str) -> Scenario:
    """``MINUTES`` (mean patience) or ``none`` (nobody leaves)."""
    if spec.strip().lower() in ("none", "0"):
        return dataclasses.replace(sc, behaviour=dataclasses.replace(sc.behaviour, patience_minutes=None))
    try:
        m = float(spec)
    except ValueError:
        raise WhatIfError(f"--patience: expected minutes or none, got {spec!r}") from None
    if m <= 0:
        raise WhatIfError(f"--patience: expected minutes above 0, got {spec!r}")
    return dataclasses.replace(sc, behaviour=dataclasses.replace(sc.behaviour, patience_minutes=m))


def with_days(sc: Scenario, spec: str) -> Scenario:
    """``YYYY-MM-DD,…``: only these days of the scenario (e.g. its busiest day, for a quick look)."""
    import datetime as dt

    keep = []
    for x in filter(None, (p.strip() for p in spec.split(","))):
        try:
            d = dt.date.fromisoformat(x)
        except ValueError:
            raise WhatIfError(f"--days: expected YYYY-MM-DD, got {x!r}") from None
        if d not in sc.days:
            raise WhatIfError(f"--days: {x} is not a day of this scenario ({', '.join(str(y) for y in sc.days)})")
        keep.append(d)
    if not keep:
        raise WhatIfError("--days: give at least one day")
    return dataclasses.replace(sc, days=tuple(keep))


APPLY = {
    "days": with_days,
    "counters": with_counters,
    "arrivals": with_arrivals,
    "cutoff": with_cutoff,
    "reservations": with_reservations,
    "patience": with_patience,
}


def apply(sc: Scenario, changes: Iterable[tuple[str, str]]) -> Scenario:
    """The scenario with every (what-if, value) applied in order; the title says what changed."""
    notes = []
    for kind, value in changes:
        sc = APPLY[kind](sc, value)
        notes.append(f"{kind} {value}")
    if notes:
        sc = dataclasses.replace(sc, title=f"{sc.title} [{'; '.join(notes)}]", name=f"{sc.name}+whatif")
    return sc


# ---------------------------------------------------------------------------- comparison

# (label, path into a replication summary): what compare reports for each department and overall
DEPT_KEYS = ("wait_mean", "within_target", "lost", "served", "utilisation")
CITIZEN_KEYS = ("lost_share", "lost", "served", "abandon_wait_mean")


def _get(d: Mapping[str, Any] | None, *path: str) -> float | None:
    for p in path:
        if not isinstance(d, Mapping) or p not in d:
            return None
        d = d[p]
    return d if isinstance(d, int | float) else None  # type: ignore[return-value]


def paired(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], days: bool = True) -> list[dict[str, Any]]:
    """Differences B − A per replication, for the headline figures: mean, 95% CI, and whether the
    interval excludes 0. ``a[r]`` and ``b[r]`` must be replication r of the same seed."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("paired comparison needs the same number (≥ 2) of replications on both sides")
    rows: list[dict[str, Any]] = []

    def add(scope: str, figure: str, path: tuple[str, ...]) -> None:
        xa = [_get(r, *path) for r in a]
        xb = [_get(r, *path) for r in b]
        diffs = [y - x for x, y in zip(xa, xb, strict=True) if x is not None and y is not None]
        if len(diffs) < 2:
            return
        ci = mean_ci(diffs)
        ma, mb = mean_ci(xa)["mean"], mean_ci(xb)["mean"]
        half = ci["ci"] or 0.0
        rows.append(
            {
                "scope": scope, "figure": figure, "a": ma, "b": mb, "diff": ci["mean"], "ci": half, "n": ci["n"],
                "significant": abs(ci["mean"]) > half and (half > 0 or ci["mean"] != 0),
            }
        )

    for k in CITIZEN_KEYS:
        add("citizens", k, ("citizens", k))
    add("overall", "within_target", ("overall", "within_target"))
    add("overall", "wait_mean", ("overall", "wait_mean"))
    depts = [d for d in a[0]["departments"] if d in b[0]["departments"]]
    depts.sort(key=lambda d: -(a[0]["departments"][d].get("served") or 0))
    for d in depts:
        for k in DEPT_KEYS:
            add(d, k, ("departments", d, k))
    if days:
        for day in a[0].get("by_day", {}):
            add(f"{day}", "lost_share", ("by_day", day, "citizens", "lost_share"))
            for d in depts[:2]:
                add(f"{day} {d}", "within_target", ("by_day", day, "departments", d, "within_target"))
                add(f"{day} {d}", "wait_mean", ("by_day", day, "departments", d, "wait_mean"))
    return rows


PCT = {"within_target", "lost_share", "utilisation"}


def format_comparison(title_a: str, title_b: str, rows: Sequence[Mapping[str, Any]], replications: int) -> str:
    """The comparison as a table: A, B, B − A ± 95% CI, and * where the interval excludes 0."""
    from .report import _grid

    head = ["scope", "figure", "A", "B", "B − A", "±95%", ""]
    body = []
    for r in rows:
        k = 100.0 if r["figure"] in PCT else 1.0
        unit = " pt" if r["figure"] in PCT else ""

        def f(x: float | None, k: float = k) -> str:
            return "–" if x is None else f"{x * k:.1f}"

        body.append([r["scope"], r["figure"] + unit, f(r["a"]), f(r["b"]), f(r["diff"]), f(r["ci"]), "*" if r["significant"] else ""])
    return "\n".join(
        [
            f"A: {title_a}",
            f"B: {title_b}",
            f"{replications} paired replications (common random numbers: the same citizens on both sides); "
            "* = the 95% interval of B − A excludes 0; percentages in points",
            *_grid(head, body),
        ]
    )


def plot_comparison(rows: Sequence[Mapping[str, Any]], title: str, path: str) -> str:
    """One plot: each headline difference B − A with its 95% interval (a forest plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import cjk_font

    family = cjk_font()
    if family:
        plt.rcParams["font.family"] = family
    # one scale (minutes and percentage points): counts of citizens stay in the table
    shown = [r for r in rows if r["figure"] in ("wait_mean", "within_target", "lost_share")][:24]
    fig, ax = plt.subplots(figsize=(9, 0.34 * len(shown) + 1.8), dpi=110)
    for i, r in enumerate(shown):
        k = 100.0 if r["figure"] in PCT else 1.0
        color = "#d62728" if r["significant"] else "#7f7f7f"
        ax.errorbar([r["diff"] * k], [i], xerr=[[r["ci"] * k], [r["ci"] * k]], fmt="o", color=color, capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([f"{r['scope']} · {r['figure']}{' (pt)' if r['figure'] in PCT else ''}" for r in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("B − A（95%信頼区間、赤: 0を含まない）")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def sensitivity(
    sc: Scenario, patience: Sequence[str], replications: int, seed: int, jobs: int = 1
) -> list[dict[str, Any]]:
    """Headline figures under each patience assumption (same seed for each: paired)."""
    from .runner import run_replications
    from .stats import combine

    out = []
    for p in patience:
        s = with_patience(sc, p)
        summ = combine(s, run_replications(s, replications, seed, jobs=jobs))
        top = max(summ["departments"], key=lambda d: summ["departments"][d]["served"]["mean"] or 0)
        f = summ["departments"][top]
        out.append(
            {
                "patience": p,
                "department": top,
                "wait_mean": f["wait_mean"],
                "within_target": f["within_target"],
                "lost_share": summ["citizens"]["lost_share"],
                "abandoned": summ["citizens"]["abandoned"],
                "served": summ["citizens"]["served"],
            }
        )
    return out


def format_sensitivity(sc: Scenario, rows: Sequence[Mapping[str, Any]]) -> str:
    from .report import _fmt, _grid

    head = ["patience (mean min)", "dept", "wait 平均", f"≤{sc.target_minutes:g}分 %", "citizens lost %", "abandoned", "served"]
    body = [
        [str(r["patience"]), r["department"], _fmt(r["wait_mean"]), _fmt(r["within_target"], 1, pct=True),
         _fmt(r["lost_share"], 1, pct=True), _fmt(r["abandoned"], 0), _fmt(r["served"], 0)]
        for r in rows
    ]
    return "\n".join(
        [
            "感度 sensitivity to the patience assumption (an estimate): the same citizens under each value",
            *_grid(head, body),
        ]
    )
