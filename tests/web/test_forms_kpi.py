"""書かない窓口 KPIs from the event log, across a restart: forms printed through the real server's
counter API, the server restarted (its memory, and /metrics with it, start again), and the figures
of `run.py kpi` and of the admin page are those counted directly from the events table and from
what the consoles were shown. No value typed or read from the card is in the event log."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from queue_server.kpi import today
from tests.support.live_server import Client, LiveServer
from tests.web.conftest import run, shot

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PREFILL = {"name": "黒桐　幹也", "address": "山形県酒田市本町二丁目2番45号", "birth_date": "19800217", "sex": "1"}
DEATH_1 = {
    "death_filed": "no", "deceased_age": "80", "deceased_head": "yes", "household_remaining": "3",
    "deceased_pension": "basic_only", "children_under_18": "no", "had_my_number_card": "no",
    "seal_registered": "yes", "disability_certificate": "yes", "owned_real_estate": "yes", "owned_moped": "yes",
    "owned_car": "no", "tax_account_transfer": "yes", "water_contract": "yes", "inherited_farmland": "no",
    "elderly_pass": "no", "household_on_nhi": "no", "high_medical_costs": "no", "deceased_income_return": "no",
    "proxy": "no",
}
TYPED = {"deceased_name": "最上　記録次郎", "date_of_death": "令和8年11月26日", "bank_account": "北都銀行 酒田 普通 1234567"}


@pytest.fixture
def live(tmp_path):
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml").start()
    yield srv
    srv.kill()


def _origins(form: dict) -> dict[str, int]:
    """What the console was shown of one form: its fields by origin (blank ones as ``missing``)."""
    out = {"card": 0, "answer": 0, "ticket": 0, "ask": 0, "missing": 0}
    for f in form["fields"]:
        out["missing" if f["missing"] else f["origin"]] += 1
    return out


async def _visits(live: LiveServer) -> dict[str, dict[str, int]]:
    """Three visits: 死亡① with the forms printed at two departments (one form printed twice), 死亡①
    whose forms were never printed, a certificate (no form needed). Returns, per printed form, the
    counts the console was shown at its last print."""
    k, _ = await Client.open(live.url, role="kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"], site="honcho")
    a = await k.ok("issue", purposes=["death"], answers=DEATH_1, lang="ja", idempotency_key="kpi-a", prefill=PREFILL)
    await k.ok("issue", purposes=["death"], answers=DEATH_1, lang="ja", idempotency_key="kpi-b")
    await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="kpi-c")
    await k.close()
    tid = a["ticket"]["id"]
    shown: dict[str, dict[str, int]] = {}

    async def counter(n: int) -> Client:
        c, _ = await Client.open(live.url, role="counter", site="honcho", counter=n,
                                 token=live.tokens().counters["honcho"][n], staff=f"職員{n}")
        await c.ok("open")
        await c.ok("call", ticket=tid)
        await c.ok("start")
        return c

    shimin = await counter(1)
    first = await shimin.ok("forms_printed", forms=["juumin_idou"])  # before the typing: blanks
    assert _origins(first["forms"][0])["missing"] > 0
    await shimin.ok("form_values", values=TYPED)
    got = await shimin.ok("forms_printed", forms=["juumin_idou", "inkan_haishi"])  # printed again: counted once
    shown.update({f["id"]: _origins(f) for f in got["forms"]})
    bad = await shimin.request("forms_printed", forms=["sousaihi_x"])
    assert bad["error"]["code"] == "bad_field" and "sousaihi_x" in bad["error"]["message"]
    await shimin.ok("complete")
    await shimin.close()
    hoken = await counter(5)
    got = await hoken.ok("forms_printed", forms=["sousaihi"])
    shown.update({f["id"]: _origins(f) for f in got["forms"] if f["id"] == "sousaihi"})
    await hoken.close()
    return shown


def _direct(db: Path) -> dict[str, int]:
    """The same figures counted straight from the events table, in SQL."""
    con = sqlite3.connect(db)
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    out = {
        "needing": q("SELECT COUNT(*) FROM events WHERE kind = 'issued' AND json_extract(payload, '$.forms') > 0"),
        "printed_visits": q("SELECT COUNT(DISTINCT ticket) FROM events WHERE kind = 'forms_printed'"),
        "forms": q("SELECT COUNT(*) FROM (SELECT DISTINCT e.ticket, j.key FROM events e, json_each(e.payload, '$.forms') j "
                   "WHERE e.kind = 'forms_printed')"),
    }
    con.close()
    return out


def test_forms_kpis_survive_a_restart_in_the_cli_report_and_on_the_admin_page(live, context, tmp_path):
    shown = run(_visits(live))
    assert set(shown) == {"juumin_idou", "inkan_haishi", "sousaihi"}
    metrics = urllib.request.urlopen(f"{live.http}/metrics").read().decode()
    assert 'madoguchi_forms_visits{kind="printed"} 1' in metrics
    live.stop()
    live.start()  # a new process: the desk's memory is empty
    metrics = urllib.request.urlopen(f"{live.http}/metrics").read().decode()
    assert 'madoguchi_forms_visits{kind="printed"} 0' in metrics  # memory forgot; the log did not

    db = tmp_path / "lobby.db"
    direct = _direct(db)
    assert direct == {"needing": 2, "printed_visits": 1, "forms": 3}
    con = sqlite3.connect(db)
    payloads = [json.loads(p) for (p,) in con.execute("SELECT payload FROM events WHERE kind = 'forms_printed'")]
    con.close()
    assert len(payloads) == 3 and all(set(p) == {"department", "needed", "forms"} for p in payloads)
    log_text = json.dumps(payloads, ensure_ascii=False)
    for v in [*TYPED.values(), PREFILL["name"], PREFILL["address"], PREFILL["birth_date"]]:
        assert v not in log_text  # counts and form ids only (the sex code "1" is any count's digit)

    first, last = (today() - dt.timedelta(days=1)).isoformat(), today().isoformat()  # across midnight too
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "kpi", "--site", "honcho", "--from", first, "--to", last,
                          "--db", live.db_url, "--json", str(tmp_path / "k.json"), "--csv", str(tmp_path / "csv"),
                          "--xlsx", str(tmp_path / "k.xlsx")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "■ 書かない窓口" in out.stdout and "書かない窓口利用率" in out.stdout and "50.0%" in out.stdout
    table = json.loads((tmp_path / "k.json").read_text(encoding="utf-8"))["tables"]["forms"]
    figures = {r[0]: r[2] for r in table["rows"]}
    from queue_server import kpi_report

    csv_rows = kpi_report.read_csv(next((tmp_path / "csv").glob("*_forms.csv")))
    assert csv_rows[0] == ["キー", "指標", "値", "単位"] and len(csv_rows) == 1 + len(figures)
    assert {r[0]: r[2] for r in csv_rows[1:]}["forms_visits_printed"] == "1"
    assert "書かない窓口" in kpi_report.read_xlsx(tmp_path / "k.xlsx")
    total = {k: sum(c[k] for c in shown.values()) for k in ("card", "answer", "ticket", "ask", "missing")}
    filled = total["card"] + total["answer"] + total["ticket"]
    assert figures["forms_visits_needing"] == direct["needing"]
    assert figures["forms_visits_printed"] == direct["printed_visits"]
    assert figures["kakanai_rate"] == direct["printed_visits"] / direct["needing"]
    assert figures["forms_printed"] == direct["forms"] and figures["forms_per_visit"] == 3.0
    assert (figures["fields_card"], figures["fields_answer"], figures["fields_ticket"], figures["fields_typed"],
            figures["fields_blank"]) == (total["card"], total["answer"], total["ticket"], total["ask"], total["missing"])
    assert figures["fields_card"] > 0 and figures["fields_typed"] > 0 and figures["fields_ticket"] > 0
    assert figures["filled_share"] == round(filled / (filled + total["ask"]), 3)

    # the admin page: the same table, cell for cell
    page = context.new_page()
    page.goto(f"{live.http}/admin/")
    page.fill("#token", live.tokens().roles["admin"])
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#live-cards .card")
    page.fill("#from", first)
    page.fill("#to", last)
    page.click("#range-form button[type=submit]")
    page.wait_for_selector("#report table[data-table=forms]")
    cells = page.locator("#report table[data-table=forms] tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.dataset.value))")
    assert {r[0]: r[2] for r in table["rows"]} == figures
    assert [[float(c) if c else None for c in row[2:3]] for row in cells] == [
        [None if r[2] is None else float(r[2])] for r in table["rows"]]
    text = page.locator("#report table[data-table=forms]").inner_text()
    assert "書かない窓口利用率" in text and "50.0%" in text
    page.locator("#report table[data-table=forms]").scroll_into_view_if_needed()
    shot(page, "admin-kpi-forms")
