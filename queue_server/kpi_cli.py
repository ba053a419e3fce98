"""Subcommands ``kpi`` and ``calibrate``. Only argparse at the top level: ``run.py --help`` stays fast."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``kpi`` and ``calibrate`` to run.py's subcommands."""
    p = sub.add_parser(
        "kpi",
        help="KPIs of a site over a date range from the event log (table, CSV, Excel, charts)",
        description="Compute the KPIs of docs/kpi.md for a site and a range of local dates from the "
        "event log, print them, and optionally write CSV files, an Excel workbook and PNG charts.",
    )
    _common(p)
    p.add_argument("--csv", metavar="DIR", help="write one CSV per KPI group into DIR")
    p.add_argument("--xlsx", metavar="FILE", help="write an Excel workbook (one sheet per KPI group)")
    p.add_argument("--plots", metavar="DIR", help="write PNG charts (visitors by day, waits by hour, per department)")
    p.add_argument("--json", metavar="FILE", help="write every table as JSON")
    p.set_defaults(func=_kpi)

    c = sub.add_parser(
        "calibrate",
        help="fit a simulation scenario (arrivals, service times) to the event log",
        description="Fit arrival rates by purpose, clock hour and weekday, and service-time mean and CV "
        "per procedure, from the event log; write a lobby scenario that run.py simulate runs.",
    )
    _common(c)
    c.add_argument("--out", required=True, metavar="SCENARIO.toml", help="scenario file to write")
    c.add_argument("--name", default=None, help="scenario name (default: the output file's stem)")
    c.add_argument("--json", metavar="FILE", help="also write the fitted figures as JSON")
    c.set_defaults(func=_calibrate)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", default=None, help="site key of config/site.toml (default: the first site)")
    p.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD", help="first local date")
    p.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD", help="last local date (inclusive)")
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default sqlite:///var/madoguchi.db)")
    p.add_argument("--config-dir", default=None, help="folder with site.toml (default config/)")


def _context(args: argparse.Namespace):
    """(city, site, engine) or an error message."""
    from pathlib import Path

    from .config import DEFAULT_CONFIG_DIR, load_city
    from .storage import default_url, make_engine

    city = load_city(Path(args.config_dir or DEFAULT_CONFIG_DIR) / "site.toml")
    site = args.site or next(iter(city.sites))
    if site not in city.sites:
        raise SystemExit(f"unknown site {site!r}; sites: {', '.join(city.sites)}")
    url = args.db or default_url()
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        raise SystemExit(f"no database at {url}")
    return city, site, make_engine(url)


def _kpi(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from . import kpi_report
    from .kpi import KpiContext, report_for

    city, site, engine = _context(args)
    try:
        report = report_for(engine, KpiContext.from_city(city, site), site, args.first, args.last)
    except ValueError as e:
        print(f"kpi: {e}")
        return 2
    print(kpi_report.format_report(report))
    if args.csv:
        for p in kpi_report.write_csv(report, args.csv):
            print(f"CSV: {p}")
    if args.xlsx:
        print(f"Excel: {kpi_report.write_xlsx(report, args.xlsx)}")
    if args.plots:
        for p in kpi_report.plots(report, args.plots):
            print(f"plot: {p}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"JSON: {args.json}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .calibrate import calibration_to_dict, fit, format_calibration, scenario_toml
    from .cli import load_catalogue_if_present
    from .config import DEFAULT_CONFIG_DIR

    city, site, engine = _context(args)
    catalogue = load_catalogue_if_present(Path(args.config_dir or DEFAULT_CONFIG_DIR), city)
    import sys

    from .calibrate import CalibrationError

    try:
        cal = fit(engine, city, site, args.first, args.last, catalogue)
    except CalibrationError as e:
        print(f"calibrate: this log cannot be fitted ({len(e.reasons)} reason(s)); no scenario written:", file=sys.stderr)
        for r in e.reasons:
            print(f"  - {r}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"calibrate: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(scenario_toml(cal, name=args.name or out.stem), encoding="utf-8")
    print(format_calibration(cal))
    print(f"scenario: {out}  (run: python run.py simulate {out})")
    if args.json:
        Path(args.json).write_text(json.dumps(calibration_to_dict(cal), ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"JSON: {args.json}")
    return 0
