"""The advisor's shift plan: never more people than desks, nobody at a desk during lunch or at two
desks at once, newcomers counted at their speed, and limits reported instead of hidden."""

from __future__ import annotations

import tomllib

import pytest

from simulation import advisor
from simulation.scenario import parse_scenario
from simulation.shiftplan import plan_day

TOML = """
[scenario]
name = "planned"
kind = "lobby"
site = "honcho"
[calendar]
days = ["2027-04-06"]
[target]
share = 0.9
within_minutes = 20
[behaviour]
patience_minutes = 60
[arrivals]
source = "test"
site_share = 1.0
hour_weights = { "8" = 1.0, "9" = 1.0, "10" = 1.2, "11" = 1.4, "12" = 1.4, "13" = 1.2, "14" = 1.0, "15" = 0.9, "16" = 0.7 }
[purposes.cert]
yearly = 70000
source = "test"
route = [{ department = "shimin", minutes = 6, cv = 0.6 }]
[purposes.tax]
yearly = 6000
source = "test"
route = [{ department = "zeimu", minutes = 8, cv = 0.5 }]
[purposes.kids]
yearly = 800
source = "test"
route = [{ department = "kosodate", minutes = 10, cv = 0.5 }]
[advisor]
counters = [
  { number = 1, departments = ["shimin"] }, { number = 2, departments = ["shimin"] },
  { number = 3, departments = ["shimin"] }, { number = 4, departments = ["shimin", "hoken_nenkin"] },
  { number = 8, departments = ["kosodate", "kenko"] }, { number = 10, departments = ["zeimu", "nouzei"] },
]
staff = [
  { name = "A", skills = ["shimin", "hoken_nenkin"], lunch = ["11:30", "12:15"] },
  { name = "B", skills = ["shimin"], lunch = ["12:15", "13:00"] },
  { name = "new1", skills = ["shimin"], speed = 0.75, lunch = ["11:30", "12:15"] },
  { name = "new2", skills = ["shimin"], speed = 0.75, lunch = ["12:15", "13:00"] },
  { name = "C", skills = ["shimin", "zeimu"], lunch = ["12:00", "13:00"] },
  { name = "T", skills = ["zeimu", "nouzei"], lunch = ["11:30", "12:30"] },
  { name = "K", skills = ["kosodate", "kenko"], lunch = ["12:15", "13:00"] },
  { name = "Fri", skills = ["shimin"], weekdays = ["Fri"] },
]
"""


@pytest.fixture(scope="module")
def sc():
    return parse_scenario(tomllib.loads(TOML), "<planned>")


def _check_plan(sc, p):
    staff = {s.name: s for s in sc.advisor.staff}
    desks = {n for n, _ in sc.advisor.counters}
    for t in range(int(sc.open_minute), int(sc.close_minute), 5):
        on = [c for c in p.counters if any(a <= t < b for a, b in c.windows)]
        at = [c.number // 100 for c in on]
        people = [c.note.split(": ")[1].removesuffix(" (lunch relief)") for c in on]
        assert len(at) == len(set(at)) <= len(desks), t  # one person per desk, no more desks than the site has
        assert set(at) <= desks
        assert len(people) == len(set(people)), t  # nobody at two desks
        for name in people:
            lunch = staff[name].lunch
            assert not (lunch and lunch[0] <= t < lunch[1]), (name, t)  # nobody at a desk during lunch
    for c in p.counters:
        person = staff[c.note.split(": ")[1].removesuffix(" (lunch relief)")]
        assert c.speed == person.speed and set(c.departments) <= set(person.skills)
        assert set(c.departments) <= set(dict(sc.advisor.counters)[c.number // 100])


def test_plan_fits_desks_lunch_and_counts_newcomers_at_their_speed(sc):
    day = sc.days[0]  # a Tuesday: "Fri" does not work
    need = {("shimin",): [3] * 9, ("zeimu", "nouzei"): [1] * 9, ("kosodate", "kenko"): [1] * 9}
    p = plan_day(sc, day, need)
    _check_plan(sc, p)
    assert all(c.note != "desk 1: Fri" for c in p.counters) and not any("Fri" in c.note for c in p.counters)
    # 08:30: three standard counters of 市民課 are A, B, C (C before a newcomer: faster); with only
    # newcomers it would take four people — and there are four shimin desks
    first = {desk: who for desk, (who, g) in p.seats[0].items() if g == ("shimin",)}
    assert sorted(first.values()) == ["A", "B", "C"]
    assert p.capacity[("shimin",)][0] == pytest.approx(3.0)
    need4 = {("shimin",): [4] * 9}
    p4 = plan_day(sc, day, need4)
    _check_plan(sc, p4)
    # four shimin desks: capacity 1 + 1 + 1 + 0.75 = 3.75 < 4 at 08:30 -> a limit, not a fifth desk
    assert p4.capacity[("shimin",)][0] == pytest.approx(3.75)
    assert any(g == ("shimin",) and k == 0 and m == pytest.approx(0.25) for g, k, m in p4.limits)
    # lunch 11:30-12:15 and 12:15-13:00 in the 11:30 slot: capacity counted for the part at the desk
    assert p4.capacity[("shimin",)][3] < 3.75


def test_advisor_returns_a_plan_within_the_site(sc):
    adv = advisor.advise(sc, 0.9, 20.0, replications=3, seed=1, jobs=1, rounds=3, precision=1.0)
    d = adv.days[0]
    assert d.plan is not None and d.plan_result
    _check_plan(sc, d.plan)
    assert max(d.plan.open_per_slot()) <= 6
    text = advisor.format_result(sc, adv)
    assert "shift plan" in text and "open / desks" in text
    js = advisor.result_to_dict(adv)["days"][0]["plan"]
    assert js["desks"] == 6 and js["counters"]
