"""The planner's walkthrough of docs/simulation.md, run end to end: "staff March and April to keep
June's service level". tests/simulation/test_walkthrough.py runs it and checks that the numbers
quoted in the doc are the ones it prints, so the doc cannot drift from the model.

    python -m simulation.walkthrough              # print the walkthrough (small replications)
    python -m simulation.walkthrough --update     # rewrite its block in docs/simulation.md

Small replications keep the test quick; a planner runs the same commands with ``-r 30``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from .report import _fmt

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "simulation.md"
BEGIN, END = "<!-- walkthrough:begin (python -m simulation.walkthrough --update) -->", "<!-- walkthrough:end -->"
R = 4  # replications: small for the test; the commands say -r 4, a planner uses -r 30
SEED = 1
MARCH_DAY, APRIL_DAY = "2027-03-31", "2027-04-01"


def _headline(sc, summary) -> str:
    f = summary["departments"]["shimin"]
    c = summary["citizens"]
    return (
        f"市民課 shimin: {_fmt(f['within_target'], 1, pct=True)}% called within {sc.target_minutes:g} min, "
        f"mean wait {_fmt(f['wait_mean'])} min; citizens lost {_fmt(c['lost_share'], 1, pct=True)}% "
        f"(abandoned {_fmt(c['abandoned'], 0)}, balked {_fmt(c['balked'], 0)} a week)"
    )


def run(jobs: int = 1) -> str:
    """The walkthrough as markdown: each command and the lines of its output that matter."""
    from . import advisor, whatif
    from .runner import run_replications, scenario_path
    from .scenario import load_scenario
    from .stats import combine

    def load(name):
        return load_scenario(scenario_path(name))

    out: list[str] = []

    def step(title: str, cmd: str, lines: list[str]) -> None:
        out.extend([f"**{title}**", "", "```", f"$ {cmd}", *lines, "```", ""])

    june = load("normal_week")
    sj = combine(june, run_replications(june, R, SEED, jobs=jobs))
    fj = sj["departments"]["shimin"]["within_target"]["mean"]
    share = math.floor(fj * 100) / 100  # June's level, rounded down to a whole percent
    step("1. June's service level — the level to keep", f"python run.py simulate normal_week -r {R}", [_headline(june, sj)])

    march, april = load("march_peak_week"), load("april_peak_week")
    lines = []
    for sc in (march, april):
        s = combine(sc, run_replications(sc, R, SEED, jobs=jobs))
        lines.append(f"{sc.name}: {_headline(sc, s)}")
        worst = max(s["by_day"].items(), key=lambda kv: kv[1]["citizens"]["lost_share"]["mean"] or 0)
        lines.append(f"  worst day {worst[0]}: citizens lost {_fmt(worst[1]['citizens']['lost_share'], 1, pct=True)}%")
    step("2. March and April with today's counters", f"python run.py simulate march_peak_week -r {R}   (and april_peak_week)", lines)

    b = whatif.apply(march, [("counters", "市民課=+2")])
    rows = whatif.paired(run_replications(march, R, SEED, jobs=jobs), run_replications(b, R, SEED, jobs=jobs), days=False)
    keep = [r for r in rows if (r["scope"], r["figure"]) in {("shimin", "within_target"), ("shimin", "wait_mean"), ("citizens", "lost_share")}]
    table = whatif.format_comparison(march.title, b.title, keep, R).splitlines()[3:]
    step("3. What two more 市民課 desks buy in March (paired, common random numbers)",
         f"python run.py compare march_peak_week --counters 市民課=+2 -r {R}", table)

    target = f"{share * 100:g}% within 30 min"
    baseline: list[str] = []
    for sc, day in ((march, MARCH_DAY), (april, APRIL_DAY)):
        one = whatif.apply(sc, [("days", day)])
        adv = advisor.advise(one, share, 30.0, replications=3, seed=SEED, jobs=jobs, rounds=4, precision=1.0)
        text = advisor.format_result(one, adv).splitlines()
        d = adv.days[0]
        need = [ln for ln in text if ln.startswith(day + ":")]
        plan = text[text.index(next(ln for ln in text if "shift plan" in ln)):]
        plan = [ln for ln in plan if not ln.startswith("  simulated:") and ln.strip() and not ln.startswith("result:")]
        shimin = d.plan_result["departments"]["shimin"]
        plan.append(f"  simulated 市民課: {_fmt(shimin['within_target'], 1, pct=True)}% within 30 min, "
                    f"mean wait {_fmt(shimin['wait_mean'])} min")
        peak = max(d.counters[next(g for g in d.counters if 'shimin' in g)])
        step(f"4. The advisor for {day}: June's level ({target}) on the site's desks and staff",
             f'python run.py staff {sc.name} --days {day} --target "{target}" -r 3 --precision 1',
             [*need, f"(市民課 needs up to {peak} standard-speed counters at once)", *plan])
        if sc is march:
            baseline = _baselines(one, adv, day)
    step("5. Baselines for 31 March's 市民課: textbook formulas against the simulated advice",
         "(queue_server.core.erlang: square_root_staffing, servers_needed_erlang_a)", baseline)
    return "\n".join(out).rstrip() + "\n"


def _baselines(sc, adv, day: str) -> list[str]:
    """Per slot: offered load R, square-root staffing, Erlang A (≤ 5% give up at the scenario's
    mean patience), Erlang C (the advisor's start) and the advisor's simulated need."""
    import datetime as dt

    from queue_server.core.erlang import servers_needed_erlang_a, square_root_staffing

    from .advisor import _loads, department_demand
    from .report import _grid

    d = adv.days[0]
    g = next(x for x in d.counters if "shimin" in x)
    arrivals, work = _loads(sc, dt.date.fromisoformat(day), department_demand(sc, seed=SEED))["shimin"]
    theta = 1.0 / sc.behaviour.patience_minutes if sc.behaviour.patience_minutes else 0.0
    head = ["slot", "R = λ/μ", "√-staffing β=1", "Erlang A ≤5% leave", "Erlang C start", "simulated need"]
    rows = []
    for k, (a, _b) in enumerate(d.slots):
        if arrivals[k] <= 0:
            continue
        lam, svc = arrivals[k] / sc.slot_minutes, work[k] / arrivals[k]
        load = lam * svc
        ea = servers_needed_erlang_a(lam, 1 / svc, theta, 0.05) if theta else square_root_staffing(load, 2.0)
        rows.append([f"{int(a) // 60:02d}:{int(a) % 60:02d}", f"{load:.2f}", str(square_root_staffing(load)), str(ea),
                     str(d.erlang[g][k]), str(d.counters[g][k])])
    return _grid(head, rows)


def doc_block(text: str) -> str:
    m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    return m.group(1) if m else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--update", action="store_true", help="rewrite the walkthrough block in docs/simulation.md")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    args = ap.parse_args(argv)
    block = run(args.jobs)
    if not args.update:
        print(block)
        return 0
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text:
        print(f"{DOC}: no walkthrough block ({BEGIN})", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN + "\n", 1)
    _old, tail = rest.split(END, 1)
    DOC.write_text(head + BEGIN + "\n" + block + END + tail, encoding="utf-8")
    print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
