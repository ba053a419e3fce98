"""Storage shell: SQLAlchemy 2 models and the transactional writes of the lobby.

SQLite (WAL mode) is the embedded default; PostgreSQL by URL. The schema is created and upgraded
by Alembic (queue_server/migrations). Every state change and its event row are written in one
transaction; the server acknowledges only after the commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    null,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .bulk_sql import BulkStatement
from .core.model import Counter, CounterState, Step, StepState, Ticket, TicketState

log = logging.getLogger("madoguchi.server")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT = 30  # seconds a statement waits for another connection's lock
WAL_RESTART_WAIT_MS = 100  # the writer's own log restart waits this long for readers, then tries later


class Base(DeclarativeBase):
    pass


class SiteRow(Base):
    __tablename__ = "sites"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class DepartmentRow(Base):
    __tablename__ = "departments"
    site: Mapped[str] = mapped_column(ForeignKey("sites.key"), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class CounterRow(Base):
    __tablename__ = "counters"
    site: Mapped[str] = mapped_column(ForeignKey("sites.key"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    departments: Mapped[list] = mapped_column(JSON)
    floor: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="closed")
    staff: Mapped[str] = mapped_column(String(100), default="")


class NumberSeqRow(Base):
    """The last ticket number given per site, local day and prefix: numbers are never reused."""

    __tablename__ = "number_seq"
    site: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class TicketRow(Base):
    __tablename__ = "tickets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(32))
    day: Mapped[str] = mapped_column(String(10))
    prefix: Mapped[str] = mapped_column(String(8))
    number: Mapped[int] = mapped_column(Integer)
    purposes: Mapped[list] = mapped_column(JSON)
    lang: Mapped[str] = mapped_column(String(8))
    issued_at: Mapped[float] = mapped_column(Float)
    public_token: Mapped[str] = mapped_column(String(64), unique=True)
    closed: Mapped[str | None] = mapped_column(String(16), nullable=True)
    assistance: Mapped[bool] = mapped_column(Boolean, default=False)
    reserved_for: Mapped[float | None] = mapped_column(Float, nullable=True)
    device: Mapped[str] = mapped_column(String(64), default="")
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    prefilled: Mapped[bool] = mapped_column(Boolean, default=False)  # kept for KPIs after erasure
    # Personal data read from a My Number card: shown only to counter consoles, erased at close.
    prefill: Mapped[dict | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    __table_args__ = (
        UniqueConstraint("site", "day", "prefix", "number", name="uq_ticket_number"),
        Index("ix_tickets_site_day", "site", "day"),
    )


class StepRow(Base):
    __tablename__ = "steps"
    ticket: Mapped[str] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    department: Mapped[str] = mapped_column(String(32))
    procedures: Mapped[list] = mapped_column(JSON)
    after: Mapped[list] = mapped_column(JSON)
    minutes: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    ready_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    counter: Mapped[int | None] = mapped_column(Integer, nullable=True)
    called_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    recalls: Mapped[int] = mapped_column(Integer, default=0)
    rework: Mapped[bool] = mapped_column(Boolean, default=False)


class ReservationRow(Base):
    __tablename__ = "reservations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(32))
    day: Mapped[str] = mapped_column(String(10))
    slot_start: Mapped[float] = mapped_column(Float)
    slot_end: Mapped[float] = mapped_column(Float)
    purposes: Mapped[list] = mapped_column(JSON)
    code: Mapped[str] = mapped_column(String(16))  # check-in code given when booking
    ticket: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # since 0003_bookings: what the citizen answered at home (no name, nothing personal)
    answers: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    lang: Mapped[str | None] = mapped_column(String(8), nullable=True)
    department: Mapped[str | None] = mapped_column(String(32), nullable=True)  # where the place is taken
    created_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    cancelled_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # since 0005_consult_booking: a consultation booking's consultant (staff ID), mode and topic
    consultant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mode: Mapped[str | None] = mapped_column(String(16), nullable=True)  # in_person | online
    topic: Mapped[str | None] = mapped_column(String(64), nullable=True)
    __table_args__ = (UniqueConstraint("site", "day", "code", name="uq_reservation_code"),
                      Index("ix_reservations_site_day", "site", "day"))


class EventRow(Base):
    """The append-only event log: KPIs, wait estimates and calibration read it."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)  # per-site sequence number, as pushed to clients
    at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))
    ticket: Mapped[str | None] = mapped_column(String(36), nullable=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    counter: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(100), default="")
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    __table_args__ = (
        UniqueConstraint("site", "seq", name="uq_event_seq"),
        Index("ix_events_site_at", "site", "at"),
        Index("ix_events_ticket", "ticket"),
    )


