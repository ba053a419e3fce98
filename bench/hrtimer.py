"""Sub-millisecond sleeps on an asyncio loop, for the open-loop bench's dispatcher (issue 20).

asyncio's timers end in epoll_wait, which takes whole milliseconds (rounded up), so a request
scheduled at t is sent up to 1 ms late, and polling the loop to do better costs a core. On Linux
this uses a timerfd (CLOCK_MONOTONIC, the clock of time.perf_counter; an absolute expiry, ns
resolution) watched by the loop like a socket: the loop wakes when it fires, other work goes on
meanwhile, no CPU is spent waiting. Elsewhere (or if libc has no timerfd) `sleep_until` falls back
to asyncio.sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import sys
import time

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        return libc
    except (OSError, AttributeError):
        return None


class TimerFD:
    """A timerfd on CLOCK_MONOTONIC armed at absolute perf_counter() times: its fd is readable once
    the time has come (put it in an epoll set). `make()` is None where there is no timerfd."""

    def __init__(self, libc: ctypes.CDLL, fd: int):
        self._libc, self.fd = libc, fd
        self._spec = _Itimerspec()

    @classmethod
    def make(cls) -> TimerFD | None:
        libc = _libc()
        if libc is None:
            return None
        fd = libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        return cls(libc, fd) if fd >= 0 else None

    def arm(self, t: float) -> bool:
        """Expire at perf_counter() == t (at once if that is past); False if the kernel refused."""
        sec = int(t)
        self._spec.it_value.tv_sec, self._spec.it_value.tv_nsec = sec, max(1, int((t - sec) * 1e9))
        return self._libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) == 0

    def clear(self) -> None:
        """Take the expiry (the fd is readable until then)."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class HRTimer:
    """One timerfd on the running loop; `await sleep_until(t)` returns at perf_counter() >= t."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tfd = TimerFD.make()
        if self._tfd is not None:
            self._loop.add_reader(self._tfd.fd, self._fired)
        self._waiter: asyncio.Future[None] | None = None

    @property
    def precise(self) -> bool:
        return self._tfd is not None

    def _fired(self) -> None:
        assert self._tfd is not None
        self._tfd.clear()
        w, self._waiter = self._waiter, None
        if w is not None and not w.done():
            w.set_result(None)

    async def sleep_until(self, t: float) -> None:
        """Return once perf_counter() >= t (at once if it already is)."""
        if t <= time.perf_counter():
            return
        if self._tfd is None or not self._tfd.arm(t):
            await asyncio.sleep(max(0.0, t - time.perf_counter()))  # no timerfd: up to 1 ms late
            return
        self._waiter = self._loop.create_future()
        await self._waiter
        while time.perf_counter() < t:  # a read raced a re-arm: the expiry is still ahead
            await asyncio.sleep(0)

    def close(self) -> None:
        if self._tfd is not None:
            self._loop.remove_reader(self._tfd.fd)
            self._tfd.close()
            self._tfd = None
