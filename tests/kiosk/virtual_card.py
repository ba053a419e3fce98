"""A virtual My Number card for pcscd's vpcd driver (vsmartcard), written for the tests.

It connects to vpcd (TCP, localhost:35963 by default) the way a real card "enters" a reader, and
answers the vpcd protocol: frames of a 2-byte big-endian length and a payload; a 1-byte payload
is a control code (00 power off, 01 power on, 02 reset, 04 send the ATR), anything longer is a
command APDU answered with response data + SW1 SW2.

It emulates only the card-info input support AP (券面事項入力補助AP): SELECT by AID, SELECT EF
0011 / 0001 / 0002, VERIFY (tries-left query and PIN check with a retry counter that locks at 0),
READ BINARY with 62 82 at the end of the file. Hooks let a test remove the card (close the
socket) or make it hang on a chosen command.

Debian 12's vpcd writes the length and the payload of a frame in two ``send`` calls; with Nagle
on its side and delayed ACK on ours every APDU would wait ~40 ms for our ACK. Re-arming
``TCP_QUICKACK`` after every receive (Linux clears it again on its own) removes that wait.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963
VPCD_READER = "Virtual PCD 00 00"  # the PC/SC name of the vpcd slot on TCP 35963

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0x00, 0x01, 0x02, 0x04
# A minimal T=1 ATR: TS 3B, T0 80 (TD1 follows, no historical bytes), TD1 80, TD2 01 (T=1), TCK.
DEFAULT_ATR = bytes.fromhex("3B80800101")

AID_CARD_INFO_AP = bytes.fromhex("D3921000310001010408")
SW_OK = b"\x90\x00"
SW_EOF = b"\x62\x82"
SW_NOT_FOUND = b"\x6a\x82"
SW_SECURITY = b"\x69\x82"
SW_BLOCKED = b"\x69\x84"
SW_NO_EF = b"\x69\x86"
SW_WRONG_OFFSET = b"\x6b\x00"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_INS = b"\x6d\x00"
SW_CLA = b"\x6e\x00"
SW_WRONG_LENGTH = b"\x67\x00"

# Synthetic test vector of domain.md §5 (a fictional holder).
TEST_NAME = "黒桐\u3000幹也"
TEST_ADDRESS = "東京都清瀬市観布子南１２－７－２０２"
TEST_BIRTH = "19800217"
TEST_SEX = "1"
TEST_PIN = "7391"  # distinctive digits so the privacy scan cannot match by accident


def ber_length(n: int) -> bytes:
    """BER length in the shortest form."""
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one data object (tag given as a big-endian int)."""
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    return tag_bytes + ber_length(len(value)) + value


def encode_basic_four(
    name: str = TEST_NAME,
    address: str = TEST_ADDRESS,
    birth: str = TEST_BIRTH,
    sex: str = TEST_SEX,
    *,
    file_size: int | None = None,
    filler: int = 0xFF,
) -> bytes:
    """EF 0002 as a card stores it: FF 20 { DF 21 offsets, DF 22..DF 25 } and filler.

    ``DF 21`` holds the offsets (from the start of the file) of the four field tags, as the
    real card does; the parser under test ignores them.
    """
    fields = [
        tlv(0xDF22, name.encode("utf-8")),
        tlv(0xDF23, address.encode("utf-8")),
        tlv(0xDF24, birth.encode("ascii")),
        tlv(0xDF25, sex.encode("ascii")),
    ]
    body_len = 2 + 1 + 8 + sum(map(len, fields))
    header_len = 2 + len(ber_length(body_len))
    offsets, pos = [], header_len + 11
    for f in fields:
        offsets.append(pos)
        pos += len(f)
    body = tlv(0xDF21, struct.pack(">4H", *offsets)) + b"".join(fields)
    data = tlv(0xFF20, body)
    if file_size is not None:
        if file_size < len(data):
            raise ValueError("file_size is smaller than the data")
        data += bytes([filler]) * (file_size - len(data))
    return data


@dataclass
class Command:
    """One command the card received, for the tests' assertions. VERIFY data is masked."""

    apdu: bytes

    @property
    def ins(self) -> int:
        return self.apdu[1]

    @property
    def header(self) -> bytes:
        return self.apdu[:4]


# A hook gets the command APDU and returns True to act on it (remove the card or hang).
Hook = Callable[[bytes], bool]


