"""``StoreContract``: the store contract suite, for any :class:`Store`.

This project runs it against the memory, SQLite and PostgreSQL stores; an
integrator with a store of their own subclasses it the same way::

    from identity_graph.testing import StoreContract

    class TestMyStore(StoreContract):
        def new_store(self):          # a new, empty store
            return MyStore(...)

        def reopen(self, store):      # optional: a second connection to the
            return MyStore(...)       # same data (persistence tests)

and runs ``pytest``.  The suite needs ``pytest`` (it is a pytest class);
the library itself does not.

What it checks, in two layers:

- **rows** — head positions, journal order and ranges, rollback dropping a
  transaction's rows, duplicate event ids refused, refusals, checkpoints
  replacing each other, the schema version;
- **the door** — every input outside the rules for text and nesting
  (:mod:`identity_graph.text`: lone surrogates, NUL, invisible and
  bidirectional characters in identifiers, data nested too deep, attribute
  text past its length bound, numbers that are not finite) is refused
  on the store exactly as in memory, and its refusal is stored and read
  back; the largest accepted inputs round-trip unchanged;
- **graph** — the same random operations (registers, links, relinks,
  unlinks, merges, splits, detaches, events, refused calls) applied to an
  in-memory graph and to a graph on the store give equal states, journals,
  events, refusals and indicators; reopening (with and without a
  checkpoint) gives the same graph again; a write that fails in the store
  leaves the store and the graph as they were.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from .errors import (
    IdentityGraphError,
    InvalidCustomerId,
    InvalidEvent,
    InvalidLink,
    StoreError,
)
from .events import Event, FrozenMap, same_event
from .graph import IdentityGraph
from .ids import Link
from .stores.base import Store
from .stores.schema import LATEST
from .text import MAX_ATTRIBUTE_LENGTH, MAX_DATA_DEPTH

__all__ = [
    "ALLOWED_CONTROLS",
    "FORMAT_CHARACTERS",
    "REFUSED_INPUTS",
    "StoreContract",
    "largest_accepted",
    "nested_data",
    "random_operations",
]

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def random_operations(seed: int, count: int = 200) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """``count`` graph calls ``(method name, args)`` drawn from a small world, so
    that links move, merges meet and some calls are refused."""
    rng = random.Random(seed)
    customers = [f"c{i}" for i in range(8)]
    links = [Link("email", f"p{i}@example.com") for i in range(5)] + [
        Link("loyalty_card", "7001"),
        Link("email", "n/a"),
    ]
    merges = 0
    for step in range(count):
        at = T0 + timedelta(days=rng.randrange(0, 60), hours=step % 24)
        kind = rng.choices(
            ["register", "link", "relink", "unlink", "merge", "split", "detach", "event"],
            weights=[2, 6, 3, 1, 3, 1, 1, 4],
        )[0]
        if kind == "register":
            attrs = {"first_name": rng.choice(["Ann", "Bo", "Cy"])}
            yield "register", (rng.choice(customers), attrs, at)
        elif kind == "link":
            yield "link", (rng.choice(customers), rng.choice(links), at)
        elif kind == "relink":
            yield "relink", (rng.choice(links), rng.choice(customers), at)
        elif kind == "unlink":
            yield "unlink", (rng.choice(links), at)
        elif kind == "merge":
            merges += 1
            a, b = rng.sample(customers, 2)
            yield "merge", (a, b, "same person", at)
        elif kind == "split":
            yield "split", (f"m{rng.randrange(1, step + 2)}", at)
        elif kind == "detach":
            yield "detach", (rng.choice(customers), at)
        else:
            amount = f"{rng.randrange(1, 100)}.00"
            event = Event(
                "purchase",
                at=at,
                links=(rng.choice(links),),
                data={"amount": amount, "items": [{"sku": "A", "quantity": 1, "price": amount}]},
                id=f"T{rng.randrange(0, 40)}",
            )
            yield "record", (event,)


def apply(graph: IdentityGraph, operations: Iterator[tuple[str, tuple[Any, ...]]]) -> list[str]:
    """Run the calls on ``graph``; return each outcome (result or error class)."""
    outcomes = []
    for name, args in operations:
        try:
            if name == "register":
                result: Any = graph.register(args[0], attributes=args[1], at=args[2])
            elif name == "merge":
                result = graph.merge(args[0], args[1], reason=args[2], at=args[3])
            elif name == "relink":
                result = graph.relink(args[0], to=args[1], at=args[2])
            elif name in ("unlink", "split", "detach"):
                result = getattr(graph, name)(args[0], at=args[1])
            elif name == "record":
                result = graph.record(args[0])
            else:
                result = graph.link(args[0], args[1], at=args[2])
            outcomes.append(repr(result))
        except (IdentityGraphError, ValueError) as error:
            outcomes.append(type(error).__name__)
    return outcomes


def snapshot(graph: IdentityGraph) -> dict[str, Any]:
    """What two equal graphs share: state, journal, events, refusals, indicators."""
    as_of = T0 + timedelta(days=90)
    return {
        "state": graph.state.comparable(),
        "events": sorted(
            (e.id, e.at, e.type, p.id if hasattr(p, "id") else p)
            for p in graph.profiles()
            for e in graph.events(p.id)
        ),
        "refusals": [(r.at, r.op, r.reason, r.error) for r in graph.refusals()],
        "kpis": graph.kpis(as_of),
    }


# ------------------------------------------------------------------ the door


def nested_data(depth: int, frozen: bool = False) -> Any:
    """Event data nesting mappings and lists ``depth`` levels deep (the data
    mapping is level 1); ``frozen``: mappings as ``FrozenMap``, as the
    importers build them."""
    wrap: Callable[[dict[str, Any]], Any] = FrozenMap if frozen else dict
    value: Any = "deep"
    for level in range(depth - 1):
        value = (value,) if level % 2 else wrap({"k": value})
    return wrap({"k": value})


#: Every character a text may hold besides the printable ones: the control
#: characters but NUL (event data and attributes keep them; identifiers
#: refuse them), and invisible and bidirectional format characters.
ALLOWED_CONTROLS = "".join(chr(c) for c in [*range(1, 32), *range(0x7F, 0xA0)])
FORMAT_CHARACTERS = "\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2060\u2066\u2069\ufeff"


def nested_lists(depth: int) -> Any:
    """``depth`` lists, one inside the other, around a number."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _visit(**fields: Any) -> Event:
    values: dict[str, Any] = {"at": T0, "customer_id": "c1"}
    values.update(fields)
    return Event(values.pop("type", "visit"), **values)


