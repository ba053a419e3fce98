"""Reports of a combined simulation result: a text table, JSON, and PNG plots with Japanese labels.

Plots use matplotlib's Agg backend and the IPAex Gothic font when installed (Debian
fonts-ipaexfont-gothic), else any installed CJK font; without one, kanji would be drawn as boxes
(tofu), so :func:`cjk_font` reports which font it found and the plots say so in the log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .scenario import Scenario

CJK_FONTS = (
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


def department_names(sc: Scenario, lang: str = "ja") -> dict[str, str]:
    """Department key -> the site's name for it (the key itself for a station)."""
    if sc.kind != "lobby":
        return {}
    try:
        from queue_server.config import load_city
        from queue_server.i18n import pick

        site = load_city().sites[sc.site]
        return {k: pick(v, lang) for k, v in site.department_names.items()}
    except Exception:  # a report without names is still a report
        return {}


def _fmt(cell: Mapping[str, Any] | None, digits: int = 1, pct: bool = False) -> str:
    if not cell or cell.get("mean") is None:
        return "–"
    m, ci = cell["mean"], cell.get("ci")
    if pct:
        m, ci = m * 100, (ci * 100 if ci is not None else None)
    s = f"{m:.{digits}f}"
    if ci is not None:
        s += f"±{ci:.{digits}f}"
    return s


