"""SiteHub.department_place, kept per hub, says what reading the site's configuration says: every
department's counters in the configuration's order and their lowest floor (1 with no counter),
and a caller that changes the list it got changes nothing kept."""

from __future__ import annotations

from .writer_support import make_server


def test_department_place_is_the_configuration_read_directly(tmp_path):
    qs = make_server(tmp_path)
    for hub in qs.hubs.values():
        cfg = hub.config
        for d in (*cfg.departments, "no-such-department"):
            mine = [x for x in cfg.counters if d in x.departments]
            expected = {"counters": [x.number for x in mine], "floor": min((x.floor for x in mine), default=1)}
            assert hub.department_place(d) == expected, d
            hub.department_place(d)["counters"].append(-1)  # a caller's copy
            assert hub.department_place(d) == expected, d
    assert any(hub.department_place(d)["counters"] for hub in qs.hubs.values() for d in hub.config.departments)
