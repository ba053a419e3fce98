"""Printer faults against real sockets on 127.0.0.1: each gives its typed error within the timeout."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from printers.backends import parse_printer_url
from printers.errors import CoverOpen, PaperOut, PrinterError, PrinterOffline, PrinterRefused, PrinterTimeout
from printers.printing import print_ticket, render_ticket_bytes, send_job
from printers.sample import sample_ticket
from tests.printers import fake_printer as fp
from tests.printers.escpos_reader import parse

TIMEOUT = 0.6


@pytest.fixture(scope="module")
def job() -> bytes:
    """The rendered job, so that timings measure the device I/O that the deadline bounds."""
    return render_ticket_bytes(sample_ticket("ja"), "image", 576)


def _send(url: str, data: bytes) -> None:
    send_job(parse_printer_url(url), data, TIMEOUT)


def _closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _elapsed(fn) -> tuple[BaseException | None, float]:
    started = time.perf_counter()
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the test inspects it
        return e, time.perf_counter() - started
    return None, time.perf_counter() - started


def test_refused_port_raises_printer_refused_quickly(job):
    url = f"network://127.0.0.1:{_closed_port()}"
    err, took = _elapsed(lambda: _send(url, job))
    assert isinstance(err, PrinterRefused), err
    assert err.code == "refused" and err.printer == url
    assert took < TIMEOUT / 2
    with pytest.raises(PrinterRefused):
        print_ticket(url, sample_ticket("en"), timeout=TIMEOUT)


def test_server_that_accepts_and_never_answers_times_out_within_the_timeout(job):
    printer = fp.FakePrinter(status=None)
    try:
        err, took = _elapsed(lambda: _send(printer.url, job))
        assert isinstance(err, PrinterTimeout), err
        assert err.code == "timeout"
        assert TIMEOUT * 0.8 <= took < TIMEOUT + 0.4
        # It did connect and ask for status, and sent no ticket to a printer that never answered.
        assert printer.received.startswith(b"\x10\x04\x01")
        assert len(printer.received) == 3
    finally:
        printer.close()


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (fp.PAPER_OUT, PaperOut, "paper_out"),
        (fp.COVER_OPEN, CoverOpen, "cover_open"),
        (fp.OFFLINE, PrinterOffline, "offline"),
    ],
)
def test_fault_status_from_a_fake_printer_stops_the_job(status, error, code, job):
    printer = fp.FakePrinter(status=dict(status))
    try:
        err, took = _elapsed(lambda: _send(printer.url, job))
        assert type(err) is error, err
        assert err.code == code and err.message_key == f"error.{code}"
        assert took < TIMEOUT
        assert printer.done.wait(1)
        printer.done.clear()
        with pytest.raises(error):
            print_ticket(printer.url, sample_ticket("en"), timeout=TIMEOUT)
        assert printer.done.wait(1)
        # Only the four status queries went out: no half ticket is printed on a printer in fault.
        assert bytes(printer.received) == 2 * b"\x10\x04\x01\x10\x04\x02\x10\x04\x03\x10\x04\x04"
    finally:
        printer.close()


def test_healthy_fake_printer_receives_exactly_the_rendered_job(fake_printer):
    ticket = sample_ticket("ja")
    result = print_ticket(fake_printer.url, ticket, renderer="kanji", timeout=2.0)
    assert result.status is not None and result.status.fault() is None
    assert fake_printer.done.wait(2)
    received = bytes(fake_printer.received)
    queries = b"".join(b"\x10\x04" + bytes((n,)) for n in (1, 2, 3, 4))
    # Status first, then the job, then the status again: the printer read the job to its end
    # and is still online with paper and the cover shut.
    assert received == queries + render_ticket_bytes(ticket, "kanji", 576) + queries
    assert parse(received).status_queries == [1, 2, 3, 4, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("later", "error", "code"),
    [
        (fp.OFFLINE, PrinterOffline, "offline"),
        (fp.PAPER_OUT, PaperOut, "paper_out"),
        (fp.COVER_OPEN, CoverOpen, "cover_open"),
    ],
)
def test_printer_that_faults_mid_job_but_keeps_reading_is_a_failure(later, error, code, job):
    # It answered "ready" before the job, read every byte, and answers the closing query: the
    # old liveness check called that a success although the ticket did not come out whole.
    printer = fp.FakePrinter(status=dict(fp.NORMAL), change_after=20_000, status_later=dict(later))
    try:
        err, took = _elapsed(lambda: _send(printer.url, job))
        assert type(err) is error, err
        assert err.code == code and "after the job" in err.detail
        assert took < TIMEOUT
        assert printer.done.wait(1)
        assert len(printer.received) == len(job) + 24  # the whole job was read
    finally:
        printer.close()


def test_closing_check_skips_answers_to_status_queries_inside_the_job():
    from printers.status import chance_queries

    # A raster whose bytes happen to hold DLE EOT 3 and DLE EOT 1: the printer answers them first.
    job = b"\x1b@" + b"\x00\x10\x04\x03\xff\x10\x04\x01\x10\x04\x09" + b"\n"
    assert chance_queries(job) == 2
    # The cover is opened after the job's own bytes (12 status-query bytes + the job): the chance
    # queries get "ready", the closing ones "cover open". Reading the first four answers would
    # mix them and miss the fault.
    printer = fp.FakePrinter(status=dict(fp.NORMAL), change_after=12 + len(job),
                             status_later=dict(fp.COVER_OPEN))
    try:
        err, _ = _elapsed(lambda: _send(printer.url, job))
        assert type(err) is CoverOpen, err  # the last four answers were read, not the chance ones
    finally:
        printer.close()
    healthy = fp.FakePrinter(status=dict(fp.NORMAL))
    try:
        status, _ = send_job(parse_printer_url(healthy.url), job, TIMEOUT)
        assert status is not None and status.fault() is None
    finally:
        healthy.close()


def test_printer_that_stops_reading_mid_job_times_out_although_the_send_completed(job):
    # 120 KB fit in loopback socket buffers: without the closing DLE EOT this would "succeed".
    printer = fp.FakePrinter(status=dict(fp.NORMAL), stop_reading_after=5000)
    try:
        err, took = _elapsed(lambda: _send(printer.url, job))
        assert isinstance(err, PrinterTimeout), err
        assert took < TIMEOUT + 0.4
        assert len(printer.received) == 5000
    finally:
        printer.close()


def test_paper_near_end_prints_and_reports_the_warning():
    printer = fp.FakePrinter(status=dict(fp.NEAR_END))
    try:
        result = print_ticket(printer.url, sample_ticket("en"), timeout=2.0)
        assert result.status is not None and result.status.paper_near_end
        assert result.status.fault() is None
    finally:
        printer.close()


def test_a_peer_that_is_not_a_printer_is_an_error_not_a_hang():
    # A web server on the printer's address answers "HTTP/1.1 …" to DLE EOT.
    server = socket.create_server(("127.0.0.1", 0))
    url = f"network://127.0.0.1:{server.getsockname()[1]}"

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(16)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            time.sleep(0.3)

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        err, took = _elapsed(lambda: _send(url, b"\x1b@"))
        assert type(err) is PrinterError and "not an ESC/POS status" in err.detail
        assert took < TIMEOUT
    finally:
        t.join(2)
        server.close()


def test_every_error_has_its_message_in_every_language():
    from queue_server.core.i18n import LANGUAGES

    for cls in (PrinterError, PrinterOffline, PaperOut, CoverOpen, PrinterTimeout, PrinterRefused):
        for lang in LANGUAGES:
            text = cls("x").message(lang)
            assert text and "{" not in text
    assert PaperOut("x").message("ja") != CoverOpen("x").message("ja")
