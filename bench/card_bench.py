"""Benchmark: reading a My Number card on the virtual stack (pyscard → pcscd → vpcd → virtual card).

Prints a table and JSON: end-to-end read time (connect → record), its phases, the time of each
APDU, and how long pcscd takes to notice a card — each with the virtual card re-arming
TCP_QUICKACK after every receive and without it. Never asserts a time.

Needs pcscd and vsmartcard-vpcd (Debian); starts pcscd itself when run as root and none is
running. ``python bench/card_bench.py [--runs 30] [--slow-runs 8]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiosk.card.reader import CardSession, ReaderConfig  # noqa: E402
from tests.kiosk.virtual_card import (  # noqa: E402
    TEST_PIN,
    PcscdFailed,
    PcscdNotInstalled,
    VirtualMyNumberCard,
    running_pcscd,
    wait_for_empty_poll,
    wait_reader_state,
)

PHASES = ("detect", "connect", "pin", "read", "close", "end_to_end")


def one_read(quickack: bool) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """Insert a card, read it like the kiosk does, remove it. Returns phase times and APDU times."""
    card = VirtualMyNumberCard(quickack=quickack)
    t0 = time.perf_counter()
    card.insert()
    wait_reader_state(True)  # pcscd's presence poll: the citizen's card "arrives"
    t1 = time.perf_counter()
    session = CardSession(ReaderConfig(card_timeout=5, command_timeout=5))
    session.wait_for_card()  # card already present: context, connect, SELECT AP
    t2 = time.perf_counter()
    session.tries_left()
    session.verify_pin(bytearray(TEST_PIN.encode()))
    t3 = time.perf_counter()
    record = session.read_record()
    t4 = time.perf_counter()
    session.close()
    t5 = time.perf_counter()
    assert record.birth_date.year == 1980  # a wrong read would make the figures meaningless
    card.remove()
    wait_for_empty_poll()
    wait_reader_state(False)
    phases = {
        "detect": t1 - t0,
        "connect": t2 - t1,
        "pin": t3 - t2,
        "read": t4 - t3,
        "close": t5 - t4,
        "end_to_end": t5 - t1,
    }
    return phases, session.apdu_times


def summarize(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "n": len(values),
        "p50_ms": statistics.median(values) * 1000,
        "p90_ms": values[min(len(values) - 1, int(0.9 * len(values)))] * 1000,
        "max_ms": values[-1] * 1000,
    }


def run_mode(quickack: bool, runs: int) -> dict[str, Any]:
    phases: dict[str, list[float]] = defaultdict(list)
    apdus: dict[str, list[float]] = defaultdict(list)
    apdu_counts: list[int] = []
    for _ in range(runs):
        p, times = one_read(quickack)
        for k, v in p.items():
            phases[k].append(v)
        for label, seconds in times:
            apdus[label].append(seconds)
        apdu_counts.append(len(times))
    return {
        "quickack": quickack,
        "runs": runs,
        "apdus_per_read": statistics.median(apdu_counts),
        "phases": {k: summarize(phases[k]) for k in PHASES},
        "apdu": {label: summarize(v) for label, v in sorted(apdus.items())},
        "apdu_all": summarize([s for v in apdus.values() for s in v]),
    }


def machine() -> dict[str, Any]:
    try:
        pcscd = subprocess.run(["pcscd", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        pcscd = "?"
    try:
        from importlib.metadata import version

        pyscard = version("pyscard")
    except Exception:
        pyscard = "?"
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pyscard": pyscard,
        "pcscd": pcscd.strip(),
        "load_avg_1m": os.getloadavg()[0],
    }


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'phase':<34}{'quickack':>9}{'n':>5}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}")
    for res in results:
        for name in PHASES:
            s = res["phases"][name]
            print(f"{name:<34}{str(res['quickack']):>9}{s['n']:>5}{s['p50_ms']:>10.2f}{s['p90_ms']:>10.2f}{s['max_ms']:>10.2f}")
        for label, s in res["apdu"].items():
            print(f"  APDU {label:<28}{str(res['quickack']):>9}{s['n']:>5}{s['p50_ms']:>10.2f}{s['p90_ms']:>10.2f}{s['max_ms']:>10.2f}")
        print(f"  APDUs per read: {res['apdus_per_read']:.0f}")
        print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="reads with TCP_QUICKACK")
    parser.add_argument("--slow-runs", type=int, default=8, help="reads without TCP_QUICKACK (0: skip)")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory() as tmp, running_pcscd(Path(tmp) / "pcscd.log"):
            results = [run_mode(True, args.runs)]
            if args.slow_runs:
                results.append(run_mode(False, args.slow_runs))
    except (PcscdNotInstalled, PcscdFailed) as e:
        # Not a benchmark result: say why and let the other benchmarks run.
        print(f"card_bench skipped: {e}")
        return 0
    print_table(results)
    print(json.dumps({"benchmark": "card_read", "machine": machine(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
