#!/usr/bin/env python3
"""Cost of checking one request at the edge: protocol.parse (strict JSON + schema) against the
bare json.loads it replaced, per message type, in microseconds. Prints a table and JSON; never
fails on time.

    .venv/bin/python bench/schema_bench.py [--n 20000] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from queue_server import protocol as P  # noqa: E402

MESSAGES = {
    "hello (counter)": {"type": "hello", "id": 1, "role": "counter", "site": "honcho", "counter": 3,
                        "token": "x" * 24, "staff": "佐藤", "last_seq": 120},
    "issue (with prefill)": {"type": "issue", "id": 3, "purposes": ["death", "certificate"],
                             "answers": {"deceased_age": "82", "deceased_head": "yes", "children_under_18": "no"},
                             "lang": "ja", "idempotency_key": "kiosk-1-65f0a1b2-000001", "assistance": False,
                             "prefill": {"name": "黒桐　幹也", "address": "山形県酒田市本町二丁目2-45",
                                         "birth_date": "1980-02-17", "sex": "1"}},
    "call_next": {"type": "call_next", "id": 17, "idempotency_key": "c3-000017"},
    "add_procedure": {"type": "add_procedure", "id": 9, "department": "shimin", "procedures": ["seal_certificate"],
                      "minutes": 5},
    "help": {"type": "help", "id": 4, "reason": "staff_help"},
    "ping": {"type": "ping", "id": 5},
    "bad: minutes NaN": '{"type":"add_procedure","id":9,"department":"shimin","procedures":["x"],"minutes":NaN}',
    "bad: 20,000 brackets": "[" * 20000 + "]" * 20000,
}


def per_call(fn, raw, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            with contextlib.suppress(P.ProtocolError, ValueError, RecursionError):
                fn(raw)
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    for name, msg in MESSAGES.items():
        raw = msg if isinstance(msg, str) else json.dumps(msg, ensure_ascii=False)
        n = args.n if len(raw) < 1000 else max(50, args.n // 100)
        rows.append({"message": name, "bytes": len(raw.encode()), "json_loads_us": per_call(json.loads, raw, n),
                     "parse_us": per_call(P.parse, raw, n)})
    print(f"{'message':24} {'bytes':>6} {'json.loads µs':>14} {'parse µs':>9} {'extra µs':>10}")
    for r in rows:
        print(f"{r['message']:24} {r['bytes']:6} {r['json_loads_us']:14.2f} {r['parse_us']:9.2f} "
              f"{r['parse_us'] - r['json_loads_us']:10.2f}")
    out = {"python": platform.python_version(), "machine": platform.machine(), "rows": rows}
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
