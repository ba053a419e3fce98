"""Service minutes the catalogue gives per life event, against the figures cities publish.

Draws citizens from config/scenarios/normal_week.toml's answer distributions, plans each with
the catalogue and prints the mean counter minutes per visit (to-confirm procedures included,
as at the counter), next to the published figures of ../shared/data/domain.md §4:
a bereavement session ~40 min (one-stop; 90 before), a move-in with everything ~60 min, a
residence certificate 10 min with prefilled forms. Prints figures; asserts nothing.

    python bench/catalogue_minutes.py [--n 2000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queue_server.core.journey import plan_visit, resolve_purpose  # noqa: E402
from simulation.routing import answer_sampler, load_for  # noqa: E402
from simulation.scenario import load_scenario  # noqa: E402

# Published whole-visit figures, with where they come from (../shared/data/domain.md §4 and pages
# found with the search tool; never an address from memory).
PUBLISHED = {
    "death": "40-50 one-stop, 90 before (鶴岡市); <=90 most (大和市); 60-min slots (米沢市)",
    "move_in": "60 with everything (domain.md §4)",
    "certificate": "10 prefilled, 18 handwritten (domain.md §4)",
    "divorce": "児童扶養手当 intake ~90 (市川市)",
}
PUBLISHED_PAGES = (
    "鶴岡市 https://www.city.tsuruoka.lg.jp/kurashi/shibo/okuyamimadoguti.html",
    "大和市 (ご遺族支援コーナー) https://seniorguide.jp/column/furuta/1321147.html",
    "米沢市 https://www.city.yonezawa.yamagata.jp/7695.html",
    "市川市 https://www.city.ichikawa.lg.jp/chi02/0000392932.html",
)


def source_kind(minutes_source: str) -> str:
    """'page', 'calibration' or 'estimate': what a procedure's minutes rest on."""
    if minutes_source.startswith("estimate"):
        return "estimate"
    if minutes_source.startswith("calibrat"):
        return "calibration"
    return "page"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="citizens drawn per purpose")
    ap.add_argument("--sources", action="store_true", help="list every queued procedure's minutes and source")
    args = ap.parse_args()
    sc = load_scenario(Path(__file__).resolve().parents[1] / "config" / "scenarios" / "normal_week.toml")
    cat = load_for(sc)
    draw = answer_sampler(sc)
    rng = random.Random(13)
    print(f"{'purpose':<14}{'mean min':>9}{'p90':>7}{'steps':>7}   published")
    for key, p in sc.purposes.items():
        if p.route is not None:
            continue
        pid = resolve_purpose(cat, key)
        minutes, steps = [], []
        for _ in range(args.n):
            plan = plan_visit(cat, [pid], draw(key, rng), "ja")
            minutes.append(plan.minutes)
            steps.append(len(plan.steps))
        p90 = statistics.quantiles(minutes, n=10)[-1]
        print(f"{pid:<14}{statistics.fmean(minutes):>9.1f}{p90:>7.1f}{statistics.fmean(steps):>7.2f}   "
              f"{PUBLISHED.get(pid, '')}")
    print("\npublished figures from:", *PUBLISHED_PAGES, sep="\n  ")
    print(f"\n{'purpose':<14}{'queued':>7}{'page':>6}{'calib.':>7}{'estimate':>9}")
    for pid, purpose in cat.purposes.items():
        procs = [cat.procedures[x] for x in purpose.procedures if cat.procedures[x].department]
        kinds = [source_kind(p.minutes_source) for p in procs]
        print(f"{pid:<14}{len(procs):>7}{kinds.count('page'):>6}{kinds.count('calibration'):>7}"
              f"{kinds.count('estimate'):>9}")
    if args.sources:
        print()
        for p in cat.procedures.values():
            if p.department:
                print(f"{p.purpose:<13}{p.id:<36}{p.minutes:>5.0f}  {p.minutes_source}")


if __name__ == "__main__":
    main()
