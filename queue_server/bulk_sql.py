"""A Core statement compiled once and run with the driver's executemany: the writer's hot path.

Every group commit runs four to seven statements (tickets, steps, numbers, events, idempotent
replies). Through ``Connection.execute`` each one costs SQLAlchemy 80–120 µs of CPU before the
driver sees it (a cache key, an execution context, the parameters walked through the compiled
statement), where the driver itself takes ~15 µs; ``Connection.exec_driver_sql`` with the SQL
compiled once costs ~28 µs (bench/bulk_sql_bench.py). The commit runs while requests queue
behind it (issue 20), so that difference is latency as well as CPU.

Nothing is bypassed that the writes rely on: the SQL is SQLAlchemy's own for this dialect (the
upserts' ON CONFLICT, the quoting of ``index``), each value goes through its column type's own
bind processor (JSON serialised as ``Connection.execute`` would, ``none_as_null`` included), and
the statement runs on the same connection and transaction, with SQLAlchemy's events and its
wrapping of driver errors. tests/queue_server/test_bulk_sql.py holds the rows it writes equal to
those ``Connection.execute`` writes, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement


class BulkStatement:
    """``stmt`` compiled for ``dialect`` for rows with the keys ``keys`` (an INSERT's columns; an
    UPDATE's bind parameters); :meth:`run` executes it for a list of such rows."""

    def __init__(self, stmt: ClauseElement, dialect: Dialect, keys: Sequence[str]):
        # an INSERT takes its columns from the rows; an UPDATE names its own parameters (bindparam)
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if getattr(stmt, "is_insert", False) else None)
        self.sql = compiled.string
        self.positional = bool(dialect.positional)
        names = list(compiled.positiontup or ()) if self.positional else list(dict.fromkeys(compiled.bind_names.values()))
        wanted = set(keys)
        for name in names:
            if name not in wanted:
                # a column default SQLAlchemy would fill, or a bind name it had to escape: this
                # path would get it wrong, so it refuses to start (a test builds every statement)
                raise ValueError(f"{name!r} is a parameter of {self.sql!r} that the rows do not hold")
        self.processors: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names
        ]

    def params(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The driver's parameters for ``rows``: tuples in the SQL's order, or dicts by name."""
        procs = self.processors
        if self.positional:
            return [tuple(r[n] if p is None else p(r[n]) for n, p in procs) for r in rows]
        return [{n: r[n] if p is None else p(r[n]) for n, p in procs} for r in rows]

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            conn.exec_driver_sql(self.sql, self.params(rows))
