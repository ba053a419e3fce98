"""Printer connections from a URL, on python-escpos's device classes, with typed errors.

=============================================  =====================================================
``network://10.0.0.5:9100``                    raw TCP (Epson "port 9100"); ``tcp://`` also accepted
``usb://04b8:0202?in_ep=0x82&out_ep=0x01``     vendor:product in hex; needs pyusb (not installed here)
``serial:/dev/ttyUSB0?baudrate=115200``        also bytesize, parity (N/E/O), stopbits, xonxoff, dsrdtr;
                                               needs pyserial
``file:/dev/usb/lp0``                          a device file (Linux usblp) or any file: writes only
``dummy:``                                     keeps the bytes in memory (tests, ``print-test``)
=============================================  =====================================================

Parsing is pure (:func:`parse_printer_url`); :func:`open_device` and :func:`write` are the thin I/O
part and translate library and OS exceptions into :mod:`printers.errors` classes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from printers.errors import PrinterConfigError, PrinterError, PrinterOffline, PrinterRefused, PrinterTimeout

Kind = Literal["network", "usb", "serial", "file", "dummy"]
SCHEMES: dict[str, Kind] = {
    "network": "network",
    "tcp": "network",
    "usb": "usb",
    "serial": "serial",
    "file": "file",
    "dummy": "dummy",
}
DEFAULT_PORT = 9100
SERIAL_OPTIONS = {
    "baudrate": int,
    "bytesize": int,
    "stopbits": int,
    "parity": str,
    "xonxoff": str,
    "dsrdtr": str,
}
USB_OPTIONS = {"in_ep": int, "out_ep": int}


@dataclass(frozen=True, slots=True)
class PrinterTarget:
    """Where a printer is, as parsed from its URL."""

    kind: Kind
    url: str
    host: str = ""
    port: int = DEFAULT_PORT
    vendor: int = 0
    product: int = 0
    path: str = ""
    options: tuple[tuple[str, str], ...] = ()

    @property
    def can_read_status(self) -> bool:
        """Whether DLE EOT answers can come back (files and the dummy are write-only)."""
        return self.kind in ("network", "usb", "serial")

    def option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.options).get(name, default)

    @property
    def baudrate(self) -> int:
        return int(self.option("baudrate") or 9600)


def parse_printer_url(url: str) -> PrinterTarget:
    """Parse a printer URL, or raise :class:`PrinterConfigError` naming what is wrong."""
    parts = urlsplit(url.strip())
    kind = SCHEMES.get(parts.scheme.lower())
    if kind is None:
        raise PrinterConfigError(f"printer URL {url!r}: scheme must be one of {', '.join(sorted(SCHEMES))}")
    options = tuple(parse_qsl(parts.query))
    allowed = SERIAL_OPTIONS if kind == "serial" else USB_OPTIONS if kind == "usb" else {}
    for name, value in options:
        if name not in allowed:
            raise PrinterConfigError(f"printer URL {url!r}: unknown option {name!r} for {kind}")
        if allowed[name] is int:
            try:
                int(value, 0)
            except ValueError:
                raise PrinterConfigError(
                    f"printer URL {url!r}: option {name}={value!r} is not a number"
                ) from None
    if kind == "network":
        host, _, port = parts.netloc.rpartition(":") if ":" in parts.netloc else (parts.netloc, "", "")
        if not host:
            raise PrinterConfigError(f"printer URL {url!r}: no host (network://HOST:PORT)")
        try:
            port_number = int(port) if port else DEFAULT_PORT
        except ValueError:
            raise PrinterConfigError(f"printer URL {url!r}: port {port!r} is not a number") from None
        if not 0 < port_number < 65536:
            raise PrinterConfigError(f"printer URL {url!r}: port {port_number} out of range")
        return PrinterTarget(kind, url, host=host.strip("[]"), port=port_number)
    if kind == "usb":
        ids = parts.netloc or parts.path.lstrip("/")
        try:
            vendor, product = (int(x, 16) for x in ids.split(":"))
        except ValueError:
            raise PrinterConfigError(f"printer URL {url!r}: expected usb://VENDOR:PRODUCT in hex") from None
        return PrinterTarget(kind, url, vendor=vendor, product=product, options=options)
    if kind in ("serial", "file"):
        path = parts.netloc + parts.path  # "serial:/dev/ttyS0" and "serial:///dev/ttyS0" alike
        if not path:
            raise PrinterConfigError(f"printer URL {url!r}: no device path")
        return PrinterTarget(kind, url, path=path, options=options)
    return PrinterTarget("dummy", url)


def _need(module: str, package: str, target: PrinterTarget) -> None:
    if importlib.util.find_spec(module) is None:
        raise PrinterConfigError(
            f"{target.kind} printers need the Python package {package} (pip install {package})",
            printer=target.url,
        )


def open_device(target: PrinterTarget, timeout: float) -> Any:
    """Open the printer connection: a python-escpos printer object with ``_raw``/``_read``/``close``.

    ``timeout`` bounds each blocking operation (connect, send, read) on the device itself.
    """
    from escpos.exceptions import DeviceNotFoundError
    from escpos.printer import Dummy, File, Network

    if target.kind == "dummy":
        return Dummy()
    if target.kind == "network":
        device: Any = Network(host=target.host, port=target.port, timeout=timeout)
    elif target.kind == "file":
        device = File(devfile=target.path)
    elif target.kind == "usb":
        _need("usb", "pyusb", target)
        from escpos.printer import Usb

        eps = {k: int(v, 0) for k, v in target.options}
        # pyusb's timeout is in milliseconds.
        device = Usb(target.vendor, target.product, timeout=max(1, int(timeout * 1000)), **eps)
    else:
        _need("serial", "pyserial", target)
        from escpos.printer import Serial

        opts: dict[str, Any] = {}
        for k, v in target.options:
            if SERIAL_OPTIONS[k] is int:
                opts[k] = int(v, 0)
            elif k == "parity":
                opts[k] = v.upper()[:1]
            else:
                opts[k] = v.lower() in ("1", "true", "yes", "on")
        device = Serial(devfile=target.path, timeout=timeout, **opts)
    try:
        device.open()
    except DeviceNotFoundError as e:
        raise translate(e.__context__ or e, target, "open") from e
    except OSError as e:
        raise translate(e, target, "open") from e
    if target.kind == "network":
        # The closing 3-byte DLE EOT follows a large write: with Nagle's algorithm and the peer's
        # delayed ACK it would wait ~40 ms for nothing.
        device.device.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return device


def translate(exc: BaseException, target: PrinterTarget, doing: str) -> PrinterError:
    """The typed error for an exception raised while ``doing`` something with the device."""
    if isinstance(exc, PrinterError):
        return exc
    where = target.url
    detail = f"{doing}: {type(exc).__name__}: {exc}".strip()
    if isinstance(exc, ConnectionRefusedError):
        return PrinterRefused(detail, printer=where)
    if (
        isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower()
    ):  # incl. usb.core.USBTimeoutError
        return PrinterTimeout(detail, printer=where)
    return PrinterOffline(detail, printer=where)


def write(device: Any, data: bytes, target: PrinterTarget, chunk: int = 4096) -> None:
    """Send the job in chunks (a slow serial line or a full TCP window times out per chunk)."""
    try:
        for i in range(0, len(data), chunk):
            device._raw(data[i : i + chunk])
    except Exception as e:  # OSError, serial/usb library errors: all become typed printer errors
        raise translate(e, target, "write") from e


def close(device: Any) -> None:
    """Close without raising: used on the error path and from the deadline watchdog."""
    # Closing a broken connection may fail in many ways, and there is nothing left to do then.
    with contextlib.suppress(Exception):
        device.close()
