"""The clients' index (queue_server/clients.py) and the plan cache (plan_preview.make_plan)."""

from __future__ import annotations

import pytest

from queue_server import plan_preview
from queue_server.clients import Clients
from queue_server.jobs import Client, Reply
from queue_server.plan_preview import _plans, make_plan
from queue_server.pushes import audience_of

from .writer_support import make_server


def client(role: str = "", site: str = "", **kw) -> Client:
    return Client(ws=None, role=role, site=site, **kw)  # type: ignore[arg-type]


def test_a_client_is_found_by_site_and_role_only_once_placed_and_until_it_leaves():
    cs = Clients()
    board, console, phone = client(), client(), client()
    for c in (board, console, phone):
        cs.add(c)
    assert len(cs) == 3 and cs.of("honcho", "display") == []  # no hello yet: in no audience
    board.role, board.site = "display", "honcho"
    console.role, console.site, console.counter = "counter", "honcho", 3
    phone.role, phone.site, phone.ticket = "public", "yawata", "t-1"
    for c in (board, console, phone):
        cs.placed(c)
    assert cs.of("honcho", "display") == [board]
    assert cs.of("honcho", "display", "counter") == [board, console]
    assert cs.of("yawata", "display") == [] and cs.watching("t-1") == [phone] and cs.watching("t-2") == []
    cs.discard(console)
    assert cs.of("honcho", "counter") == [] and console not in cs and list(cs) and len(cs) == 2
    cs.discard(console)  # twice: nothing to do
    cs.discard(phone)
    assert cs.watching("t-1") == [] and set(cs) == {board}


def test_a_client_that_left_before_its_hello_finished_is_not_indexed():
    cs = Clients()
    c = client("display", "honcho")
    cs.placed(c)  # never added (its connection closed first)
    assert cs.of("honcho", "display") == []


def test_audiences_are_the_clients_of_the_site_that_want_them(tmp_path):
    qs = make_server(tmp_path)
    board, admin, console = client("display", "honcho"), client("admin", "honcho"), client("counter", "honcho", counter=1)
    other_board, kiosk = client("display", "yawata"), client("kiosk", "honcho", device="k1")
    phone, other_phone = client("public", "honcho", ticket="t1"), client("public", "yawata", ticket="t1")
    everyone = (board, admin, console, other_board, kiosk, phone, other_phone)
    for c in everyone:
        qs.clients.add(c)
        qs.clients.placed(c)
    assert audience_of(qs, "honcho", "boards") == [board, admin]
    assert audience_of(qs, "honcho", "counters") == [console, admin]
    assert audience_of(qs, "honcho", "ticket:t1") == [phone]
    assert audience_of(qs, "honcho", "kiosk:k1") == [kiosk] and audience_of(qs, "honcho", "kiosk:k2") == []
    assert audience_of(qs, "honcho", "kiosk") == [kiosk] and audience_of(qs, "yawata", "boards") == [other_board]


def test_plans_are_cached_per_purposes_answers_and_language_and_refusals_are_not(tmp_path, monkeypatch):
    qs = make_server(tmp_path)
    a = make_plan(qs, {"purposes": ["certificate"], "answers": {}, "lang": "ja"})
    assert make_plan(qs, {"purposes": ["certificate"], "answers": {}, "lang": "ja"}) is a
    en = make_plan(qs, {"purposes": ["certificate"], "answers": {}, "lang": "en"})
    assert en is not a and en.lang == "en"
    with pytest.raises(Reply):
        make_plan(qs, {"purposes": ["no-such-event"], "answers": {}})
    assert all(k[0] != ("no-such-event",) for k in _plans(qs))
    monkeypatch.setattr(plan_preview, "PLAN_CACHE", 2)
    for lang in ("zh", "ko", "vi", "pt"):  # many kinds of request: the cache stays bounded
        make_plan(qs, {"purposes": ["certificate"], "answers": {}, "lang": lang})
        assert len(_plans(qs)) <= 2
