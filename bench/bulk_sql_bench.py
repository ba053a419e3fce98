"""CPU per statement of the writer's rows: ``Connection.execute`` against the compiled path
(queue_server/bulk_sql.py) and the bare driver, on SQLite (issue 20). Prints figures; no limits.

    .venv/bin/python bench/bulk_sql_bench.py [--rows N] [--rounds R]

One event row per statement, inside one transaction per round (the commit is not what is
compared: both paths share it). Run it pinned (``taskset -c 1``) on a quiet machine; rounds
alternate the paths so a slower minute of the machine falls on all of them.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from queue_server.bulk_sql import BulkStatement  # noqa: E402
from queue_server.storage import EventRow, Store  # noqa: E402

ROW = {"site": "honcho", "seq": 0, "at": 1.0, "kind": "called", "ticket": "t1", "step": 0, "counter": 101,
       "actor": "counter:101", "payload": {"number": "1", "department": "shimin"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3000, help="statements per path and round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    store = Store(f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}")
    store.migrate()
    conn = store._writer_connection()
    table = EventRow.__table__
    seq = itertools.count(1)
    compiled = BulkStatement(table.insert(), conn.dialect, list(ROW))
    cursor = conn.connection.driver_connection.cursor()

    def execute() -> None:
        conn.execute(table.insert(), [dict(ROW, seq=next(seq))])

    def bulk() -> None:
        compiled.run(conn, [dict(ROW, seq=next(seq))])

    def driver() -> None:  # the floor: the driver alone, values already in its types
        cursor.execute(compiled.sql, compiled.params([dict(ROW, seq=next(seq))])[0])

    results: dict[str, list[float]] = {"Connection.execute": [], "BulkStatement.run": [], "driver only": []}
    for _ in range(args.rounds):
        for name, f in zip(results, (execute, bulk, driver), strict=True):
            with conn.begin():
                c0 = time.process_time()
                for _ in range(args.rows):
                    f()
                results[name].append((time.process_time() - c0) / args.rows * 1e6)
    print(f"CPU per one-row INSERT of an event (µs), {args.rounds} rounds of {args.rows}:")
    for name, xs in results.items():
        print(f"  {name:20s} " + "  ".join(f"{x:6.1f}" for x in xs))
    # every path must have written its rows (a statement that did nothing would be the fastest)
    written = conn.exec_driver_sql("SELECT count(*) FROM events").scalar()
    print(f"rows written {written} of {3 * args.rounds * args.rows}")


if __name__ == "__main__":
    main()
