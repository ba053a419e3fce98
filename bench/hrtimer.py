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


class HRTimer:
    """One timerfd on the running loop; `await sleep_until(t)` returns at perf_counter() >= t."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._libc = _libc()
        self.fd = -1
        if self._libc is not None:
            fd = self._libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
            if fd >= 0:
                self.fd = fd
                self._spec = _Itimerspec()
                self._loop.add_reader(fd, self._fired)
        self._waiter: asyncio.Future[None] | None = None

    @property
    def precise(self) -> bool:
        return self.fd >= 0

    def _fired(self) -> None:
        try:
            os.read(self.fd, 8)  # the expiry count; reading it re-arms the readiness
        except BlockingIOError:
            return
        w, self._waiter = self._waiter, None
        if w is not None and not w.done():
            w.set_result(None)

    async def sleep_until(self, t: float) -> None:
        """Return once perf_counter() >= t (at once if it already is)."""
        if t <= time.perf_counter():
            return
        if not self.precise:
            await asyncio.sleep(t - time.perf_counter())
            return
        sec = int(t)
        self._spec.it_value.tv_sec, self._spec.it_value.tv_nsec = sec, int((t - sec) * 1e9)
        if self._libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) != 0:
            await asyncio.sleep(max(0.0, t - time.perf_counter()))  # e.g. EINVAL: never late for that
            return
        self._waiter = self._loop.create_future()
        await self._waiter
        while time.perf_counter() < t:  # a read raced a re-arm: the expiry is still ahead
            await asyncio.sleep(0)

    def close(self) -> None:
        if self.fd >= 0:
            self._loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
