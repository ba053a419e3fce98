"""`run.py kiosk`: open the touch kiosk. Top-level imports are argparse only (fast --help)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kiosk",
        help="the touch kiosk (Kivy): language, purpose, questions, list, numbered ticket",
        description="Open the kiosk window. Without a display, set SDL_VIDEODRIVER=offscreen (tests) "
                    "or start it under Xvfb. The staff PIN is read from the secrets file ([kiosk] staff_pin) "
                    "or MADOGUCHI_STAFF_PIN; it is never printed or logged.",
    )
    p.add_argument("--server", required=True, help="queue server websocket URL, e.g. ws://127.0.0.1:8765/ws")
    p.add_argument("--device", required=True, help="this kiosk's id (shown to staff with its alerts)")
    p.add_argument("--site", default=None, help="site key (default: the server's first site)")
    tok = p.add_mutually_exclusive_group()
    tok.add_argument("--token", default=None, help="the kiosk token (default: from --secrets)")
    tok.add_argument("--secrets", default="var/secrets.toml", help="secrets file with [roles] kiosk (default %(default)s)")
    p.add_argument("--printer", default=None,
                   help="printer URL (network://HOST:9100, usb://VID:PID, serial:/dev/ttyS0, file:///path); "
                        "none: tickets are shown on screen only")
    p.add_argument("--renderer", choices=("image", "kanji"), default="image", help="ticket renderer (default image)")
    p.add_argument("--printer-width", type=int, default=576, help="printer dots per line (default 576)")
    p.add_argument("--card", action="store_true", help="offer My Number card prefill (needs a PC/SC reader)")
    p.add_argument("--no-speech", action="store_true",
                   help="no reading aloud through the speakers (the read-aloud button and keypad stay)")
    p.add_argument("--portrait", action="store_true", help="1080×1920 instead of 1920×1080")
    p.add_argument("--fullscreen", action="store_true", help="full screen (kiosk mode)")
    p.add_argument("--idle", type=float, default=90.0, help="seconds without a touch before the countdown (default 90)")
    p.add_argument("--idle-warning", type=float, default=20.0, help="countdown seconds before the wipe (default 20)")
    p.add_argument("--config-dir", default="config", help="site.toml and catalogue/ (default %(default)s)")
    p.set_defaults(func=run)


def _secrets(path: str) -> tuple[str | None, str | None]:
    """(kiosk token, staff PIN) from the secrets file; either may be missing."""
    import tomllib
    from pathlib import Path

    f = Path(path)
    if not f.is_file():
        return None, None
    with f.open("rb") as fh:
        raw = tomllib.load(fh)
    pin = (raw.get("kiosk") or {}).get("staff_pin")
    return (raw.get("roles") or {}).get("kiosk"), (str(pin) if pin is not None else None)


def run(args: argparse.Namespace) -> int:
    import os
    import sys
    from pathlib import Path

    token, pin = _secrets(args.secrets) if args.token is None else (args.token, _secrets(args.secrets)[1])
    if not token:
        print(f"kiosk: no kiosk token: pass --token or run `python run.py init` to write {args.secrets}",
              file=sys.stderr)
        return 2
    pin = os.environ.get("MADOGUCHI_STAFF_PIN") or pin
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get(
            "SDL_VIDEODRIVER"):
        print("kiosk: no display. Start it on the kiosk's screen, or under Xvfb "
              "(xvfb-run -s '-screen 0 1920x1080x24' python run.py kiosk …), "
              "or headless with SDL_VIDEODRIVER=offscreen.", file=sys.stderr)
        return 2
    from kiosk.app import KioskSettings, run_app

    settings = KioskSettings(
        server=args.server, device=args.device, token=token, site=args.site, printer=args.printer,
        renderer=args.renderer, printer_width=args.printer_width, portrait=args.portrait,
        fullscreen=args.fullscreen, idle_seconds=args.idle, warning_seconds=args.idle_warning,
        staff_pin=pin, card=args.card, speech=not args.no_speech, config_dir=Path(args.config_dir),
    )
    return run_app(settings)
