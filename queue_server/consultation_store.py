"""Storage of consultations: staff passwords and sessions, the index, handovers, and the audit log.

Tables sit on storage.Base, so Alembic (revision 0004_consultation) and the drift test see them.
Every function takes an Engine and runs its own short transaction; the websocket handlers call
them in a worker thread. The audit table is append-only: the code has no update for it, and the
migration adds a trigger that refuses UPDATE (the retention job may DELETE rows past their time).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
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
    delete,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from .storage import Base


class StaffPasswordRow(Base):
    """An Argon2id hash per staff identifier (local directory). Never the password."""

    __tablename__ = "staff_passwords"
    identifier: Mapped[str] = mapped_column(String(64), primary_key=True)
    hash: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[float] = mapped_column(Float)


class StaffSessionRow(Base):
    """A signed-in session: the SHA-256 of its token, never the token itself."""

    __tablename__ = "staff_sessions"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(64), default="")


class ConsultationRow(Base):
    """相談記録索引: that a consultation happened. No content, no name: a keyed hash of the citizen."""

    __tablename__ = "consultations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    citizen_key: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)
    department: Mapped[str] = mapped_column(String(32))
    consultant: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    consent: Mapped[bool] = mapped_column(Boolean)
    __table_args__ = (Index("ix_consultations_citizen", "citizen_key"), Index("ix_consultations_at", "at"))


class HandoverRow(Base):
    """つなぐシート: a structured handover from one department to another."""

    __tablename__ = "handovers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    consultation: Mapped[str] = mapped_column(ForeignKey("consultations.id"))
    from_department: Mapped[str] = mapped_column(String(32))
    to_department: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    asked: Mapped[str] = mapped_column(String(1000))
    done: Mapped[str] = mapped_column(String(1000))
    needed: Mapped[str] = mapped_column(String(1000))
    documents: Mapped[list] = mapped_column(JSON)
    ticket: Mapped[str | None] = mapped_column(String(36), nullable=True)  # the visit's ticket id, when known
    status: Mapped[str] = mapped_column(String(16))  # open | taken
    taken_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    taken_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_handovers_to", "to_department", "status"), Index("ix_handovers_ticket", "ticket"))


class ConsultationAuditRow(Base):
    """Every search, view and handover: who, when, which record, why. Append-only."""

    __tablename__ = "consultation_audit"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    record_kind: Mapped[str] = mapped_column(String(16), default="")
    record_id: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(64), default="")
    __table_args__ = (Index("ix_consultation_audit_at", "at"),)


# ---------------------------------------------------------------------------- passwords, sessions


def set_password(engine: Engine, identifier: str, hashed: str, now: float) -> None:
    with engine.begin() as c:
        if c.execute(select(StaffPasswordRow.identifier).where(StaffPasswordRow.identifier == identifier)).first():
            c.execute(update(StaffPasswordRow).where(StaffPasswordRow.identifier == identifier)
                      .values(hash=hashed, updated_at=now))
        else:
            c.execute(StaffPasswordRow.__table__.insert().values(identifier=identifier, hash=hashed, updated_at=now))
        # a new password ends every session of that person
        c.execute(delete(StaffSessionRow).where(StaffSessionRow.identifier == identifier))


def password_hash(engine: Engine, identifier: str) -> str | None:
    with engine.connect() as c:
        return c.execute(select(StaffPasswordRow.hash).where(StaffPasswordRow.identifier == identifier)).scalar()


def open_session(engine: Engine, digest: str, identifier: str, now: float, address: str,
                 replaces: str | None = None) -> None:
    """Store a new session; the one it replaces (a token the browser still held) ends in the same step."""
    with engine.begin() as c:
        if replaces:
            c.execute(delete(StaffSessionRow).where(StaffSessionRow.digest == replaces))
        c.execute(StaffSessionRow.__table__.insert().values(digest=digest, identifier=identifier, created_at=now,
                                                           last_seen=now, address=address[:64]))


def get_session(engine: Engine, digest: str) -> dict[str, Any] | None:
    with engine.connect() as c:
        r = c.execute(select(StaffSessionRow).where(StaffSessionRow.digest == digest)).first()
    return dict(r._mapping) if r else None


def touch_session(engine: Engine, digest: str, now: float) -> None:
    with engine.begin() as c:
        c.execute(update(StaffSessionRow).where(StaffSessionRow.digest == digest).values(last_seen=now))


def close_session(engine: Engine, digest: str) -> None:
    with engine.begin() as c:
        c.execute(delete(StaffSessionRow).where(StaffSessionRow.digest == digest))


# ---------------------------------------------------------------------------- index and handovers


def add_consultation(engine: Engine, values: Mapping[str, Any]) -> str:
    cid = str(uuid.uuid4())
    with engine.begin() as c:
        c.execute(ConsultationRow.__table__.insert().values(id=cid, **values))
    return cid


def consultations_for(engine: Engine, citizen_key: str) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(select(ConsultationRow).where(ConsultationRow.citizen_key == citizen_key)
                         .order_by(ConsultationRow.at.desc())).all()
    return [dict(r._mapping) for r in rows]


def consultation(engine: Engine, cid: str) -> dict[str, Any] | None:
    with engine.connect() as c:
        r = c.execute(select(ConsultationRow).where(ConsultationRow.id == cid)).first()
    return dict(r._mapping) if r else None


def add_handover(engine: Engine, values: Mapping[str, Any]) -> str:
    """Store a handover; its open consultation becomes "referred" in the same transaction."""
    hid = str(uuid.uuid4())
    with engine.begin() as c:
        c.execute(HandoverRow.__table__.insert().values(id=hid, status="open", **values))
        c.execute(update(ConsultationRow).where(ConsultationRow.id == values["consultation"],
                                                ConsultationRow.status == "open").values(status="referred"))
    return hid


def handovers(engine: Engine, *, ticket: str | None = None, to_departments: set[str] | None = None,
              open_only: bool = True) -> list[dict[str, Any]]:
    q = select(HandoverRow).order_by(HandoverRow.created_at.desc())
    if open_only:
        q = q.where(HandoverRow.status == "open")
    if ticket is not None:
        q = q.where(HandoverRow.ticket == ticket)
    if to_departments is not None:
        q = q.where(HandoverRow.to_department.in_(sorted(to_departments)))
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(q.limit(200)).all()]


def handover(engine: Engine, hid: str) -> dict[str, Any] | None:
    with engine.connect() as c:
        r = c.execute(select(HandoverRow).where(HandoverRow.id == hid)).first()
    return dict(r._mapping) if r else None


def take_handover(engine: Engine, hid: str, who: str, now: float) -> bool:
    """Close an open handover; False when it was already taken (two consultants at once: one wins)."""
    with engine.begin() as c:
        n = c.execute(update(HandoverRow).where(HandoverRow.id == hid, HandoverRow.status == "open")
                      .values(status="taken", taken_by=who, taken_at=now)).rowcount
    return n == 1


# ---------------------------------------------------------------------------- audit and retention


def audit(engine: Engine, at: float, actor: str, action: str, record_kind: str = "", record_id: str = "",
          reason: str = "", outcome: str = "") -> None:
    with engine.begin() as c:
        c.execute(ConsultationAuditRow.__table__.insert().values(
            at=at, actor=actor[:64], action=action[:32], record_kind=record_kind[:16], record_id=record_id[:64],
            reason=reason[:200], outcome=outcome[:64]))


def audit_entries(engine: Engine, limit: int = 200, actor: str | None = None) -> list[dict[str, Any]]:
    q = select(ConsultationAuditRow).order_by(ConsultationAuditRow.id.desc()).limit(limit)
    if actor:
        q = q.where(ConsultationAuditRow.actor == actor)
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(q).all()]


def purge(engine: Engine, cutoffs: Mapping[str, float], idle_seconds: float) -> dict[str, int]:
    """The retention job: delete what is past its time (cut-offs from consultation.purge_before).

    A handover goes when its own time is past or its consultation goes; an open handover counts
    from its creation. Sessions go once idle past expiry plus the session retention.
    """
    counts: dict[str, int] = {}
    with engine.begin() as c:
        old = select(ConsultationRow.id).where(ConsultationRow.at < cutoffs["consultation"])
        counts["handover"] = c.execute(delete(HandoverRow).where(
            (HandoverRow.consultation.in_(old))
            | ((HandoverRow.status == "taken") & (HandoverRow.taken_at < cutoffs["handover"]))
            | ((HandoverRow.status == "open") & (HandoverRow.created_at < cutoffs["handover"])))).rowcount
        counts["consultation"] = c.execute(delete(ConsultationRow).where(
            ConsultationRow.at < cutoffs["consultation"])).rowcount
        counts["audit"] = c.execute(delete(ConsultationAuditRow).where(
            ConsultationAuditRow.at < cutoffs["audit"])).rowcount
        counts["session"] = c.execute(delete(StaffSessionRow).where(
            StaffSessionRow.last_seen < cutoffs["session"] - idle_seconds)).rowcount
    return counts


def period_rows(engine: Engine, start: float, end: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Index records and handovers created in [start, end), for the KPIs."""
    with engine.connect() as c:
        cons = c.execute(select(ConsultationRow.department, ConsultationRow.consent, ConsultationRow.citizen_key)
                         .where(ConsultationRow.at >= start, ConsultationRow.at < end)).all()
        hand = c.execute(select(HandoverRow.from_department, HandoverRow.to_department, HandoverRow.created_at,
                                HandoverRow.status, HandoverRow.taken_at)
                         .where(HandoverRow.created_at >= start, HandoverRow.created_at < end)).all()
    return [dict(r._mapping) for r in cons], [dict(r._mapping) for r in hand]


