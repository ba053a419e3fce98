"""The personal list of an issued ticket, for the phone page and the console's A4 booklet.

Built from the ticket's own steps (department, procedure ids, state) and the public catalogue, so it
survives a server restart and carries nothing personal: names, deadlines, documents and online
alternatives of the procedures, in the language asked for, with each step's state as
``done`` / ``now`` / ``next`` / ``skipped``. Pure; ``http_reply`` is the thin shell for
``GET /status/list.json?t=<public token>&lang=xx`` (the same unguessable token as the phone page).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .core.i18n import LANGUAGES, pick
from .core.model import StepState

STATE = {StepState.DONE: "done", StepState.CALLED: "now", StepState.SERVING: "now",
         StepState.READY: "next", StepState.PENDING: "next", StepState.NO_SHOW: "skipped",
         StepState.CANCELLED: "skipped"}


def _deadline(catalogue: Any, proc: Any, lang: str) -> str | None:
    if not proc.deadline:
        return None
    d = catalogue.deadlines[proc.deadline]
    text = pick(d.text, lang)
    return f"{text}（{pick(catalogue.labels['estimate'], lang)}）" if d.estimate else text


def visit_list(catalogue: Any, ticket: Any, department_names: Mapping[str, Mapping[str, str]], lang: str) -> dict:
    """Steps in the ticket's order with their procedures and state; unknown ids are shown as ids."""
    lang = lang if lang in LANGUAGES else "ja"
    steps = []
    for s in ticket.steps:
        procs = []
        for pid in s.procedures:
            p = catalogue.procedures.get(pid) if catalogue is not None else None
            if p is None:  # added at a counter under a free name
                procs.append({"id": pid, "name": pid, "deadline": None, "documents": [], "alternative": None})
                continue
            alt = None
            if p.alternative:
                a = catalogue.alternatives[p.alternative]
                alt = {"text": pick(a.text, lang), "url": catalogue.url(a.path)}
            procs.append({
                "id": pid, "name": pick(p.name, lang), "deadline": _deadline(catalogue, p, lang),
                "documents": [pick(catalogue.documents[d].name, lang) for d in p.documents if d in catalogue.documents],
                "alternative": alt,
            })
        names = department_names.get(s.department, {})
        steps.append({"department": s.department, "name": dict(names), "state": STATE[s.state], "procedures": procs})
    # "next" only for the first step still waiting; the later ones are "later"
    seen_next = any(x["state"] == "now" for x in steps)
    for x in steps:
        if x["state"] == "next":
            if seen_next:
                x["state"] = "later"
            seen_next = True
    return {"number": ticket.label, "lang": lang, "closed": ticket.closed is not None, "steps": steps}


def http_reply(server: Any, query: Mapping[str, str]) -> tuple[int, bytes]:
    """(status, JSON body) for the phone page's list request."""
    token = query.get("t", "")
    for key, hub in server.hubs.items():
        if query.get("site") and query["site"] != key:
            continue
        tid = hub.by_token.get(token)
        if tid is not None and tid in hub.lobby.tickets:
            t = hub.lobby.tickets[tid]
            body = visit_list(server.catalogue, t, hub.config.department_names, query.get("lang") or t.lang)
            return 200, json.dumps(body, ensure_ascii=False).encode()
    return 404, json.dumps({"error": "no ticket with that status token today"}).encode()
