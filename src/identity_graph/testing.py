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
  leaves the store and the graph as they were;
- **erasure** — ``forget`` on the store gives the graph, journal, events
  and refusals that ``forget`` gives in memory, and the same again after
  reopening; no row the store hands back (journal, events, refusals,
  checkpoint) holds an erased value, while the other customers' values
  stay; the suppression list and its releases survive reopening;
  ``verify()`` passes; a second graph object on the store catches up to
  the erasure (the store's erasure epoch) and serves no erased value.
"""

from __future__ import annotations

import gc
import random
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from . import checkpoint as checkpoints
from .errors import (
    IdentityGraphError,
    InvalidCustomerId,
    InvalidEvent,
    InvalidLink,
    StoreError,
    SuppressedLink,
)
from .events import Event, FrozenMap, same_event
from .graph import IdentityGraph
from .ids import Link
from .stores.base import Store
from .stores.schema import LATEST
from .text import MAX_ATTRIBUTE_LENGTH, MAX_DATA_DEPTH

__all__ = [
    "ALLOWED_CONTROLS",
    "ERASED_PERSON",
    "ERASED_TEXTS",
    "FORMAT_CHARACTERS",
    "KEPT_TEXTS",
    "REFUSED_INPUTS",
    "StoreContract",
    "erasure_scenario",
    "largest_accepted",
    "nested_data",
    "random_operations",
    "reachable_strings",
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


# ------------------------------------------------------------------ erasure

#: The person the erasure tests forget.
ERASED_PERSON = "c-erase-me-7731"
_PERSON_EMAIL = Link("email", "erasmina.forgetwell@forget.example")
_PERSON_PHONE = Link("phone", "+358 40 765 4321")

#: Texts that only the erased person's data holds: after ``forget`` none of
#: them may be found anywhere (the phone both as given and normalised).
ERASED_TEXTS = (
    ERASED_PERSON,
    "Erasmina",
    "Forgetwell",
    "erasmina.forgetwell@forget.example",
    "765 4321",
    "+358407654321",
    "ev-erasmina-",
    "987.65",
    "erasmina private note",
)
#: Texts of the customers that stay (one merged with the person, one not).
KEPT_TEXTS = ("c-kept-merged", "Keptina", "keptina@keep.example", "c-untouched", "Untoucha")


def reachable_strings(root: object) -> Iterator[str]:
    """Every string reachable from ``root`` through the objects it refers to
    (``gc.get_referents``), not through code, classes or modules, which hold
    no data of a graph: what an erasure test searches for erased values
    ("nothing of the person stays reachable").  O(objects reachable)."""
    skip = (
        type,
        types.ModuleType,
        types.FunctionType,
        types.BuiltinFunctionType,
        types.CodeType,
        types.FrameType,
        types.MethodType,
        bytes,
        int,
        float,
    )
    seen: set[int] = set()
    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, str):
            yield item
        elif not isinstance(item, skip):
            stack.extend(gc.get_referents(item))


def erasure_scenario(graph: IdentityGraph) -> None:
    """The person of :data:`ERASED_PERSON` with attributes, links (two of
    their own, one later relinked to another customer), a merge with
    ``c-kept-merged``, events on their id and on their email, and refusals
    naming them; plus the customers who stay, with their own events and
    refusals."""
    hour = timedelta(hours=1)
    person, email = ERASED_PERSON, _PERSON_EMAIL
    graph.register(person, {"first_name": "Erasmina", "last_name": "Forgetwell"}, at=T0)
    graph.link(person, email, at=T0)
    graph.link(person, _PERSON_PHONE, at=T0)
    graph.link(person, Link("loyalty_card", "5550001"), at=T0)
    graph.register("c-kept-merged", {"first_name": "Keptina"}, at=T0)
    graph.link("c-kept-merged", Link("email", "keptina@keep.example"), at=T0)
    graph.register("c-untouched", {"first_name": "Untoucha"}, at=T0)
    graph.link("c-untouched", Link("email", "untoucha@keep.example"), at=T0)
    graph.merge(person, "c-kept-merged", reason="same household", at=T0 + hour)
    graph.relink(Link("loyalty_card", "5550001"), to="c-kept-merged", at=T0 + 2 * hour)
    data = {
        "amount": "987.65",
        "items": [{"sku": "A", "quantity": 1, "price": "987.65"}],
        "note": "erasmina private note",
    }
    graph.record(Event("purchase", at=T0 + hour, customer_id=person, data=data, id="ev-erasmina-1"))
    graph.record(Event("visit", at=T0 + 3 * hour, links=(email,), id="ev-erasmina-2"))
    graph.record(Event("visit", at=T0 + hour, customer_id="c-kept-merged", id="ev-keptina-1"))
    graph.record(Event("visit", at=T0 + hour, customer_id="c-untouched", id="ev-untoucha-1"))
    # On the shared card: while it was the person's (goes), and after (stays).
    card = Link("loyalty_card", "5550001")
    graph.record(Event("call", at=T0 + hour, links=(card,), id="ev-erasmina-card"))
    graph.record(Event("call", at=T0 + 3 * hour, links=(card,), id="ev-keptina-card"))
    # Anchored on someone else, but naming the person's email: it goes.
    graph.record(
        Event(
            "visit", at=T0 + 3 * hour, customer_id="c-untouched", links=(email,), id="ev-erasmina-3"
        )
    )
    for customer in (person, "c-untouched"):
        with pytest.raises(InvalidLink):
            graph.link(customer, Link("email", "n/a"), at=T0 + hour)


def _erased_in(text: str) -> list[str]:
    return [value for value in ERASED_TEXTS if value in text]


def _seen(graph: IdentityGraph) -> str:
    """Everything a graph serves, as one text: profiles, attributes, events,
    journal entries, changes and refusals."""
    parts: list[object] = [graph.customers(), list(graph.journal()), graph.refusals()]
    parts.append(graph.changes(0))
    for profile in graph.profiles():
        parts.extend((profile, graph.events(profile.id)))
    return repr(parts)


def _close(graph: IdentityGraph, store: Store) -> None:
    """Close a graph opened on a second connection (not ``store`` itself,
    which the test's fixture closes)."""
    if graph.store is not store:
        graph.close()


def _stored_rows(store: Store) -> str:
    """Every row the store hands back, as one text (the checkpoint decoded)."""
    store.begin(False)
    try:
        head = store.head()
        rows: list[object] = [
            list(store.journal(0)),
            list(store.events(0, head.events)),
            list(store.refusals(0, head.refusals)),
        ]
        found = store.checkpoint()
    finally:
        store.rollback()
    if found is not None:
        rows.append(checkpoints.loads(found[2]))
    return repr(rows)


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

    def test_refusal_positions_are_never_reused(self, store: Store) -> None:
        """An erasure deletes refusal rows, the last ones among them; a new
        row must still get a position above every one given out, or a
        process that had read up to it would skip the new row."""
        row = (T0.isoformat(), "link", "a reason", '{"m":[]}')
        store.begin(True)
        store.append_refusals([row, row, row])
        store.commit()
        store.begin(True)
        highest = store.head().refusals
        store.delete_refusals([highest - 1, highest])
        store.commit()
        store.begin(True)
        store.append_refusals([row])
        store.commit()
        store.begin(False)
        try:
            positions = [pos for pos, *_rest in store.refusals(0, store.head().refusals)]
        finally:
            store.rollback()
        assert positions[:-1] == [highest - 2] and positions[-1] > highest

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

    # ------------------------------------------------------------- erasure

    #: The secret of the keyed hashes, shared by the in-memory twin.
    secret = bytes(range(32))

    def _erased_pair(self, store: Store) -> tuple[IdentityGraph, IdentityGraph]:
        """The same calls on a graph in memory and on the store (random
        operations, :func:`erasure_scenario`, a checkpoint, ``forget``)."""
        memory = IdentityGraph(secret=self.secret)
        stored = IdentityGraph.open(store, secret=self.secret)
        for graph in (memory, stored):
            apply(graph, random_operations(21, 60))
            erasure_scenario(graph)
        stored.checkpoint()  # the old checkpoint held the person
        assert _erased_in(_stored_rows(store)), "the scenario stored nothing to erase"
        at = T0 + timedelta(days=100)
        entries = [
            graph.forget(ERASED_PERSON, at=at, reason="request 17") for graph in (memory, stored)
        ]
        assert entries[0] == entries[1]
        return memory, stored

    def _again(self, store: Store) -> IdentityGraph:
        """A new graph object on the store's data (on ``store`` itself when
        it has no second connection)."""
        second = self.reopen(store)
        return IdentityGraph.open(second if second is not None else store)

    def test_forget_on_the_store_equals_forget_in_memory_and_after_reopening(
        self, store: Store
    ) -> None:
        memory, stored = self._erased_pair(store)
        reopened = self._again(store)
        for graph in (stored, reopened):
            assert graph == memory
            assert snapshot(graph) == snapshot(memory)
            assert list(graph.journal()) == list(memory.journal())
            assert graph.changes(0) == memory.changes(0)
            assert IdentityGraph.from_journal(graph.journal()) == graph
        assert ERASED_PERSON not in reopened.customers()
        assert reopened.resolve("c-kept-merged") == "c-kept-merged"
        _close(reopened, store)

    def test_no_row_holds_an_erased_value_after_forget(self, store: Store) -> None:
        _memory, stored = self._erased_pair(store)
        reopened = self._again(store)
        for text in (_seen(stored), _seen(reopened), _stored_rows(store)):
            assert _erased_in(text) == []
            assert all(value in text for value in KEPT_TEXTS[:3])
        _close(reopened, store)

    def test_a_graph_that_never_read_events_erases_the_same_events(self, store: Store) -> None:
        """A graph that opens and forgets at once (the command line does)
        finds the person's events with one search of the event rows instead
        of loading them all: the result is the same."""
        memory = IdentityGraph(secret=self.secret)
        first = IdentityGraph.open(store, secret=self.secret)
        for graph in (memory, first):
            apply(graph, random_operations(23, 60))
            erasure_scenario(graph)
        second = self.reopen(store)
        # The store keeps no key before its first erasure: this one is used.
        fresh = IdentityGraph.open(second if second is not None else store, secret=self.secret)
        at = T0 + timedelta(days=100)
        erased = [g.forget(ERASED_PERSON, at=at) for g in (memory, fresh)]
        assert erased[0] == erased[1] and erased[1] is not None
        assert len(erased[1].args["events"]) == 4  # id, email, card in its span, naming email
        assert fresh == memory and snapshot(fresh) == snapshot(memory)
        assert _erased_in(_seen(fresh)) == [] and _erased_in(_stored_rows(store)) == []
        _close(fresh, store)
        if first.store is not store:
            first.close()

    def test_refusals_naming_the_person_are_gone(self, store: Store) -> None:
        memory, stored = self._erased_pair(store)
        reopened = self._again(store)
        for graph in (stored, reopened):
            refusals = graph.refusals()
            assert [r.args for r in refusals] == [r.args for r in memory.refusals()]
            assert any(r.args.get("customer_id") == "c-untouched" for r in refusals)
            assert _erased_in(repr(refusals)) == []
        _close(reopened, store)

    def test_the_suppression_list_survives_reopening(self, store: Store) -> None:
        self._erased_pair(store)
        reopened = self._again(store)
        assert reopened.suppressed(ERASED_PERSON)
        assert reopened.suppressed(_PERSON_EMAIL)
        later = T0 + timedelta(days=101)
        with pytest.raises(SuppressedLink):
            reopened.register(ERASED_PERSON, at=later)
        with pytest.raises(SuppressedLink):
            reopened.link("c-newcomer", _PERSON_EMAIL, at=later)
        # The refusals were stored with the hashes, not the values.
        assert _erased_in(repr(reopened.refusals())) == []
        assert reopened.release_suppression(ERASED_PERSON, at=later) is not None
        _close(reopened, store)
        again = self._again(store)
        assert not again.suppressed(ERASED_PERSON)
        assert again.suppressed(_PERSON_EMAIL)  # released one value, not the other
        again.register(ERASED_PERSON, {"first_name": "Back"}, at=later)
        with pytest.raises(SuppressedLink):
            again.link(ERASED_PERSON, _PERSON_EMAIL, at=later)
        _close(again, store)

    def test_verify_passes_after_forget(self, store: Store) -> None:
        _memory, stored = self._erased_pair(store)
        assert stored.verify() == len(list(stored.journal()))
        reopened = self._again(store)
        assert reopened.verify() == len(list(stored.journal()))
        _close(reopened, store)

    def test_a_second_graph_catches_up_to_the_erasure(self, store: Store) -> None:
        second = self.reopen(store)
        if second is None:
            pytest.skip("this store has no second connection")
        first = IdentityGraph.open(store)
        erasure_scenario(first)
        other = IdentityGraph.open(second)
        assert ERASED_PERSON in other.customers()
        assert _erased_in(_seen(other))  # its memory holds the person, events loaded
        first.forget(ERASED_PERSON, at=T0 + timedelta(days=100))
        assert ERASED_PERSON not in other.customers()
        assert other.suppressed(ERASED_PERSON)
        assert other == first
        assert snapshot(other) == snapshot(first)
        assert _erased_in(_seen(other)) == []
        # Both keep writing, each seeing the other's calls.
        other.link("c-untouched", Link("email", "later@keep.example"), at=T0 + timedelta(days=101))
        assert first.resolve(Link("email", "later@keep.example")) == "c-untouched"
        with pytest.raises(SuppressedLink):
            other.register(ERASED_PERSON, at=T0 + timedelta(days=101))
        assert other == first
        _close(other, store)