#: ``(label, error, call)``: calls with input outside the rules for text
#: and nesting, which every graph, in memory or on any store, refuses the
#: same way (customers c1 and c2 are registered first).
REFUSED_INPUTS: list[tuple[str, type[Exception], Callable[[IdentityGraph], object]]] = [
    ("customer id, surrogate", InvalidCustomerId, lambda g: g.register("c\ud800")),
    ("customer id, NUL", InvalidCustomerId, lambda g: g.register("c\x00")),
    ("customer id, zero-width space", InvalidCustomerId, lambda g: g.register("c\u200b1")),
    ("customer id, right-to-left override", InvalidCustomerId, lambda g: g.register("c\u202e1")),
    ("customer id, byte order mark", InvalidCustomerId, lambda g: g.register("\ufeffc1")),
    (
        "link customer, surrogate",
        InvalidCustomerId,
        lambda g: g.link("\udc80", Link("email", "a@example.com"), at=T0),
    ),
    (
        "attribute, surrogate",
        ValueError,
        lambda g: g.register("c1", {"city": "O\ud800"}, at=T0),
    ),
    ("attribute, NUL", ValueError, lambda g: g.register("c1", {"city": "O\x00"}, at=T0)),
    (
        "attribute, one character too long",
        ValueError,
        lambda g: g.register("c1", {"note": "x" * (MAX_ATTRIBUTE_LENGTH + 1)}, at=T0),
    ),
    ("attribute, NaN", ValueError, lambda g: g.register("c1", {"score": float("nan")}, at=T0)),
    (
        "attribute, infinite Decimal",
        ValueError,
        lambda g: g.register("c1", {"score": Decimal("-Infinity")}, at=T0),
    ),
    (
        "link value, surrogate",
        InvalidLink,
        lambda g: g.link("c1", Link("email", "ann\ud800@example.com"), at=T0),
    ),
    (
        "link value, zero-width space",
        InvalidLink,
        lambda g: g.link("c1", Link("email", "ann\u200b@example.com"), at=T0),
    ),
    (
        "link value, right-to-left override",
        InvalidLink,
        lambda g: g.link("c1", Link("crm_id", "\u202e1234"), at=T0),
    ),
    ("link value, NUL", InvalidLink, lambda g: g.link("c1", Link("crm_id", "a\x00b"), at=T0)),
    (
        "unlink, surrogate",
        InvalidLink,
        lambda g: g.unlink(Link("crm_id", "\ud800"), at=T0),
    ),
    (
        "merge reason, surrogate",
        ValueError,
        lambda g: g.merge("c1", "c2", reason="same\ud800", at=T0),
    ),
    ("merge reason, NUL", ValueError, lambda g: g.merge("c1", "c2", reason="x\x00", at=T0)),
    ("event type, NUL", InvalidEvent, lambda g: g.record(_visit(type="visit\x00"))),
    ("event type, surrogate", InvalidEvent, lambda g: g.record(_visit(type="visit\ud800"))),
    ("event id, NUL", InvalidEvent, lambda g: g.record(_visit(id="v\x00"))),
    ("event id, surrogate", InvalidEvent, lambda g: g.record(_visit(id="v\udfff"))),
    (
        "event customer, surrogate",
        InvalidEvent,
        lambda g: g.record(_visit(customer_id="c\ud800")),
    ),
    (
        "event link, surrogate (dropped, then nothing left)",
        InvalidEvent,
        lambda g: g.record(_visit(customer_id=None, links=(Link("email", "a\ud800@x.com"),))),
    ),
    (
        "event data string, surrogate",
        InvalidEvent,
        lambda g: g.record(_visit(data={"note": ["ok", "\ud800"]})),
    ),
    (
        "event data key, surrogate",
        InvalidEvent,
        lambda g: g.record(_visit(data={"a": {"k\udc00": 1}})),
    ),
    ("event data string, NUL", InvalidEvent, lambda g: g.record(_visit(data={"n": "a\x00"}))),
    ("event data key, NUL", InvalidEvent, lambda g: g.record(_visit(data={"\x00n": "1"}))),
    (
        "event data one level too deep",
        InvalidEvent,
        lambda g: g.record(_visit(data=nested_data(MAX_DATA_DEPTH + 1))),
    ),
    (
        "event data one level too deep, built frozen",
        InvalidEvent,
        lambda g: g.record(_visit(data=nested_data(MAX_DATA_DEPTH + 1, frozen=True))),
    ),
    (
        "event data, 990 nested mappings",
        InvalidEvent,
        lambda g: g.record(_visit(data=nested_data(990))),
    ),
    (
        "event data, 500 nested lists",
        InvalidEvent,
        lambda g: g.record(_visit(data={"k": nested_lists(500)})),
    ),
    (
        "purchase, surrogate in a frozen item",
        InvalidEvent,
        lambda g: g.record(
            _visit(
                type="purchase",
                data=FrozenMap({"items": (FrozenMap({"sku": "\ud800", "quantity": 1}),)}),
            )
        ),
    ),
]


