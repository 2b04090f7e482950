"""Recording imported events in batches: every refused event's rows are
rejected, including events refused for a value ``forget`` erased, whose
refusals name only keyed hashes."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from identity_graph import Event, IdentityGraph, Link
from identity_graph.io.recording import EventBatches
from identity_graph.io.summary import Rejects

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _erased_graph() -> IdentityGraph:
    """``gone`` (email gone@example.com, event e-gone) erased; ``kept`` stays."""
    g = IdentityGraph()
    g.link("gone", Link("email", "gone@example.com"), at=T0)
    g.link("kept", Link("email", "kept@example.com"), at=T0)
    g.link("kept", Link("phone", "+358401234567"), at=T0)
    g.record(Event("call", at=T0, customer_id="gone", id="e-gone"))
    assert g.forget("gone") is not None
    return g


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_events_refused_for_an_erased_value_are_rejected_with_their_rows(
    tmp_path: Path, batch_size: int
) -> None:
    """The importer matched refusals to rows by the refused Event object;
    a refusal for an erased value names the value's hash instead, and the
    import stopped with "record_many refused 3 events but the refusal log
    names 0"."""
    g = _erased_graph()
    at = T0 + timedelta(days=1)
    events = [
        (Event("call", at=at, customer_id="kept", id="e-new"), [2], "recorded"),
        (Event("call", at=at, customer_id="kept", id="e-gone"), [3], "its id was erased"),
        (Event("call", at=at, customer_id="gone", id="e-2"), [4, 5], "its customer was erased"),
        (
            Event("visit", at=at, links=(Link("email", "GONE@example.com"),), id="e-3"),
            [6],
            "its only link was erased",
        ),
        (
            Event(
                "visit",
                at=at,
                links=(Link("email", "gone@example.com"), Link("phone", "+358401234567")),
                id="e-4",
            ),
            [7],
            "recorded without the erased link",
        ),
    ]
    path = tmp_path / "rejects.csv"
    with Rejects(path) as rejects:
        batches = EventBatches(
            g, rejects, batch_size=batch_size, column="id", links=("email", "phone")
        )
        for event, rows, _why in events:
            batches.add(event, rows)
        batches.flush()
    assert (batches.imported, batches.unchanged) == (2, 0)
    with open(path, newline="", encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    assert [int(line["row"]) for line in lines] == [3, 4, 5, 6]
    assert all(line["reason"].startswith("SuppressedLink: ") for line in lines)
    # The rejects file names the erased value by its hash too, never as read.
    assert all(line["value"].startswith("erased:") for line in lines)
    assert lines[1]["value"] == lines[2]["value"]  # one event, two rows
    # The refusals name hashes only, never the erased values.
    for refusal in g.refusals():
        assert "gone" not in repr(refusal), refusal
    assert [e.id for e in g.events("kept")] == ["e-4", "e-new"]