class JSONText(str):
    """JSON already encoded: stored as it is in a :class:`StoredJSON` column."""


class StoredJSON(TypeDecorator):
    """A JSON column that also takes :class:`JSONText`, stored without encoding it again.

    The writer keeps an idempotent reply as the text it sends (protocol.encode_result); an
    issue's reply is ~16 KB, and encoding it a second time for its row cost ~0.23 ms of each
    issue's commit. Any other value is encoded as the plain JSON type would; reading gives the
    decoded value either way (the column's type in the database is JSON).
    """

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        encode = self.impl_instance.dialect_impl(dialect).bind_processor(dialect)

        def process(value: Any) -> Any:
            if isinstance(value, JSONText):
                return str(value)  # (a plain str: the driver's own adaptation, cast to JSON in the SQL)
            return encode(value) if encode is not None else value

        return process


class RequestRow(Base):
    """Replies to requests that carried an idempotency key: a retry gets the same reply."""

    __tablename__ = "requests"
    site: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    reply: Mapped[dict] = mapped_column(StoredJSON)  # written as JSONText by the writer
    at: Mapped[float] = mapped_column(Float)


# ---------------------------------------------------------------------------- engine


def default_url(var_dir: str | Path = "var") -> str:
    return f"sqlite:///{Path(var_dir) / 'madoguchi.db'}"


SQLITE_SYNC_VAR = "MADOGUCHI_SQLITE_SYNC"
SQLITE_SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def sqlite_sync_mode() -> str:
    """SQLite's ``synchronous`` mode for the server's database, from MADOGUCHI_SQLITE_SYNC
    (default NORMAL). A value SQLite does not know is refused: SQLite itself takes any unknown
    word as NORMAL, so a typo such as ``FUL`` would silently drop the power-loss durability the
    operator asked for."""
    given = os.environ.get(SQLITE_SYNC_VAR, "NORMAL")
    mode = given.strip().upper()
    if mode in ("0", "1", "2", "3"):
        mode = SQLITE_SYNC_MODES[int(mode)]
    if mode not in SQLITE_SYNC_MODES:
        from .core.problems import ConfigError, Problem

        raise ConfigError([Problem(SQLITE_SYNC_VAR, "environment", f"{given!r} is not a SQLite synchronous mode: "
                                   f"{', '.join(SQLITE_SYNC_MODES)} (or 0–3)")])
    return mode


def make_engine(url: str, sync: str | None = None) -> Engine:
    """An engine; SQLite gets WAL, a busy timeout and foreign keys on every connection, and the
    synchronous mode ``sync`` (default: :func:`sqlite_sync_mode`, read once here)."""
    if url.startswith("sqlite"):
        sync = sync or sqlite_sync_mode()
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode loses nothing when the *process* dies (SIGKILL); FULL would also
            # survive power loss at ~2x the commit cost. Set MADOGUCHI_SQLITE_SYNC=FULL for that.
            cur.execute(f"PRAGMA synchronous={sync}")  # (one of SQLITE_SYNC_MODES: checked)
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


# ---------------------------------------------------------------------------- mapping


def ticket_values(t: Ticket) -> dict[str, Any]:
    return {
        "id": t.id,
        "site": t.site,
        "day": t.day,
        "prefix": t.prefix,
        "number": t.number,
        "purposes": list(t.purposes),
        "lang": t.lang,
        "issued_at": t.issued_at,
        "public_token": t.public_token,
        "closed": t.closed.value if t.closed else None,
        "assistance": t.assistance,
        "reserved_for": t.reserved_for,
        "device": t.device,
        "transfers": t.transfers,
    }