def _width(s: str) -> int:
    """Display width: East Asian wide characters take two columns in a terminal."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, w: int, right: bool = False) -> str:
    gap = " " * max(0, w - _width(s))
    return gap + s if right else s + gap


def table(sc: Scenario, summary: Mapping[str, Any]) -> str:
    """The per-department summary table (means ± 95% CI half-widths across replications)."""
    names = department_names(sc)
    t = summary["target"]
    within = f"≤{t['within_minutes']:g}分 %"
    head = ["部署 department", "served", "wait 平均", "p50", "p90", "max", within, "util %", "queue", "q max"]
    rows = []
    for d, f in summary["departments"].items():
        label = f"{names[d]} {d}" if d in names else d
        rows.append(
            [
                label,
                _fmt(f["served"], 0),
                _fmt(f["wait_mean"]),
                _fmt(f["wait_p50"]),
                _fmt(f["wait_p90"]),
                _fmt(f["wait_max"]),
                _fmt(f["within_target"], 1, pct=True),
                _fmt(f["utilisation"], 0, pct=True),
                _fmt(f["queue_mean"]),
                _fmt(f["queue_max"], 0),
            ]
        )
    o = summary["overall"]
    rows.append(
        [
            "全体 overall",
            _fmt(o["served"], 0),
            _fmt(o["wait_mean"]),
            _fmt(o["wait_p50"]),
            _fmt(o["wait_p90"]),
            _fmt(o["wait_max"]),
            _fmt(o["within_target"], 1, pct=True),
            _fmt(o["utilisation"], 0, pct=True),
            _fmt(o["queue_mean"]),
            "",
        ]
    )
    widths = [max(_width(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        f"{summary['title']} — {summary['replications']} replications"
        + (f", {len(summary['days'])} days ({summary['days'][0]} … {summary['days'][-1]})" if summary["days"] else ""),
        f"waits in minutes; ± is the 95% confidence half-width across replications; target: "
        f"{t['share'] * 100:g}% within {t['within_minutes']:g} min",
        "  ".join(_pad(h, widths[i], i > 0) for i, h in enumerate(head)),
    ]
    for r in rows:
        lines.append("  ".join(_pad(c, widths[i], i > 0) for i, c in enumerate(r)))
    extra = []
    if summary.get("tickets"):
        extra.append("tickets: " + ", ".join(f"{k} {_fmt(v, 1)}" for k, v in summary["tickets"].items()))
    if summary.get("visit_minutes"):
        extra.append(
            "minutes in the building by purpose: "
            + ", ".join(f"{k} {_fmt(v, 0)}" for k, v in summary["visit_minutes"].items())
        )
    extra.append(f"overtime after closing (latest day): {_fmt(summary['overtime_minutes'], 0)} min")
    return "\n".join(lines + extra)


def write_json(summary: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")


def cjk_font() -> str | None:
    """Register an installed CJK font with matplotlib; its family name, or None if none is found."""
    from matplotlib import font_manager

    for p in CJK_FONTS:
        if Path(p).exists():
            font_manager.fontManager.addfont(p)
            return font_manager.FontProperties(fname=p).get_name()
    return None


def _clock(minute: float) -> str:
    return f"{int(minute // 60):02d}:{int(minute % 60):02d}"


def plots(sc: Scenario, summary: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write waits_by_hour.png, queue_length.png and utilisation.png; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    family = cjk_font()
    if family:
        plt.rcParams["font.family"] = family
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = department_names(sc)
    label = {d: (f"{names[d]}" if d in names else d) for d in summary["departments"]}
    depts = sorted(summary["departments"], key=lambda d: -(summary["departments"][d]["served"]["mean"] or 0))[:7]
    paths = []

    # 1. waits by hour of arrival in the queue
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    for d in depts:
        hw = summary["departments"][d]["hourly_wait"]
        hs = [int(h) for h in hw if hw[h]["mean"] is not None]
        ms = [hw[str(h)]["mean"] for h in hs]
        es = [hw[str(h)]["ci"] or 0.0 for h in hs]
        if hs:
            ax.errorbar([h + 0.5 for h in hs], ms, yerr=es, marker="o", ms=4, capsize=3, label=label[d])
    ax.axhline(sc.target_minutes, color="crimson", ls="--", lw=1, label=f"目標 {sc.target_minutes:g} 分")
    ax.set_xlabel("時刻（待ち始めた時間帯）" if sc.kind == "lobby" else "経過時間（時間、ウォームアップ後）")
    ax.set_ylabel("平均待ち時間（分）")
    ax.set_title(f"時間帯別の平均待ち時間 — {summary['title']}（{summary['replications']} 回の平均、95%信頼区間）")
    if sc.kind == "lobby":
        hours = range(int(sc.open_minute // 60), int(sc.close_minute // 60) + 2)
        ax.set_xticks(list(hours))
        ax.set_xticklabels([f"{h}時" for h in hours])
        ax.set_xlim(sc.open_minute / 60 - 0.25, sc.close_minute / 60 + 0.75)  # later steps of late tickets
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    p = out / "waits_by_hour.png"
    fig.savefig(p)
    plt.close(fig)
    paths.append(p)

    # 2. queue length over the day: all departments per day, and per department on the busiest day
    qb = summary["queue_bins"]
    binm = summary["bin_minutes"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), dpi=110)
    busiest, peak = None, -1.0
    for day, per in qb.items():
        total = [sum(v[i] for v in per.values()) for i in range(len(next(iter(per.values()))))] if per else []
        xs = [summary["open_minute"] / 60 + (i + 0.5) * binm / 60 for i in range(len(total))]
        last = max((i for i, x in enumerate(total) if x > 0), default=-1) + 1
        ax1.plot(xs[:last], total[:last], label=_day_label(day))
        if total and max(total) > peak:
            busiest, peak = day, max(total)
    ax1.axvline(sc.close_minute / 60, color="gray", ls=":", lw=1)
    ax1.set_title("待ち人数（全部署の合計、15分平均）")
    ax1.set_xlabel("時刻（時）")
    ax1.set_ylabel("待っている人数")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    if busiest is not None:
        for d in depts:
            v = qb[busiest].get(d)
            if v:
                last = max((i for i, x in enumerate(v) if x > 0), default=-1) + 1
                xs = [summary["open_minute"] / 60 + (i + 0.5) * binm / 60 for i in range(last)]
                ax2.plot(xs, v[:last], label=label[d])
        ax2.axvline(sc.close_minute / 60, color="gray", ls=":", lw=1)
        ax2.set_title(f"部署別の待ち人数（最も混む日 {_day_label(busiest)}）")
        ax2.set_xlabel("時刻（時）")
        ax2.set_ylabel("待っている人数")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.suptitle(f"{summary['title']}（{summary['replications']} 回の平均）")
    fig.tight_layout()
    p = out / "queue_length.png"
    fig.savefig(p)
    plt.close(fig)
    paths.append(p)

    # 3. utilisation by counter
    plans = {str(c.number): c for c in sc.counters}
    nums = list(summary["counters"])
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(nums) + 1.8), dpi=110)
    ys = range(len(nums))
    ms = [(summary["counters"][n]["mean"] or 0.0) * 100 for n in nums]
    es = [(summary["counters"][n]["ci"] or 0.0) * 100 for n in nums]
    colors = ["#d62728" if m >= 90 else "#ff7f0e" if m >= 80 else "#1f77b4" for m in ms]
    ax.barh(list(ys), ms, xerr=es, color=colors, capsize=3)
    ylabels = []
    for n in nums:
        c = plans.get(n)
        deps = "・".join(label.get(d, names.get(d, d)) for d in c.departments) if c else ""
        speed = f"（速さ {c.speed:g}）" if c and c.speed != 1.0 else ""
        ylabels.append(f"{n}番窓口 {deps}{speed}")
    ax.set_yticks(list(ys))
    ax.set_yticklabels(ylabels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("稼働率（%）= 対応中の時間 ÷ 在席時間　　赤: 90%以上　橙: 80%以上")
    ax.set_title(f"窓口別の稼働率 — {summary['title']}")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    p = out / "utilisation.png"
    fig.savefig(p)
    plt.close(fig)
    paths.append(p)
    return paths


def _day_label(day: str) -> str:
    import datetime as dt

    try:
        d = dt.date.fromisoformat(day)
    except ValueError:
        return day
    return f"{d.month}月{d.day}日（{'月火水木金土日'[d.weekday()]}）"
