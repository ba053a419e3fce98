"""`run.py plan` and `run.py questions`: the personal procedure list from the command line.

Only argparse is imported at the top so `run.py --help` stays fast; the catalogue and planner
are imported inside the commands.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``plan`` and ``questions`` subcommands to run.py's parser."""
    p = sub.add_parser(
        "plan",
        help="print the personal procedure list (個人別手続きリスト) for life events and answers",
        description="Plan a visit: python run.py plan 死亡 --answer deceased_age=80 --answer deceased_head=yes --lang en",
    )
    p.add_argument("purposes", nargs="+", help="purpose ids or names: death 死亡 birth 出生 move_in 転入 certificate …")
    p.add_argument("--answer", "-a", action="append", default=[], metavar="KEY=VALUE",
                   help="an answer (yes, no, unknown, a choice, a number, or a,b for several choices); repeatable")
    p.add_argument("--lang", default="ja", help="ja en zh ko vi pt ja-easy (default ja)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--config-dir", default="config",
                   help="the config directory holding site.toml and catalogue/ (or a catalogue directory)")
    p.set_defaults(func=cmd_plan)

    e = sub.add_parser("easy-readings",
                       help="やさしい日本語: propose ruby readings (pyopenjtalk) for kanji terms, for review",
                       description="python run.py easy-readings   (prints procedure names with proposed {漢字|よみ})")
    e.add_argument("--config-dir", default="config")
    e.add_argument("--all", action="store_true", help="every procedure, not only names without ruby in ja-easy")
    e.set_defaults(func=cmd_easy_readings)

    q = sub.add_parser("questions", help="list the questions a purpose asks, with their ids",
                       description="python run.py questions 死亡 --lang en")
    q.add_argument("purposes", nargs="+")
    q.add_argument("--lang", default="ja")
    q.add_argument("--json", action="store_true", help="print JSON instead of a list")
    q.add_argument("--config-dir", default="config")
    q.set_defaults(func=cmd_questions)


def _load(config_dir: str):
    """The catalogue and site for a config dir (site.toml + catalogue/) or a bare catalogue dir."""
    import sys
    import tomllib
    from pathlib import Path

    from queue_server.core.problems import ConfigError
    from queue_server.loaders import load_catalogue

    base = Path(config_dir)
    if (base / "catalogue").is_dir():
        cat_dir, site_path = base / "catalogue", base / "site.toml"
    else:
        cat_dir, site_path = base, base.parent / "site.toml"
    site = None
    if site_path.is_file():
        with site_path.open("rb") as f:
            site = tomllib.load(f)
    try:
        return load_catalogue(cat_dir, site)
    except ConfigError as e:
        print(f"the catalogue in {cat_dir} has problems (python run.py check-config):", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def cmd_plan(args: argparse.Namespace) -> int:
    """Print a plan as a table or JSON; exit 2 on a bad purpose or answer."""
    import json
    import sys

    from queue_server.core.journey import PlanError, plan_to_dict, plan_visit

    catalogue = _load(args.config_dir)
    if catalogue is None:
        return 1
    answers: dict[str, str] = {}
    for item in args.answer:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            print(f"--answer {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        answers[key.strip()] = value.strip()
    try:
        plan = plan_visit(catalogue, args.purposes, answers, args.lang)
    except PlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(plan_to_dict(plan), ensure_ascii=False, indent=2))
    else:
        print(format_plan(catalogue, plan))
    return 0


def format_plan(catalogue, plan) -> str:
    """The plan as a readable text table in the plan's language."""
    from queue_server.core import ruby
    from queue_server.core.i18n import pick

    lang = plan.lang

    def label(key: str) -> str:
        return pick(catalogue.labels[key], lang)

    purposes = " + ".join(pick(catalogue.purposes[p].name, lang) for p in plan.purposes)
    mins = label("minutes")
    lines = [f"{label('plan_title')} — {purposes}", ""]
    for s in plan.steps:
        after = f"  (← {', '.join(str(i + 1) for i in s.after)})" if s.after else ""
        lines.append(f"{s.index + 1}. {s.department_name} [{s.department}]  {s.minutes:.0f} {mins}{after}")
        for p in s.procedures:
            flag = f"  ? {label('to_confirm')}" if p.to_confirm else ""
            lines.append(f"   - {p.name}{flag}")
            if p.deadline:
                lines.append(f"       {label('deadline')}: {p.deadline}")
            if p.note:
                lines.append(f"       {p.note}")
    if plan.documents:
        lines += ["", f"{label('documents')}:"]
        lines += [f"   - {d.name}" for d in plan.documents]
    if plan.online:
        lines += ["", f"{label('online')}:"]
        for a in plan.online:
            lines.append(f"   - {a.procedure_name}: {a.text}")
            if a.url:
                lines.append(f"       {a.url}")
    if plan.external:
        lines += ["", f"{label('external')}:"]
        for e in plan.external:
            flag = f"  ? {label('to_confirm')}" if e.to_confirm else ""
            lines.append(f"   - {e.name}{flag}")
            lines.append(f"       {label('where')}: {e.where}")
            if e.deadline:
                lines.append(f"       {label('deadline')}: {e.deadline}")
            if e.note:
                lines.append(f"       {e.note}")
    lines += ["", f"{label('total')}: {plan.minutes:.0f} {mins} (± {plan.minutes_sd:.0f})"]
    # やさしい日本語 carries ruby markup {市民課|しみんか}; a terminal shows it as 市民課（しみんか）.
    return "\n".join(ruby.bracketed(line) for line in lines)


def cmd_questions(args: argparse.Namespace) -> int:
    """List the questions of the purposes with ids, kinds and allowed answers."""
    import json
    import sys

    from queue_server.core.i18n import pick
    from queue_server.core.journey import PlanError, question_to_dict, questions_for

    catalogue = _load(args.config_dir)
    if catalogue is None:
        return 1
    try:
        questions = questions_for(catalogue, args.purposes)
    except PlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        items = [question_to_dict(catalogue, q, args.lang) for q in questions]
    except PlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    answers_label = pick(catalogue.labels["answers"], args.lang)
    for item in items:
        print(f"{item['id']}  ({item['kind']})")
        print(f"    {item['text']}")
        print(f"    {item['help']}")
        if item["kind"] == "number":
            rng = f"{item['min']}–{item['max']}, unknown"
            print(f"    {answers_label}: {rng}")
        else:
            print(f"    {answers_label}: " + ", ".join(f"{c['value']} ({c['text']})" for c in item["choices"]))
    return 0


def cmd_easy_readings(args: argparse.Namespace) -> int:
    """Print, per procedure, the Japanese name with readings proposed by pyopenjtalk."""
    from queue_server.core import ruby
    from queue_server.core.easy_japanese import propose_ruby

    catalogue = _load(args.config_dir)
    if catalogue is None:
        return 1
    for p in catalogue.procedures.values():
        easy = p.name.get("ja-easy", "")
        if args.all or not ruby.RUBY.search(easy):
            print(f"{p.id}: {p.name['ja']}\n    now:      {easy}\n    proposal: {propose_ruby(p.name['ja'])}")
    return 0
