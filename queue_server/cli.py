"""Subcommands of the queue server: init, server, demo, check-config. Imports stay inside functions."""

from __future__ import annotations

import argparse
import contextlib

SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits (server process)
# The server's garbage collector thresholds (gc.set_threshold): a young collection after this many
# more container objects allocated than freed, instead of Python's 700 (see cmd_server's ready)
GC_THRESHOLDS = (10_000, 10, 10)
DEMO_STOP_BOUND = 25.0  # seconds `demo` may take to stop on Ctrl+C or SIGTERM before it dumps its stacks and exits 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create var/ (database schema, device tokens in var/secrets.toml)")
    _common(p)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("server", help="run the websocket queue server (also serves the web pages)")
    _common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--standby", action="store_true",
                   help="when another server already leads this database, wait and take over when it stops "
                        "(default: refuse to start); see docs/operations.md")
    p.add_argument("--clock", metavar="FILE", default=None,
                   help="demo/test only: run on the simulated time that `simulate --live --clock FILE` writes "
                        "(refused with production = true); see docs/simulation.md")
    p.add_argument("--shed-queue", type=int, default=None, metavar="N",
                   help="answer `busy` instead of queueing when N requests already wait for the writer "
                        "(default 1000); see docs/reliability.md")
    p.add_argument("--shed-wait", type=float, default=None, metavar="SECONDS",
                   help="answer `busy` when the oldest unanswered request has waited this long (default 0.25)")
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("demo", help="start the server on the sample config with SQLite and print device URLs")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--no-kiosk", action="store_true", help="do not open the kiosk window")
    p.add_argument("--busy", action="store_true",
                   help="also run the simulation's live mode, so simulated kiosks and staff fill the board")
    p.add_argument("--scenario", default="normal_week", help="scenario for --busy (default normal_week)")
    p.add_argument("--busy-speed", type=float, default=60.0, help="--busy: simulated seconds per second (default 60)")
    p.add_argument("--busy-minutes", type=float, default=None,
                   help="--busy: simulated minutes per day before the next day starts (default: the whole day)")
    p.add_argument("--busy-clock", action="store_true",
                   help="--busy: the server runs on the simulated days' time (var/sim-clock.json beside --secrets), "
                        "so the demo's log calibrates like a real one (refused with production = true)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check-config", help="validate site config, catalogue, consultation rules, forms and message tables")
    p.add_argument("--config-dir", default=None, help="folder with site.toml and catalogue/ (default config/)")
    p.set_defaults(func=cmd_check_config)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config-dir", default=None, help="folder with site.toml and catalogue/ (default config/)")
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default sqlite:///var/madoguchi.db)")
    p.add_argument("--secrets", default="var/secrets.toml", help="device tokens file (created when missing)")


def _setup(args: argparse.Namespace):
    from pathlib import Path

    from .config import DEFAULT_CONFIG_DIR, load_city
    from .storage import Store, default_url
    from .tokens import ensure_for_city

    config_dir = Path(args.config_dir) if args.config_dir else DEFAULT_CONFIG_DIR
    city = load_city(config_dir / "site.toml")
    from .core.booking import booking_problems
    from .core.problems import ConfigError

    if problems := booking_problems(city.raw, city.source):  # refuse to start on a bad [booking]
        raise ConfigError(problems)
    catalogue = load_catalogue_if_present(config_dir, city)
    from .loaders import load_consultation

    # read once here for both its users (the staff role, consultation booking); a bad file refuses the start
    consultation = load_consultation(config_dir / "consultation.toml", set(city.departments))
    store = Store(args.db or default_url())
    tokens, created = ensure_for_city(Path(args.secrets), city)
    return city, store, tokens, created, catalogue, consultation


def load_catalogue_if_present(config_dir, city):
    """The procedure catalogue, or None when the folder is missing (the server still runs)."""
    cat_dir = config_dir / "catalogue"
    if not cat_dir.is_dir() or not any(cat_dir.glob("*.toml")):
        return None
    from .loaders import load_catalogue

    return load_catalogue(cat_dir, city.raw)


