"""Replications: each one simulates every day of a scenario with its own random streams.

Seeds: day *d* of replication *r* under seed *S* draws from a stream derived from ``S:r:d`` by
SHA-256, so a replication's result does not depend on how many processes ran, in what order,
or which other replications were asked for: ``--seed 7 --replications 10`` contains the first
five replications of ``--seed 7 --replications 5``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from .model import LobbyDay, Router, scenario_router
from .scenario import Scenario
from .stats import summarise_replication

_ROUTERS: dict[Any, Router] = {}  # per process: building a planner router reads the catalogue


def stream_seed(seed: int, replication: int, day: int) -> int:
    """The integer seed of one day of one replication."""
    h = hashlib.sha256(f"{seed}:{replication}:{day}".encode()).digest()
    return int.from_bytes(h[:8], "big")


def router_for(sc: Scenario) -> Router:
    """The scenario's router: routes given in the file, else the real planner on the catalogue."""
    if all(p.route is not None for p in sc.purposes.values()):
        return scenario_router(sc)
    key = (str(sc.catalogue_dir), sc.file, sc.name, tuple(sorted(sc.purposes)))
    r = _ROUTERS.get(key)
    if r is None:
        from .routing import planner_router  # the catalogue is only read when a scenario needs it

        r = _ROUTERS[key] = planner_router(sc)
    return r


def replicate(sc: Scenario, seed: int, replication: int) -> dict[str, Any]:
    """One replication: every day of the scenario, summarised."""
    import random

    router = router_for(sc)
    label = "M/M/c" if sc.kind == "station" else None  # a station's run has no calendar day
    days = [
        LobbyDay(sc, router, day, random.Random(stream_seed(seed, replication, i)), day_label=label).run()
        for i, day in enumerate(sc.days)
    ]
    return summarise_replication(sc, days)


def _job(args: tuple[Scenario, int, int]) -> tuple[int, dict[str, Any]]:
    sc, seed, rep = args
    return rep, replicate(sc, seed, rep)


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class Progress:
    """A one-line progress bar on stderr (redrawn in place on a terminal, else printed at the end)."""

    def __init__(self, total: int, label: str, stream=None, width: int = 30):
        self.total, self.label, self.width = total, label, width
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.t0 = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._draw()

    def step(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def _draw(self) -> None:
        if not self.tty and self.done < self.total:
            return
        filled = int(self.width * self.done / self.total) if self.total else self.width
        el = time.perf_counter() - self.t0
        eta = el / self.done * (self.total - self.done) if self.done else 0.0
        line = (
            f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"
            f"  {el:5.1f} s" + (f"  ~{eta:4.0f} s left" if self.done < self.total else "   ")
        )
        self.stream.write(line + ("\n" if self.done >= self.total else ""))
        self.stream.flush()


def run_replications(
    sc: Scenario,
    replications: int,
    seed: int,
    jobs: int = 1,
    progress: bool | Callable[[int], None] = False,
    label: str | None = None,
    first: int = 0,
) -> list[dict[str, Any]]:
    """Summaries of replications first..first+N-1, in replication order, using ``jobs`` processes."""
    if replications < 1:
        raise ValueError("at least one replication")
    bar = Progress(replications, label or sc.name) if progress is True else None
    tick = progress if callable(progress) else None
    results: dict[int, dict[str, Any]] = {}
    tasks = [(sc, seed, r) for r in range(first, first + replications)]
    if jobs <= 1 or replications == 1:
        for t in tasks:
            rep, res = _job(t)
            results[rep] = res
            if bar:
                bar.step()
            if tick:
                tick(rep)
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, replications)) as ex:
            futs = [ex.submit(_job, t) for t in tasks]
            for f in as_completed(futs):
                rep, res = f.result()
                results[rep] = res
                if bar:
                    bar.step()
                if tick:
                    tick(rep)
    return [results[r] for r in range(first, first + replications)]


def scenario_path(name: str) -> Path:
    """A scenario by path, or by name under config/scenarios/."""
    p = Path(name)
    if p.exists():
        return p
    from queue_server.config import DEFAULT_CONFIG_DIR

    for cand in (DEFAULT_CONFIG_DIR / "scenarios" / name, DEFAULT_CONFIG_DIR / "scenarios" / f"{name}.toml"):
        if cand.exists():
            return cand
    return p
