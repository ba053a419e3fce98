"""Subcommands ``simulate`` and ``staff``. Only argparse at the top level: ``run.py --help`` stays fast."""

from __future__ import annotations

import argparse


class _WhatIf(argparse.Action):
    """Collects what-ifs in the order given: (kind, value) pairs in ``args.whatifs``."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, "whatifs", None) or [])
        items.append((self.dest.removeprefix("wi_"), values))
        namespace.whatifs = items


def _whatif_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what-ifs (docs/simulation.md; applied in the order given)")
    g.add_argument("--counters", dest="wi_counters", action=_WhatIf, metavar="DEPT=±N",
                   help="add or close counters: 市民課=+1, shimin=-1, several comma-separated")
    g.add_argument("--arrivals", dest="wi_arrivals", action=_WhatIf, metavar="×F",
                   help="walk-in volumes times F: ×1.2, x1.2, move_in×1.5")
    g.add_argument("--cutoff", dest="wi_cutoff", action=_WhatIf, metavar="HH:MM",
                   help="stop issuing walk-in tickets at HH:MM (受付締切); none removes it")
    g.add_argument("--reservations", dest="wi_reservations", action=_WhatIf, metavar="P@HH:MM,…",
                   help="booked slots: death@09:00,10:30,13:30/booked=0.9,no_show=0.05; none removes them")
    g.add_argument("--days", dest="wi_days", action=_WhatIf, metavar="YYYY-MM-DD,…",
                   help="only these days of the scenario (e.g. the busiest one)")
    g.add_argument("--patience", dest="wi_patience", action=_WhatIf, metavar="MIN",
                   help="mean patience in minutes (an estimate in every shipped scenario); none: nobody leaves")
    p.set_defaults(whatifs=[])


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``simulate``, ``compare`` and ``staff`` to run.py's subcommands."""
    p = sub.add_parser(
        "simulate",
        help="simulate a lobby scenario (staffing, waits) with replications",
        description="Simulate a scenario of config/scenarios/ (a path or a name) and print waits per "
        "department with 95% confidence intervals.",
    )
    p.add_argument("scenario", help="scenario TOML file, or a name under config/scenarios/")
    p.add_argument("-r", "--replications", type=int, default=10, help="independent replications (default 10)")
    p.add_argument("-s", "--seed", type=int, default=1, help="random seed (same seed, same result)")
    p.add_argument("-j", "--jobs", type=int, default=0, help="parallel processes (default: CPU count)")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--plots", metavar="DIR", help="write PNG plots (waits by hour, queue length, utilisation)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--live", metavar="WS_URL", help="drive a running server (ws://HOST:PORT) in scaled real time")
    p.add_argument("--speed", type=float, default=60.0, help="live: simulated seconds per second (default 60)")
    p.add_argument("--secrets", default="var/secrets.toml", help="live: the server's device tokens file")
    p.add_argument("--day", type=int, default=0, help="live: which day of the scenario to play (0 = first)")
    p.add_argument("--minutes", type=float, help="live: play only this many simulated minutes from opening")
    p.add_argument("--clock", metavar="FILE", default=None,
                   help="live: set the clock of a server started with `--clock FILE` to the simulated day "
                        "(its log then carries simulated times and calibrates like a real one)")
    p.add_argument("--estimators", action="store_true",
                   help="compare wait estimators on day --day (MAE, RASE; docs/prediction.md)")
    p.add_argument("--sensitivity", metavar="P1,P2,…", help="also a table of the headline figures under each "
                   "mean patience, e.g. 45,90,none (same seed: the same citizens each time)")
    _whatif_flags(p)
    p.set_defaults(func=_simulate)

    c = sub.add_parser(
        "compare",
        help="compare two scenarios (or one and its what-ifs) with common random numbers",
        description="Run A and B on the same seed (the same citizens on both sides) and print every headline "
        "difference B − A with its 95%% interval. B defaults to A; the what-if flags apply to B.",
    )
    c.add_argument("a", help="scenario A (a TOML file or a name under config/scenarios/)")
    c.add_argument("b", nargs="?", help="scenario B (default: A, changed by the what-if flags)")
    c.add_argument("-r", "--replications", type=int, default=20, help="paired replications (default 20)")
    c.add_argument("-s", "--seed", type=int, default=1)
    c.add_argument("-j", "--jobs", type=int, default=0)
    c.add_argument("--json", metavar="FILE", help="write the differences as JSON")
    c.add_argument("--plot", metavar="PNG", help="write the differences with their intervals as one plot")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    _whatif_flags(c)
    c.set_defaults(func=_compare)

    s = sub.add_parser(
        "staff",
        help="staffing advisor: fewest counter-hours per slot meeting a wait target",
        description="Erlang C per time slot and department, then checked and adjusted by simulation.",
    )
    s.add_argument("scenario", help="scenario TOML file, or a name under config/scenarios/")
    s.add_argument("--target", default=None, help='e.g. "90%% within 30 min" (default: the scenario\'s target)')
    s.add_argument("-r", "--replications", type=int, default=6, help="replications per simulation check (default 6)")
    s.add_argument("-s", "--seed", type=int, default=1)
    s.add_argument("-j", "--jobs", type=int, default=0)
    s.add_argument("--rounds", type=int, default=6, help="at most this many simulate-and-adjust rounds")
    s.add_argument("--json", metavar="FILE", help="write the schedule and its simulated result as JSON")
    s.add_argument("--no-plan", action="store_true", help="only the counters per slot, no shift plan on the site's desks")
    s.add_argument("--precision", type=float, default=0.03,
                   help="plan check: add replications until each department's daily share within the target "
                   "is known to ± this (default 0.03)")
    s.add_argument("--max-replications", type=int, default=24, help="plan check: at most this many (default 24)")
    _whatif_flags(s)
    s.add_argument("--seeds", type=int, default=1,
                   help="run the advisor on this many seeds and report the spread of its answer (default 1)")
    s.set_defaults(func=_staff)


def _load(name: str):
    import sys

    from queue_server.core.problems import ConfigError

    from .runner import scenario_path
    from .scenario import load_scenario

    try:
        sc = load_scenario(scenario_path(name))
        if sc.kind == "lobby" and any(p.route is None for p in sc.purposes.values()):
            from .routing import planner_router

            router = planner_router(sc)  # answers checked against the catalogue before any process starts
            for note in getattr(router, "notes", ()):
                print(f"note: {note}", file=sys.stderr)
        return sc
    except ConfigError as e:
        print(f"scenario {name}: {len(e.problems)} problem(s)", file=sys.stderr)
        for pr in e.problems:
            print(f"  {pr}", file=sys.stderr)
        return None


def _whatifs(sc, args: argparse.Namespace):
    """The scenario with the command line's what-ifs, or None after printing why not."""
    import sys

    from .whatif import WhatIfError, apply

    try:
        return apply(sc, args.whatifs)
    except WhatIfError as e:
        print(str(e), file=sys.stderr)
        return None


def _simulate(args: argparse.Namespace) -> int:

    sc = _load(args.scenario)
    if sc is None:
        return 2
    sc = _whatifs(sc, args)
    if sc is None:
        return 2
    if args.live:
        return _live(sc, args)
    if args.estimators:
        from .estimators import run_cli

        return run_cli(sc, args.day, args.replications, args.seed)
    from . import report
    from .runner import default_jobs, run_replications
    from .stats import combine

    jobs = args.jobs or default_jobs()
    reps = run_replications(sc, args.replications, args.seed, jobs=jobs, progress=not args.quiet)
    summary = combine(sc, reps)
    summary["seed"] = args.seed
    print(report.table(sc, summary))
    if args.json:
        report.write_json(summary, args.json)
        print(f"JSON: {args.json}")
    if args.plots:
        for p in report.plots(sc, summary, args.plots):
            print(f"plot: {p}")
    if sc.arrival_interval:
        print()
        print(_calibration_range(sc, args, jobs, summary))
    if args.sensitivity:
        from .whatif import WhatIfError, format_sensitivity, sensitivity

        try:
            rows = sensitivity(sc, [x.strip() for x in args.sensitivity.split(",") if x.strip()], args.replications,
                               args.seed, jobs=jobs)
        except WhatIfError as e:
            import sys

            print(str(e).replace("--patience", "--sensitivity"), file=sys.stderr)
            return 2
        print()
        print(format_sensitivity(sc, rows))
    return 0


def _calibration_range(sc, args: argparse.Namespace, jobs: int, summary) -> str:
    """A calibrated scenario's fit is uncertain: the headline figures at both ends of its interval."""
    from .report import _fmt
    from .runner import run_replications
    from .stats import combine
    from .whatif import with_arrivals

    lo, hi = sc.arrival_interval
    ends = [combine(s, run_replications(s, args.replications, args.seed, jobs=jobs))
            for s in (with_arrivals(sc, f"×{lo}"), with_arrivals(sc, f"×{hi}"))]
    lines = [f"with the calibration's uncertainty (arrival volume ×{lo:.2f} … ×{hi:.2f}, its 95% bootstrap interval; "
             "same citizens):"]
    for d in list(summary["departments"])[:4]:
        cells = [x["departments"].get(d) for x in (ends[0], summary, ends[1])]
        if not all(cells):
            continue
        lines.append(f"  {d}: mean wait {' / '.join(_fmt(c['wait_mean']) for c in cells)} min, "
                     f"≤target {' / '.join(_fmt(c['within_target'], 1, pct=True) for c in cells)}% (low / fitted / high)")
    lines.append(f"  citizens lost {' / '.join(_fmt(x['citizens']['lost_share'], 1, pct=True) for x in (ends[0], summary, ends[1]))}%")
    return "\n".join(lines)


def _compare(args: argparse.Namespace) -> int:
    import sys

    a = _load(args.a)
    if a is None:
        return 2
    b = _load(args.b) if args.b else a
    if b is None:
        return 2
    if not args.b and not args.whatifs:
        print("compare: give scenario B or at least one what-if (--counters, --arrivals, --cutoff, "
              "--reservations, --patience)", file=sys.stderr)
        return 2
    b = _whatifs(b, args)
    if b is None:
        return 2
    if args.replications < 2:
        print("compare: at least 2 replications (-r) for an interval", file=sys.stderr)
        return 2
    from .runner import default_jobs, run_replications
    from .whatif import format_comparison, paired, plot_comparison

    jobs = args.jobs or default_jobs()
    ra = run_replications(a, args.replications, args.seed, jobs=jobs, progress=not args.quiet, label="A " + a.name)
    rb = run_replications(b, args.replications, args.seed, jobs=jobs, progress=not args.quiet, label="B " + b.name)
    rows = paired(ra, rb)
    print(format_comparison(a.title, b.title, rows, args.replications))
    if args.json:
        import json
        from pathlib import Path

        Path(args.json).write_text(
            json.dumps({"a": a.title, "b": b.title, "replications": args.replications, "seed": args.seed, "rows": rows},
                       ensure_ascii=False, indent=1),
            encoding="utf-8",
        )
        print(f"JSON: {args.json}")
    if args.plot:
        print(f"plot: {plot_comparison(rows, f'B − A: {b.title} − {a.title}', args.plot)}")
    return 0


def _live(sc, args: argparse.Namespace) -> int:
    import asyncio
    import sys
    from pathlib import Path

    from .live import run_live

    if not Path(args.secrets).exists():
        print(f"--secrets: {args.secrets} not found (the server's tokens; `run.py init` writes them)", file=sys.stderr)
        return 2
    try:
        stats = asyncio.run(
            run_live(
                sc, args.live, args.speed, Path(args.secrets), seed=args.seed, day_index=args.day,
                minutes=args.minutes, log=lambda m: print(m, file=sys.stderr),
                clock_file=Path(args.clock) if args.clock else None,
            )
        )
    except (OSError, ValueError) as e:
        print(f"live: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(
        f"live: issued {stats.issued}, called {stats.called}, completed {stats.completed}, "
        f"no-shows {stats.no_shows} at {stats.counters} counters"
    )
    for e in stats.errors[:20]:
        print(f"  error: {e}", file=sys.stderr)
    return 1 if stats.errors else 0


def _staff(args: argparse.Namespace) -> int:
    import sys

    sc = _load(args.scenario)
    if sc is None:
        return 2
    sc = _whatifs(sc, args)
    if sc is None:
        return 2
    from . import advisor

    try:
        share, within = advisor.parse_target(args.target) if args.target else (sc.target_share, sc.target_minutes)
    except ValueError as e:
        print(f"--target: {e}", file=sys.stderr)
        return 2
    from .runner import default_jobs

    results = [
        advisor.advise(
            sc, share, within, replications=args.replications, seed=args.seed + k, jobs=args.jobs or default_jobs(),
            rounds=args.rounds, log=lambda m: print(m, file=sys.stderr), plan=not args.no_plan,
            precision=args.precision, max_replications=args.max_replications,
        )
        for k in range(max(1, args.seeds))
    ]
    result = results[0]
    print(advisor.format_result(sc, result))
    if len(results) > 1:
        print()
        print(advisor.format_spread(results))
    if args.json:
        import json
        from pathlib import Path

        Path(args.json).write_text(json.dumps(advisor.result_to_dict(result), ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"JSON: {args.json}")
    return 0 if result.met else 1