def cmd_init(args: argparse.Namespace) -> int:
    from .core.problems import ConfigError

    try:
        city, store, tokens, created, _, _ = _setup(args)
    except ConfigError as e:
        print(e)
        return 1
    store.migrate()
    store.sync_config(city.sites.values())
    print(f"database ready: {store.url}")
    print(f"device tokens: {args.secrets} ({'created' if created else 'kept'})")
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    import logging

    from .core.problems import ConfigError
    from .server import QueueServer, run_server

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "websockets"):  # one line per connection or migration step drowns the log
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        city, store, tokens, _, catalogue, consultation = _setup(args)
    except ConfigError as e:
        print(e)
        return 1
    clock = {}
    if args.clock:  # live mode's simulated time, so a demo's log calibrates like a real one
        from .simclock import FileClock, clock_refusal

        if why := clock_refusal(city.raw):
            print(why)
            return 1
        clock = {"clock": FileClock(args.clock)}
    qs = QueueServer(city, store, tokens, catalogue, consultation=consultation, **clock)
    qs.secrets_path = args.secrets  # the consultation key file lives beside it (consultation_api.py)

    def ready(port: int) -> None:
        import gc
        import sys

        # what is loaded by now (config, catalogue, forms, the day's tickets) lives as long as the
        # process: frozen, a full collection no longer walks it. Such a collection held the event
        # loop ~100 ms now and then under load (py-spy, bench/open_loop.py), a request's worst wait.
        gc.collect()
        gc.freeze()
        # A request allocates in bursts: a `queue` read of 300 entries makes ~900 tuples that die
        # a moment later. At Python's threshold of 700 such a burst set off a young collection
        # while it was alive; the collection walked it and promoted it, and a full collection (20–50
        # ms with the day's objects) followed every ~15 s, at 100 req/s (gc.callbacks, bench/
        # open_loop.py). With room for a burst, it dies by reference counting before any collection.
        gc.set_threshold(*GC_THRESHOLDS)
        # the waits are computed in a worker thread (pushes.flusher) and the commit runs in one:
        # a thread holds the GIL up to this long while the event loop waits for it (default 5 ms)
        sys.setswitchinterval(SWITCH_INTERVAL)
        print(f"madoguchi server listening on ws://{args.host}:{port}/ws", flush=True)

    if why := _set_admission(qs, args):
        print(why)
        return 1
    return _serve_as_leader(run_server(qs, args.host, args.port, ready, standby=args.standby))


def _set_admission(qs, args: argparse.Namespace) -> str | None:
    """Apply --shed-queue/--shed-wait (core/admission.py); the refusal's text when they are bad."""
    from dataclasses import replace

    given = {k: v for k, v in (("max_queue", args.shed_queue), ("max_wait", args.shed_wait)) if v is not None}
    try:
        qs.admission = replace(qs.admission, **given)
    except ValueError as e:
        return f"--shed-queue/--shed-wait: {e}"
    return None


def _serve_as_leader(main) -> int:
    """Run the server; 2 when another server leads (refused), 3 when the lock was lost (restart me)."""
    import asyncio
    import logging
    import sys

    from .leader import LeadershipLost, NotLeader

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main)
    except NotLeader as e:
        print(f"madoguchi server refused to start: {e}", file=sys.stderr, flush=True)
        return 2
    except LeadershipLost as e:
        logging.getLogger("madoguchi.server").critical("leadership lost, exiting without writing more: %s", e)
        return 3
    return 0


def device_urls(host: str, port: int, tokens, city) -> list[str]:
    """The lines `demo` prints: what each device needs to connect."""
    base = f"http://{host}:{port}"
    ws = f"ws://{host}:{port}/ws"
    lines = [
        f"Queue server      {ws}",
        f"Lobby board       {base}/board/?site=honcho&token={tokens.roles['display']}",
        f"Admin page        {base}/admin/?token={tokens.roles['admin']}",
        f"Kiosk             python run.py kiosk --server {ws} --device kiosk-1   (token from var/secrets.toml)",
        f"Kiosk token       {tokens.roles['kiosk']}",
        f"Kiosk staff PIN   {tokens.staff_pin or '(none: staff-assist mode off)'}   (for staff; [kiosk] staff_pin in the secrets file)",
        "Counter consoles:",
    ]
    for site, counters in tokens.counters.items():
        if site != "honcho":
            continue
        for n, tok in sorted(counters.items()):
            lines.append(f"  counter {n:>2}     {base}/counter/?site={site}&counter={n}&token={tok}")
    lines.append(f"Phone status page {base}/status/?t=<token printed on each ticket as a QR code>")
    lines.append(f"Consultations     {base}/consult/   (staff sign in; set a password first: python run.py staff-account add kosodate01)")
    lines.append(f"Health, metrics   {base}/healthz  {base}/metrics")
    return lines


