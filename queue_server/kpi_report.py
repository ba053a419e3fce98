"""Presenting a KPI report: terminal tables, CSV per KPI group, an Excel workbook, PNG charts.

Nothing here computes a KPI: every number comes from :class:`queue_server.kpi.Report` as it is
(already rounded there), so the table, the CSV, the workbook and the admin page hold the same
values. Headers are Japanese (the city's staff read them in Excel), with the unit in brackets.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from pathlib import Path
from typing import Any

from .kpi import Column, Report, Table

CJK_FONT = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
SHARE_UNIT = "比率"


def header(c: Column) -> str:
    """A column's Japanese header with its unit: 平均（分）."""
    return f"{c.ja}（{c.unit}）" if c.unit and c.unit != SHARE_UNIT else c.ja


# ----------------------------------------------------------------------------- terminal


def _width(s: str) -> int:
    """Display width: full-width (CJK) characters take two terminal cells."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, w: int, right: bool) -> str:
    gap = " " * max(0, w - _width(s))
    return gap + s if right else s + gap


def _cell(v: Any, c: Column) -> str:
    if v is None:
        return "-"
    if c.unit == SHARE_UNIT and isinstance(v, int | float):
        return f"{v * 100:.1f}%"
    if isinstance(v, float):
        return f"{v:.2f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:.0f}"
    return str(v)


def format_table(t: Table) -> str:
    heads = [header(c) for c in t.columns]
    keys = [c.key for c in t.columns]
    if "value" in keys and "unit" in keys:  # a KPI list (来庁予約, 書かない窓口): each row has its unit
        v, u = keys.index("value"), keys.index("unit")
        body = [[_cell(x, Column("v", "", r[u]) if i == v else c) for i, (x, c) in enumerate(zip(r, t.columns, strict=True))]
                for r in t.rows]
    else:
        body = [[_cell(v, c) for v, c in zip(r, t.columns, strict=True)] for r in t.rows]
    widths = [max([_width(h)] + [_width(row[i]) for row in body]) for i, h in enumerate(heads)]
    numeric = [all(isinstance(r[i], int | float) or r[i] is None for r in t.rows) and bool(t.rows)
               for i in range(len(heads))]
    lines = [f"■ {t.ja}", "  ".join(_pad(h, w, n) for h, w, n in zip(heads, widths, numeric, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(_pad(v, w, n) for v, w, n in zip(row, widths, numeric, strict=True)) for row in body]
    if not t.rows:
        lines.append("(データなし)")
    return "\n".join(lines)


def format_report(r: Report) -> str:
    head = f"窓口KPI {r.site} {r.first.isoformat()} 〜 {r.last.isoformat()}（待ち時間の目標 {r.target_minutes:g} 分）"
    summary = r.tables["summary"]
    # the overview without its machine keys: staff read the Japanese name
    brief = Table(summary.key, summary.ja, summary.columns[1:], [row[1:] for row in summary.rows])
    parts = [head, _format_summary(brief)] + [format_table(t) for k, t in r.tables.items() if k != "summary"]
    return "\n\n".join(parts)


def _format_summary(t: Table) -> str:
    rows = [(name, _cell(v, Column("v", "", unit)), unit if unit != SHARE_UNIT else "") for name, v, unit in t.rows]
    w = max(_width(n) for n, _, _ in rows)
    vw = max(_width(v) for _, v, _ in rows)
    return "\n".join([f"■ {t.ja}"] + [f"{_pad(n, w, False)}  {_pad(v, vw, True)} {u}".rstrip() for n, v, u in rows])


# ----------------------------------------------------------------------------- CSV


def csv_text(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([header(c) for c in t.columns])
    for row in t.rows:
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def csv_bytes(t: Table) -> bytes:
    # UTF-8 with a BOM: Japanese Excel opens it as UTF-8 instead of guessing Shift_JIS
    return csv_text(t).encode("utf-8-sig")


def write_csv(r: Report, folder: str | Path) -> list[Path]:
    """One CSV per KPI group: ``<site>_<from>_<to>_<group>.csv``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for key, t in r.tables.items():
        p = folder / f"{_stem(r)}_{key}.csv"
        p.write_bytes(csv_bytes(t))
        out.append(p)
    return out


