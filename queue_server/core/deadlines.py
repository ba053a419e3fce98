"""Deadlines as data: a number of days, months or years from a named event, rendered per language.

A deadline in the catalogue is never free text. It names its *event* (the death, the birth, the
move…), its *kind* (``within`` N units of the event, ``lapses`` after N units with no deadline
before that, ``before_or_within`` N units after, ``before`` the event, ``asap`` or ``none``) and one amount. The text a
citizen reads is rendered from one template per kind and language (``[deadline_templates]``) with
the event's name (``[events.*]``) and the unit (``[units.*]``). So a 児童手当 deadline after a death
cannot print "出生日・転入日の翌日から": the event is data, and check-config verifies that every
procedure's deadline counts from an event of its own purpose. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

Texts = Mapping[str, str]

KINDS = ("within", "lapses", "before_or_within", "before", "asap", "none")
AMOUNT_KINDS = frozenset({"within", "lapses", "before_or_within"})  # these take days, months or years
EVENT_KINDS = AMOUNT_KINDS | {"before"}  # these name an event
UNITS = ("days", "months", "years")
_FIELD = re.compile(r"\{(event|n|unit)\}")


@dataclass(frozen=True)
class DeadlineRule:
    """The data of one deadline: what it counts from and how long."""

    kind: str
    event: str | None = None
    amount: int | None = None
    unit: str | None = None  # one of UNITS


def render(rule: DeadlineRule, lang: str, templates: Mapping[str, Texts], events: Mapping[str, Texts],
           units: Mapping[str, Texts], note: Texts | None = None) -> str:
    """The deadline in ``lang``; raises KeyError for a missing template, event or unit text.

    Templates take ``{event}``, ``{n}`` and ``{unit}``; ``note`` (e.g. what is lost when late)
    follows the rendered text.
    """
    template = templates[rule.kind][lang]
    fields: dict[str, object] = {}
    if rule.kind in EVENT_KINDS:
        fields["event"] = events[rule.event or ""][lang]
    if rule.kind in AMOUNT_KINDS:
        fields |= {"n": rule.amount, "unit": units[rule.unit or ""][lang]}
    # Only the three fields are replaced: templates may hold ruby markup such as {以内|いない}.
    text = _FIELD.sub(lambda m: str(fields[m.group(1)]), template)
    if note and note.get(lang):
        # やさしい日本語 keeps one idea per sentence: the note starts a new one.
        sep = "。" if lang == "ja-easy" and not text.endswith(("。", "）")) else " "
        text = f"{text}{sep}{note[lang]}"
    return text
