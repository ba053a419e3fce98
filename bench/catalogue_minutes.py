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

PUBLISHED = {"death": "40 (one-stop), 90 before", "move_in": "60", "certificate": "10 (prefilled)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="citizens drawn per purpose")
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


if __name__ == "__main__":
    main()
