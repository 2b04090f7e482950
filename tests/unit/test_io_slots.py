"""The slot rule of the customers file (io/slots.py): what a row's cells of
one link name do to a customer's links of that name, and their order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from identity_graph import IdentityGraph, Link
from identity_graph.io.slots import GENERATE_CELL, Cell, Plan, held_in_slot_order, plan

VALUES = list("ABCDEFGH")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[str], list[Cell]]:
    """A customer's values in slot order, and a row's cells for the name
    (distinct values, as the importer guarantees)."""
    held = draw(st.lists(st.sampled_from(VALUES), unique=True, max_size=5))
    columns = draw(st.integers(1, 4))
    cells: list[Cell] = []
    for _ in range(columns):
        kind = draw(st.sampled_from(["empty", "generate", "value"]))
        if kind == "empty":
            cells.append(None)
        elif kind == "generate":
            cells.append(GENERATE_CELL)
        else:
            unused = [v for v in VALUES if v not in cells]
            cells.append(draw(st.sampled_from(unused)))
    return held, cells


def fresh_values() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"new{n}"


def after(held: list[str], steps: Plan, fresh: Iterator[str]) -> list[str]:
    """The customer's values once the plan is carried out, in slot order."""
    result = [value for value in held if value not in steps.unlink]
    for _column, value in steps.steps:
        result.append(next(fresh) if value is None else value)
    return result


@given(cases())
def test_the_row_s_values_end_up_in_its_columns(case: tuple[list[str], list[Cell]]) -> None:
    held, cells = case
    steps = plan(held, cells)
    fresh = fresh_values()
    result = after(held, steps, fresh)
    shown = result[: len(cells)]  # what the export writes in the name's columns
    given_values = [cell for cell in cells if isinstance(cell, str)]
    assert set(given_values) <= set(shown)
    made = [value for value in result if value.startswith("new")]
    assert set(made) <= set(shown)
    assert len(shown) >= sum(1 for cell in cells if cell is not None)
    assert len(set(result)) == len(result)
    assert set(steps.unlink) <= set(held)
    assert all(value not in held for _, value in steps.steps if value is not None)


@given(cases())
def test_a_second_import_of_the_row_changes_nothing(case: tuple[list[str], list[Cell]]) -> None:
    held, cells = case
    result = after(held, plan(held, cells), fresh_values())
    assert not plan(result, cells)


@given(cases())
def test_an_empty_cell_keeps_its_slot(case: tuple[list[str], list[Cell]]) -> None:
    held, cells = case
    steps = plan(held, cells)
    for slot, cell in enumerate(cells):
        if cell is None and slot < len(held):
            assert held[slot] not in steps.unlink


@given(cases())
def test_values_held_in_the_columns_change_nothing(case: tuple[list[str], list[Cell]]) -> None:
    held, cells = case
    given_values = {cell for cell in cells if isinstance(cell, str)}
    if given_values <= set(held[: len(cells)]):
        assert plan(held, cells).unlink == ()


@given(cases())
def test_a_new_value_replaces_the_slot_s_value(case: tuple[list[str], list[Cell]]) -> None:
    held, cells = case
    given_values = {cell for cell in cells if isinstance(cell, str)}
    if given_values - set(held):
        steps = plan(held, cells)
        for slot, cell in enumerate(cells):
            if isinstance(cell, str) and slot < len(held) and held[slot] not in given_values:
                assert held[slot] in steps.unlink


@given(cases())
def test_export_then_import_is_a_fixed_point(case: tuple[list[str], list[Cell]]) -> None:
    held, cells = case
    result = after(held, plan(held, cells), fresh_values())
    exported: list[Cell] = list(result[: len(cells)])
    exported += [None] * (len(cells) - len(exported))
    assert not plan(result, exported)  # into the graph it came from: nothing to do
    fresh = after([], plan([], exported), fresh_values())  # into a new graph
    assert fresh == [cell for cell in exported if cell is not None]