class VirtualMyNumberCard:
    """One card "inserted" into vpcd while :meth:`insert` … :meth:`remove` (or ``with card:``).

    Parameters shape the card: ``ef0002`` the basic-four file, ``pin`` the correct PIN,
    ``tries`` the current retry counter (0 = locked), ``has_ap`` False for a card without the AP
    (every SELECT by AID answers 6A 82), ``max_chunk`` caps the bytes one READ BINARY returns.
    ``remove_on`` / ``hang_on`` are hooks evaluated for every command APDU.
    """

    def __init__(
        self,
        *,
        ef0002: bytes | None = None,
        pin: str = TEST_PIN,
        tries: int = 3,
        max_tries: int = 3,
        has_ap: bool = True,
        atr: bytes = DEFAULT_ATR,
        max_chunk: int = 256,
        remove_on: Hook | None = None,
        hang_on: Hook | None = None,
        quickack: bool = True,
        host: str = VPCD_HOST,
        port: int = VPCD_PORT,
    ) -> None:
        self.ef0002 = encode_basic_four(file_size=0x200) if ef0002 is None else ef0002
        self.ef0001 = b"\x30\x30\x30\x30"  # never read by the kiosk; present so a read would show
        self.pin = pin.encode("ascii")
        self.tries = tries
        self.max_tries = max_tries
        self.has_ap = has_ap
        self.atr = atr
        self.max_chunk = max_chunk
        self.remove_on = remove_on
        self.hang_on = hang_on
        self.quickack = quickack
        self.host, self.port = host, port

        self.commands: list[Command] = []
        self.powered = False
        self._ap_selected = False
        self._ef: bytes | None = None
        self._verified = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.removed = threading.Event()
        self.error: BaseException | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def insert(self, timeout: float = 5.0) -> VirtualMyNumberCard:
        """Connect to vpcd (the card enters the reader) and serve it from a thread."""
        self._stop.clear()
        self.removed.clear()
        self._sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._serve, name="virtual-card", daemon=True)
        self._thread.start()
        return self

    def remove(self) -> None:
        """Take the card out: close the connection (vpcd then reports the card absent)."""
        self._stop.set()
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.removed.set()

    def __enter__(self) -> VirtualMyNumberCard:
        return self.insert()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- transport ----------------------------------------------------------------------------

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            if self.quickack:
                # Linux drops back to delayed ACKs by itself: re-arm after every receive.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            buf += chunk
        return bytes(buf)

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            while not self._stop.is_set():
                head = self._recv_exact(sock, 2)
                if head is None:
                    break
                (size,) = struct.unpack(">H", head)
                payload = self._recv_exact(sock, size) if size else b""
                if payload is None:
                    break
                if size == 1:
                    reply = self._control(payload[0])
                else:
                    if self.remove_on is not None and self.remove_on(payload):
                        self._record(payload)
                        break  # pulled out of the reader before answering
                    if self.hang_on is not None and self.hang_on(payload):
                        self._record(payload)
                        self._stop.wait()  # never answers; the test removes the card later
                        break
                    reply = self.process(payload)
                if reply is not None:
                    sock.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError as e:
            if not self._stop.is_set():
                self.error = e
        finally:
            if not self._stop.is_set():
                # Removed by a hook: close our side so vpcd sees the card leave.
                self._stop.set()
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                self.removed.set()

    def _control(self, code: int) -> bytes | None:
        if code == CTRL_ATR:
            return self.atr
        if code in (CTRL_ON, CTRL_RESET):
            self.powered = True
            self._reset_state()
        elif code == CTRL_OFF:
            self.powered = False
            self._reset_state()
        return None  # power and reset commands get no answer in the vpcd protocol

    def _reset_state(self) -> None:
        # A reset clears the selection and the security status, never the retry counter.
        self._ap_selected = False
        self._ef = None
        self._verified = False

    def _record(self, apdu: bytes) -> None:
        if len(apdu) > 5 and apdu[1] == 0x20:
            apdu = apdu[:5] + b"*" * (len(apdu) - 5)
        self.commands.append(Command(bytes(apdu)))

    # -- the AP -------------------------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU (response data + SW)."""
        self._record(apdu)
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        if cla != 0x00:
            return SW_CLA
        data = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == 0xA4:
            return self._select(p1, data)
        if ins == 0x20:
            return self._verify(p2, data)
        if ins == 0xB0:
            le = apdu[4] if len(apdu) == 5 else 0
            return self._read_binary((p1 << 8) | p2, le or 256)
        return SW_INS

    def _select(self, p1: int, data: bytes) -> bytes:
        if p1 == 0x04:
            self._ef = None
            self._verified = False
            self._ap_selected = self.has_ap and data == AID_CARD_INFO_AP
            return SW_OK if self._ap_selected else SW_NOT_FOUND
        if p1 == 0x02:
            if not self._ap_selected:
                return SW_NOT_FOUND
            files = {b"\x00\x11": b"", b"\x00\x01": self.ef0001, b"\x00\x02": self.ef0002}
            if data not in files:
                return SW_NOT_FOUND
            self._ef = data
            return SW_OK
        return SW_WRONG_P1P2

    def _verify(self, p2: int, pin: bytes) -> bytes:
        if p2 != 0x80:
            return SW_WRONG_P1P2
        if self._ef != b"\x00\x11":
            return SW_NO_EF
        if self.tries == 0:
            return SW_BLOCKED
        if not pin:
            return SW_OK if self._verified else bytes([0x63, 0xC0 | self.tries])
        if pin == self.pin:
            self.tries = self.max_tries
            self._verified = True
            return SW_OK
        self.tries -= 1
        self._verified = False
        return bytes([0x63, 0xC0 | self.tries])

    def _read_binary(self, offset: int, le: int) -> bytes:
        files = {b"\x00\x01": self.ef0001, b"\x00\x02": self.ef0002}
        if self._ef not in files:
            return SW_NO_EF
        if not self._verified:
            return SW_SECURITY
        content = files[self._ef]
        if offset >= len(content):
            return SW_WRONG_OFFSET
        n = min(le, self.max_chunk)
        chunk = content[offset : offset + n]
        return chunk + (SW_OK if len(chunk) == le else SW_EOF)


