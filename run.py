#!/usr/bin/env python3
"""madoguchi — the one entry point. `python run.py --help` lists every subcommand.

Each part registers its own subcommands in a small ``cli`` module whose top level imports only
argparse, so `--help` stays fast and a part with missing hardware never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add subcommands, in the order --help lists them.
CLI_MODULES = (
    "queue_server.cli",  # init, server, demo, check-config
    "queue_server.catalogue_cli",  # plan, questions
    "kiosk.cli",  # kiosk
    "printers.cli",  # print-test
    "simulation.cli",  # simulate, staff
    "queue_server.kpi_cli",  # kpi, calibrate
    "queue_server.consultation_cli",  # staff-account, consultation-purge
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="madoguchi (窓口): kiosk and queue management for a city hall lobby.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in CLI_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that part is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from queue_server.core.problems import ConfigError

    try:
        return int(args.func(args) or 0)
    except ConfigError as e:  # a command that met a bad setting: what and where, not a traceback
        print(e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
