"""How much of one core this machine gives right now, measured before a bench run.

On the VM this project is measured on, the same server and load give a p99 of 4–8 ms in one
quarter of an hour and 12–20 ms in the next, with the hypervisor's `steal` the same 10 ms per
window. What changes is the machine: pure-Python work slows down and stalls now and then (other
tenants of the host). Without a figure for that, two runs minutes apart cannot be compared.

The probe runs a fixed piece of pure-Python work (about 0.2 ms) back to back for a second on the
given core, in its own process, and reports:

- ``unit_us``: the median time of one piece (the core's speed: higher is slower);
- ``lost_pct``: the share of the second lost beyond that median pace (stalls and slowdowns: the
  time every request in flight would have waited through);
- ``stall_ms``: the longest single piece, less the median.

Measured over 60 rounds (docs/benchmarks.md, "2026-12-01 (second session)"): the piece's speed
follows the machine's stretch a little, ``lost_pct`` varies from second to second and does not
predict the run that follows; the server's own CPU per request in the run tracks it better. The
probe is a record of the core's speed beside each run, not a correction of its figures.

Run it alone: ``.venv/bin/python bench/machine_probe.py [--core 0] [--seconds 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any


def _unit() -> int:
    x = 0
    for i in range(6000):
        x += i
    return x


def measure(seconds: float) -> dict[str, Any]:
    """Run the pieces back to back in this process for ``seconds``."""
    times = []
    perf = time.perf_counter
    end = perf() + seconds
    start = perf()
    while (t := perf()) < end:
        _unit()
        times.append(perf() - t)
    total = perf() - start
    median = statistics.median(times)
    lost = sum(max(0.0, x - median) for x in times)
    return {"unit_us": round(median * 1e6, 1), "lost_pct": round(100 * lost / total, 2),
            "stall_ms": round((max(times) - median) * 1e3, 2), "units": len(times)}


def probe(core: int | None, seconds: float = 1.0) -> dict[str, Any]:
    """:func:`measure` in a fresh process pinned to ``core`` (taskset) when one is given."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--seconds", str(seconds)]
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--core", type=int, default=None, help="core to pin the probe to (taskset)")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.seconds)))
    else:
        print(json.dumps(probe(args.core, args.seconds)))


if __name__ == "__main__":
    main()