def public_base(host: str, port: int) -> str:
    """The demo's own address for the QR codes and status URLs (not config's production URL)."""
    import socket

    name = socket.gethostname() if host in ("", "0.0.0.0", "::") else host
    return f"http://{name}:{port}/"


class BusyLobby:
    """``demo --busy``: the simulation's live mode, one scenario day after another until stopped.

    Each day runs as a child process that ends when the day does; a thread waits for it (so no
    defunct process is left) and starts the next day. ``stop`` ends the current day and waits.
    """

    def __init__(self, command) -> None:  # command(day_index) -> argv
        import threading

        self.command = command
        self.days = 0
        self.proc = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="busy-lobby", daemon=True)

    def start(self) -> BusyLobby:
        self._thread.start()
        return self

    def _run(self) -> None:
        import subprocess

        # this thread alone starts, ends and waits for the day processes: a stop between the loop's
        # check and a new Popen can then not leave a day running unwaited (a defunct process later)
        while not self._stop.is_set():
            proc = self.proc = subprocess.Popen(self.command(self.days), stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
            while proc.poll() is None and not self._stop.wait(0.5):
                pass
            if self._stop.is_set():
                _end(proc)
                break
            self.days += 1
            self._stop.wait(1.0)  # a breath between days

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)  # its day process gets 5 s to end (_end), then is killed
        if self.proc is not None:  # the thread did not get to it (it is a daemon: never hang here)
            _end(self.proc)


def _end(p) -> None:
    """Terminate a child if it still runs, and wait for it (so none is left defunct)."""
    import subprocess

    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio
    import faulthandler
    import logging
    import os
    import signal
    import subprocess
    import sys

    from .core.problems import ConfigError
    from .server import QueueServer, run_server

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        city, store, tokens, _, catalogue, consultation = _setup(args)
    except ConfigError as e:
        print(e)
        return 1
    import dataclasses

    clock, clock_file = {}, None
    if args.busy and args.busy_clock:  # live mode drives the server's clock (queue_server/simclock.py)
        from pathlib import Path

        from .simclock import FileClock, clock_refusal

        if why := clock_refusal(city.raw):
            print(why)
            return 1
        clock_file = Path(args.secrets).with_name("sim-clock.json")
        clock_file.unlink(missing_ok=True)  # a previous demo's days are not this one's
        clock = {"clock": FileClock(clock_file)}
    qs = QueueServer(city, store, tokens, catalogue, consultation=consultation, **clock)
    qs.secrets_path = args.secrets  # the consultation key file lives beside it (consultation_api.py)
    kiosk: list[subprocess.Popen] = []  # child processes: the kiosk window
    busy: list[BusyLobby] = []

    def ready(port: int) -> None:
        # tickets' QR codes and status URLs point at this demo, whatever --host/--port
        qs.city = dataclasses.replace(qs.city, public_base_url=public_base(args.host, port))
        print("madoguchi demo — Sakata City (酒田市), SQLite at", store.url)
        for line in device_urls(args.host, port, tokens, city):
            print(" ", line)
        has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        if args.no_kiosk:
            pass
        elif has_display:
            kiosk.append(subprocess.Popen([sys.executable, "run.py", "kiosk", "--server", f"ws://{args.host}:{port}/ws",
                                           "--device", "kiosk-1", "--secrets", args.secrets]))
            print("  Kiosk window opened.")
        else:
            print("  No display here: start the kiosk on a machine with a screen with the Kiosk line above.")
        if args.busy:
            extra = ["--minutes", str(args.busy_minutes)] if args.busy_minutes else []
            extra += ["--clock", str(clock_file)] if clock_file else []
            busy.append(BusyLobby(lambda day: [
                sys.executable, "run.py", "simulate", args.scenario, "--live", f"ws://{args.host}:{port}/ws",
                "--speed", str(args.busy_speed), "--secrets", args.secrets, "--quiet", "--day", str(day), *extra,
            ]).start())
            print(f"  Busy lobby: simulated kiosks and staff ({args.scenario}, {args.busy_speed:g}x speed) are "
                  "using the counters, one scenario day after another.")
        print("Press Ctrl+C to stop.", flush=True)

    async def stop_gracefully(stop: asyncio.Future) -> None:
        # the simulated lobby first: its clients go before the server closes their connections
        for b in busy:
            await asyncio.to_thread(b.stop)
        if not stop.done():
            stop.set_result(None)

    async def serve() -> None:
        # Ctrl+C or a service manager's SIGTERM resolve the server's stop future: the loop stops
        # between callbacks (an exception raised from a signal handler lands in whatever frame runs,
        # half-way through a write or a close). If the stop hangs all the same, every thread's stack
        # goes to stderr and the process exits 1 (faulthandler) instead of hanging on silently.
        loop = asyncio.get_running_loop()
        stop = loop.create_future()

        def on_signal() -> None:
            faulthandler.dump_traceback_later(DEMO_STOP_BOUND, exit=True)
            loop.create_task(stop_gracefully(stop))

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await run_server(qs, args.host, args.port, ready, stop)

    try:
        return _serve_as_leader(serve())
    finally:
        for b in busy:
            b.stop()
        for p in kiosk:
            _end(p)
        faulthandler.cancel_dump_traceback_later()


