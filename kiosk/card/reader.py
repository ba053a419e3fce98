"""The PC/SC shell: find a reader and a card, then talk to the card-info input support AP.

Everything here is I/O through pyscard's low-level ``smartcard.scard`` module (any PC/SC reader,
contact or contactless). What the bytes mean lives in the pure modules :mod:`kiosk.card.apdu`
and :mod:`kiosk.card.tlv`.

Typical kiosk use, from a worker thread (every call blocks)::

    with CardSession(config) as session:   # kiosk thread may call session.cancel()
        session.wait_for_card()            # NoReader / NoCard / Cancelled
        tries = session.tries_left()       # PinLocked; warn if 1
        session.verify_pin(pin, confirm_last_try=confirmed)   # wipes ``pin``; WrongPin / OneTryLeft
        record = session.read_record()     # CardRemoved / MalformedData
    # leaving the block resets the card, so its PIN state is gone for the next person

Privacy: the PIN is accepted only as a ``bytearray`` and wiped (all zero) before
:meth:`CardSession.verify_pin` returns or raises; logs and the per-APDU timings carry command
headers and status words, never a data field or a response's content.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from smartcard import scard

from kiosk.card import apdu as cmd
from kiosk.card.errors import (
    BadPinFormat,
    Cancelled,
    CardError,
    CardRemoved,
    MalformedData,
    NoCard,
    NoReader,
    NotMyNumberCard,
    OneTryLeft,
    PinLocked,
    ReaderTimeout,
    WrongPin,
)
from kiosk.card.record import CardRecord
from kiosk.card.tlv import header_size, parse_basic_four

log = logging.getLogger(__name__)

T = TypeVar("T")

_PNP = "\\\\?PnP?\\Notification"

# PC/SC results that mean "the card is gone (or was reset under us)": start again with the card.
_CARD_GONE = {
    scard.SCARD_W_REMOVED_CARD,
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_W_RESET_CARD,
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_E_NOT_TRANSACTED,
    scard.SCARD_F_COMM_ERROR,
    scard.SCARD_W_UNRESPONSIVE_CARD,
}
# PC/SC results that mean "no reader / no PC/SC service".
_READER_GONE = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_E_NO_READERS_AVAILABLE,
    scard.SCARD_E_READER_UNAVAILABLE,
    scard.SCARD_E_UNKNOWN_READER,
}


@dataclass(frozen=True)
class ReaderConfig:
    """Timeouts (seconds) and reader choice for a :class:`CardSession`."""

    reader_timeout: float = 10.0  # wait for the PC/SC service and a reader
    card_timeout: float = 60.0  # wait for the citizen to present a card
    command_timeout: float = 5.0  # one APDU (a real card answers in milliseconds)
    #: Use only readers whose name contains this text (``None``: any reader).
    reader_name: str | None = None
    #: Le of each READ BINARY; 256 reads a usual basic-four file in one command.
    chunk_size: int = cmd.MAX_SHORT_LE


def _pcsc_text(code: int) -> str:
    """Readable name of a PC/SC result (for details and logs; contains no card data)."""
    try:
        return f"{scard.SCardGetErrorMessage(code).strip()} ({code & 0xFFFFFFFF:#010x})"
    except Exception:  # pragma: no cover - depends on the PC/SC library build
        return f"{code & 0xFFFFFFFF:#010x}"


def _pcsc_error(code: int, during: str) -> CardError:
    """Map a failed PC/SC call to the citizen-level error."""
    text = f"{during}: {_pcsc_text(code)}"
    if code in _CARD_GONE:
        return CardRemoved(text)
    if code in _READER_GONE:
        return NoReader(text)
    if code == scard.SCARD_E_TIMEOUT:
        return ReaderTimeout(text)
    if code == scard.SCARD_E_SHARING_VIOLATION:
        # Another program holds the card; from the citizen's side the reader "does not answer".
        return ReaderTimeout(f"{text} (reader in use by another program)")
    if code == scard.SCARD_E_CANCELLED:
        return Cancelled(text)
    return ReaderTimeout(f"{text} (unexpected PC/SC error)")


class _Worker:
    """One daemon thread per session that makes every PC/SC call.

    Why: a reader or card that stops answering blocks ``SCardTransmit`` forever (pcscd has no
    timeout of its own). Waiting on a worker with a deadline lets the kiosk report
    :class:`ReaderTimeout` and move on; the stuck call finishes whenever the reader does. The
    thread is a daemon so a dead reader never keeps the kiosk process from exiting.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], _Job] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="card-pcsc", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            fn, job = item
            try:
                job.result = fn()
            except BaseException as e:  # handed back to the caller's thread
                job.error = e
            job.done.set()

    def call(self, fn: Callable[[], T], timeout: float | None) -> T:
        job = _Job()
        self._jobs.put((fn, job))
        if not job.done.wait(timeout):
            raise ReaderTimeout(f"no answer within {timeout:.1f} s")
        if job.error is not None:
            raise job.error
        return job.result

    def submit(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn`` without waiting (used to clean up behind a stuck call)."""
        self._jobs.put((fn, _Job()))

    def stop(self) -> None:
        self._jobs.put(None)


class _Job:
    __slots__ = ("done", "result", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class CardSession:
    """One kiosk card session: a PC/SC context, at most one connected card, and its AP.

    Create it, call :meth:`wait_for_card`, then :meth:`tries_left`, :meth:`verify_pin`,
    :meth:`read_record`; always :meth:`close` (or use ``with``). Not thread-safe except
    :meth:`cancel`, which another thread may call to end a wait.
    """

    def __init__(self, config: ReaderConfig | None = None) -> None:
        self.config = config or ReaderConfig()
        self.reader: str | None = None
        #: ``(command header, seconds)`` of every APDU sent, for benchmarks and diagnostics.
        self.apdu_times: list[tuple[str, float]] = []
        self._worker = _Worker()
        self._context: int | None = None
        self._card: int | None = None
        self._protocol = 0
        self._verified = False
        self._broken = False  # a call timed out: the worker may be stuck, do not queue more
        self._cancelled = threading.Event()
        self._closed = threading.Event()
        self._closing = False

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> CardSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Reset and release the card, release the context. Never blocks on a stuck reader.

        Idempotent: a second call does nothing.
        """
        if self._closing:
            return
        self._closing = True
        card, context = self._card, self._context
        self._card = self._context = None
        self._verified = False

        def cleanup() -> None:
            if card is not None:
                # Reset, not leave: the card forgets the verified PIN, so nothing that connects
                # after us can read it without the PIN.
                scard.SCardDisconnect(card, scard.SCARD_RESET_CARD)
            if context is not None:
                scard.SCardReleaseContext(context)

        if self._broken:
            self._worker.submit(cleanup)
            self._worker.submit(self._closed.set)
        else:
            try:
                self._worker.call(cleanup, self.config.command_timeout)
            except CardError:
                log.warning("card: closing the session timed out")
            else:
                self._closed.set()
        self._worker.stop()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """After :meth:`close`: wait until the card and context are really released.

        Normally immediate; after a :class:`ReaderTimeout` the release waits behind the stuck
        command, and the kiosk should not open a new session on that reader before it is done.
        """
        return self._closed.wait(timeout)

    def cancel(self) -> None:
        """End a pending :meth:`wait_for_card` with :class:`Cancelled` (call from another thread)."""
        self._cancelled.set()
        context = self._context
        if context is not None:
            scard.SCardCancel(context)

    # -- waiting ------------------------------------------------------------------------------

    def wait_for_card(self) -> str:
        """Wait for a reader, then for a card in it; connect and select the AP.

        Returns the reader's name. Raises :class:`NoReader` (no service or reader within
        ``reader_timeout``), :class:`NoCard` (no card within ``card_timeout``),
        :class:`Cancelled`, :class:`NotMyNumberCard`, :class:`CardRemoved`.
        """
        self._establish()
        readers = self._wait_for_readers()
        self.reader = self._wait_for_present(readers)
        self._connect(self.reader)
        self.select_ap()
        return self.reader

    def _establish(self) -> None:
        deadline = time.monotonic() + self.config.reader_timeout
        while True:
            self._check_cancelled()
            rv, context = self._call(lambda: scard.SCardEstablishContext(scard.SCARD_SCOPE_USER))
            if rv == scard.SCARD_S_SUCCESS:
                self._context = context
                return
            if time.monotonic() >= deadline:
                raise NoReader(f"PC/SC service unavailable: {_pcsc_text(rv)}")
            # No service yet (pcscd starting, or socket-activated): poll, there is nothing to
            # wait on until a context exists.
            self._cancelled.wait(0.1)

    def _list_readers(self) -> list[str]:
        rv, readers = self._call(lambda: scard.SCardListReaders(self._context, []))
        if rv in (scard.SCARD_E_NO_READERS_AVAILABLE,) or (rv == scard.SCARD_S_SUCCESS and not readers):
            return []
        if rv != scard.SCARD_S_SUCCESS:
            raise _pcsc_error(rv, "listing readers")
        wanted = self.config.reader_name
        return [r for r in readers if wanted is None or wanted in r]

    def _wait_for_readers(self) -> list[str]:
        deadline = time.monotonic() + self.config.reader_timeout
        while True:
            self._check_cancelled()
            readers = self._list_readers()
            if readers:
                return readers
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoReader(
                    "no reader" + (f" matching {self.config.reader_name!r}" if self.config.reader_name else "")
                )
            # Sleep until pcscd announces a reader change (or the deadline).
            self._status_change([(_PNP, scard.SCARD_STATE_UNAWARE)], remaining)

    def _status_change(
        self, states: list[tuple[str, int]], timeout: float
    ) -> list[tuple[str, int, list[int]]]:
        ms = max(0, int(timeout * 1000))
        rv, new = self._call(
            lambda: scard.SCardGetStatusChange(self._context, ms, states), timeout + self.config.command_timeout
        )
        if rv == scard.SCARD_E_TIMEOUT:
            return []
        if rv == scard.SCARD_E_CANCELLED:
            raise Cancelled("wait cancelled")
        if rv != scard.SCARD_S_SUCCESS:
            raise _pcsc_error(rv, "waiting for a card")
        return new

    def _wait_for_present(self, readers: list[str]) -> str:
        deadline = time.monotonic() + self.config.card_timeout
        states = [(r, scard.SCARD_STATE_UNAWARE) for r in readers] + [(_PNP, scard.SCARD_STATE_UNAWARE)]
        while True:
            self._check_cancelled()
            remaining = deadline - time.monotonic()
            new = self._status_change(states, max(remaining, 0))
            for name, event, _atr in new:
                if name == _PNP:
                    continue
                if event & scard.SCARD_STATE_PRESENT and not event & scard.SCARD_STATE_MUTE:
                    log.info("card: present in %s", name)
                    return name
            if remaining <= 0 or not new:
                raise NoCard(f"no card within {self.config.card_timeout:.1f} s")
            if any(name == _PNP and event & scard.SCARD_STATE_CHANGED for name, event, _ in new):
                # A reader came or went: wait on the new list.
                readers = self._list_readers() or readers
                states = [(r, scard.SCARD_STATE_UNAWARE) for r in readers] + [(_PNP, scard.SCARD_STATE_UNAWARE)]
            else:
                states = [(name, event & ~scard.SCARD_STATE_CHANGED) for name, event, _ in new]

    def _check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled("wait cancelled")

    def _connect(self, reader: str) -> None:
        rv, card, protocol = self._call(
            lambda: scard.SCardConnect(
                self._context,
                reader,
                # Exclusive: no other program may slip commands in between VERIFY and READ.
                scard.SCARD_SHARE_EXCLUSIVE,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
        )
        if rv != scard.SCARD_S_SUCCESS:
            raise _pcsc_error(rv, f"connecting to the card in {reader}")
        self._card, self._protocol = card, protocol
        log.info("card: connected (%s, T=%d)", reader, 1 if protocol == scard.SCARD_PROTOCOL_T1 else 0)

    # -- the AP -------------------------------------------------------------------------------

    def select_ap(self) -> None:
        """SELECT the card-info input support AP; :class:`NotMyNumberCard` if it is not there."""
        _, sw = self.transmit(cmd.select_ap())
        if sw.status is not cmd.Status.OK:
            raise NotMyNumberCard(f"SELECT AP answered {sw}")
        self._verified = False

    def tries_left(self) -> int | None:
        """The PIN's retry counter, read without using a try.

        Returns ``None`` if the card says the PIN is already verified in this session. Raises
        :class:`PinLocked` when no try is left.
        """
        self._select_ef(cmd.FID_PIN, "PIN EF")
        _, sw = self.transmit(cmd.tries_left_query())
        if sw.status is cmd.Status.OK:
            return None
        tries = sw.tries_left
        if tries is None:
            raise MalformedData(f"tries-left query answered {sw}")
        if tries == 0:
            raise PinLocked(f"tries-left query answered {sw}")
        return tries

    def verify_pin(self, pin: bytearray, *, confirm_last_try: bool = False) -> None:
        """Verify the 4-digit PIN once. ``pin`` is wiped (zeroed) before this returns or raises.

        Always reads the retry counter first: with one try left and ``confirm_last_try`` false
        it raises :class:`OneTryLeft` without sending the PIN. A wrong PIN raises
        :class:`WrongPin` (tries left ≥ 1) or :class:`PinLocked`; it is never retried here.
        """
        check_pin_buffer(pin)
        command: bytearray | None = None
        as_list: list[int] | None = None
        try:
            tries = self.tries_left()
            if tries is None:
                self._verified = True
                return
            if tries == 1 and not confirm_last_try:
                raise OneTryLeft()
            command = cmd.verify_pin(pin)
            as_list = list(command)
            # A VERIFY, right or wrong, replaces whatever the card had verified before.
            self._verified = False
            _, sw = self.transmit(as_list, label="00 20 00 80 (VERIFY)")
        finally:
            _wipe(pin)
            if command is not None:
                _wipe(command)
            if as_list is not None:
                as_list[:] = [0] * len(as_list)
        if sw.status is cmd.Status.OK:
            self._verified = True
            log.info("card: PIN verified")
            return
        if sw.status is cmd.Status.BLOCKED or sw.tries_left == 0:
            log.info("card: PIN locked")
            raise PinLocked(f"VERIFY answered {sw}")
        if sw.status is cmd.Status.WRONG_PIN:
            log.info("card: wrong PIN, %d tries left", sw.tries_left)
            raise WrongPin(sw.tries_left or 0)
        raise MalformedData(f"VERIFY answered {sw}")

    def read_record(self) -> CardRecord:
        """Read EF 0002 (by the length in its own header) and parse the basic four items."""
        if not self._verified:
            raise RuntimeError("verify the PIN before reading the card")
        self._select_ef(cmd.FID_BASIC_FOUR, "EF 0002")
        data = bytearray()
        try:
            total: int | None = None
            while total is None or len(data) < total:
                want = self.config.chunk_size if total is None else min(self.config.chunk_size, total - len(data))
                chunk, sw = self.transmit(cmd.read_binary(len(data), want))
                if sw.status is cmd.Status.SECURITY:
                    # The card forgot the PIN: it was reset or swapped between VERIFY and READ.
                    raise CardRemoved(f"READ BINARY answered {sw}: verification lost")
                if sw.status not in (cmd.Status.OK, cmd.Status.END_OF_FILE, cmd.Status.WRONG_OFFSET):
                    raise MalformedData(f"READ BINARY at {len(data)} answered {sw}")
                data += chunk
                if total is None:
                    total = header_size(bytes(data))
                    if total is None and sw.status is not cmd.Status.OK:
                        raise MalformedData(f"EF 0002 ends inside its header ({len(data)} bytes)")
                if not chunk and (total is None or len(data) < total):
                    raise MalformedData(f"EF 0002 is shorter ({len(data)} bytes) than its header says")
            record = parse_basic_four(bytes(data[:total]))
        finally:
            _wipe(data)
        log.info("card: basic four items read (%d bytes)", total)
        return record

    def _select_ef(self, fid: bytes, label: str) -> None:
        _, sw = self.transmit(cmd.select_ef(fid))
        if sw.status is not cmd.Status.OK:
            raise MalformedData(f"SELECT {label} answered {sw}")

    # -- transport ----------------------------------------------------------------------------

    def transmit(self, command: bytes | bytearray | list[int], *, label: str | None = None) -> tuple[bytes, cmd.StatusWord]:
        """Send one APDU; follow 61 xx and 6C xx; return ``(data, status word)``.

        PC/SC failures become :class:`CardRemoved` / :class:`NoReader` / :class:`ReaderTimeout`.
        """
        if self._card is None:
            raise CardRemoved("no card connected")
        label = label or cmd.describe(bytes(command))
        data, sw = self._transmit_once(command, label)
        if sw.status is cmd.Status.WRONG_LE:
            data, sw = self._transmit_once(list(command[:4]) + [sw.sw2], label + " (Le fixed)")
        while sw.status is cmd.Status.MORE_DATA:
            more, sw = self._transmit_once(cmd.get_response(sw.sw2), "00 C0 00 00 (GET RESPONSE)")
            data += more
        return data, sw

    def _transmit_once(self, command: bytes | bytearray | list[int], label: str) -> tuple[bytes, cmd.StatusWord]:
        apdu = command if isinstance(command, list) else list(command)
        card, protocol = self._card, self._protocol
        start = time.perf_counter()
        rv, response = self._call(lambda: scard.SCardTransmit(card, protocol, apdu))
        elapsed = time.perf_counter() - start
        self.apdu_times.append((label, elapsed))
        if rv != scard.SCARD_S_SUCCESS:
            log.info("card: %s failed: %s", label, _pcsc_text(rv))
            raise _pcsc_error(rv, label)
        if not response:
            # No status word at all: the card left mid-command. vpcd reports a vanished card
            # this way, and contactless readers do when the card leaves the field.
            log.info("card: %s got no answer: card gone", label)
            raise CardRemoved(f"{label}: empty response")
        try:
            data, sw = cmd.split_response(response)
        except ValueError as e:
            raise MalformedData(f"{label}: {e}") from None
        log.debug("card: %s -> %s (%d bytes)", label, sw, len(data))
        return data, sw

    def _call(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        if self._broken:
            raise ReaderTimeout("the reader stopped answering earlier in this session")
        try:
            return self._worker.call(fn, self.config.command_timeout if timeout is None else timeout)
        except ReaderTimeout:
            self._broken = True
            log.warning("card: the reader did not answer within the timeout")
            raise


def _wipe(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


def check_pin_buffer(pin: object) -> None:
    """Refuse a PIN before any I/O: a ``str``/``bytes`` with :class:`TypeError` (a programming
    error: only a mutable buffer can be wiped, and it is left alone rather than half-wiped), a
    bytearray that is not exactly 4 ASCII digits with :class:`BadPinFormat` (wiped first: a
    citizen-facing error with its own message, never a bare ``ValueError``)."""
    if not isinstance(pin, bytearray):
        raise TypeError("pass the PIN as a bytearray so it can be wiped")
    try:
        cmd.check_pin_format(pin)
    except ValueError as e:
        _wipe(pin)
        raise BadPinFormat("the PIN must be exactly 4 ASCII digits") from e


def read_card(
    pin: bytearray, *, confirm_last_try: bool = False, config: ReaderConfig | None = None
) -> CardRecord:
    """One-shot read: wait for a card, verify ``pin`` (wiped), return the record, reset the card.

    For kiosks that collect the PIN before the card is presented. The interactive flow (read
    the tries left first, warn at one try left) uses :class:`CardSession` step by step.
    """
    check_pin_buffer(pin)  # before the reader is opened: nothing waits for a card with a bad PIN
    try:
        with CardSession(config) as session:
            session.wait_for_card()
            session.verify_pin(pin, confirm_last_try=confirm_last_try)
            return session.read_record()
    finally:
        _wipe(pin)