def _registered(graph: IdentityGraph) -> IdentityGraph:
    graph.register("c1", at=T0)
    graph.register("c2", at=T0)
    return graph


def largest_accepted(graph: IdentityGraph) -> None:
    """Calls at the edges of what the rules accept: longest ids and values,
    astral-plane characters, every allowed control and format character,
    data nested exactly as deep as allowed."""
    emoji = "\U0001f600"
    customer = "\U0001d49c" + "\u00e9" * 254 + emoji  # 256 characters, in NFC
    graph.register(
        customer,
        {
            "note": ALLOWED_CONTROLS + FORMAT_CHARACTERS + emoji,
            "long": "x" * (MAX_ATTRIBUTE_LENGTH - 1) + emoji,
            "huge": 1.7976931348623157e308,
        },
        at=T0,
    )
    graph.link(customer, Link("crm_id", "\u00fc" * 1000 + emoji * 24), at=T0)
    graph.link(customer, Link("email", "jos\u00e9@example.com"), at=T0)
    graph.link("c2", Link("phone", "+358 40 123 4567"), at=T0)
    graph.merge(customer, "c2", reason="same person " + ALLOWED_CONTROLS + emoji, at=T0)
    data = {
        "deep": nested_data(MAX_DATA_DEPTH - 1),
        "controls": ALLOWED_CONTROLS + FORMAT_CHARACTERS,
        ALLOWED_CONTROLS + FORMAT_CHARACTERS: emoji,
        "long": "y" * 100_000,
        "look-alike": {"$decimal": "1"},
        "amount": Decimal("1.10"),
    }
    assert graph.record(
        Event(
            "v" + ALLOWED_CONTROLS + emoji, at=T0, customer_id=customer, data=data, id=emoji * 256
        )
    )
    frozen = nested_data(MAX_DATA_DEPTH, frozen=True)
    assert graph.record(Event("visit", at=T0, customer_id="c2", data=frozen, id="frozen"))


