"""``print_ticket``: the one call the kiosk makes. Layout → renderer → bytes → device, under a deadline.

The job is encoded to bytes first (CPU only), then one worker thread opens the device, asks its
status (DLE EOT) where the device can answer, writes the bytes, and asks once more to confirm the
printer has read the job to its end. The caller waits at most
``timeout`` seconds (plus the line time of a slow serial link) for all of that: a hung printer,
a dead network path or a peer that accepts and never answers ends in :class:`PrinterTimeout`,
and the connection is closed behind it so the worker thread ends too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from printers import backends
from printers.errors import PrinterConfigError, PrinterError, PrinterTimeout
from printers.layout import PrintableTicket, layout_ticket
from printers.status import PrinterStatus, closing_status, query_status

Renderer = Literal["image", "kanji"]
RENDERERS: tuple[str, ...] = ("image", "kanji")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PrinterConfig:
    """One kiosk's printer, e.g. from ``[printer]`` in the kiosk's config (see docs/printing.md)."""

    url: str
    renderer: Renderer = "image"
    width: int = 576
    timeout: float = 5.0
    check_status: bool | None = None  # None: ask where the connection can answer (network, usb, serial)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "printer") -> PrinterConfig:
        """Validate a config table; errors name the field."""
        from printers.render_image import WIDTHS

        unknown = set(data) - {"url", "renderer", "width", "timeout", "check_status"}
        if unknown:
            raise PrinterConfigError(f"{source}: unknown field(s) {', '.join(sorted(unknown))}")
        if "url" not in data:
            raise PrinterConfigError(f'{source}.url: missing (e.g. "network://10.0.0.5:9100")')
        cfg = cls(
            url=str(data["url"]),
            renderer=data.get("renderer", "image"),
            width=int(data.get("width", 576)),
            timeout=float(data.get("timeout", 5.0)),
            check_status=data.get("check_status"),
        )
        backends.parse_printer_url(cfg.url)
        if cfg.renderer not in RENDERERS:
            raise PrinterConfigError(f"{source}.renderer: {cfg.renderer!r} is not one of {RENDERERS}")
        if cfg.width not in WIDTHS:
            raise PrinterConfigError(f"{source}.width: {cfg.width} is not one of {WIDTHS} dots")
        if not cfg.timeout > 0:
            raise PrinterConfigError(f"{source}.timeout: must be > 0 seconds")
        return cfg


@dataclass(frozen=True, slots=True)
class PrintResult:
    """What was sent where. ``status`` is None when the device cannot report (file, dummy)."""

    printer: str
    renderer: str
    width: int
    data: bytes
    status: PrinterStatus | None
    seconds: float  # device I/O time (open, status, write, close)


def render_ticket_bytes(ticket: PrintableTicket, renderer: str = "image", width: int = 576) -> bytes:
    """The ESC/POS bytes of a ticket: what ``print_ticket`` sends. No I/O."""
    from printers.escpos_bytes import encode

    blocks = layout_ticket(ticket)
    if renderer == "image":
        from printers.render_image import render_image_ops

        ops = render_image_ops(blocks, width, ticket.lang)
    elif renderer == "kanji":
        from printers.render_kanji import render_kanji_ops

        ops = render_kanji_ops(blocks, width, ticket.lang)
    else:
        raise PrinterConfigError(f"renderer {renderer!r} is not one of {RENDERERS}")
    return encode(ops, width)


def run_with_deadline(work: Callable[[], T], seconds: float, on_timeout: Callable[[], None], what: str) -> T:
    """Run ``work`` in a daemon thread; after ``seconds`` call ``on_timeout`` and raise PrinterTimeout.

    A daemon thread, not an executor: a thread stuck in a driver call must never keep the kiosk
    process from exiting.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread below
            box["error"] = e

    worker = threading.Thread(target=run, name="printer-io", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        on_timeout()
        raise PrinterTimeout(f"no completion within {seconds:.1f} s", printer=what)
    if "error" in box:
        raise box["error"]
    return box["result"]


def send_job(
    target: backends.PrinterTarget, data: bytes, timeout: float = 5.0, check_status: bool | None = None
) -> tuple[PrinterStatus | None, bytes]:
    """Open, check status, write, close — within the deadline. Returns (status, bytes the device kept)."""
    check = target.can_read_status if check_status is None else check_status and target.can_read_status
    opened: list[Any] = []

    def work() -> tuple[PrinterStatus | None, bytes]:
        device = backends.open_device(target, timeout)
        opened.append(device)
        try:
            status = None
            if check:
                try:
                    status = query_status(device, target.url)
                except Exception as e:  # noqa: BLE001 - socket/serial errors become typed errors
                    raise backends.translate(e, target, "status") from e
                fault = status.fault(target.url)
                if fault is not None:
                    raise fault
            backends.write(device, data, target)
            if check:
                try:
                    status = closing_status(device, target.url, data)
                except PrinterError:
                    raise
                except Exception as e:  # noqa: BLE001 - socket/serial errors become typed errors
                    raise backends.translate(e, target, "confirm") from e
                # Offline, paper end or cover open now: the ticket did not come out whole.
                fault = status.fault(target.url, after_job=True)
                if fault is not None:
                    raise fault
            kept = device.output if target.kind == "dummy" else b""
            return status, kept
        finally:
            backends.close(device)

    def abandon() -> None:
        for device in opened:  # wakes a worker blocked in recv/send (shutdown + close)
            backends.close(device)

    # A serial line needs its line time (10 bits a byte) on top of the deadline for a stuck device.
    line_time = len(data) * 10 / target.baudrate if target.kind == "serial" else 0.0
    return run_with_deadline(work, timeout + line_time, abandon, target.url)


def print_ticket(
    printer_url: str,
    ticket: PrintableTicket,
    renderer: str = "image",
    width: int = 576,
    timeout: float = 5.0,
    *,
    check_status: bool | None = None,
) -> PrintResult:
    """Print ``ticket`` on the printer at ``printer_url``; raise a :class:`PrinterError` subclass on failure.

    Never blocks longer than ``timeout`` seconds on the device (rendering, ~0.1–0.5 s, comes first
    and is not counted). Errors: PrinterConfigError (bad URL, renderer, width, missing font or
    driver), PrinterRefused, PrinterTimeout, PrinterOffline, PaperOut, CoverOpen, PrinterError.
    """
    target = backends.parse_printer_url(printer_url)
    data = render_ticket_bytes(ticket, renderer, width)
    started = time.perf_counter()
    status, _ = send_job(target, data, timeout, check_status)
    return PrintResult(printer_url, renderer, width, data, status, time.perf_counter() - started)


def print_with_config(config: PrinterConfig, ticket: PrintableTicket) -> PrintResult:
    """``print_ticket`` with a validated :class:`PrinterConfig`."""
    return print_ticket(
        config.url, ticket, config.renderer, config.width, config.timeout, check_status=config.check_status
    )
