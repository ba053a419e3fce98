"""bench/hrtimer.py: a sleep never returns before its time, lets the loop run meanwhile, and
returns at once for a time already past. (How close to the time it wakes is the bench's figure,
not a test's.)"""

from __future__ import annotations

import asyncio
import sys
import time

from bench.hrtimer import HRTimer


def test_sleep_until_never_returns_early_and_the_loop_runs_meanwhile() -> None:
    async def main() -> tuple[bool, list[float], int]:
        timer = HRTimer()
        ticks = 0

        async def other() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        early = []
        try:
            for i in range(40):
                t = time.perf_counter() + 0.0003 * (i % 7)  # 0 (already due) to 1.8 ms ahead
                await timer.sleep_until(t)
                early.append(t - time.perf_counter())
            await timer.sleep_until(time.perf_counter() - 1.0)  # in the past: at once
        finally:
            task.cancel()
            precise = timer.precise
            timer.close()
        return precise, early, ticks

    precise, early, ticks = asyncio.run(main())
    assert max(early) <= 0, early  # perf_counter() >= t every time
    assert ticks > 0  # the other task ran while the dispatcher waited
    assert precise == sys.platform.startswith("linux")  # the timerfd, not the ms-rounded fallback, on Linux
