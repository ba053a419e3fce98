"""Ticket layout and ESC/POS output. See docs/printing.md.

``from printers import print_ticket, PrintableTicket, RouteLine, PrinterError`` works, but the
names load on first use: `run.py --help` imports ``printers.cli`` and must not load Pillow or
python-escpos.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "print_ticket": "printers.printing",
    "PrinterConfig": "printers.printing",
    "PrintResult": "printers.printing",
    "PrintableTicket": "printers.layout",
    "RouteLine": "printers.layout",
    "layout_ticket": "printers.layout",
    "PrinterError": "printers.errors",
    "PrinterOffline": "printers.errors",
    "PaperOut": "printers.errors",
    "CoverOpen": "printers.errors",
    "PrinterTimeout": "printers.errors",
    "PrinterRefused": "printers.errors",
    "PrinterConfigError": "printers.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'printers' has no attribute {name!r}")
