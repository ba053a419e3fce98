"""The typed result of a card read: the basic four items (基本4情報) and nothing else."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field


class Sex(enum.Enum):
    """The sex code of EF 0002 (ASCII digit, as on the 住民票)."""

    UNKNOWN = "0"
    MALE = "1"
    FEMALE = "2"
    NOT_APPLICABLE = "9"

    @property
    def message_key(self) -> str:
        """Key of the label shown on the consent screen."""
        return f"card.sex.{self.name.lower()}"


@dataclass(frozen=True)
class CardRecord:
    """Name, address, birth date and sex read from the card-info input support AP.

    Personal data: every field is left out of ``repr`` (and so of ``str``, f-strings in log lines
    and pytest's assertion rewriting), so an accidental ``log.debug(record)`` leaks nothing.
    Read the attributes explicitly where they are needed (consent screen, ticket payload).
    """

    name: str = field(repr=False)
    address: str = field(repr=False)
    birth_date: dt.date = field(repr=False)
    sex: Sex = field(repr=False)

    @property
    def family_name(self) -> str:
        """The part of ``name`` before the ideographic space (the whole name if there is none)."""
        return self.name.partition("\u3000")[0]

    @property
    def given_name(self) -> str:
        """The part of ``name`` after the first ideographic space ('' if there is none)."""
        return self.name.partition("\u3000")[2]

    def to_payload(self) -> dict[str, str]:
        """Plain JSON-able dict for the ticket's prefill (sent to the server only after consent)."""
        return {
            "name": self.name,
            "address": self.address,
            "birth_date": self.birth_date.isoformat(),
            "sex": self.sex.value,
        }

    def __repr__(self) -> str:
        return "CardRecord(<personal data hidden>)"

    __str__ = __repr__