def step_values(ticket_id: str, s: Step) -> dict[str, Any]:
    return {
        "ticket": ticket_id,
        "index": s.index,
        "department": s.department,
        "procedures": list(s.procedures),
        "after": list(s.after),
        "minutes": s.minutes,
        "state": s.state.value,
        "ready_since": s.ready_since,
        "counter": s.counter,
        "called_at": s.called_at,
        "started_at": s.started_at,
        "completed_at": s.completed_at,
        "recalls": s.recalls,
        "rework": s.rework,
    }


def ticket_from_rows(row: TicketRow, steps: Sequence[StepRow]) -> Ticket:
    return Ticket(
        id=row.id,
        site=row.site,
        day=row.day,
        prefix=row.prefix,
        number=row.number,
        purposes=tuple(row.purposes),
        lang=row.lang,
        issued_at=row.issued_at,
        public_token=row.public_token,
        closed=TicketState(row.closed) if row.closed else None,
        assistance=row.assistance,
        reserved_for=row.reserved_for,
        device=row.device,
        transfers=row.transfers,
        steps=tuple(
            Step(
                index=s.index,
                department=s.department,
                procedures=tuple(s.procedures),
                after=tuple(s.after),
                minutes=s.minutes,
                state=StepState(s.state),
                ready_since=s.ready_since,
                counter=s.counter,
                called_at=s.called_at,
                started_at=s.started_at,
                completed_at=s.completed_at,
                recalls=s.recalls,
                rework=s.rework,
            )
            for s in sorted(steps, key=lambda s: s.index)
        ),
    )


# ---------------------------------------------------------------------------- writes


RESERVATION_DEFAULTS: dict[str, Any] = {
    "ticket": None, "answers": {}, "lang": None, "department": None, "created_at": None, "cancelled_at": None,
    "consultant": None, "mode": None, "topic": None,
}


def reservation_row(**fields: Any) -> dict[str, Any]:
    """A reservation as memory holds it: every column load_reservations returns, so memory and a
    fresh load are the same dict whichever path (admin, planning page, consultation) made it."""
    return {**RESERVATION_DEFAULTS, "answers": {}, **fields}  # a fresh dict per row


@dataclass
class Batch:
    """Everything one group commit writes."""

    new_tickets: list[tuple[Ticket, dict | None]] = field(default_factory=list)  # with prefill
    tickets: dict[str, tuple[Ticket | None, Ticket]] = field(default_factory=dict)  # id -> (old, new)
    counters: list[Counter] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    numbers: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (site, day, prefix) -> last
    requests: list[dict[str, Any]] = field(default_factory=list)
    reservations: list[dict[str, Any]] = field(default_factory=list)  # rows to insert or update

    def __bool__(self) -> bool:
        return bool(self.new_tickets or self.tickets or self.counters or self.events or self.requests
                    or self.reservations)


