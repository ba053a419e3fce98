"""Which number series a ticket draws from: certificates, consultations, bookings and life events
each have their own prefix (site.toml ``[numbering]``), so a board shows at a glance which queue a
number belongs to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# the purposes that have a series of their own; every other purpose is a life event
_PURPOSE_KIND = {"certificate": "certificate", "consultation": "consultation"}


def ticket_kind(purposes: Sequence[str], reserved: bool) -> str:
    """The number series of a ticket: "reservation" for a booked visit, else by its first purpose."""
    if reserved:
        return "reservation"
    return _PURPOSE_KIND.get(purposes[0], "life_event") if purposes else "life_event"


def number_prefix(numbering: Mapping[str, str], kind: str) -> str:
    """The prefix of a series ("" when the site gives it none)."""
    return numbering.get(kind, "")