@given(cases(), st.data())
def test_links_an_earlier_row_took_keep_their_slots(
    case: tuple[list[str], list[Cell]], data: st.DataObject
) -> None:
    held, cells = case
    gone = set(data.draw(st.lists(st.sampled_from(held), unique=True))) if held else set()
    given_values = {cell for cell in cells if isinstance(cell, str)}
    gone -= given_values  # a row never gives what an earlier row took
    steps = plan(held, cells, gone)
    assert not set(steps.unlink) & gone
    present = [value for value in held if value not in gone]
    result = after(present, steps, fresh_values())
    assert given_values <= set(result[: len(cells)])
    assert not plan(result, cells)  # the next import: nothing is gone any more
    # The slots of the values still held are those they had before.
    for slot, cell in enumerate(cells):
        if cell is None and slot < len(held) and held[slot] not in gone:
            assert held[slot] in result


def test_a_taken_link_holds_its_slot() -> None:
    # Y held K then B; an earlier row took K; Y's row replaces its first card.
    assert plan(["K", "B"], ["N", None], {"K"}) == Plan((), ((0, "N"),))
    assert plan(["K", "B"], ["N", None]) == Plan(("K",), ((0, "N"),))
    # A taken card serves no generate() cell.
    assert plan(["K"], [GENERATE_CELL], {"K"}) == Plan((), ((0, None),))


def test_generate_is_served_by_links_the_row_does_not_give() -> None:
    assert plan(["X"], [GENERATE_CELL, GENERATE_CELL]) == Plan((), ((1, None),))
    assert plan(["X"], [None, GENERATE_CELL]) == Plan()  # X is a card: kept
    assert plan([], [GENERATE_CELL, "A"]) == Plan((), ((0, None), (1, "A")))
    # X's slot is replaced by A, so the generate() cell asks for a new card.
    assert plan(["X"], ["A", GENERATE_CELL]) == Plan(("X",), ((0, "A"), (1, None)))


def test_links_past_the_columns_go_when_the_row_brings_a_value() -> None:
    assert plan(["A", "B", "C"], ["A", "B"]) == Plan()  # nothing new: C stays
    assert plan(["A", "B", "C"], ["D", None]) == Plan(("A", "C"), ((0, "D"),))
    assert plan(["A", "B", "C"], ["C"]) == Plan(("A", "B"), ())  # C is shown


def test_slot_order_is_the_order_of_claims() -> None:
    g = IdentityGraph()
    g.link("x", Link("loyalty_card", "CARD-B"), at=T0)
    g.link("x", Link("loyalty_card", "CARD-A"), at=T0)  # same time: recorded later
    g.link("x", Link("email", "x@example.com"), at=T0)
    g.link("y", Link("loyalty_card", "CARD-C"), at=T0)
    assert held_in_slot_order(g, "x")["loyalty_card"] == ["CARDB", "CARDA"]
    # A card that comes back starts a new claim: it is the newest now.
    g.link("y", Link("loyalty_card", "CARD-B"), at=T0 + timedelta(days=1))
    g.link("x", Link("loyalty_card", "CARD-B"), at=T0 + timedelta(days=2))
    assert held_in_slot_order(g, "x") == {
        "loyalty_card": ["CARDA", "CARDB"],
        "email": ["x@example.com"],
    }
    # A late-arriving claim that starts the current ownership earlier moves
    # the link up: its customer has held it longer than was known.
    g.link("x", Link("loyalty_card", "CARD-D"), at=T0 + timedelta(days=3))
    assert held_in_slot_order(g, "x")["loyalty_card"] == ["CARDA", "CARDB", "CARDD"]
    g.link("x", Link("loyalty_card", "CARD-D"), at=T0 - timedelta(days=1))
    assert held_in_slot_order(g, "x")["loyalty_card"] == ["CARDD", "CARDA", "CARDB"]
    assert held_in_slot_order(g, "nobody") == {}
