"""Fixtures for the card reader tests: a real pcscd with the vpcd driver, and virtual cards.

``make test`` runs as root on a machine where nothing is running yet, so the ``pcscd`` fixture
starts the daemon itself (``pcscd --foreground``, own process group, killed at the end) and waits
— by polling PC/SC, not by sleeping — until the vpcd reader is listed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

VPCD_READER = "Virtual PCD 00 00"  # the vpcd slot listening on TCP 35963
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
PID_FILE = Path("/run/pcscd/pcscd.pid")


def _pcsc_readers() -> list[str] | None:
    """Readers pcscd lists now, or ``None`` if the PC/SC service does not answer."""
    from smartcard import scard

    rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if rv != scard.SCARD_S_SUCCESS:
        return None
    try:
        rv, readers = scard.SCardListReaders(ctx, [])
        return list(readers) if rv == scard.SCARD_S_SUCCESS else []
    finally:
        scard.SCardReleaseContext(ctx)


def _running_pcscd() -> int | None:
    """Pid of a pcscd that is already running (from its pid file), if any."""
    try:
        pid = int(PID_FILE.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def wait_reader_state(present: bool, timeout: float = 5.0, reader: str = VPCD_READER) -> None:
    """Block until pcscd reports a card present (or absent) in ``reader``: event-driven, no sleep."""
    from smartcard import scard

    rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert rv == scard.SCARD_S_SUCCESS, "PC/SC context"
    try:
        state = scard.SCARD_STATE_UNAWARE
        deadline = time.monotonic() + timeout
        while True:
            ms = max(0, int((deadline - time.monotonic()) * 1000))
            rv, new = scard.SCardGetStatusChange(ctx, ms, [(reader, state)])
            if rv == scard.SCARD_S_SUCCESS:
                _, event, _ = new[0]
                if bool(event & scard.SCARD_STATE_PRESENT) == present:
                    return
                state = event & ~scard.SCARD_STATE_CHANGED
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{reader}: card {'present' if present else 'absent'} not seen in {timeout} s")
    finally:
        scard.SCardReleaseContext(ctx)


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running pcscd with the vpcd reader; yields the reader's name."""
    binary = shutil.which("pcscd") or ("/usr/sbin/pcscd" if os.path.exists("/usr/sbin/pcscd") else None)
    if binary is None:
        pytest.skip("pcscd is not installed (Debian: apt-get install pcscd vsmartcard-vpcd; `make setup-test`)")
    if not VPCD_DRIVER.exists() or not VPCD_CONF.exists():
        pytest.skip("vsmartcard-vpcd is not installed (Debian: apt-get install vsmartcard-vpcd)")
    try:
        import smartcard  # noqa: F401
    except ImportError:
        pytest.fail("pyscard is not installed in the venv (needs Debian swig and libpcsclite-dev)")

    if _running_pcscd() is not None:
        # Someone else's daemon (a developer's, or the system's): use it if it has the reader.
        readers = _pcsc_readers() or []
        if VPCD_READER not in readers:
            pytest.fail(f"a pcscd is already running without the {VPCD_READER!r} reader; stop it first")
        yield VPCD_READER
        return

    if os.geteuid() != 0:
        pytest.fail("starting pcscd needs root (it writes /run/pcscd); run the device tests as root")

    log_path = tmp_path_factory.mktemp("pcscd") / "pcscd.log"
    with log_path.open("wb") as log_file:
        # Default log level on purpose: `-a`/`-d` would write APDUs, PIN included, to the log.
        proc = subprocess.Popen(
            [binary, "--foreground"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: teardown kills exactly this daemon
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"pcscd exited with {proc.returncode}: {log_path.read_text(errors='replace')}")
            readers = _pcsc_readers()
            if readers and VPCD_READER in readers:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"pcscd did not list {VPCD_READER!r} within 15 s (readers: {readers})")
            time.sleep(0.05)  # polling the daemon's socket; there is no event to wait on yet
        yield VPCD_READER
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def insert_card(pcscd: str) -> Iterator[Callable[..., object]]:
    """Factory: ``insert_card(**options)`` puts a :class:`VirtualMyNumberCard` into the reader.

    At the end of the test every card is removed and the test waits until pcscd has seen the
    reader empty, so the next test starts from a clean reader. It also checks that no test ever
    made the card select EF 0001 (the My Number).
    """
    from tests.kiosk.virtual_card import VirtualMyNumberCard, wait_for_empty_poll

    cards: list[VirtualMyNumberCard] = []

    def insert(wait: bool = True, **options: object) -> VirtualMyNumberCard:
        card = VirtualMyNumberCard(**options)  # type: ignore[arg-type]
        card.insert()
        cards.append(card)
        if wait:
            wait_reader_state(True)
        return card

    yield insert
    for card in cards:
        card.remove()
    if cards:
        wait_for_empty_poll()
    wait_reader_state(False)
    for card in cards:
        assert card.error is None, f"virtual card failed: {card.error!r}"
        assert not any(c.apdu.startswith(bytes.fromhex("00A4020C020001")) for c in card.commands), (
            "EF 0001 (the My Number) was selected"
        )