class Store:
    """Reads at start-up and group-committed writes."""

    def __init__(self, url: str):
        self.url = url
        self.sqlite_sync = sqlite_sync_mode() if url.startswith("sqlite") else None  # (read once: writes_inline)
        self.engine = make_engine(url, self.sqlite_sync)
        self.dialect = self.engine.dialect.name
        self._upserts: dict[type, Any] = {}
        self._updates: dict[bool, Any] = {}  # closed? -> the tickets' UPDATE (_ticket_update)
        # (statement, row keys) -> compiled for executemany, or None: that shape takes execute (_run)
        self._bulk: dict[tuple[str, tuple[str, ...]], BulkStatement | None] = {}
        self._writer_conn: Connection | None = None  # kept between writes (_writer_connection)
        self._writer_waits = True  # the writer connection's busy timeout: SQLITE_BUSY_TIMEOUT, or none (inline)
        self._background_checkpoints = False  # queue_server/wal.py: the writer's commits never checkpoint
        self.restart_wal = False  # set by wal.py when the log grew too long: the next write restarts it
        # engine.dispose() means "no connection is kept": the writer's goes too
        event.listen(self.engine, "engine_disposed", lambda _engine: self.close_writer())
        # set by the server to its leader lease's fence (queue_server/leader.py): a write commits only
        # while this server still holds the lock, checked inside the write's own transaction
        self.fence: Any = None

    def migrate(self) -> None:
        migrate(self.engine)

    def _upsert(self, conn: Any, model: type[Base], rows: list[dict], keys: list[str]) -> None:
        """Insert or update rows in one executemany, with one cached statement per table.

        The statement takes its new values from ``excluded`` (both SQLite and PostgreSQL), so its
        shape never changes and SQLAlchemy compiles it once; building a statement per row with
        literal values cost ~3 ms per row and was most of the commit time.
        """
        if not rows:
            return
        stmt = self._upserts.get(model)
        if stmt is None:
            if self.dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            ins = insert(model.__table__)
            cols = [c.name for c in model.__table__.columns if c.name not in keys]
            stmt = self._upserts[model] = ins.on_conflict_do_update(
                index_elements=keys, set_={c: ins.excluded[c] for c in cols}
            )
        # executemany needs the same keys in every row: fill the table's columns
        cols_all = [c.name for c in model.__table__.columns]
        full = [{c: r.get(c) for c in cols_all} for r in rows]
        if isinstance(conn, Connection):
            self._run(conn, f"upsert {model.__tablename__}", lambda: stmt, full)
        else:
            conn.execute(stmt, full)

    def sync_config(self, sites: Iterable[Any]) -> None:
        """Mirror the site config (sites, departments, counters) into the database."""
        with Session(self.engine) as s, s.begin():
            for site in sites:
                self._upsert(s, SiteRow, [{"key": site.key, "name_ja": site.name["ja"], "name_en": site.name["en"]}], ["key"])
                self._upsert(
                    s,
                    DepartmentRow,
                    [
                        {"site": site.key, "key": d, "name_ja": n["ja"], "name_en": n["en"]}
                        for d, n in site.department_names.items()
                    ],
                    ["site", "key"],
                )
                existing = {r.number for r in s.scalars(select(CounterRow).where(CounterRow.site == site.key))}
                for c in site.counters:
                    if c.number in existing:
                        row = s.get(CounterRow, (site.key, c.number))
                        row.departments, row.floor = list(c.departments), c.floor
                    else:
                        s.add(CounterRow(site=site.key, number=c.number, departments=list(c.departments), floor=c.floor))

    def write(self, batch: Batch, wait: bool = True) -> None:
        """One transaction: tickets, steps, counters, numbers, events, idempotent replies.

        Core statements with executemany, not ORM objects: this runs for every group commit.
        ``wait=False`` (a write on the event loop, :meth:`writes_inline`): if another connection
        holds the database's lock, fail at once (cause ``locked``) instead of waiting for it;
        nothing is written then, and the caller writes again with ``wait=True`` off the loop.
        """
        conn = self._writer_connection()
        try:
            if wait != self._writer_waits:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000 if wait else 0}")
                conn.commit()  # (ends the transaction the statement began: the write begins its own)
                self._writer_waits = wait
            with conn.begin():
                self._write(conn, batch)
            if self.restart_wal:  # (committed already: a failure here is only logged)
                self.restart_wal = False
                self._restart_wal(conn)
        except BaseException:
            # a failed write may leave the connection broken (the database restarted, the disk
            # filled mid-commit): the next write takes a fresh one from the pool
            self.close_writer()
            raise

    def _writer_connection(self) -> Connection:
        """The writer's own connection, kept between writes: checking one out of the pool and
        resetting it on return (a ROLLBACK) cost as much as a counter's write itself (with the
        tickets' cached UPDATE, a call's write went from ~0.5 to ~0.25 ms, measured in-process).
        Writes are one at a time (the writer task), so one connection serves them all."""
        if self._writer_conn is None or self._writer_conn.closed or self._writer_conn.invalidated:
            conn = self.engine.connect()
            if self._background_checkpoints:
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                conn.commit()  # (ends the transaction the statement began: each write begins its own)
            self._writer_conn = conn
            self._writer_waits = True  # (the engine's connect argument: SQLITE_BUSY_TIMEOUT)
        return self._writer_conn

    def writes_inline(self) -> bool:
        """Whether a write may run on the event loop itself (``write(batch, wait=False)``) instead
        of in a worker thread: SQLite that never syncs nor checkpoints in a commit. Such a commit
        appends to the WAL in the page cache, a fraction of a millisecond of CPU, while handing it
        to a thread and back cost the loop more than the write itself (issue 20, docs/benchmarks.md:
        ~7 % of the server's CPU at 100 req/s, 0.5 ms of every reply's median).
        FULL or EXTRA sync (an fsync per commit), a WAL that commits may checkpoint (no
        background checkpointer: queue_server/wal.py), a restart of the log due (it waits for
        readers), PostgreSQL (a round trip and the server's fsync): in a thread."""
        if self.dialect != "sqlite" or self.restart_wal:
            return False
        if self.sqlite_sync not in ("NORMAL", "OFF"):
            return False
        return self._background_checkpoints or self.engine.url.database in (None, "", ":memory:")

    # ------------------------------------------------------------------ WAL checkpoints (wal.py)
    def checkpoint_in_background(self) -> bool:
        """From now on the writer's commits leave the SQLite WAL to :meth:`checkpoint` (called
        by queue_server/wal.py); False where there is no WAL file (PostgreSQL, in-memory SQLite)."""
        if self.dialect != "sqlite" or self.engine.url.database in (None, "", ":memory:"):
            return False
        self._background_checkpoints = True
        self.close_writer()  # the next write takes a connection with the pragma set
        return True

    def _restart_wal(self, conn: Connection) -> None:
        """Checkpoint the whole log and start it again from its beginning, from the writer's own
        connection between two writes (wal.py asks for it only when PASSIVE checkpoints beside a
        busy writer never caught up with it: then the log would only grow)."""
        # RESTART waits for readers to leave the log: a long report's read would hold the writer
        # for the whole busy timeout, so it waits briefly and the next long log asks again
        try:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={WAL_RESTART_WAIT_MS}")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)").one()
        except Exception as e:
            log.warning("WAL restart failed (tried again when the log is still long): %s", e)
        finally:
            with contextlib.suppress(Exception):
                conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
                conn.commit()

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL's committed frames into the database file (PASSIVE: never waits for, nor
        holds up, the writer or readers). SQLite's (busy, frames in the WAL, frames copied)."""
        with self.engine.connect() as conn:
            busy, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        return int(busy), int(frames), int(copied)

    def close_writer(self) -> None:
        if self._writer_conn is not None:
            with contextlib.suppress(Exception):
                if not self._writer_waits:
                    # no busy timeout (an inline write's): never back to the pool, where the next
                    # user (the end of day's erase, a report) would fail at once on any lock
                    self._writer_conn.invalidate()
                self._writer_conn.close()
            self._writer_conn = None
            self._writer_waits = True

    def _write(self, conn: Connection, batch: Batch) -> None:
        t_tickets, t_steps = TicketRow.__table__, StepRow.__table__
        if self.fence is not None:
            self.fence(conn)
        if batch.new_tickets:
            self._run(conn, "insert tickets", t_tickets.insert, [
                {**ticket_values(t), "prefill": prefill, "prefilled": prefill is not None}
                for t, prefill in batch.new_tickets
            ])
            self._run(conn, "insert steps", t_steps.insert,
                      [step_values(t.id, st) for t, _ in batch.new_tickets for st in t.steps])
        ticket_updates: list[dict] = []
        step_rows: list[dict] = []
        for old, new in batch.tickets.values():
            values = ticket_values(new)
            if old is None or ticket_values(old) != values:
                ticket_updates.append(values)
            old_steps = {st.index: st for st in old.steps} if old else {}
            step_rows += [step_values(new.id, st) for st in new.steps if old_steps.get(st.index) != st]
        for closed in (False, True):
            rows = [{**v, "ticket_id": v["id"]} for v in ticket_updates if (v["closed"] is not None) is closed]
            if rows:
                self._run(conn, f"update tickets closed={closed}", lambda c=closed, r=ticket_updates[0]: self._ticket_update(c, r),
                          rows)
        self._upsert(conn, StepRow, step_rows, ["ticket", "index"])
        self._run(conn, "update counters", self._counter_update,
                  [{"c_site": c.site, "c_number": c.number, "state": c.state.value, "staff": c.staff}
                   for c in batch.counters])
        self._upsert(
            conn,
            NumberSeqRow,
            [{"site": k[0], "day": k[1], "prefix": k[2], "last": v} for k, v in batch.numbers.items()],
            ["site", "day", "prefix"],
        )
        self._run(conn, "insert events", EventRow.__table__.insert, batch.events)
        self._run(conn, "insert requests", RequestRow.__table__.insert, batch.requests)
        self._upsert(conn, ReservationRow, batch.reservations, ["id"])

    def _run(self, conn: Connection, name: str, build: Callable[[], Any], rows: list[dict]) -> None:
        """Execute the statement ``build()`` for ``rows`` (executemany), compiled once per shape of
        row (queue_server/bulk_sql.py). Rows of mixed shapes, or a shape the compiled path cannot
        take (a column left to its default), go through ``Connection.execute`` as before."""
        if not rows:
            return
        first = rows[0].keys()
        keys = tuple(first)
        if any(r.keys() != first for r in rows):
            conn.execute(build(), rows)
            return
        cached = self._bulk.get((name, keys), False)
        if cached is False:
            try:
                cached = BulkStatement(build(), conn.dialect, keys)
            except ValueError:
                cached = None
            self._bulk[(name, keys)] = cached
        if cached is None:
            conn.execute(build(), rows)
        else:
            cached.run(conn, rows)

    @staticmethod
    def _counter_update() -> Any:
        t = CounterRow.__table__
        return (t.update().where(t.c.site == bindparam("c_site"), t.c.number == bindparam("c_number"))
                .values(state=bindparam("state"), staff=bindparam("staff")))

    def _ticket_update(self, closed: bool, sample: dict[str, Any]) -> Any:
        """The UPDATE of a ticket's row from ticket_values (``sample``: one of its rows; one cached
        statement, executemany); a closed ticket's also drops its card data: personal data goes
        when the visit ends."""
        stmt = self._updates.get(closed)
        if stmt is None:
            t = TicketRow.__table__
            values: dict[str, Any] = {c: bindparam(c) for c in sample if c != "id"}
            if closed:
                values["prefill"] = null()  # SQL NULL in the text: no parameter the rows must hold
            stmt = self._updates[closed] = t.update().where(t.c.id == bindparam("ticket_id")).values(values)
        return stmt

    def probe(self) -> None:
        """Try a write like the ones a ticket needs and roll it back; raise what a commit would.

        /healthz uses it to see that storage works again after a failure, before any citizen
        has to try: an event row is inserted (new pages on a full disk fail) and never kept.
        """
        with self.engine.connect() as conn:
            tx = conn.begin()
            try:
                conn.execute(EventRow.__table__.insert(), [{
                    "site": "~probe", "seq": -1, "at": 0.0, "kind": "probe", "actor": "healthz",
                    "payload": {"pad": "x" * 2000},
                }])
            finally:
                tx.rollback()

    # ------------------------------------------------------------------ reads
    def load_tickets(self, site: str, day: str) -> list[Ticket]:
        with Session(self.engine) as s:
            rows = s.scalars(select(TicketRow).where(TicketRow.site == site, TicketRow.day == day)).all()
            ids = [r.id for r in rows]
            steps: dict[str, list[StepRow]] = {i: [] for i in ids}
            for chunk in range(0, len(ids), 500):
                for st in s.scalars(select(StepRow).where(StepRow.ticket.in_(ids[chunk : chunk + 500]))):
                    steps[st.ticket].append(st)
            return [ticket_from_rows(r, steps[r.id]) for r in rows]

    def load_counters(self, site: str) -> list[Counter]:
        with Session(self.engine) as s:
            return [
                Counter(site, r.number, frozenset(r.departments), r.floor, CounterState(r.state), r.staff)
                for r in s.scalars(select(CounterRow).where(CounterRow.site == site))
            ]

    def last_number(self, site: str, day: str, prefix: str) -> int:
        with Session(self.engine) as s:
            row = s.get(NumberSeqRow, (site, day, prefix))
            return row.last if row else 0

    def last_numbers(self, site: str, day: str) -> dict[str, int]:
        with Session(self.engine) as s:
            return {r.prefix: r.last for r in s.scalars(select(NumberSeqRow).where(NumberSeqRow.site == site, NumberSeqRow.day == day))}

    def last_seq(self, site: str) -> int:
        from sqlalchemy import func

        with Session(self.engine) as s:
            return s.scalar(select(func.max(EventRow.seq)).where(EventRow.site == site)) or 0

    def events_since(self, site: str, seq: int, limit: int = 10000) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(
                select(EventRow).where(EventRow.site == site, EventRow.seq > seq).order_by(EventRow.seq).limit(limit)
            ).all()
            return [event_dict(r) for r in rows]

    def calls_since(self, site: str, seq: int, since_at: float, limit: int) -> list[dict[str, Any]]:
        """Call events (called, recalled) after ``seq`` and at or after ``since_at``, oldest first:
        one page of a board's replay."""
        with Session(self.engine) as s:
            rows = s.scalars(
                select(EventRow)
                .where(EventRow.site == site, EventRow.seq > seq, EventRow.at >= since_at,
                       EventRow.kind.in_(("called", "recalled")))
                .order_by(EventRow.seq)
                .limit(limit)
            ).all()
            return [event_dict(r) for r in rows]

    def count_events(self, site: str, after: int, upto: int) -> int:
        """How many events the log holds with ``after < seq <= upto`` (a full log: upto - after)."""
        from sqlalchemy import func

        with Session(self.engine) as s:
            return s.scalar(select(func.count()).select_from(EventRow).where(
                EventRow.site == site, EventRow.seq > after, EventRow.seq <= upto)) or 0

    def recent_calls(self, site: str, day: str, limit: int = 20) -> list[dict[str, Any]]:
        """The latest call events (newest first), to refill the board's history after a restart."""
        with Session(self.engine) as s:
            rows = s.scalars(
                select(EventRow)
                .join(TicketRow, TicketRow.id == EventRow.ticket)
                .where(EventRow.site == site, EventRow.kind == "called", TicketRow.day == day)
                .order_by(EventRow.seq.desc())
                .limit(limit)
            ).all()
            return [event_dict(r) for r in rows]

    def ticket_events(self, site: str, day: str, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        """Events of these kinds about ``day``'s tickets, oldest first (e.g. the print failures
        that flag a ticket "not printed" after a restart)."""
        with Session(self.engine) as s:
            rows = s.scalars(
                select(EventRow)
                .join(TicketRow, TicketRow.id == EventRow.ticket)
                .where(EventRow.site == site, EventRow.kind.in_(kinds), TicketRow.day == day)
                .order_by(EventRow.seq)
            ).all()
            return [event_dict(r) for r in rows]

    def load_reservations(self, site: str, day: str) -> list[dict[str, Any]]:
        """Bookings of ``day`` and every later day (bookings are made days ahead)."""
        with Session(self.engine) as s:
            rows = s.scalars(select(ReservationRow).where(ReservationRow.site == site, ReservationRow.day >= day))
            return [
                {"id": r.id, "site": r.site, "day": r.day, "slot_start": r.slot_start, "slot_end": r.slot_end,
                 "purposes": list(r.purposes), "code": r.code, "ticket": r.ticket, "answers": r.answers or {},
                 "lang": r.lang, "department": r.department, "created_at": r.created_at,
                 "cancelled_at": r.cancelled_at, "consultant": r.consultant, "mode": r.mode, "topic": r.topic}
                for r in rows
            ]

    def recent_requests(self, site: str, since: float) -> dict[str, dict]:
        with Session(self.engine) as s:
            rows = s.scalars(select(RequestRow).where(RequestRow.site == site, RequestRow.at >= since))
            return {r.key: r.reply for r in rows}

    def request_reply(self, site: str, key: str) -> dict | None:
        with Session(self.engine) as s:
            row = s.get(RequestRow, (site, key))
            return row.reply if row else None

    def prefill(self, ticket_id: str) -> dict | None:
        with Session(self.engine) as s:
            row = s.get(TicketRow, ticket_id)
            return row.prefill if row else None

    def erase_prefill_before(self, site: str, day: str) -> int:
        """End-of-day erasure: personal data of any earlier day's ticket goes, closed or not."""
        with Session(self.engine) as s, s.begin():
            return s.query(TicketRow).filter(
                TicketRow.site == site, TicketRow.day < day, TicketRow.prefill.is_not(None)
            ).update({"prefill": None})


# ---------------------------------------------------------------------------- failures

#: Causes of a failed write, as /metrics counts them and the log names them.
STORAGE_CAUSES = ("disk_full", "locked", "constraint", "connection", "leadership", "other")
#: Causes that would fail any write now (not one request's rows): the writer does not retry
#: request by request, /healthz turns unhealthy and kiosks stop issuing until a write succeeds.
SYSTEMIC_CAUSES = frozenset({"disk_full", "locked", "connection", "leadership"})

_PG_STATES = (("23", "constraint"), ("53", "disk_full"), ("55P03", "locked"), ("40P01", "locked"),
              ("40001", "locked"), ("08", "connection"), ("57P", "connection"))
_MESSAGES = (
    ("database or disk is full", "disk_full"),
    ("no space left on device", "disk_full"),
    ("could not extend file", "disk_full"),
    ("disk i/o error", "disk_full"),
    ("database is locked", "locked"),
    ("database table is locked", "locked"),
    ("lock timeout", "locked"),
    ("deadlock", "locked"),
    ("constraint", "constraint"),
    ("duplicate key", "constraint"),
    ("unable to open database", "connection"),
    ("server closed the connection", "connection"),
    ("connection refused", "connection"),
    ("terminating connection", "connection"),
)


def error_cause(exc: BaseException) -> str:
    """Why a write failed: ``disk_full``, ``locked``, ``constraint``, ``connection`` or ``other``.

    From the driver's own exception (SQLAlchemy wraps it in ``.orig``): PostgreSQL's SQLSTATE
    where there is one, else the message SQLite and psycopg give ("database or disk is full",
    "database is locked", "UNIQUE constraint failed", …).
    """
    from sqlalchemy import exc as sa_exc

    declared = getattr(exc, "storage_cause", None)
    if declared in STORAGE_CAUSES:
        return declared
    if any(c.__name__ == "LeadershipLost" for c in type(exc).__mro__):  # the leader lock's fence refused
        return "leadership"
    orig = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str):
        for prefix, cause in _PG_STATES:
            if state.startswith(prefix):
                return cause
    text = str(orig).lower()
    for needle, cause in _MESSAGES:
        if needle in text:
            return cause
    if isinstance(exc, sa_exc.IntegrityError):
        return "constraint"
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "connection"
    return "other"


def event_dict(r: EventRow) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "site": r.site,
        "at": r.at,
        "kind": r.kind,
        "ticket": r.ticket,
        "step": r.step,
        "counter": r.counter,
        "actor": r.actor,
        "payload": r.payload if isinstance(r.payload, dict) else json.loads(r.payload or "{}"),
    }


# The consultation tables (staff sessions, index, handovers, audit) live in their own module on the
# same Base, so Alembic and the drift test see them; imported last because it imports Base from here.
from . import consultation_store as _consultation_store  # noqa: E402, F401
