"""`run.py print-test`: print a sample ticket, or write it as a PNG.

Only argparse at the top level: `run.py --help` must stay fast and work without Pillow or escpos.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``print-test`` subcommand."""
    p = sub.add_parser(
        "print-test",
        help="print a sample ticket (or write it as a PNG)",
        description="Print a sample ticket on a printer given by URL: network://HOST:9100, usb://VID:PID, "
        "serial:/dev/ttyUSB0?baudrate=115200, file:/dev/usb/lp0, dummy:. See docs/printing.md.",
    )
    p.add_argument("--printer", default="dummy:", metavar="URL", help="printer URL (default: dummy:)")
    p.add_argument(
        "--renderer", choices=("image", "kanji"), default="image", help="image (any printer) or kanji"
    )
    p.add_argument("--lang", default="ja", help="ja, en, zh, ko, vi, pt or ja-easy (default: ja)")
    p.add_argument("--width", type=int, choices=(384, 512, 576), default=576, help="paper width in dots")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds before a silent printer is given up")
    p.add_argument("--label", default="123", help="the ticket number to print")
    p.add_argument(
        "--png", metavar="FILE",
        help="write the rendered ticket here instead of printing (image renderer only: refused with kanji)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from printers.errors import PrinterError
    from printers.layout import layout_ticket
    from printers.sample import sample_ticket
    from queue_server.core.i18n import LANGUAGES

    if args.lang not in LANGUAGES:
        print(f"print-test: --lang {args.lang!r} is not one of {', '.join(LANGUAGES)}", file=sys.stderr)
        return 2
    if args.png and args.renderer == "kanji":
        # The kanji renderer's text is drawn by the printer's own built-in font: no PNG made here
        # would show what it prints, and the image renderer's picture would be a different ticket.
        print(
            "print-test: --png shows the image renderer only. In kanji mode the printer draws the text "
            "with its own font, so print it on the printer instead (--printer network://IP:9100 "
            "--renderer kanji), or drop --renderer kanji to see the image ticket.",
            file=sys.stderr,
        )
        return 2
    ticket = sample_ticket(args.lang, label=args.label)
    try:
        if args.png:
            from printers.render_image import find_fonts, render_ticket_image

            blocks = layout_ticket(ticket)
            missing = find_fonts().missing(" ".join(getattr(b, "text", "") for b in blocks), ticket.lang)
            if missing:
                print(
                    f"print-test: warning: no installed font has {missing!r}: they print as boxes",
                    file=sys.stderr,
                )
            image = render_ticket_image(blocks, args.width, ticket.lang)
            image.save(args.png)
            print(f"wrote {args.png} ({image.width}x{image.height} dots)")
            return 0
        from printers.printing import print_ticket

        result = print_ticket(args.printer, ticket, args.renderer, args.width, args.timeout)
    except PrinterError as e:
        print(
            f"print-test: {e.code}: {e.message(args.lang)}\n  {e.detail} [{e.printer or args.printer}]",
            file=sys.stderr,
        )
        return 1
    status = "no status (write-only connection)"
    if result.status is not None:
        status = "paper near end" if result.status.paper_near_end else "ok"
    print(
        f"sent {len(result.data)} bytes to {args.printer} ({args.renderer}, {args.width} dots) "
        f"in {result.seconds * 1000:.0f} ms; status: {status}"
    )
    return 0