def read_csv(path: str | Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def _stem(r: Report) -> str:
    return f"kpi_{r.site}_{r.first.isoformat()}_{r.last.isoformat()}"


# ----------------------------------------------------------------------------- Excel


def xlsx_bytes(r: Report) -> bytes:
    """The workbook: one sheet per KPI group, Japanese headers, shares formatted as percentages."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for t in r.tables.values():
        ws = wb.create_sheet(t.ja[:31])  # Excel limits sheet names to 31 characters
        ws.append([header(c) for c in t.columns])
        for cell in ws[1]:
            cell.font, cell.fill = bold, fill
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        for row in t.rows:
            ws.append(list(row))
        for i, c in enumerate(t.columns, start=1):
            letter = get_column_letter(i)
            if c.unit == SHARE_UNIT:
                for cell in ws[letter][1:]:
                    cell.number_format = "0.0%"
            elif c.unit == "分":
                for cell in ws[letter][1:]:
                    cell.number_format = "0.00"
            width = max([_width(header(c))] + [_width(_cell(v, c)) for v in t.column(c.key)])
            ws.column_dimensions[letter].width = min(60, width + 2)
        if t.key == "summary":
            # the value column mixes counts, minutes and shares: format row by row
            for row in ws.iter_rows(min_row=2):
                unit = row[3].value
                row[2].number_format = "0.0%" if unit == SHARE_UNIT else ("0.00" if unit == "分" else "General")
        ws.freeze_panes = "A2"
    info = wb.create_sheet("条件")
    for k, v in (("拠点", r.site), ("開始日", r.first.isoformat()), ("終了日", r.last.isoformat()),
                 ("待ち時間の目標（分）", r.target_minutes), ("出典", "madoguchi イベントログ (docs/kpi.md)")):
        info.append([k, v])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_xlsx(r: Report, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(xlsx_bytes(r))
    return path


def read_xlsx(path_or_bytes: str | Path | bytes) -> dict[str, list[list[Any]]]:
    """Every sheet's rows as values (for tests and checks)."""
    from openpyxl import load_workbook

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    wb = load_workbook(src, read_only=True, data_only=True)
    return {ws.title: [list(row) for row in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


# ----------------------------------------------------------------------------- charts


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    if CJK_FONT.exists():
        font_manager.fontManager.addfont(str(CJK_FONT))
        name = font_manager.FontProperties(fname=str(CJK_FONT)).get_name()
        plt.rcParams["font.family"] = [name, "sans-serif"]
    plt.rcParams["axes.unicode_minus"] = False  # IPAex has no U+2212: plain hyphen, no tofu
    return plt


def plots(r: Report, folder: str | Path) -> list[Path]:
    """visitors by day, waits by hour, waits per department — PNGs with Japanese labels."""
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    title = f"{r.site} {r.first.isoformat()}〜{r.last.isoformat()}"
    out = []

    daily = r.tables["daily"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(daily.rows) + 2), 4))
    labels = [f"{d[5:]}({w})" for d, w in zip(daily.column("date"), daily.column("weekday"), strict=True)]
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], daily.column("tickets"), width=0.4, label="発券数", color="#9dc3e6")
    ax.bar([x + 0.2 for x in xs], daily.column("visitors"), width=0.4, label="来庁者数", color="#2e75b6")
    ax.set_xticks(list(xs), labels, rotation=60 if len(labels) > 8 else 0, fontsize=8)
    ax.set_ylabel("人・件")
    ax.set_title(f"日別 来庁者数 {title}")
    top = max(daily.column("tickets"), default=0)
    ax.set_ylim(0, max(1.0, top * 1.2))  # headroom for the legend above the bars
    ax.legend(loc="upper right", ncol=2)
    out.append(_save(plt, fig, folder / "visitors_by_day.png"))

    hourly = r.tables["hourly"]
    fig, ax = plt.subplots(figsize=(7, 4))
    hours = hourly.column("hour")
    ax.plot(hours, [_nan(v) for v in hourly.column("wait_mean")], marker="o", label="平均")
    ax.plot(hours, [_nan(v) for v in hourly.column("wait_p90")], marker="s", label="90%値")
    ax.axhline(r.target_minutes, color="#c00000", linestyle="--", linewidth=1, label=f"目標 {r.target_minutes:g} 分")
    ax.set_xlabel("順番待ちに入った時刻")
    ax.set_ylabel("待ち時間（分）")
    ax.set_ylim(bottom=0)  # a wait axis that starts at 0 does not exaggerate differences
    ax.set_title(f"時間帯別 待ち時間 {title}")
    ax.legend()
    out.append(_save(plt, fig, folder / "waits_by_hour.png"))

    waits = [row for row in r.tables["waits"].as_dicts() if row["department"] != "(all)"]
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.5 * len(waits) + 1.5)))
    names = [w["name"] for w in waits]
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], [_nan(w["mean"]) for w in waits], height=0.4, label="平均", color="#2e75b6")
    ax.barh([y - 0.2 for y in ys], [_nan(w["p90"]) for w in waits], height=0.4, label="90%値", color="#f4b183")
    ax.axvline(r.target_minutes, color="#c00000", linestyle="--", linewidth=1, label=f"目標 {r.target_minutes:g} 分")
    ax.set_yticks(list(ys), names)
    ax.set_xlabel("待ち時間（分）")
    ax.set_title(f"課別 待ち時間 {title}")
    ax.legend()
    out.append(_save(plt, fig, folder / "waits_by_department.png"))
    return out


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- admin HTTP API


