"""The `issue` reply built as text with its plan encoded once per plan (kiosk_handlers.issue,
plan_preview.plan_text): the same bytes as the reply built as dicts and encoded whole, the plan
the catalogue's, and one encoding shared by every ticket of the same plan."""

from __future__ import annotations

import asyncio
import json

from queue_server import protocol as P
from queue_server.core.journey import plan_to_dict
from queue_server.plan_preview import make_plan, plan_text

from . import writer_support as W

BODY = {"purposes": ["move_in"], "answers": {}, "lang": "ja"}


def _result_text(reply: str) -> str:
    head = '"result":'
    return reply[reply.index(head) + len(head):-1]


def test_the_issue_reply_is_the_reply_built_as_dicts_to_the_byte(tmp_path):
    qs = W.make_server(tmp_path)

    async def day() -> list[str]:
        jobs = [W.job(W.kiosk(), "issue", **BODY, idempotency_key="ir-1"), W.job(W.kiosk(), "issue", **BODY),
                W.job(W.kiosk(), "issue", purposes=["certificate"], answers={}, lang="en")]
        await qs.writer.run_batch(jobs)
        return [j.fut.result() for j in jobs]

    replies = asyncio.run(day())
    for reply, body in zip(replies, [BODY, BODY, {"purposes": ["certificate"], "answers": {}, "lang": "en"}], strict=True):
        text = _result_text(reply)
        result = json.loads(text)
        assert P.dumps(result) == text  # what encoding the dict whole gives, key order included
        assert list(result)[:5] == ["ticket", "route", "plan", "wait_minutes", "visit_minutes"]
        assert list(result)[-1] == "prefilled"
        assert result["plan"] == plan_to_dict(make_plan(qs, body))
        assert result["plan"]["lang"] == body["lang"]
    assert json.loads(replies[0])["result"]["ticket"]["number"] != json.loads(replies[1])["result"]["ticket"]["number"]
    W.assert_same_as_database(qs)


def test_one_plan_is_encoded_once(tmp_path):
    qs = W.make_server(tmp_path)
    plan = make_plan(qs, BODY)
    assert plan_text(qs, plan) is plan_text(qs, make_plan(qs, dict(BODY)))
    other = make_plan(qs, {**BODY, "lang": "en"})
    assert other is not plan and plan_text(qs, other) != plan_text(qs, plan)
    assert json.loads(plan_text(qs, other)) == plan_to_dict(other)
