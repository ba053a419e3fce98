"""The core's fast copy must behave exactly like dataclasses.replace."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queue_server.core.model import StepState, evolve

from .core_helpers import DEATH_ROUTE, ticket


@given(st.sampled_from(list(StepState)), st.integers(0, 5), st.one_of(st.none(), st.floats(0, 1e6)))
def test_evolve_equals_replace_for_steps(state, recalls, called_at):
    s = ticket(1, DEATH_ROUTE).steps[1]
    changes = {"state": state, "recalls": recalls, "called_at": called_at}
    assert evolve(s, **changes) == replace(s, **changes)


def test_evolve_leaves_the_original_alone_and_keeps_types():
    t = ticket(1, DEATH_ROUTE)
    t2 = evolve(t, transfers=3)
    assert t.transfers == 0 and t2.transfers == 3 and type(t2) is type(t)
    assert t2.steps is t.steps and hash(t2.steps) == hash(t.steps)


def test_evolve_rejects_unknown_fields_like_replace():
    with pytest.raises(TypeError):
        evolve(ticket(1), colour="red")
