"""checkpoint.py: a state saved and restored is the same state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity_graph import IdentityGraph, Limits
from identity_graph import checkpoint as checkpoints
from identity_graph.state import GraphState
from identity_graph.testing import apply, random_operations


@given(st.integers(0, 10_000))
def test_a_restored_state_equals_the_captured_one(seed: int) -> None:
    g = IdentityGraph(limits=Limits(max_moves=2))  # some links freeze
    apply(g, random_operations(seed, 120))
    restored = GraphState(Limits(max_moves=2))
    seq = checkpoints.restore(restored, checkpoints.loads(checkpoints.dumps(g.state)))
    assert seq == len(g.state.journal)
    restored.check()
    expected = g.state.comparable()
    got = restored.comparable()
    assert got.pop("journal") == [] and expected.pop("journal")  # the journal is not in it
    assert got == expected


def test_a_checkpoint_of_another_format_is_refused() -> None:
    saved = checkpoints.capture(GraphState(Limits()))
    saved["format"] = checkpoints.FORMAT + 1
    with pytest.raises(ValueError, match="checkpoint format"):
        checkpoints.restore(GraphState(Limits()), saved)
