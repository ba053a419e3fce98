"""Citizens counted, not only waits: fates add up, balking, the cutoff, the queue at the door,
counter time on absentees, per day and per 30-minute slot, booked vs walk-in."""

from __future__ import annotations

import random

import pytest

from simulation.arrivals import generate
from simulation.model import BALKED, CUTOFF, LobbyDay, scenario_router
from simulation.runner import replicate, run_replications, stream_seed
from simulation.scenario import parse_scenario
from simulation.stats import combine, little_gap

# A planner-less lobby (routes given): one busy department at the main office, so the tests do not
# depend on the catalogue's minutes.
BASE = {
    "scenario": {"name": "busy", "kind": "lobby", "site": "honcho"},
    "calendar": {"days": ["2027-04-01", "2027-04-02"]},
    "target": {"share": 0.9, "within_minutes": 30},
    "behaviour": {"patience_minutes": 40, "patience_cv": 0.5, "leave_cancels": 0.3, "no_show": 0.03,
                  "walk_seconds": 20, "recall_seconds": 60, "assistance": 0.1},
    "arrivals": {"source": "test", "site_share": 1.0, "hour_weights": {str(h): 1.0 for h in range(8, 18)}},
    "purposes": {
        "cert": {"yearly": 243 * 330, "source": "test", "route": [{"department": "shimin", "minutes": 6, "cv": 0.6}]},
        "death": {"yearly": 243 * 8, "source": "test", "route": [{"department": "shimin", "minutes": 20, "cv": 0.5}]},
    },
    "reservations": [{"purpose": "death", "slots": ["09:00", "11:00", "14:00"], "booked": 1.0, "source": "test"}],
}


def _sc(**over):
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for k, v in over.items():
        raw[k] = {**raw.get(k, {}), **v}
    return parse_scenario(raw, "<busy>")


def _fates_add_up(c):
    return c["came"] == sum(c[k] for k in ("served", "abandoned", "absent", "balked", "cutoff", "unserved"))


def test_every_citizen_has_one_fate_per_day_and_for_the_run():
    rep = replicate(_sc(), seed=2, replication=0)
    assert _fates_add_up(rep["citizens"])
    days = rep["by_day"].values()
    assert all(_fates_add_up(d["citizens"]) for d in days)
    assert sum(d["citizens"]["came"] for d in days) == rep["citizens"]["came"] == rep["arrivals"]
    c = rep["citizens"]
    assert c["abandoned"] > 0 and c["absent"] > 0  # an overloaded day with patience 40 min
    assert 0 < c["abandon_wait_mean"] < 200
    assert little_gap(rep) < 1e-9


def test_counter_time_on_absentees_is_their_recalls():
    sc = _sc()
    rec = LobbyDay(sc, scenario_router(sc), sc.days[0], random.Random(stream_seed(3, 0, 0))).run()
    d = rec.departments.index("shimin")
    absentees = sum(1 for o, dd in zip(rec.st_outcome, rec.st_dept, strict=True) if dd == d and o in (1, 4))
    # each absent call costs (max_recalls + 1) recall gaps, the walk not included
    per = (sc.max_recalls + 1) * sc.behaviour.recall_seconds
    assert absentees > 3
    assert rec.absent_busy[d] == pytest.approx(absentees * per, rel=1e-9)


def test_balking_turns_citizens_away_only_when_the_queue_is_long():
    none = replicate(_sc(), seed=4, replication=0)["citizens"]
    some = replicate(_sc(behaviour={"balk_queue": 15, "balk_cv": 0.3}), seed=4, replication=0)
    assert none["balked"] == 0 and some["citizens"]["balked"] > 20
    assert little_gap(some) < 1e-9  # balkers never stood in the queue
    sc = _sc(behaviour={"balk_queue": 15, "balk_cv": 0.3})
    rec = LobbyDay(sc, scenario_router(sc), sc.days[0], random.Random(stream_seed(4, 0, 0))).run()
    first_hour = [r for r, o in zip(rec.st_ready, rec.st_outcome, strict=True) if o == BALKED and r < 9 * 3600]
    assert len(first_hour) < 5  # the queue is short at opening: hardly anyone balks then


def test_the_cutoff_stops_walk_in_tickets_but_not_reservations():
    sc = _sc(policy={"cutoff": "16:00"})
    rec = LobbyDay(sc, scenario_router(sc), sc.days[0], random.Random(7)).run()
    after = [(i, st) for i, st in zip(rec.tk_issued, rec.tk_state, strict=True) if i >= 16 * 3600]
    assert after and all(st == "cutoff" for _, st in after)
    cut = rec.st_outcome.count(CUTOFF)
    assert cut == len(after) > 20  # one queue each
    with pytest.raises(Exception, match="cutoff"):
        _sc(policy={"cutoff": "18:00"})


def test_the_queue_at_the_door_arrives_in_the_first_minutes():
    sc = _sc(arrivals={"at_door": 0.08, "door_minutes": 5})
    plain = _sc()
    n_door = n_plain = total = 0
    for s in range(20):
        a = generate(sc, sc.days[0], random.Random(s))
        b = generate(plain, plain.days[0], random.Random(s))
        assert a == sorted(a)
        n_door += sum(1 for t, _ in a if t < 8 * 60 + 35)
        n_plain += sum(1 for t, _ in b if t < 8 * 60 + 35)
        total += len(a)
    # 8% of the day's walk-ins in 5 minutes, against 5/525 of them spread evenly
    assert n_door / total == pytest.approx(0.08 + 0.92 * 5 / 525, abs=0.015)
    assert n_plain < n_door / 5


def test_by_day_and_slot_figures_agree_with_the_week_and_carry_intervals():
    sc = _sc()
    reps = run_replications(sc, 4, seed=5, jobs=1)
    for r in reps:
        f = r["departments"]["shimin"]
        days = [d["departments"]["shimin"] for d in r["by_day"].values()]
        assert sum(d["served"] for d in days) == f["served"]
        exits = sum(sum(d["slot_exits"]) for d in days)
        within = sum(w * n for d in days for w, n in zip(d["slot_within"], d["slot_exits"], strict=True) if w is not None)
        assert exits == f["exits"] and within / exits == pytest.approx(f["within_target"])
    out = combine(sc, reps)
    day1 = out["by_day"]["2027-04-01"]["departments"]["shimin"]
    assert len(day1["slot_within"]) == 18  # 08:30–17:15 in 30-minute slots
    assert day1["slot_within"][0]["ci"] is not None and day1["within_target"]["n"] == 4
    assert out["by_day"]["2027-04-01"]["citizens"]["lost_share"]["mean"] > 0


def test_booked_and_walk_in_citizens_are_broken_out():
    rep = replicate(_sc(), seed=6, replication=0)
    cl = rep["departments"]["shimin"]["classes"]
    assert cl["booked"]["served"] >= 4 and cl["walk_in"]["served"] > 100 and cl["assisted"]["served"] > 5
    assert cl["booked"]["served"] + cl["walk_in"]["served"] == rep["departments"]["shimin"]["served"]
    assert cl["booked"]["wait_mean"] < cl["walk_in"]["wait_mean"]  # the reservation priority works
    assert rep["classes"]["booked"]["lost"] == 0  # a booked family has no patience limit