def api_reply(query: dict[str, str], engine: Any, city: Any, now: float) -> tuple[int, bytes, str, str | None]:
    """``GET /admin/api/kpi`` (the server checks the admin token first): the report of
    ``site``, ``from``..``to`` (default: today, live) as ``format`` json | csv (one ``table``) | xlsx.

    Returns (HTTP status, body, content type, download file name or None). The numbers are those of
    :func:`queue_server.kpi.report_for`, the same call ``run.py kpi`` makes.
    """
    import json

    from .kpi import KpiContext, report_for, today

    def bad(msg: str, status: int = 400) -> tuple[int, bytes, str, None]:
        return status, json.dumps({"error": msg}, ensure_ascii=False).encode(), "application/json; charset=utf-8", None

    site = query.get("site") or next(iter(city.sites))
    if site not in city.sites:
        return bad(f"unknown site {site!r}; sites: {', '.join(city.sites)}", 404)
    day = today(city.timezone, now).isoformat()
    first, last = query.get("from") or day, query.get("to") or query.get("from") or day
    fmt = query.get("format", "json")
    if fmt not in ("json", "csv", "xlsx"):
        return bad("format must be json, csv or xlsx")
    try:
        report = report_for(engine, KpiContext.from_city(city, site), site, first, last, now=now)
    except ValueError as e:
        return bad(f"from/to: {e}")
    if fmt == "xlsx":
        return (200, xlsx_bytes(report), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                f"{_stem(report)}.xlsx")
    if fmt == "csv":
        key = query.get("table", "summary")
        if key not in report.tables:
            return bad(f"table must be one of {', '.join(report.tables)}")
        return 200, csv_bytes(report.tables[key]), "text/csv; charset=utf-8", f"{_stem(report)}_{key}.csv"
    body = report.to_dict()
    body["live"] = first == last == day
    body["site_name"] = dict(city.sites[site].name).get("ja", site)
    return 200, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8", None
