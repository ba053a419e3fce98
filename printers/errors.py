"""Typed printer faults: what the kiosk shows the citizen and what the server records for staff.

Every error carries a stable ``code`` (recorded as the device fault, shown on the staff console)
and a ``message_key`` into ``printers/messages.toml`` (shown to the citizen in their language).
``detail`` is the technical cause in English for logs; it never reaches the citizen.
"""

from __future__ import annotations

from typing import ClassVar


class PrinterError(Exception):
    """Base of every printer fault. Catch this one in the kiosk."""

    code: ClassVar[str] = "printer_error"
    message_key: ClassVar[str] = "error.printer_error"

    def __init__(self, detail: str = "", *, printer: str = "") -> None:
        self.detail = detail
        self.printer = printer
        super().__init__(f"{self.code}: {detail}" + (f" [{printer}]" if printer else ""))

    def message(self, lang: str) -> str:
        """The citizen-facing text in ``lang`` (from printers/messages.toml)."""
        from printers.layout import default_messages  # deferred: keeps `import printers.errors` light

        return default_messages().get(self.message_key, lang)

    def to_dict(self) -> dict[str, str]:
        """The device-fault record the kiosk sends to the server (staff see which printer and why)."""
        return {
            "code": self.code,
            "message_key": self.message_key,
            "detail": self.detail,
            "printer": self.printer,
        }


class PrinterOffline(PrinterError):
    """The printer reports itself offline, or the device is not there (unplugged, no such file)."""

    code = "offline"
    message_key = "error.offline"


class PaperOut(PrinterOffline):
    """Roll paper end: staff must load a new roll."""

    code = "paper_out"
    message_key = "error.paper_out"


class CoverOpen(PrinterOffline):
    """The cover is open: staff must close it (often after a paper change)."""

    code = "cover_open"
    message_key = "error.cover_open"


class PrinterTimeout(PrinterError):
    """No answer within the deadline: hung printer, dead network path, or a non-printer on the port."""

    code = "timeout"
    message_key = "error.timeout"


class PrinterRefused(PrinterError):
    """The connection was actively refused: wrong address or port, or the printer's port is busy."""

    code = "refused"
    message_key = "error.refused"


class PrinterConfigError(PrinterError):
    """The printer is configured wrongly (bad URL, unknown renderer, missing font or driver)."""

    code = "config"
    message_key = "error.config"


ERROR_CLASSES: tuple[type[PrinterError], ...] = (
    PrinterError,
    PrinterOffline,
    PaperOut,
    CoverOpen,
    PrinterTimeout,
    PrinterRefused,
    PrinterConfigError,
)
