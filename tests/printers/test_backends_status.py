"""Printer URLs, DLE EOT status parsing, printer config, the deadline, and the CLI."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest

from printers.backends import parse_printer_url
from printers.errors import CoverOpen, PaperOut, PrinterConfigError, PrinterOffline, PrinterTimeout
from printers.printing import PrinterConfig, print_ticket, run_with_deadline
from printers.sample import sample_ticket
from printers.status import PrinterStatus, is_status_byte, parse_status, query_status


# ---------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    ("url", "kind", "fields"),
    [
        ("network://10.0.0.5:9100", "network", {"host": "10.0.0.5", "port": 9100}),
        ("network://printer-1.lobby", "network", {"host": "printer-1.lobby", "port": 9100}),
        ("tcp://10.0.0.5:9101", "network", {"host": "10.0.0.5", "port": 9101}),
        ("usb://04b8:0202", "usb", {"vendor": 0x04B8, "product": 0x0202}),
        ("serial:/dev/ttyUSB0?baudrate=115200", "serial", {"path": "/dev/ttyUSB0", "baudrate": 115200}),
        ("serial:///dev/ttyS0", "serial", {"path": "/dev/ttyS0", "baudrate": 9600}),
        ("file:/dev/usb/lp0", "file", {"path": "/dev/usb/lp0"}),
        ("dummy:", "dummy", {}),
    ],
)
def test_printer_urls_parse(url, kind, fields):
    target = parse_printer_url(url)
    assert target.kind == kind
    for name, value in fields.items():
        assert getattr(target, name) == value
    assert target.can_read_status is (kind in ("network", "usb", "serial"))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("lpt://1", "scheme"),
        ("network://:9100", "no host"),
        ("network://10.0.0.5:abc", "not a number"),
        ("network://10.0.0.5:70000", "out of range"),
        ("usb://epson", "VENDOR:PRODUCT"),
        ("serial:/dev/ttyS0?baud=9600", "unknown option"),
        ("serial:/dev/ttyS0?baudrate=fast", "not a number"),
        ("file:", "no device path"),
    ],
)
def test_bad_urls_are_config_errors_that_say_what_is_wrong(url, says):
    with pytest.raises(PrinterConfigError, match=says) as e:
        parse_printer_url(url)
    assert e.value.code == "config"


def test_usb_without_pyusb_is_a_clear_config_error():
    import importlib.util

    if importlib.util.find_spec("usb") is not None:
        pytest.skip("pyusb is installed here")
    with pytest.raises(PrinterConfigError, match="pyusb"):
        print_ticket("usb://04b8:0202", sample_ticket("en"), timeout=1)


def test_missing_device_file_is_offline(tmp_path):
    with pytest.raises(PrinterOffline) as e:
        print_ticket(f"file:{tmp_path}/no/such/dir/lp0", sample_ticket("en"), timeout=1)
    assert e.value.code == "offline" and "lp0" in e.value.printer


# ---------------------------------------------------------------- status bytes
def test_status_byte_pattern():
    assert is_status_byte(0x12) and is_status_byte(0x1A) and is_status_byte(0x72)
    assert not is_status_byte(ord("H")) and not is_status_byte(0x00) and not is_status_byte(0xFF)


@pytest.mark.parametrize(
    ("answers", "fault"),
    [
        ((0x12, 0x12, 0x12, 0x12), None),
        ((0x12, 0x12, 0x12, 0x1E), None),  # near end only: still prints
        ((0x1A, 0x32, 0x12, 0x72), PaperOut),
        ((0x1A, 0x16, 0x12, 0x12), CoverOpen),
        ((0x1A, 0x36, 0x12, 0x72), PaperOut),  # roll change: paper end wins over cover open
        ((0x1A, 0x52, 0x1A, 0x12), PrinterOffline),  # autocutter error
        ((0x1A, 0x12, 0x12, 0x12), PrinterOffline),
    ],
)
def test_status_answers_map_to_faults(answers, fault):
    status = parse_status(*answers)
    got = status.fault("network://x")
    assert (type(got) if got else None) is fault
    if got:
        assert got.printer == "network://x" and bytes(answers).hex(" ") in got.detail


def test_near_end_is_reported_without_a_fault():
    s = parse_status(0x12, 0x12, 0x12, 0x1E)
    assert s == PrinterStatus(paper_near_end=True, raw=bytes((0x12, 0x12, 0x12, 0x1E)))


class _Device:
    def __init__(self, replies):
        self.replies = list(replies)
        self.sent = b""

    def _raw(self, msg: bytes) -> None:
        self.sent += msg

    def _read(self) -> bytes:
        r = self.replies.pop(0)
        if isinstance(r, BaseException):
            raise r
        return r


def test_query_status_asks_one_at_a_time_and_types_its_failures():
    dev = _Device([b"\x12", b"\x12", b"\x12", b"\x12"])
    assert query_status(dev).fault() is None
    assert dev.sent == b"\x10\x04\x01\x10\x04\x02\x10\x04\x03\x10\x04\x04"
    with pytest.raises(PrinterTimeout):
        query_status(_Device([TimeoutError("timed out")]))
    with pytest.raises(PrinterOffline):
        query_status(_Device([b""]))


# ---------------------------------------------------------------- config and deadline
def test_printer_config_validates_each_field():
    cfg = PrinterConfig.from_mapping({"url": "network://10.0.0.5:9100", "renderer": "kanji", "width": 512})
    assert (cfg.renderer, cfg.width, cfg.timeout) == ("kanji", 512, 5.0)
    for bad, field in [
        ({"renderer": "pdf"}, "renderer"),
        ({"width": 600}, "width"),
        ({"timeout": 0}, "timeout"),
        ({"colour": "red"}, "unknown field"),
    ]:
        with pytest.raises(PrinterConfigError, match=field):
            PrinterConfig.from_mapping({"url": "dummy:", **bad}, source="kiosk.printer")
    with pytest.raises(PrinterConfigError, match="kiosk.printer.url"):
        PrinterConfig.from_mapping({}, source="kiosk.printer")


def test_deadline_returns_on_time_and_unblocks_the_stuck_worker():
    release = threading.Event()
    started = time.perf_counter()
    with pytest.raises(PrinterTimeout):
        run_with_deadline(lambda: release.wait(5), 0.2, release.set, "test")
    assert time.perf_counter() - started < 0.5
    assert release.is_set()  # on_timeout ran: the worker was told to give up


def test_deadline_passes_results_and_errors_through():
    assert run_with_deadline(lambda: 42, 1, lambda: None, "t") == 42
    with pytest.raises(CoverOpen):
        run_with_deadline(lambda: (_ for _ in ()).throw(CoverOpen("x")), 1, lambda: None, "t")


# ---------------------------------------------------------------- CLI
def test_cli_top_level_imports_only_argparse():
    cli = Path(__file__).resolve().parents[2] / "printers" / "cli.py"
    tree = ast.parse(cli.read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {a.name for n in top for a in n.names} | {n.module for n in top if isinstance(n, ast.ImportFrom)}
    assert names <= {"argparse", "__future__", "annotations"}


def test_print_test_png_writes_a_readable_ticket(tmp_path, capsys):
    from pyzbar.pyzbar import decode

    import run
    from printers.sample import SAMPLE_URL

    out = tmp_path / "ticket.png"
    assert run.main(["print-test", "--png", str(out), "--lang", "en", "--width", "512"]) == 0
    from PIL import Image

    img = Image.open(out)
    assert img.width == 512
    assert [d.data.decode() for d in decode(img.convert("L"))] == [SAMPLE_URL]
    assert "wrote" in capsys.readouterr().out


def test_print_test_to_dummy_and_a_refused_printer(capsys):
    import socket

    import run

    assert run.main(["print-test", "--printer", "dummy:", "--renderer", "kanji"]) == 0
    assert "bytes to dummy:" in capsys.readouterr().out
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run.main(["print-test", "--printer", f"network://127.0.0.1:{port}", "--lang", "pt"]) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "Não foi possível conectar" in err


def test_print_test_png_with_the_kanji_renderer_is_refused_with_a_clear_message(tmp_path, capsys):
    import run

    out = tmp_path / "kanji.png"
    assert run.main(["print-test", "--png", str(out), "--renderer", "kanji"]) == 2
    err = capsys.readouterr().err
    assert "image renderer only" in err and "--renderer kanji" in err
    assert not out.exists()  # never the image renderer's picture under the kanji name
