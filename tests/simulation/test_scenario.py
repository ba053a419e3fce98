"""Scenario files: the shipped ones load; broken ones fail with the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_server.core.problems import ConfigError
from simulation.arrivals import day_factor, expected_day, generate, pieces
from simulation.routing import planner_router
from simulation.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "config" / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_load_and_plan(path):
    sc = load_scenario(path)
    assert sc.name == path.stem
    if sc.kind == "lobby":
        planner_router(sc)  # answers are checked against the catalogue's questions


def _problems(tmp_path: Path, text: str, name: str = "bad.toml") -> list[str]:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        sc = load_scenario(f)
        planner_router(sc)
    for p in e.value.problems:
        assert p.file == str(f)
    return [f"{p.where}: {p.reason}" for p in e.value.problems]


def test_errors_name_line_and_key(tmp_path):
    text = (SCENARIOS / "normal_week.toml").read_text(encoding="utf-8")
    text = text.replace('site = "honcho"', 'site = "honcho"\n').replace(
        'days = ["2026-06-08",', 'days = ["2026-06-07",'
    )
    text = text.replace("share = 0.9  ", "share = 1.9  ")
    text = text.replace('source = "seed FY2022: 出生 490 cases (domain.md §1)"\n', "")
    probs = _problems(tmp_path, text)
    joined = "\n".join(probs)
    assert "calendar.days[0]" in joined and "Sunday" in joined
    assert "target.share" in joined and "<= 1.0" in joined
    assert "purposes.birth" in joined and "source" in joined
    # each located by line
    assert all(p.startswith("line ") for p in probs), probs


def test_unknown_site_and_department(tmp_path):
    probs = _problems(
        tmp_path,
        """
[scenario]
extends = "%s"
site = "nowhere"
"""
        % (SCENARIOS / "normal_week.toml"),
    )
    assert any("scenario.site" in p and "unknown site 'nowhere'" in p for p in probs)

    probs = _problems(
        tmp_path,
        """
[scenario]
extends = "%s"
[staffing]
counters = [{ number = 13, departments = ["pets"] }]
"""
        % (SCENARIOS / "normal_week.toml"),
    )
    assert any("staffing.counters[0].departments" in p and "pets" in p for p in probs)


def test_answers_are_checked_against_the_catalogue(tmp_path):
    base = SCENARIOS / "normal_week.toml"
    probs = _problems(
        tmp_path,
        f"""
[scenario]
extends = "{base}"
[purposes.death.answers]
deceased_age = {{ "200" = 0.5 }}
owns_spaceship = 0.1
""",
    )
    joined = "\n".join(probs)
    assert "purposes.death.answers.deceased_age" in joined and "outside 0–130" in joined
    assert "purposes.death.answers.owns_spaceship" in joined and "no question" in joined


def test_probabilities_must_be_probabilities(tmp_path):
    probs = _problems(
        tmp_path,
        f"""
[scenario]
extends = "{SCENARIOS / "normal_week.toml"}"
[purposes.birth.answers]
single_parent = 1.5
wants_daycare = {{ yes = 0.7, no = 0.6 }}
""",
    )
    joined = "\n".join(probs)
    assert "purposes.birth.answers.single_parent" in joined
    assert "purposes.birth.answers.wants_daycare" in joined and "add up to 1.300" in joined


def test_unstable_station_and_bad_kind(tmp_path):
    probs = _problems(
        tmp_path,
        """
[scenario]
kind = "station"
[station]
source = "test"
counters = 2
service_minutes = 10
arrivals_per_hour = 13
hours = 10
""",
    )
    assert any("station.arrivals_per_hour" in p and "unstable" in p for p in probs)
    probs = _problems(tmp_path, '[scenario]\nkind = "hospital"\n')
    assert any("scenario.kind" in p for p in probs)


def test_syntax_error_and_extends_cycle(tmp_path):
    probs = _problems(tmp_path, "[scenario\nname = 1\n")
    assert "TOML syntax error" in probs[0]
    (tmp_path / "a.toml").write_text('[scenario]\nextends = "b.toml"\n', encoding="utf-8")
    (tmp_path / "b.toml").write_text('[scenario]\nextends = "a.toml"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_scenario(tmp_path / "a.toml")
    assert "cycle" in str(e.value)


# ---------------------------------------------------------------- arrivals


def test_peak_day_replaces_month_and_weekday_factors():
    sc = load_scenario(SCENARIOS / "april_peak_week.toml")
    d1, d7 = sc.days[0], sc.days[-1]  # 1 April (peak, ×6), 7 April (Wednesday in April)
    assert day_factor(sc, "move_in", d1) == 6.0
    assert day_factor(sc, "move_in", d7) == pytest.approx(1.6 * sc.arrivals.weekday[2])
    assert day_factor(sc, "certificate", d1) == pytest.approx(1.3 * sc.arrivals.weekday[3])


def test_day_volume_matches_the_yearly_figures():
    sc = load_scenario(SCENARIOS / "normal_week.toml")
    tue = sc.days[1]  # weekday factor 1.0, June: no month factor
    n = expected_day(sc, tue)
    assert n["death"] == pytest.approx(1595 * 0.85 / 243)
    # the hour pieces carry the whole day's volume, and 11:00–14:00 is the busiest stretch
    ps = pieces(sc, tue)
    total = sum(sum(p.rates.values()) * (p.end - p.start) for p in ps)
    assert total == pytest.approx(sum(n.values()))
    # (the queue at the door is a short piece of its own at opening, overlapping the first hour)
    door = [p for p in ps if p.start == sc.open_minute and p.end == sc.open_minute + sc.arrivals.door_minutes]
    assert len(door) == 1 and sum(door[0].rates.values()) * 5 == pytest.approx(0.03 * sum(n.values()))
    peak = max((p for p in ps if p not in door), key=lambda p: sum(p.rates.values()))
    assert 11 * 60 <= peak.start < 14 * 60


def test_generated_arrivals_follow_the_expected_volume():
    import random

    sc = load_scenario(SCENARIOS / "normal_week.toml")
    day = sc.days[1]
    counts = [len(generate(sc, day, random.Random(s))) for s in range(40)]
    mean = sum(counts) / len(counts)
    expected = sum(expected_day(sc, day).values())
    # Poisson: sd = sqrt(expected); the mean of 40 days is within 4 standard errors
    assert abs(mean - expected) < 4 * (expected / 40) ** 0.5
    assert all(open_ <= t < close for t, _ in generate(sc, day, random.Random(1)) for open_, close in [(510, 1035)])
