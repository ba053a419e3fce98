"""A fake network printer on 127.0.0.1 for fault tests: a real TCP socket, real bytes.

It answers DLE EOT 1–4 with the status bytes it was given (like an Epson TM on port 9100),
records everything else it receives, and can be told to stay silent (accept and never answer).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

NORMAL = {1: 0x12, 2: 0x12, 3: 0x12, 4: 0x12}
PAPER_OUT = {1: 0x1A, 2: 0x32, 3: 0x12, 4: 0x72}  # offline; stopped by paper end; roll sensor: end
COVER_OPEN = {1: 0x1A, 2: 0x16, 3: 0x12, 4: 0x12}  # offline; cover open
NEAR_END = {1: 0x12, 2: 0x12, 3: 0x12, 4: 0x1E}  # online, paper near end: prints, with a warning
OFFLINE = {1: 0x1A, 2: 0x12, 3: 0x12, 4: 0x12}


@dataclass
class FakePrinter:
    status: dict[int, int] | None = field(default_factory=lambda: dict(NORMAL))  # None: never answer
    received: bytearray = field(default_factory=bytearray)
    connections: int = 0
    stop_reading_after: int | None = None  # a printer that jams mid-job: stops taking bytes
    #: A printer whose state changes mid-job (goes offline, paper runs out, cover opened) but
    #: keeps reading: after this many bytes it answers with ``status_later``.
    change_after: int | None = None
    status_later: dict[int, int] | None = None

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.done = threading.Event()  # set when a client has closed its connection
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"network://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                self._handle(conn)
            self.done.set()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        pending = b""
        while not self._stop:
            if self.stop_reading_after is not None and len(self.received) >= self.stop_reading_after:
                time.sleep(0.05)
                continue
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            if self.stop_reading_after is not None:
                chunk = chunk[: max(0, self.stop_reading_after - len(self.received))]
            self.received += chunk
            if self.status is None:
                continue  # a hung printer: takes the bytes, never answers
            pending += chunk
            # Answer DLE EOT n in real time; like a printer, look for it anywhere in the stream.
            # ``offset`` is where ``pending`` starts in the stream: a query at or after
            # ``change_after`` gets the later status, however the bytes were chunked.
            offset = len(self.received) - len(pending)
            while (at := pending.find(b"\x10\x04")) >= 0 and len(pending) >= at + 3:
                n = pending[at + 2]
                status = self.status
                if self.change_after is not None and self.status_later is not None \
                        and offset + at >= self.change_after:
                    status = self.status_later
                if n in status:
                    conn.sendall(bytes((status[n],)))
                pending = pending[at + 3 :]
                offset += at + 3
            pending = pending[-2:]

    def close(self) -> None:
        self._stop = True
        self._server.close()
        self._thread.join(2)
