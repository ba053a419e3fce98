"""Real-time printer status (DLE EOT) → a clear status object and, for a fault, a typed error.

Epson ESC/POS answers ``DLE EOT n`` with one byte at once, even while printing or offline.
Every answer byte has the fixed pattern 0xx1xx10 (bits 1 and 4 set, 0 and 7 clear), which is how
a reply is told apart from a device that is not an ESC/POS printer. Bits used (TM-series manual):

- n=1 printer status: bit 3 offline.
- n=2 offline cause: bit 2 cover open, bit 3 paper fed by the button, bit 5 stopped by paper end,
  bit 6 error.
- n=3 error cause: bit 3 autocutter error, bit 5 unrecoverable error, bit 6 auto-recoverable error.
- n=4 roll paper sensor: bits 2–3 near end, bits 5–6 paper end.

The parsing is pure; :func:`query_status` is the thin I/O part over any python-escpos printer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from printers.errors import CoverOpen, PaperOut, PrinterError, PrinterOffline, PrinterTimeout

DLE_EOT = b"\x10\x04"
QUERIES = (1, 2, 3, 4)  # printer, offline cause, error cause, roll paper sensor


def is_status_byte(b: int) -> bool:
    """True for a well-formed DLE EOT answer (fixed bits 0xx1xx10)."""
    return b & 0b1001_0011 == 0b0001_0010


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the printer said about itself. ``raw`` keeps the answer bytes for the fault log."""

    offline: bool = False
    cover_open: bool = False
    paper_end: bool = False
    paper_near_end: bool = False  # not a fault: the kiosk may tell staff to bring a roll
    error: bool = False
    cutter_error: bool = False
    unrecoverable: bool = False
    raw: bytes = b""

    def fault(self, printer: str = "", after_job: bool = False) -> PrinterError | None:
        """The error to raise before printing (or, ``after_job``, for a job that did not
        complete), or None when the printer can print.

        Paper end wins over cover open: changing the roll opens the cover, and the roll is what
        staff must bring.
        """
        detail = ("after the job: " if after_job else "") + f"status bytes {self.raw.hex(' ')}"
        if self.paper_end:
            return PaperOut(f"roll paper end ({detail})", printer=printer)
        if self.cover_open:
            return CoverOpen(f"cover open ({detail})", printer=printer)
        if self.error or self.cutter_error or self.unrecoverable:
            what = (
                "autocutter error"
                if self.cutter_error
                else "unrecoverable error"
                if self.unrecoverable
                else "error"
            )
            return PrinterOffline(f"printer {what} ({detail})", printer=printer)
        if self.offline:
            return PrinterOffline(f"printer offline ({detail})", printer=printer)
        return None


def parse_status(printer: int, offline_cause: int, error_cause: int, paper: int) -> PrinterStatus:
    """Decode the four DLE EOT answers (n = 1, 2, 3, 4)."""
    return PrinterStatus(
        offline=bool(printer & 0x08),
        cover_open=bool(offline_cause & 0x04),
        paper_end=bool(offline_cause & 0x20) or bool(paper & 0x60),
        paper_near_end=bool(paper & 0x0C),
        error=bool(offline_cause & 0x40),
        cutter_error=bool(error_cause & 0x08),
        unrecoverable=bool(error_cause & 0x20),
        raw=bytes((printer, offline_cause, error_cause, paper)),
    )


class StatusDevice(Protocol):
    """The two methods of a python-escpos printer that a status query needs."""

    def _raw(self, msg: bytes) -> None: ...
    def _read(self) -> bytes: ...


def query_status(device: StatusDevice, printer: str = "") -> PrinterStatus:
    """Ask DLE EOT 1–4 one at a time and parse the answers.

    Raises :class:`PrinterTimeout` when the device does not answer (the transport's own timeout
    fires) and :class:`PrinterError` when it answers something that is not a status byte.
    """
    answers: list[int] = []
    for n in QUERIES:
        device._raw(DLE_EOT + bytes((n,)))
        try:
            reply = device._read()
        except TimeoutError as e:  # socket.timeout is TimeoutError since Python 3.10
            raise PrinterTimeout(f"no answer to DLE EOT {n}", printer=printer) from e
        if not reply:
            # A TCP peer that closed the connection reads b""; so do serial and USB after their timeout.
            raise PrinterOffline(
                f"no answer to DLE EOT {n}: connection closed or read timed out", printer=printer
            )
        if not is_status_byte(reply[0]):
            raise PrinterError(
                f"not an ESC/POS status answer to DLE EOT {n}: {reply[:8].hex(' ')}", printer=printer
            )
        answers.append(reply[0])
    return parse_status(*answers)


def chance_queries(job: bytes) -> int:
    """How many DLE EOT 1–4 sequences the job itself contains (by chance, inside a raster).

    A printer answers them as it reads the job, before it reaches our closing query, so the
    closing check must skip that many answer bytes. Scanned like the printer's command parser:
    a sequence found is consumed whole before looking for the next.
    """
    count, at = 0, 0
    while (at := job.find(DLE_EOT, at)) >= 0 and at + 2 < len(job):
        if job[at + 2] in QUERIES:
            count += 1
            at += 3
        else:
            at += 2
    return count


def closing_status(device: StatusDevice, printer: str = "", job: bytes = b"") -> PrinterStatus:
    """After the job: ask DLE EOT 1–4 again and return what the printer says *now*.

    Real-time commands are answered when the printer reads them from its input, in stream order,
    so these answers prove the whole job reached the printer — a TCP send that completed only
    proves it reached the socket buffers — and they tell whether it went offline, ran out of
    paper or had its cover opened while printing (a job that did not complete is a failure: the
    caller raises :meth:`PrinterStatus.fault`). The answers to DLE EOT sequences inside the job's
    own bytes (:func:`chance_queries`) come first and are skipped.
    """
    device._raw(b"".join(DLE_EOT + bytes((n,)) for n in QUERIES))
    want = chance_queries(job) + len(QUERIES)
    got = bytearray()
    while len(got) < want:
        try:
            reply = device._read()
        except TimeoutError as e:
            raise PrinterTimeout("job sent but the printer did not read it to the end", printer=printer) from e
        if not reply:
            raise PrinterOffline("connection closed before the job was read to the end", printer=printer)
        got += reply
    answers = got[want - len(QUERIES) : want]
    if not all(is_status_byte(b) for b in answers):
        raise PrinterError(f"not an ESC/POS status answer after the job: {bytes(answers).hex(' ')}",
                           printer=printer)
    return parse_status(*answers)
