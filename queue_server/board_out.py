"""Pushes to lobby boards, coalesced: framed once, written per board in one socket write.

Every call, call end and waits push goes to every board of the site: with 50 boards and 300
requests a second that was 9,000 socket writes a second, a fifth of the server's core, each
push framed again per board. A push to boards is now framed once (the same bytes for every
board: the server's frames are unmasked and never compressed) and queued per board; every
BOARD_PUSH_INTERVAL each board's queued frames leave in one write (pushes.board_sender).

Every push to a board goes through here, whatever its kind, so a board receives them in seq
order: a waits push overtaking a queued call would advance the board's ``last_seq`` past the
call, and a board that then lost its connection would not be replayed it. A board is 50 ms
later at most, which no one in the lobby can see.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode

from .jobs import Client

BOARD_PUSH_INTERVAL = 0.05  # seconds a push may wait for the others of its board


def text_frame(msg: str) -> bytes:
    """A server's websocket text frame (unmasked, uncompressed: serve(compression=None))."""
    return Frame(Opcode.TEXT, msg.encode()).serialize(mask=False)


class BoardOut:
    """The frames queued for each board since the last write."""

    def __init__(self) -> None:
        self.pending: dict[Client, list[bytes]] = {}

    def queue(self, boards: list[Client], msg: str) -> None:
        frame = text_frame(msg)
        for c in boards:
            self.pending.setdefault(c, []).append(frame)

    def take(self) -> dict[Client, list[bytes]]:
        """Everything queued, to be written now; the queue starts empty again."""
        out, self.pending = self.pending, {}
        return out