def wait_for_empty_poll(host: str = VPCD_HOST, port: int = VPCD_PORT, timeout: float = 5.0) -> None:
    """Return once pcscd's presence poll has looked at the reader while no card was in it.

    Why: pcscd learns that a card left only from its presence poll (every ~400 ms). If a card
    vanishes inside a transmit and the next card connects before that poll, pcscd never sees
    the reader empty and misses the new card. So a probe connects in place of a card and waits
    for the poll's lone ATR request (04) — proof the poll ran with no card — then leaves without
    answering, which the poll takes for "no card". A reset or power-up from a late
    ``SCardDisconnect`` (01/02 first) is not a poll: the probe leaves and tries again.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"pcscd did not poll the vpcd reader within {timeout} s")
        with socket.create_connection((host, port), timeout=remaining) as probe:
            frame = b""
            try:
                # vpcd writes the length and the payload in two sends: read until all three bytes
                # are in (ACKing at once, or Nagle on vpcd's side holds the payload back ~40 ms).
                while len(frame) < 3:
                    chunk = probe.recv(3 - len(frame))
                    if not chunk:
                        break
                    probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                    frame += chunk
            except TimeoutError:
                continue
            if frame == b"\x00\x01" + bytes([CTRL_ATR]):
                return


def on_command(header: str) -> Hook:
    """A hook firing on commands that start with the given hex bytes (e.g. ``"00A4020C020002"``)."""
    prefix = bytes.fromhex(header)
    return lambda apdu: apdu.startswith(prefix)


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


# -- pcscd ------------------------------------------------------------------------------------

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
PCSCD_PID_FILE = Path("/run/pcscd/pcscd.pid")


class PcscdNotInstalled(RuntimeError):
    """pcscd or the vpcd driver is missing: the device tests cannot run here."""


class PcscdFailed(RuntimeError):
    """pcscd is installed but could not be started or reached."""


def pcsc_readers() -> list[str] | None:
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


def _running_pcscd_pid() -> int | None:
    try:
        # pcscd writes its pid with a trailing NUL ("5599\n\0"): int() refuses that unstripped
        pid = int(PCSCD_PID_FILE.read_text().strip("\x00\n "))
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def running_pcscd(log_path: Path, timeout: float = 15.0) -> Iterator[str]:
    """Make sure a pcscd with the vpcd reader runs for the ``with`` block; yield the reader name.

    Starts ``pcscd --foreground`` (root needed) in its own process group and kills exactly that
    group afterwards; waits by polling PC/SC until the reader is listed. A pcscd that already
    runs (a developer's) is used as it is and left running.
    """
    binary = shutil.which("pcscd") or ("/usr/sbin/pcscd" if os.path.exists("/usr/sbin/pcscd") else None)
    if binary is None:
        raise PcscdNotInstalled("pcscd is not installed (Debian: apt-get install pcscd vsmartcard-vpcd)")
    if not VPCD_DRIVER.exists() or not VPCD_CONF.exists():
        raise PcscdNotInstalled("vsmartcard-vpcd is not installed (Debian: apt-get install vsmartcard-vpcd)")
    if _running_pcscd_pid() is not None:
        if VPCD_READER not in (pcsc_readers() or []):
            raise PcscdFailed(f"a pcscd is already running without the {VPCD_READER!r} reader; stop it first")
        yield VPCD_READER
        return
    if os.geteuid() != 0:
        raise PcscdFailed("starting pcscd needs root (it writes /run/pcscd); run the device tests as root")
    with log_path.open("wb") as log_file:
        # Default log level on purpose: `-a`/`-d` would write APDUs, the PIN included, to the log.
        proc = subprocess.Popen(
            [binary, "--foreground"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: teardown kills exactly this daemon
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise PcscdFailed(f"pcscd exited with {proc.returncode}: {log_path.read_text(errors='replace')}")
            readers = pcsc_readers()
            if readers and VPCD_READER in readers:
                break
            if time.monotonic() > deadline:
                raise PcscdFailed(f"pcscd did not list {VPCD_READER!r} within {timeout} s (readers: {readers})")
            time.sleep(0.05)  # the daemon's socket is not there yet: nothing to wait on but time
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
