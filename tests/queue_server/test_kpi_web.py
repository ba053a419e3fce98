"""The admin page's KPI API on the real server: the same numbers as the CLI, admin token required."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from queue_server import kpi_report
from queue_server.config import load_city
from queue_server.kpi import KpiContext, report_for
from queue_server.storage import Store
from tests.support.live_server import LiveServer

from .kpi_log import hand_log


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kpiweb")
    url = f"sqlite:///{tmp / 'lobby.db'}"
    store = Store(url)
    store.migrate()
    hand_log().write(store)
    srv = LiveServer(db_url=url, secrets=tmp / "secrets.toml").start()
    yield srv, store
    srv.kill()


def get(srv, path: str, token: str | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(srv.http + path)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def cli_report(store):
    city = load_city()
    return report_for(store.engine, KpiContext.from_city(city, "honcho"), "honcho", "2026-04-01", "2026-04-02")


Q = "/admin/api/kpi?site=honcho&from=2026-04-01&to=2026-04-02"


def test_the_api_needs_the_admin_token(live):
    srv, _ = live
    assert get(srv, Q)[0] == 401
    assert get(srv, Q, "wrong")[0] == 401
    assert get(srv, Q, srv.tokens().roles["kiosk"])[0] == 401  # another role's token is not enough


def test_json_holds_the_same_numbers_as_the_cli(live):
    srv, store = live
    status, headers, body = get(srv, Q, srv.tokens().roles["admin"])
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    data = json.loads(body)
    expected = json.loads(json.dumps(cli_report(store).to_dict(), ensure_ascii=False))
    assert data["tables"] == expected["tables"]
    summary = {r[0]: r[2] for r in data["tables"]["summary"]["rows"]}
    assert summary["tickets"] == 7 and summary["wait_mean"] == 14.22 and data["live"] is False


def test_csv_and_xlsx_downloads_match_the_cli_files(live):
    srv, store = live
    rep = cli_report(store)
    token = srv.tokens().roles["admin"]
    status, headers, body = get(srv, Q + "&format=csv&table=waits", token)
    assert status == 200 and body == kpi_report.csv_bytes(rep.tables["waits"])
    assert 'filename="kpi_honcho_2026-04-01_2026-04-02_waits.csv"' in headers["Content-Disposition"]
    status, headers, body = get(srv, Q + "&format=xlsx", token)
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert kpi_report.read_xlsx(body) == kpi_report.read_xlsx(kpi_report.xlsx_bytes(rep))


def test_token_in_the_query_string_also_works_for_plain_links(live):
    srv, _ = live
    assert get(srv, Q + "&token=" + srv.tokens().roles["admin"])[0] == 200


def test_bad_requests_name_the_problem(live):
    srv, _ = live
    token = srv.tokens().roles["admin"]
    status, _, body = get(srv, "/admin/api/kpi?from=2026-04-30&to=2026-04-01", token)
    assert status == 400 and "before it starts" in json.loads(body)["error"]
    status, _, body = get(srv, "/admin/api/kpi?site=atlantis", token)
    assert status == 404 and "atlantis" in json.loads(body)["error"]
    assert get(srv, Q + "&format=pdf", token)[0] == 400
    assert get(srv, Q + "&format=csv&table=nope", token)[0] == 400


def test_default_is_todays_live_report(live):
    srv, _ = live
    status, _, body = get(srv, "/admin/api/kpi", srv.tokens().roles["admin"])
    data = json.loads(body)
    assert status == 200 and data["live"] is True and data["from"] == data["to"]
    assert data["site"] == "honcho"


def test_the_admin_page_is_served(live):
    srv, _ = live
    status, _, body = get(srv, "/admin/")
    html = body.decode()
    assert status == 200 and 'src="admin.js"' in html and 'lang="ja"' in html
    status, headers, js = get(srv, "/admin/admin.js")
    assert status == 200 and b"/admin/api/kpi" in js and b"Authorization" in js


@pytest.mark.parametrize("path", ["/admin/?token=x", "/board/?site=honcho&token=x", "/counter/?site=honcho&counter=1",
                                  "/status/?t=x", "/plan/", "/consult/", "/admin/admin.js", "/nope", "/healthz"])
def test_no_page_gives_its_address_away_in_a_referer(live, path):
    """The board, console and admin pages carry their device token in the URL."""
    srv, _ = live
    status, headers, _ = get(srv, path)
    assert status in (200, 404, 503), status
    assert headers.get("Referrer-Policy") == "no-referrer" and headers.get("X-Content-Type-Options") == "nosniff"
