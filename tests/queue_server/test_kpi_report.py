"""KPI presentation: CSV and Excel hold the same numbers, charts render Japanese, the CLI writes it all."""

from __future__ import annotations

import warnings

import pytest

from queue_server import kpi_report
from queue_server.kpi import Period, compute
from queue_server.storage import Store

from .kpi_log import D1, D2, hand_log
from .test_kpi import FAR_FUTURE, NAMES


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("kpi") / "k.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    hand_log().write(store)
    return store


@pytest.fixture(scope="module")
def report(db):
    return compute(db.engine, Period("honcho", D1, D2), target_minutes=30, department_names=NAMES, now=FAR_FUTURE)


def _num(s: str):
    if s == "":
        return None
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            return s


def test_xlsx_holds_the_same_numbers_as_the_csv(report, tmp_path):
    csvs = kpi_report.write_csv(report, tmp_path / "csv")
    book = kpi_report.read_xlsx(kpi_report.write_xlsx(report, tmp_path / "k.xlsx"))
    assert len(csvs) == len(report.tables) >= 10  # the core KPIs and the modules that add their own (kpi_manager …)
    for path, table in zip(csvs, report.tables.values(), strict=True):
        rows = kpi_report.read_csv(path)
        sheet = book[table.ja]
        assert rows[0] == sheet[0]  # the same Japanese headers
        assert [[_num(c) for c in r] for r in rows[1:]] == sheet[1:], table.key
        assert sheet[1:] == [list(r) for r in table.rows]  # and the same numbers as the report
    assert book["条件"][0] == ["拠点", "honcho"]


def test_csv_has_japanese_headers_with_units_and_a_bom(report, tmp_path):
    (path,) = [p for p in kpi_report.write_csv(report, tmp_path) if p.name.endswith("_waits.csv")]
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode())  # Excel opens it as UTF-8
    assert kpi_report.read_csv(path)[0] == ["課", "課名", "件数", "平均（分）", "中央値（分）", "90%値（分）", "最大（分）", "目標内割合"]
    assert kpi_report.read_csv(path)[2] == ["shimin", "市民課", "6", "18.33", "10.0", "40.0", "40.0", "0.8333"]


def test_xlsx_formats_shares_as_percentages(report):
    from io import BytesIO

    from openpyxl import load_workbook

    wb = load_workbook(BytesIO(kpi_report.xlsx_bytes(report)))
    ws = wb["課別待ち時間"]
    assert ws["H2"].value == 1.0 and ws["H2"].number_format == "0.0%"
    summary = wb["概要"]
    by_key = {row[0].value: row[2] for row in summary.iter_rows(min_row=2)}
    assert by_key["within_target"].value == 0.8889 and by_key["within_target"].number_format == "0.0%"
    assert by_key["tickets"].value == 7


def test_charts_render_japanese_without_missing_glyphs(report, tmp_path):
    from PIL import Image

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = kpi_report.plots(report, tmp_path)
    assert [p.name for p in paths] == ["visitors_by_day.png", "waits_by_hour.png", "waits_by_department.png"]
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing  # a missing glyph would be drawn as tofu
    for p in paths:
        with Image.open(p) as im:
            assert im.size[0] > 500 and im.size[1] > 250
            assert len(im.getcolors(1 << 20) or []) > 20  # something was drawn


def test_text_table_aligns_wide_characters(report):
    text = kpi_report.format_report(report)
    assert "平均待ち時間" in text and "14.22 分" in text and "88.9%" in text
    lines = kpi_report.format_table(report.tables["waits"]).splitlines()
    widths = {kpi_report._width(x) for x in lines[1:]}
    assert len(widths) == 1  # header, rule and rows line up in a terminal


def test_cli_writes_table_csv_xlsx_plots_json(db, tmp_path, capsys):
    import json

    from run import main

    rc = main(["kpi", "--site", "honcho", "--from", "2026-04-01", "--to", "2026-04-02", "--db", db.url,
               "--csv", str(tmp_path / "csv"), "--xlsx", str(tmp_path / "k.xlsx"), "--plots", str(tmp_path / "png"),
               "--json", str(tmp_path / "k.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "発券数" in out and "課別待ち時間" in out
    tables = json.loads((tmp_path / "k.json").read_text(encoding="utf-8"))["tables"]
    assert len(list((tmp_path / "csv").glob("*.csv"))) == len(tables) >= 10  # core KPIs and modules adding theirs
    assert (tmp_path / "k.xlsx").stat().st_size > 0
    assert len(list((tmp_path / "png").glob("*.png"))) == 3
    data = json.loads((tmp_path / "k.json").read_text(encoding="utf-8"))
    summary = {r[0]: r[2] for r in data["tables"]["summary"]["rows"]}
    assert summary["tickets"] == 7 and summary["wait_mean"] == 14.22


def test_cli_refuses_a_reversed_range(db, capsys):
    from run import main

    assert main(["kpi", "--from", "2026-04-30", "--to", "2026-04-01", "--db", db.url]) == 2
    assert "before it starts" in capsys.readouterr().out