class StoreContract:
    """The contract suite; subclass it and define :meth:`new_store`."""

    #: Operations per random scenario; raise it for a deeper soak.
    operations = 150

    def new_store(self) -> Store:
        """A new, empty store (each test gets its own)."""
        raise NotImplementedError

    def reopen(self, store: Store) -> Store | None:
        """A second connection to ``store``'s data, or None if it has none."""
        return None

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        store = self.new_store()
        yield store
        store.close()

    # ---------------------------------------------------------------- rows

    def test_new_store_is_empty_and_current(self, store: Store) -> None:
        store.begin(False)
        try:
            head = store.head()
            assert (head.seq, head.events, head.refusals) == (0, 0, 0)
            assert list(store.journal(0)) == []
            assert store.checkpoint() is None
            assert store.schema_version() == LATEST
        finally:
            store.rollback()

    def test_journal_rows_come_back_in_order_and_by_range(self, store: Store) -> None:
        store.begin(True)
        store.append_journal([(s, "link", T0.isoformat(), f'{{"t":["r{s}"]}}') for s in (1, 2, 3)])
        store.commit()
        assert [seq for seq, _ in store.journal(0)] == [1, 2, 3]
        assert [seq for seq, _ in store.journal(1, 2)] == [2]
        assert [text for _, text in store.journal(2)] == ['{"t":["r3"]}']
        assert store.head().seq == 3

    def test_rollback_drops_the_transaction(self, store: Store) -> None:
        store.begin(True)
        store.append_journal([(1, "link", T0.isoformat(), '{"t":[]}')])
        store.commit()
        store.begin(True)
        store.append_journal([(2, "link", T0.isoformat(), '{"t":[]}')])
        store.append_events([("e1", "visit", T0.isoformat(), '"c1"', "{}")])
        store.append_refusals([(T0.isoformat(), "link", "why", "{}")])
        store.save_checkpoint((2, 1, b"x"))
        store.rollback()
        head = store.head()
        assert (head.seq, head.events, head.refusals) == (1, 0, 0)
        assert store.checkpoint() is None

    def test_events_and_refusals_keep_their_order(self, store: Store) -> None:
        store.begin(True)
        store.append_events([(f"e{i}", "visit", T0.isoformat(), '"c1"', str(i)) for i in range(3)])
        store.append_refusals([(T0.isoformat(), "link", f"r{i}", "{}") for i in range(2)])
        store.commit()
        head = store.head()
        events = list(store.events(0, head.events))
        assert [body for _, _, body in events] == ["0", "1", "2"]
        assert [pos for pos, _, _ in events] == sorted(pos for pos, _, _ in events)
        assert [row[2] for row in store.events(events[0][0], events[1][0])] == ["1"]
        assert [row[3] for row in store.refusals(0, head.refusals)] == ["r0", "r1"]

    def test_an_event_id_is_stored_once(self, store: Store) -> None:
        store.begin(True)
        store.append_events([("e1", "visit", T0.isoformat(), '"c1"', "{}")])
        store.commit()
        store.begin(True)
        with pytest.raises((StoreError, *store.driver_errors)):
            store.append_events([("e1", "visit", T0.isoformat(), '"c1"', "{}")])
        store.rollback()
        assert store.head().events == 1

    def test_a_checkpoint_replaces_the_previous_one(self, store: Store) -> None:
        for seq in (1, 5):
            store.begin(True)
            store.save_checkpoint((seq, 1, bytes([seq])))
            store.commit()
        assert store.checkpoint() == (5, 1, b"\x05")

    # --------------------------------------------------------------- graph

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_the_graph_on_the_store_equals_the_graph_in_memory(
        self, store: Store, seed: int
    ) -> None:
        memory = IdentityGraph()
        stored = IdentityGraph.open(store)
        assert apply(stored, random_operations(seed, self.operations)) == apply(
            memory, random_operations(seed, self.operations)
        )
        assert snapshot(stored) == snapshot(memory)
        assert list(stored.journal()) == list(memory.journal())
        assert stored.changes(5) == memory.changes(5)
        half = len(memory.state.journal) // 2
        assert stored.as_of(half) == memory.as_of(half)

    def test_reopening_gives_the_same_graph(self, store: Store) -> None:
        stored = IdentityGraph.open(store)
        apply(stored, random_operations(7, self.operations))
        expected = snapshot(stored)
        second = self.reopen(store)
        if second is None:
            pytest.skip("this store has no second connection")
        assert snapshot(IdentityGraph.open(second)) == expected
        stored.checkpoint()
        apply(stored, random_operations(8, 40))  # a tail after the checkpoint
        expected = snapshot(stored)
        third = self.reopen(store)
        assert third is not None
        reopened = IdentityGraph.open(third)
        assert snapshot(reopened) == expected
        reopened.close()

    def test_a_second_connection_sees_the_first_ones_writes(self, store: Store) -> None:
        second = self.reopen(store)
        if second is None:
            pytest.skip("this store has no second connection")
        a, b = IdentityGraph.open(store), IdentityGraph.open(second)
        a.link("c1", Link("email", "ann@example.com"), at=T0)
        b.link("c2", Link("email", "bo@example.com"), at=T0)
        merge_id = a.merge("c1", "c2", reason="same person", at=T0)
        assert merge_id is not None
        assert b.resolve(Link("email", "bo@example.com")) == "c1"
        b.split(merge_id, at=T0)
        assert a.resolve("c2") == "c2"
        assert [e.seq for e in a.journal()] == [1, 2, 3, 4]
        assert a == b
        # Events: b loads them only when first asked, then follows a's writes.
        a.record(Event("visit", at=T0, customer_id="c1", id="v1"))
        assert [e.id for e in b.events("c1")] == ["v1"]
        a.record(Event("visit", at=T0 + timedelta(hours=1), customer_id="c2", id="v2"))
        b.record(Event("visit", at=T0 + timedelta(hours=2), customer_id="c2", id="v3"))
        assert [e.id for e in a.events("c2")] == ["v2", "v3"]
        assert [e.id for e in b.events("c2")] == ["v2", "v3"]
        b.close()

    def test_a_failed_write_leaves_store_and_graph_as_they_were(self, store: Store) -> None:
        stored = IdentityGraph.open(store)
        apply(stored, random_operations(11, 60))
        before = snapshot(stored)
        original = store.commit

        def failing_commit() -> None:
            raise StoreError("simulated failure in commit")

        store.commit = failing_commit  # type: ignore[method-assign]
        try:
            with pytest.raises(StoreError):
                stored.link("c99", Link("email", "new@example.com"), at=T0)
            with pytest.raises(StoreError):
                stored.record(Event("visit", at=T0, customer_id="c1", id="v-fail"))
        finally:
            store.commit = original  # type: ignore[method-assign]
            store.rollback()
        assert snapshot(stored) == before
        stored.link("c99", Link("email", "new@example.com"), at=T0)
        assert stored.resolve(Link("email", "new@example.com")) == "c99"

    def test_refused_calls_are_kept(self, store: Store) -> None:
        stored = IdentityGraph.open(store)
        with pytest.raises(IdentityGraphError):
            stored.link("c1", Link("email", "n/a"), at=T0)
        assert [r.op for r in stored.refusals()] == ["link"]
        assert list(stored.journal()) == []
        second = self.reopen(store)
        if second is not None:
            assert [r.reason for r in IdentityGraph.open(second).refusals()] == [
                r.reason for r in stored.refusals()
            ]

    def test_record_many_in_batches(self, store: Store) -> None:
        stored = IdentityGraph.open(store, batch_size=7)
        stored.register("c1", at=T0)
        events = [
            Event("visit", at=T0 + timedelta(minutes=i), customer_id="c1", id=f"v{i}")
            for i in range(30)
        ]
        assert stored.record_many(iter(events)) == (30, 0)
        assert stored.record_many(events) == (0, 30)
        assert len(stored.events("c1")) == 30
        assert store.head().events == 30

    def test_a_batch_commits_its_calls_together(self, store: Store) -> None:
        stored = IdentityGraph.open(store)
        stored.record(Event("visit", at=T0, customer_id=None, links=(Link("email", "a@x.com"),)))
        reader = IdentityGraph.open(self.reopen(store) or store)  # events not loaded yet
        with reader.batch():
            reader.link("c1", Link("email", "a@x.com"), at=T0)
            with pytest.raises(IdentityGraphError):
                reader.link("c2", Link("email", "n/a"), at=T0)  # refused, logged, no undo
            again = Event("visit", at=T0, customer_id=None, links=(Link("email", "a@x.com"),))
            assert reader.record(again) is False  # the batch sees the stored event
            reader.register("c1", attributes={"first_name": "Ann"}, at=T0)
        fresh = IdentityGraph.open(self.reopen(store) or store)
        assert snapshot(fresh) == snapshot(reader)
        assert [e.op for e in fresh.journal()] == ["link", "register"]
        assert [r.op for r in fresh.refusals()] == ["link"]

    # ---------------------------------------------------------------- the door

    @pytest.mark.parametrize(
        ("label", "error", "call"), REFUSED_INPUTS, ids=[case[0] for case in REFUSED_INPUTS]
    )
    def test_an_input_outside_the_rules_is_refused_alike(
        self,
        store: Store,
        label: str,
        error: type[Exception],
        call: Callable[[IdentityGraph], object],
    ) -> None:
        memory, stored = _registered(IdentityGraph()), _registered(IdentityGraph.open(store))
        messages = []
        for graph in (memory, stored):
            with pytest.raises(error) as caught:
                call(graph)
            messages.append(str(caught.value))
        assert messages[0] == messages[1], label
        assert snapshot(stored) == snapshot(memory)
        # The refusal log (holding the refused input) was stored, and the
        # store takes the next call.
        for graph in (memory, stored):
            graph.link("c1", Link("email", "after@example.com"), at=T0)
        second = self.reopen(store)
        reopened = IdentityGraph.open(second) if second is not None else stored
        assert snapshot(reopened) == snapshot(memory)
        assert [r.args for r in reopened.refusals()] == [r.args for r in memory.refusals()]

    def test_a_dropped_link_with_invalid_text_is_logged_on_every_store(self, store: Store) -> None:
        memory, stored = _registered(IdentityGraph()), _registered(IdentityGraph.open(store))
        bad = Link("email", "ann\ud800@example.com")
        for graph in (memory, stored):
            assert graph.record(_visit(links=(bad,), id="v1")) is True
        assert snapshot(stored) == snapshot(memory)
        second = self.reopen(store)
        reopened = IdentityGraph.open(second) if second is not None else stored
        assert [r.args for r in reopened.refusals()] == [{"event": "v1", "link": bad}]

    def test_the_largest_accepted_inputs_round_trip(self, store: Store) -> None:
        memory, stored = _registered(IdentityGraph()), _registered(IdentityGraph.open(store))
        largest_accepted(memory)
        largest_accepted(stored)
        assert snapshot(stored) == snapshot(memory)
        second = self.reopen(store)
        reopened = IdentityGraph.open(second) if second is not None else stored
        assert snapshot(reopened) == snapshot(memory)
        assert list(reopened.journal()) == list(memory.journal())
        for profile in memory.profiles():
            expected = memory.events(profile.id)
            got = reopened.events(profile.id)
            assert [e.id for e in got] == [e.id for e in expected]
            assert all(same_event(a, b) for a, b in zip(got, expected, strict=True))
        profile = reopened.profile("c2")
        assert Link("email", "jos\u00e9@example.com") in profile.links
        assert profile.attributes["long"] == "x" * (MAX_ATTRIBUTE_LENGTH - 1) + "\U0001f600"

    def test_an_exception_leaving_a_batch_rolls_it_back(self, store: Store) -> None:
        stored = IdentityGraph.open(store)
        stored.link("c1", Link("email", "a@x.com"), at=T0)
        before = snapshot(stored)
        with pytest.raises(KeyError), stored.batch():
            stored.link("c2", Link("email", "b@x.com"), at=T0)
            stored.merge("c1", "c2", reason="same", at=T0)
            raise KeyError("the caller changed its mind")
        assert snapshot(stored) == before
        assert snapshot(IdentityGraph.open(self.reopen(store) or store)) == before
