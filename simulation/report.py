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
        from queue_server.core.i18n import pick

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
    out = lines + extra
    if summary.get("citizens"):
        out += ["", citizens_table(sc, summary), "", days_table(sc, summary)]
        cls = classes_table(sc, summary)
        if cls:
            out += ["", cls]
    return "\n".join(out)


def _grid(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(_width(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return ["  ".join(_pad(c, widths[i], i > 0) for i, c in enumerate(r)) for r in [head, *rows]]


def citizens_table(sc: Scenario, summary: Mapping[str, Any]) -> str:
    """Citizens who came, by fate, per day and for the whole run: the headline a planner reads first.

    Waits are averaged over the *served*; this table says how many were not served at all.
    """
    head = ["日 day", "came", "served", "abandoned", "wait before leaving", "absent", "balked", "cutoff", "unserved", "lost %"]
    rows = []
    items = [(_day_label(d), v["citizens"]) for d, v in summary.get("by_day", {}).items()]
    if len(items) != 1:
        items.append(("全日 all days", summary["citizens"]))
    for label, c in items:
        rows.append(
            [label, _fmt(c["came"], 0), _fmt(c["served"], 0), _fmt(c["abandoned"], 0), _fmt(c["abandon_wait_mean"]),
             _fmt(c["absent"], 0), _fmt(c["balked"], 0), _fmt(c["cutoff"], 0), _fmt(c["unserved"], 0),
             _fmt(c["lost_share"], 1, pct=True)]
        )
    b = sc.behaviour
    prior = (
        f"patience: mean {b.patience_minutes:g} min ({b.patience_distribution}, cv {b.patience_cv:g})"
        if b.patience_minutes else "patience: none (nobody leaves)"
    )
    prior += f"; balking: {'mean tolerance ' + format(b.balk_queue, 'g') + ' waiting' if b.balk_queue else 'none'}"
    if sc.cutoff_minute is not None:
        prior += f"; ticket issue stops at {_clock(sc.cutoff_minute)} (受付締切)"
    return "\n".join(
        [
            "市民 citizens by fate (per replication; abandoned = left out of patience, on the phone or silently;"
            " lost = abandoned + balked + cutoff + unserved)",
            *_grid(head, rows),
            f"assumptions (estimates unless calibrated, see the scenario file): {prior}",
        ]
    )


def days_table(sc: Scenario, summary: Mapping[str, Any]) -> str:
    """Per day and department: mean wait, share within the target, lost citizens, counter time on absentees."""
    names = department_names(sc)
    t = summary["target"]
    head = ["日 day", "部署 department", "served", "wait 平均", f"≤{t['within_minutes']:g}分 %", "abandoned", "balked",
            "cutoff", "absent", "absent counter-h"]
    rows = []
    shown = _busiest(summary)
    for day, v in summary.get("by_day", {}).items():
        for d, f in v["departments"].items():
            if d not in shown:
                continue
            ach = dict(f["absent_counter_minutes"])
            ach = {**ach, "mean": ach["mean"] / 60 if ach["mean"] is not None else None,
                   "ci": ach["ci"] / 60 if ach.get("ci") is not None else None}
            rows.append(
                [_day_label(day), f"{names[d]} {d}" if d in names else d, _fmt(f["served"], 0), _fmt(f["wait_mean"]),
                 _fmt(f["within_target"], 1, pct=True), _fmt(f["abandoned"], 0), _fmt(f["balked"], 0),
                 _fmt(f["cutoff"], 0), _fmt(f["absent"], 0), _fmt(ach, 1)]
            )
    return "\n".join([f"日別・部署別 by day, the {len(shown)} busiest departments (all of them in --json)", *_grid(head, rows)])


def _busiest(summary: Mapping[str, Any], n: int = 4) -> list[str]:
    """The departments with the most served plus lost citizens (the ones a planner looks at)."""
    def load(d: str) -> float:
        f = summary["departments"][d]
        return (f["served"]["mean"] or 0.0) + (f.get("lost", {}).get("mean") or 0.0)

    return sorted(summary["departments"], key=lambda d: -load(d))[:n]


def classes_table(sc: Scenario, summary: Mapping[str, Any]) -> str:
    """Booked vs walk-in, and assisted citizens, per department where any are booked or assisted."""
    names = department_names(sc)
    t = summary["target"]
    label = {"walk_in": "当日 walk-in", "booked": "予約 booked", "assisted": "支援 assisted"}
    head = ["部署 department", "class", "served", "wait 平均", f"≤{t['within_minutes']:g}分 %", "lost"]
    rows = []
    shown = _busiest(summary)
    for d, f in summary["departments"].items():
        cl = f.get("classes", {})
        if len(cl) < 2 or (d not in shown and "booked" not in cl):
            continue
        for c, v in cl.items():
            rows.append([f"{names[d]} {d}" if d in names else d, label[c], _fmt(v["served"], 0), _fmt(v["wait_mean"]),
                         _fmt(v["within_target"], 1, pct=True), _fmt(v["lost"], 0)])
    if not rows:
        return ""
    return "\n".join(["予約・優先 reservations and priorities (assisted overlaps the other two)", *_grid(head, rows)])


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
    if summary.get("by_day") and sc.kind == "lobby":
        paths += _day_plots(sc, summary, out, label, depts, plt)
    return paths


def _day_plots(sc: Scenario, summary: Mapping[str, Any], out: Path, label: Mapping[str, str], depts: list[str], plt) -> list[Path]:
    """Per day, not pooled: service level and mean wait per 30-minute slot, and citizens by fate."""
    paths = []
    by_day = summary["by_day"]
    slot = summary["sl_slot_minutes"]
    busy = [d for d in depts if any(d in v["departments"] for v in by_day.values())][:4]
    t = summary["target"]
    for key, fname, ylabel, title, pct in (
        ("slot_within", "service_level_by_day.png", f"{t['within_minutes']:g}分以内に呼ばれた割合（%）",
         "30分枠ごとのサービスレベル（日別、95%信頼区間）", True),
        ("slot_wait", "waits_by_slot_by_day.png", "平均待ち時間（分）", "30分枠ごとの平均待ち時間（日別、95%信頼区間）", False),
    ):
        fig, axes = plt.subplots(1, max(1, len(busy)), figsize=(4.6 * max(1, len(busy)), 4.6), dpi=110, squeeze=False)
        for ax, d in zip(axes[0], busy, strict=False):
            for day, v in by_day.items():
                cell = v["departments"].get(d)
                if not cell:
                    continue
                pts = [(i, c["mean"], c["ci"] or 0.0) for i, c in enumerate(cell[key]) if c["mean"] is not None]
                if not pts:
                    continue
                xs = [(sc.open_minute + (i + 0.5) * slot) / 60 for i, _, _ in pts]
                k = 100.0 if pct else 1.0
                ms = [m * k for _, m, _ in pts]
                lo = [max(0.0, (m - e) * k) for _, m, e in pts]
                hi = [min(100.0, (m + e) * k) if pct else (m + e) * k for _, m, e in pts]
                (line,) = ax.plot(xs, ms, marker="o", ms=3, label=_day_label(day))
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.12)
            if pct:
                ax.axhline(t["share"] * 100, color="crimson", ls="--", lw=1, label=f"目標 {t['share'] * 100:g}%")
                ax.set_ylim(0, 105)
            else:
                ax.axhline(t["within_minutes"], color="crimson", ls="--", lw=1, label=f"目標 {t['within_minutes']:g} 分")
                ax.set_ylim(bottom=0)
            ax.set_title(label.get(d, d))
            ax.set_xlabel("時刻（時、待ち始めた30分枠）")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"{title} — {summary['title']}（{summary['replications']} 回）")
        fig.tight_layout()
        p = out / fname
        fig.savefig(p)
        plt.close(fig)
        paths.append(p)

    # citizens by fate per day (stacked bars)
    fates = (("served", "対応済み", "#2ca02c"), ("abandoned", "待ちきれず離脱", "#d62728"), ("absent", "不在", "#9467bd"),
             ("balked", "混雑を見て帰宅", "#ff7f0e"), ("cutoff", "受付締切", "#8c564b"), ("unserved", "閉庁時未対応", "#7f7f7f"))
    days = list(by_day)
    fig, ax = plt.subplots(figsize=(1.6 * len(days) + 3, 4.8), dpi=110)
    bottom = [0.0] * len(days)
    for key, name, color in fates:
        vals = [by_day[d]["citizens"][key]["mean"] or 0.0 for d in days]
        if not any(vals):
            continue
        ax.bar(range(len(days)), vals, bottom=bottom, color=color, label=name)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    for i, d in enumerate(days):
        ls = by_day[d]["citizens"]["lost_share"]["mean"]
        if ls is not None:
            ax.text(i, bottom[i], f"{ls * 100:.0f}% 対応できず", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(days)))
    ax.set_xticklabels([_day_label(d) for d in days], fontsize=8)
    ax.set_ylabel("来庁者数（1日あたり、反復平均）")
    ax.set_title(f"来庁者の結果（日別） — {summary['title']}")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    p = out / "citizens_by_day.png"
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