def desk_rows(engine: Engine, site: str, start: float, end: float, desks: set[str],
              purposes: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Consultation bookings with a slot in [start, end) and the steps at ``desks`` of tickets issued
    in the period for one of ``purposes`` (the catalogue's consultation purposes), for the desk KPIs."""
    from .storage import ReservationRow, StepRow, TicketRow

    with engine.connect() as c:
        books = c.execute(select(ReservationRow.department, ReservationRow.mode, ReservationRow.ticket,
                                 ReservationRow.cancelled_at)
                          .where(ReservationRow.site == site, ReservationRow.topic.is_not(None),
                                 ReservationRow.slot_start >= start, ReservationRow.slot_start < end)).all()
        steps = c.execute(select(TicketRow.purposes, TicketRow.reserved_for, StepRow.department, StepRow.ready_since,
                                 StepRow.called_at)
                          .join(StepRow, StepRow.ticket == TicketRow.id)
                          .where(TicketRow.site == site, TicketRow.issued_at >= start, TicketRow.issued_at < end,
                                 StepRow.department.in_(sorted(desks)))).all()
    visits = [{"department": r.department, "booked": r.reserved_for is not None,
               "wait": (r.called_at - r.ready_since) / 60 if r.called_at is not None and r.ready_since is not None
               else None}
              for r in steps if purposes & set(r.purposes or [])]
    return [dict(r._mapping) for r in books], visits
