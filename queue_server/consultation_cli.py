"""Subcommands for consultations: staff-account (passwords), consultation-purge (retention job).

Passwords are typed at a prompt (or piped with --password-stdin), never given on the command line
where `ps` and shell history would keep them; only the Argon2id hash is stored.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("staff-account", help="set a staff member's password (accounts are in config/consultation.toml)")
    p.add_argument("action", choices=["add", "list"], help="add: set or change the password; list: accounts and whether a password is set")
    p.add_argument("identifier", nargs="?", help="the staff identifier, as in config/consultation.toml")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input (scripts)")
    _common(p)
    p.set_defaults(func=cmd_staff_account)

    p = sub.add_parser("consultation-check", help="check config/consultation.toml against site.toml")
    p.add_argument("--config-dir", default=None, help="folder with site.toml and consultation.toml (default config/)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("consultation-purge", help="delete consultation records, handovers, audit rows past retention")
    _common(p)
    p.set_defaults(func=cmd_purge)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config-dir", default=None, help="folder with site.toml and consultation.toml (default config/)")
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default sqlite:///var/madoguchi.db)")


def _config(args: argparse.Namespace):
    """config/consultation.toml checked against site.toml (ConfigError when bad or missing)."""
    from pathlib import Path

    from .config import DEFAULT_CONFIG_DIR, load_city
    from .core.problems import ConfigError, Problem
    from .loaders import load_consultation

    config_dir = Path(args.config_dir) if args.config_dir else DEFAULT_CONFIG_DIR
    city = load_city(config_dir / "site.toml")
    path = config_dir / "consultation.toml"
    config = load_consultation(path, set(city.departments))
    if config is None:
        raise ConfigError([Problem(str(path), "-", "no such file: consultations are not configured")])
    return config


def _rules(args: argparse.Namespace):
    return _config(args).rules


def cmd_check(args: argparse.Namespace) -> int:
    import sys

    from .core.problems import ConfigError

    try:
        config = _config(args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"consultation config OK: {len(config.rules.staff)} staff accounts, {len(config.rules.topics)} topics, "
          f"{len(config.booking.consultants)} bookable consultants")
    return 0


def _setup(args: argparse.Namespace):
    from .storage import Store, default_url

    rules = _rules(args)
    store = Store(args.db or default_url())
    store.migrate()
    return rules, store


def cmd_staff_account(args: argparse.Namespace) -> int:
    import getpass
    import sys
    import time

    from . import accounts
    from . import consultation_store as db
    from .core.problems import ConfigError

    try:
        rules, store = _setup(args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    if args.action == "list":
        for ident, a in sorted(rules.staff.items()):
            has = "password set" if db.password_hash(store.engine, ident) else "no password"
            print(f"{ident:<20} {a.role:<11} {','.join(sorted(a.departments)) or '-':<20} {has}")
        return 0
    if not args.identifier or args.identifier not in rules.staff:
        print(f"no staff account {args.identifier!r} in consultation.toml; add it there first", file=sys.stderr)
        return 1
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"new password for {args.identifier}: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ; nothing changed", file=sys.stderr)
            return 1
    try:
        hashed = accounts.hash_password(password)
    except ValueError as e:
        print(f"{e}; nothing changed", file=sys.stderr)
        return 1
    db.set_password(store.engine, args.identifier, hashed, time.time())
    print(f"password set for {args.identifier} (Argon2id); their open sessions ended")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    import sys
    import time

    from . import consultation_store as db
    from .core.consultation import purge_before
    from .core.problems import ConfigError

    try:
        rules, store = _setup(args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    counts = db.purge(store.engine, purge_before(time.time(), rules.retention_days), rules.idle_seconds)
    print("deleted: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
