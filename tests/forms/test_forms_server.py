"""書かない窓口 over the real server: the forms of the seed's 死亡① visit filled from the card, the
values typed once and seen by the next department, and nothing of them left anywhere after the
visit closes (database and WAL after a checkpoint, server log, board and phone traffic).

The card data is sent in the issue request here, to test the protocol itself (refusals, the audit,
/metrics); tests/kiosk/test_forms_card_walk.py walks the same visit from the virtual card read by
the Kivy kiosk through pcscd, with the console and forms pages in chromium."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request

import pytest

from printers.procedure_list import render_list_bytes
from tests.printers.escpos_reader import parse
from tests.support.live_server import Client, LiveServer

PREFILL = {"name": "黒桐　幹也", "address": "山形県酒田市本町二丁目2番45号", "birth_date": "19800217", "sex": "1"}
# 死亡① (seed §5, tests/fixtures/plan_cases.toml)
DEATH_1 = {
    "death_filed": "no", "deceased_age": "80", "deceased_head": "yes", "household_remaining": "3",
    "deceased_pension": "basic_only", "children_under_18": "no", "had_my_number_card": "no",
    "seal_registered": "yes", "disability_certificate": "yes", "owned_real_estate": "yes", "owned_moped": "yes",
    "owned_car": "no", "tax_account_transfer": "yes", "water_contract": "yes", "inherited_farmland": "no",
    "elderly_pass": "no", "household_on_nhi": "no", "high_medical_costs": "no", "deceased_income_return": "no",
    "proxy": "no",
}
# values no other test uses, so finding their bytes anywhere means they leaked
TYPED = {"deceased_name": "鳥海　漏洩太郎", "date_of_death": "令和8年11月27日", "bank_account": "荘内銀行 本店 普通 9876543"}
COUNTER_FOR = {"shimin": 1, "hoken_nenkin": 5, "kaigo": 6, "shogai": 12, "zeimu": 10, "nouzei": 10, "suido": 11}


@pytest.fixture
def live(tmp_path):
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml",
                     log_level="DEBUG").start()
    yield srv
    srv.kill()


async def _open(live, role, **kw):
    c, r = await Client.open(live.url, role=role, site="honcho", **kw)
    assert "result" in r, r
    return c


def _fields(form: dict) -> dict[str, dict]:
    return {f["id"]: f for f in form["fields"]}


def test_death_1_forms_filled_once_shared_by_departments_and_gone_after_close(live, tmp_path):
    async def scenario():
        k = await _open(live, "kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"])
        board = await _open(live, "display", device="board-1", token=live.tokens().roles["display"])
        issued = await k.ok("issue", purposes=["death"], answers=DEATH_1, lang="ja", idempotency_key="forms-1",
                            prefill=PREFILL)
        tid = issued["ticket"]["id"]
        # the list the kiosk prints after the ticket, from this very reply (kiosk/app.py hook)
        roll = parse(render_list_bytes(issued, "ja", "kanji", 576))
        printed = "\n".join(t.text for t in roll.texts)
        assert "世帯主変更届" in printed and "葬祭費" in printed and "期限：" in printed
        assert PREFILL["name"] not in printed  # the list carries no card data
        phone = await _open(live, "public", ticket=issued["ticket"]["public_token"])
        counters = {}
        for n in sorted(set(COUNTER_FOR.values())):
            tok = live.tokens().counters["honcho"][n]
            counters[n] = await _open(live, "counter", counter=n, token=tok, staff=f"職員{n}")
            await counters[n].ok("open")
        shimin, hoken = counters[1], counters[5]
        # a counter without the ticket sees nothing
        r = await shimin.request("forms")
        assert r["error"]["code"] == "no_current_ticket"
        await shimin.ok("call", ticket=tid)
        await shimin.ok("start")
        got = await shimin.ok("forms")
        assert [f["id"] for f in got["forms"]] == ["juumin_idou", "inkan_haishi"]
        assert {"kouki_soushitsu", "sousaihi", "kaigo_soushitsu", "kouza_furikae"} <= {f["id"] for f in got["other_forms"]}
        juumin = _fields(got["forms"][0])
        assert juumin["informant_name"]["value"] == PREFILL["name"] and not juumin["informant_name"]["missing"]
        assert juumin["informant_address"]["value"] == PREFILL["address"]
        assert juumin["remaining"]["value"] == "3"  # from the kiosk answers
        assert juumin["deceased_name"]["missing"] and juumin["deceased_name"]["value"] == ""
        # bad input: a key no form asks for is refused, naming it
        bad = await shimin.request("form_values", values={"favourite_colour": "blue"})
        assert bad["error"]["code"] == "bad_field" and "favourite_colour" in bad["error"]["message"]
        # typed once at 市民課
        got = await shimin.ok("form_values", values=TYPED)
        for f in got["forms"]:
            assert _fields(f)["deceased_name"]["value"] == TYPED["deceased_name"]
        await shimin.ok("forms_printed", forms=["juumin_idou", "inkan_haishi"])
        audit = got["audit"]
        assert audit[-1]["action"] == "entered" and audit[-1]["staff"] == "職員1"
        assert TYPED["deceased_name"] not in json.dumps(audit, ensure_ascii=False)  # keys, never values
        await shimin.ok("complete")
        # the next department sees the same values without typing
        await hoken.ok("call", ticket=tid)
        got = await hoken.ok("forms")
        assert [f["id"] for f in got["forms"]] == ["kouki_soushitsu", "sousaihi"]
        sousaihi = _fields(got["forms"][1])
        assert sousaihi["deceased_name"]["value"] == TYPED["deceased_name"]
        assert sousaihi["bank_account"]["value"] == TYPED["bank_account"]
        assert sousaihi["applicant_birth"]["value"] == "1980年2月17日"
        assert sousaihi["funeral_date"]["missing"]
        assert [a["action"] for a in got["audit"]][-1] == "read" and got["audit"][-1]["staff"] == "職員5"
        assert any(a["staff"] == "職員1" for a in got["audit"])  # who entered them is shown
        await hoken.ok("start")
        await hoken.ok("complete")
        # walk the rest of the route until the visit closes
        for _ in range(10):
            snap = None
            for c in counters.values():
                r = await c.request("call", ticket=tid)
                if "result" in r:
                    await c.ok("start")
                    snap = await c.ok("complete")
                    break
            if snap is None or snap["ticket"]["state"] == "done":
                break
        assert snap is not None and snap["ticket"]["state"] == "done", snap
        # erased at close (forms_api.FormsDesk.prune; tested in test_forms.py): no counter holds it now
        assert (await shimin.request("forms"))["error"]["code"] == "no_current_ticket"
        metrics = await asyncio.to_thread(lambda: urllib.request.urlopen(f"{live.http}/metrics").read().decode())
        assert 'madoguchi_forms_visits{kind="printed"} 1' in metrics
        assert 'madoguchi_forms_fields{origin="typed"}' in metrics
        traffic = json.dumps(board.pushes + phone.pushes, ensure_ascii=False)
        for c in [k, board, phone, *counters.values()]:
            await c.close()
        return traffic

    traffic = asyncio.run(scenario())
    assert traffic  # the board and phone did get pushes
    for v in [*TYPED.values(), PREFILL["name"], PREFILL["address"]]:
        assert v not in traffic
    live.stop()  # SIGTERM: the server closes its database
    db = tmp_path / "lobby.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("lobby.db")]
    blob = b"".join(p.read_bytes() for p in files)
    log = "".join(live.log)
    for v in TYPED.values():
        assert v.encode() not in blob, f"{v} found in {[p.name for p in files]}"
        assert v not in log
    for v in (PREFILL["name"], PREFILL["address"]):  # the card values too: erased at close
        assert v.encode() not in blob, f"{v} found in {[p.name for p in files]}"
        assert v not in log


def test_forms_are_refused_to_roles_other_than_counter(live):
    async def scenario():
        k = await _open(live, "kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"])
        r = await k.request("forms")
        assert r["error"]["code"] == "not_allowed"
        await k.close()

    asyncio.run(scenario())


