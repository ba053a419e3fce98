"""The summary's helpers: slot lookup equals the plain scan it replaced, and stays linear."""

from __future__ import annotations

import random

from simulation.stats import _slot_of


def _scan(slots, minute):
    for i, (a, b) in enumerate(slots):
        if a <= minute < b:
            return i
    return None


def test_slot_lookup_equals_a_scan_of_every_slot():
    rng = random.Random(4)
    slots = [(510.0 + 30 * i, min(510.0 + 30 * (i + 1), 1035.0)) for i in range(18)]  # 08:30–17:15, last short
    starts = [a for a, _ in slots]
    probes = [rng.uniform(400, 1200) for _ in range(5000)] + [a for a, _ in slots] + [b for _, b in slots] + [509.999, 1035.0]
    for m in probes:
        assert _slot_of(slots, m, starts) == _scan(slots, m), m
    assert _slot_of(slots, 1040.0) is None and _slot_of(slots, 500.0) is None
