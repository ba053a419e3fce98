"""The admin KPI page in a real browser: sign in, today's live figures, a date-range report whose
cells hold the CLI's numbers, and the Excel and CSV downloads."""

from __future__ import annotations

import pytest

from queue_server import kpi_report
from queue_server.config import load_city
from queue_server.kpi import KpiContext, report_for
from queue_server.storage import Store
from tests.queue_server.kpi_log import hand_log
from tests.support.live_server import LiveServer
from tests.web.conftest import shot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adminweb")
    url = f"sqlite:///{tmp / 'lobby.db'}"
    store = Store(url)
    store.migrate()
    hand_log().write(store)
    srv = LiveServer(db_url=url, secrets=tmp / "secrets.toml").start()
    srv.store = store  # type: ignore[attr-defined]
    yield srv
    srv.kill()


def signed_in(live, context):
    page = context.new_page()
    page.goto(f"{live.http}/admin/")
    page.fill("#token", live.tokens().roles["admin"])
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#live-cards .card")
    return page


def test_wrong_token_is_refused(live, context):
    page = context.new_page()
    page.goto(f"{live.http}/admin/")
    page.fill("#token", "nope")
    page.click("#signin button[type=submit]")
    page.wait_for_function("document.querySelector('#signin-error').textContent.length > 0")
    assert page.locator("#signin-error").inner_text() == "トークンが違います"
    assert page.locator("#app").is_hidden()


def test_range_report_cells_hold_the_cli_numbers_and_downloads_match(live, context, tmp_path):
    rep = report_for(live.store.engine, KpiContext.from_city(load_city(), "honcho"), "honcho", "2026-04-01", "2026-04-02")
    page = signed_in(live, context)
    assert page.locator("#signin").is_hidden()
    assert page.locator("#live-cards .card[data-kpi=tickets] .v").inner_text() == "0 件"  # nothing today
    page.fill("#from", "2026-04-01")
    page.fill("#to", "2026-04-02")
    page.click("#range-form button[type=submit]")
    page.wait_for_selector("#report table[data-table=waits]")
    assert page.locator("#report table").count() == len(rep.tables)
    # every cell of every table carries the report's value
    for key, table in rep.tables.items():
        cells = page.locator(f"#report table[data-table={key}] tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.dataset.value))")
        # the overview hides its machine keys, and a department key column is dropped beside its name
        keys = [c.key for c in table.columns]
        keep = range(1, len(keys)) if key == "summary" else [
            i for i, k in enumerate(keys) if not (k == "department" and "name" in keys)]
        expected = [["" if row[i] is None else str(row[i]) for i in keep] for row in table.rows] or [[None]]
        got = [[_js_number(c) for c in row] for row in cells]
        assert got == [[_js_number(c) for c in row] for row in expected], key
    summary = page.locator("#report table[data-table=summary]").inner_text()
    assert "平均待ち時間" in summary and "14.22" in summary and "88.9%" in summary
    shot(page, "admin-kpi-report")

    with page.expect_download() as dl:
        page.click("#xlsx")
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    assert path.name == "kpi_honcho_2026-04-01_2026-04-02.xlsx"
    assert kpi_report.read_xlsx(path) == kpi_report.read_xlsx(kpi_report.xlsx_bytes(rep))
    with page.expect_download() as dl:
        page.click("#report table[data-table=waits] caption button")
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    assert path.read_bytes() == kpi_report.csv_bytes(rep.tables["waits"])


def _js_number(s):
    """JavaScript prints 10.0 as "10": compare numbers as numbers."""
    if s is None or s == "":
        return s
    try:
        return float(s)
    except ValueError:
        return s