def cmd_check_config(args: argparse.Namespace) -> int:
    import tomllib
    from pathlib import Path

    from .config import DEFAULT_CONFIG_DIR, validate_site_config
    from .core.problems import Problem
    from .loaders import load_messages

    config_dir = Path(args.config_dir) if args.config_dir else DEFAULT_CONFIG_DIR
    site_file = config_dir / "site.toml"
    problems: list[Problem] = []
    raw = None
    try:
        text = site_file.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
        problems += validate_site_config(raw, str(site_file), text)
        from .core.booking import booking_problems

        problems += booking_problems(raw, str(site_file))  # [booking] of the planning page
    except OSError as e:
        problems.append(Problem(str(site_file), "-", f"cannot read: {e.strerror}"))
    except tomllib.TOMLDecodeError as e:
        problems.append(Problem(str(site_file), "-", f"TOML syntax error: {e}"))
    cat_dir = config_dir / "catalogue"
    if cat_dir.is_dir():
        from .loaders import validate_catalogue

        problems += validate_catalogue(cat_dir, raw)
    else:
        problems.append(Problem(str(cat_dir), "-", "no catalogue folder"))
    if raw is not None and (config_dir / "consultation.toml").is_file():  # 相談 (docs/consultation.md)
        from .core.problems import ConfigError
        from .loaders import load_consultation

        departments = raw.get("departments")
        try:
            load_consultation(config_dir / "consultation.toml", set(departments) if isinstance(departments, dict) else set())
        except ConfigError as e:
            problems += e.problems
    if (config_dir / "forms").is_dir():  # 書かない窓口 forms (docs/forms.md)
        from .loaders import check_forms

        try:
            from .loaders import load_catalogue

            procs = {k: p.department for k, p in load_catalogue(cat_dir, raw).procedures.items()}
        except Exception:  # noqa: BLE001 - the catalogue's own problems are listed above
            procs = None
        if procs is not None:
            problems += [Problem(f, "-", m) for f, m in check_forms(config_dir / "forms", procs)]
    root = Path(__file__).resolve().parent.parent
    for table in sorted(root.glob("*/messages.toml")) + sorted(root.glob("*/*/messages.toml")):
        try:
            for line in load_messages(table).missing():
                problems.append(Problem(str(table), "-", line.split(": ", 1)[1]))
        except tomllib.TOMLDecodeError as e:
            problems.append(Problem(str(table), "-", f"TOML syntax error: {e}"))
    if raw is not None:
        from .config import site_warnings

        for w in site_warnings(raw, str(site_file)):
            print(w)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) found.")
        return 1
    print(f"configuration OK: {site_file}, {cat_dir}")
    return 0
