"""Stateful test: a real ``IdentityGraph`` against a deliberately naive model.

The model (``NaiveModel``) keeps plain dicts and lists and recomputes everything
from scratch on every question: no union-find, no sorted containers.  It follows
the rules of ownership over time, profiles, resolution and the journal literally:

- customers in registration order (journal order);
- per link a plain list of change points ``(valid_from, owner | None)``; a point
  recorded later at the same instant replaces the earlier one;
- ``owner(link, t)``: the last point at or before ``t`` if it names a customer,
  else the owner of the next point after ``t`` if that names a customer, else None;
- the current owner is the owner of the last point;
- merges as a list; profiles are the connected components of the active merges,
  found by a breadth-first search; a profile's id is its earliest-registered customer;
- events as a plain list of already-normalised records; a profile's events
  are found by scanning every event and resolving each one at its own time: an
  event with a customer id belongs to that customer's profile, an event anchored
  on a link (its highest-priority link) to the profile of ``owner(link, event.at)``,
  or to the link's anonymous profile when nobody owns the link then.

Erasure (``forget``) is recomputed from the facts with the person's removed:

- every link some other customer ever claimed keeps its history, with the
  person's change points naming nobody; a link only they claimed vanishes;
- every merge touching them vanishes (active ones split as ``detach`` does);
- their attributes go, and the registration order closes up;
- the events on their id, on a link only they claimed, or anchored on a link
  while they owned it, go;
- the customer id, the links and the event ids are suppressed: bringing one
  back is refused until released (event ids for good).

Times are drawn from a small pool so that late-arriving change points and
same-instant collisions are frequent.  Guards are disabled with generous limits.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from identity_graph import (
    DuplicateEvent,
    Entry,
    Event,
    IdentityGraph,
    InvalidEvent,
    Limits,
    Link,
    LinkType,
    ReadOnlyGraph,
    UnknownCustomer,
    UnknownMerge,
)
from identity_graph.errors import SuppressedLink
from identity_graph.suppression import pseudonym
from identity_graph.testing import reachable_strings

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TIMES = [T0 + timedelta(days=d) for d in (0, 1, 2, 3, 5)]
# Every pool time, a time between each pair, one before all and one after all.
PROBES = sorted(
    {
        *TIMES,
        T0 - timedelta(days=1),
        T0 + timedelta(days=30),
        *(a + (b - a) / 2 for a, b in itertools.pairwise(TIMES)),
    }
)
CUSTOMERS = [f"c{i}" for i in range(1, 7)]
UNREGISTERED_PROBE = "nobody"
LINKS = [
    Link("email", "ann@example.com"),
    Link("email", "bob@example.org"),
    Link("loyalty_card", "CARD7001"),
    Link("crm_id", "crm-1"),
    Link("crm_id", "crm-2"),
]
# Events: times before, at, between and after the change points; a few types,
# a few explicit ids (so that re-recording and id collisions are frequent).
EVENT_TIMES = PROBES
EVENT_TYPES = ["purchase", "call", "visit"]
EVENT_IDS = [f"E{i}" for i in range(1, 13)]
# (No two payloads that are == but differ in canonical text, like Decimal 9.9 and
# 9.90: the model compares content with ==, the ledger by its canonical text.)
EVENT_DATA: list[dict[str, Any]] = [
    {},
    {"amount": Decimal("9.90")},
    {"amount": Decimal("12.00"), "store": "S1"},
    {"items": [{"sku": "A", "quantity": 2}]},
]
# Raw spellings of pool links: the ledger must normalise them to the pool link.
RAW_FORMS = {
    Link("email", "ann@example.com"): Link("email", " Ann@Example.COM "),
    Link("loyalty_card", "CARD7001"): Link("loyalty_card", "card-7001"),
    Link("crm_id", "crm-1"): Link("crm_id", " crm-1 "),
}
POOL_OF = {raw: link for link, raw in RAW_FORMS.items()}
# The key of the keyed hashes, so that the test works out the pseudonyms itself.
SECRET = b"graph-machine-secret-0123456789ab"


def hashed_customer(secret: bytes, customer: str) -> str:
    return pseudonym(secret, "customer", customer)


def hashed_link(secret: bytes, link: Link) -> Link:
    return Link(link.name, pseudonym(secret, "link:" + link.name, link.value))


def hashed_event(secret: bytes, event_id: str) -> str:
    return pseudonym(secret, "event", event_id)


# Dropped from an event (and logged as a refusal), never an identity.
BLOCKED = Link("email", "test@test.com")
# The default event anchor priority; other names follow, alphabetically.
ANCHOR_PRIORITY = {"loyalty_card": 0, "email": 1, "phone": 2}
ATTRIBUTES = [None, ("city", "Oulu"), ("city", "Turku"), ("tier", "gold"), ("tier", "silver")]
GENEROUS = Limits(
    max_links_per_customer=10**6,
    max_customers_per_profile=10**6,
    max_moves=10**6,
    move_window=timedelta(days=1),
)


class ModelEvent(NamedTuple):
    """An event as the ledger should store it: normalised, with its id."""

    id: str
    type: str
    at: datetime
    customer_id: str | None
    links: tuple[tuple[str, str], ...]  # normalised (name, value), no repeats, sorted
    data: dict[str, Any]

    def content(self) -> tuple[Any, ...]:
        return (self.type, self.at, self.customer_id, self.links, self.data)

    def anchor(self) -> str | Link:
        """The customer id, else the highest-priority link (computed independently)."""
        if self.customer_id is not None:
            return self.customer_id
        rank = len(ANCHOR_PRIORITY)
        name, value = min(self.links, key=lambda k: (ANCHOR_PRIORITY.get(k[0], rank), k))
        return Link(name, value)

    def as_event(self) -> Event:
        """The ``Event`` the ledger should hand back for this record."""
        return Event(
            self.type,
            at=self.at,
            customer_id=self.customer_id,
            links=tuple(Link(name, value) for name, value in self.links),
            data=self.data,
            id=self.id,
        )

    def hashed_id(self) -> str:
        """The id the ledger derives for this content when the event has none."""
        return self.as_event().content_id()


class NaiveModel:
    """What the graph should be, recomputed from plain data on every question."""

    def __init__(self, conflicts: dict[str, str]) -> None:
        self.conflicts = conflicts
        self.order: list[str] = []
        # customer -> name -> (value, at, seq)
        self.attributes: dict[str, dict[str, tuple[Any, datetime, int]]] = {}
        self.points: dict[Link, list[tuple[datetime, str | None]]] = {}
        # merge id -> [a, b, seq, active]
        self.merges: dict[str, list[Any]] = {}
        self.seq = 0
        self.events: list[ModelEvent] = []  # in recording order
        # link -> every customer a change point ever named (replaced ones too)
        self.claims: dict[Link, set[str]] = {}
        # What forget erased and nothing released yet (the values themselves).
        self.suppressed_customers: set[str] = set()
        self.suppressed_links: set[Link] = set()
        self.suppressed_events: set[str] = set()

    # ---------------------------------------------------------------- links

    def history(self, link: Link) -> list[tuple[datetime, str | None]]:
        return list(self.points.get(link, []))

    def explicit_owner(self, link: Link, t: datetime) -> str | None:
        before = [p for p in self.history(link) if p[0] <= t]
        return before[-1][1] if before else None

    def owner_at(self, link: Link, t: datetime) -> str | None:
        pts = self.history(link)
        before = [p for p in pts if p[0] <= t]
        if before and before[-1][1] is not None:
            return before[-1][1]
        after = [p for p in pts if p[0] > t]
        if after and after[0][1] is not None:
            return after[0][1]
        return None

    def current_owner(self, link: Link) -> str | None:
        pts = self.history(link)
        return pts[-1][1] if pts else None

    def _put(self, link: Link, t: datetime, owner: str | None) -> None:
        pts = [p for p in self.points.get(link, []) if p[0] != t]
        pts.append((t, owner))
        pts.sort(key=lambda p: p[0])
        self.points[link] = pts
        if owner is not None:
            self.claims.setdefault(link, set()).add(owner)

    # ---------------------------------------------------------------- profiles

    def active_merges(self) -> list[tuple[str, str, str]]:
        return [(mid, m[0], m[1]) for mid, m in self.merges.items() if m[3]]

    def components(self) -> list[list[str]]:
        neighbours: dict[str, list[str]] = {c: [] for c in self.order}
        for _mid, a, b in self.active_merges():
            neighbours[a].append(b)
            neighbours[b].append(a)
        seen: set[str] = set()
        result = []
        for start in self.order:
            if start in seen:
                continue
            seen.add(start)
            component = [start]
            queue = deque([start])
            while queue:
                node = queue.popleft()
                for other in neighbours[node]:
                    if other not in seen:
                        seen.add(other)
                        component.append(other)
                        queue.append(other)
            result.append(sorted(component, key=self.order.index))
        return result

    def component_of(self, customer: str) -> list[str]:
        return next(comp for comp in self.components() if customer in comp)

    def profile_id(self, customer: str) -> str:
        return self.component_of(customer)[0]

    def link_profile(self, link: Link, owner: str | None) -> Any:
        return link if owner is None else self.profile_id(owner)

    def profile_links(self, customer: str) -> list[Link]:
        members = set(self.component_of(customer))
        return sorted(link for link in self.points if self.current_owner(link) in members)

    def profile_merge_ids(self, customer: str) -> list[str]:
        members = set(self.component_of(customer))
        inside = [(m[2], mid) for mid, m in self.merges.items() if m[3] and m[0] in members]
        return [mid for _seq, mid in sorted(inside)]

    def profile_attributes(self, customer: str) -> dict[str, Any]:
        best: dict[str, tuple[Any, datetime, int]] = {}
        for member in self.component_of(customer):
            for name, record in self.attributes.get(member, {}).items():
                if name not in best or (record[1], record[2]) > (best[name][1], best[name][2]):
                    best[name] = record
        return {name: record[0] for name, record in sorted(best.items())}

    # ---------------------------------------------------------------- events

    def record(self, event: ModelEvent) -> str | type[Exception]:
        """ "recorded", "unchanged", or the error the ledger must raise (and then
        record nothing).  ``event`` names no suppressed link (the machine
        spells those in as extras)."""
        if event.id in self.suppressed_events or event.customer_id in self.suppressed_customers:
            return SuppressedLink
        if event.customer_id is not None and event.customer_id not in self.order:
            return UnknownCustomer
        if event.customer_id is None and not event.links:
            return InvalidEvent
        known = [e for e in self.events if e.id == event.id]
        if known:
            return "unchanged" if known[0].content() == event.content() else DuplicateEvent
        self.events.append(event)
        return "recorded"

    def event_ids(
        self,
        ref: str | Link,
        events: Sequence[ModelEvent] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        types: Sequence[str] | None = None,
    ) -> list[str]:
        """Ids of the events of ``ref``'s profile, by scanning every event and
        resolving each at its own time; in ``[start, end)``, ordered by (at, id)."""
        events = self.events if events is None else events
        owner = self.current_owner(ref) if isinstance(ref, Link) else ref
        members = set() if owner is None else set(self.component_of(owner))
        found = []
        for event in events:
            anchor = event.anchor()
            if event.customer_id is not None:
                mine = event.customer_id in members
            elif owner is None:  # the anonymous profile of the link `ref`
                mine = anchor == ref and self.owner_at(anchor, event.at) is None
            else:
                mine = self.owner_at(anchor, event.at) in members
            if (
                mine
                and (start is None or start <= event.at)
                and (end is None or event.at < end)
                and (types is None or event.type in types)
            ):
                found.append((event.at, event.id))
        return [event_id for _at, event_id in sorted(found)]

    # ---------------------------------------------------------------- operations
    # Each returns what the call should return in kind: False when nothing
    # changes (the graph must return None and journal nothing).

    def _ensure(self, customer: str) -> None:
        if customer not in self.order:
            self.order.append(customer)

    def register(self, customer: str, attributes: dict[str, Any] | None, t: datetime) -> bool:
        known = self.attributes.get(customer, {})
        # A value changes when it is new, set later (an equal value too: its
        # time moves on), or set at the same time with a different value.
        changed = {
            name: value
            for name, value in (attributes or {}).items()
            if name not in known
            or t > known[name][1]
            or (t == known[name][1] and value != known[name][0])
        }
        if customer in self.order and not changed:
            return False
        self.seq += 1
        self._ensure(customer)
        for name, value in changed.items():
            self.attributes.setdefault(customer, {})[name] = (value, t, self.seq)
        return True

    def link(self, customer: str, link: Link, t: datetime) -> str | None:
        """None (nothing), "own" (a change point) or "merge" (a shared-link merge)."""
        explicit = self.explicit_owner(link, t)
        if explicit == customer:
            return None
        if explicit is not None and self.conflicts.get(link.name) == "merge":
            if customer in self.order and self.profile_id(customer) == self.profile_id(explicit):
                return None
            self.seq += 1
            self._ensure(customer)
            return "merge"  # the caller adds the merge under the id the graph issued
        self.seq += 1
        self._ensure(customer)
        self._put(link, t, customer)
        return "own"

    def relink(self, link: Link, customer: str, t: datetime) -> bool:
        if self.explicit_owner(link, t) == customer:
            return False
        self.seq += 1
        self._ensure(customer)
        self._put(link, t, customer)
        return True

    def unlink(self, link: Link, t: datetime) -> bool:
        if self.explicit_owner(link, t) is None:
            return False
        self.seq += 1
        self._put(link, t, None)
        return True

    def merge_needed(self, a: str, b: str) -> bool:
        return self.profile_id(a) != self.profile_id(b)

    def add_merge(self, merge_id: str, a: str, b: str) -> None:
        assert merge_id not in self.merges, f"merge id {merge_id} issued twice"
        self.merges[merge_id] = [a, b, self.seq, True]

    def split(self, merge_id: str) -> bool:
        if not self.merges[merge_id][3]:
            return False
        self.seq += 1
        self.merges[merge_id][3] = False
        return True

    def detach(self, customer: str) -> bool:
        touching = [mid for mid, a, b in self.active_merges() if customer in (a, b)]
        if not touching:
            return False
        self.seq += 1
        for mid in touching:
            self.merges[mid][3] = False
        return True

    # ---------------------------------------------------------------- erasure

    def refuses(self, customer: str | None, link: Link | None = None) -> bool:
        """Whether a call bringing ``customer`` (new) or ``link`` back is refused."""
        if customer not in self.order and customer in self.suppressed_customers:
            return True
        return link is not None and link in self.suppressed_links

    def forget(self, customer: str) -> tuple[list[str], list[Link], list[str]]:
        """Erase ``customer``; return the active merges it split (oldest
        first), the links only it claimed and the ids of the events erased."""
        only = sorted(link for link, who in self.claims.items() if who == {customer})
        gone = []
        for event in self.events:
            anchor = event.anchor()
            if (
                event.customer_id == customer
                or any(Link(*key) in only for key in event.links)
                or (isinstance(anchor, Link) and self.owner_at(anchor, event.at) == customer)
            ):
                gone.append(event.id)
        active = sorted((m[2], mid) for mid, m in self.merges.items() if m[3] and customer in m[:2])
        self.seq += 1
        self.merges = {mid: m for mid, m in self.merges.items() if customer not in m[:2]}
        for link in only:
            del self.points[link]
            del self.claims[link]
        for link, pts in self.points.items():
            self.points[link] = [(t, None if o == customer else o) for t, o in pts]
            self.claims.get(link, set()).discard(customer)
        self.order.remove(customer)
        self.attributes.pop(customer, None)
        self.events = [event for event in self.events if event.id not in gone]
        self.suppressed_customers.add(customer)
        self.suppressed_links.update(only)
        self.suppressed_events.update(gone)
        return [mid for _seq, mid in active], only, sorted(gone)

    def pseudonymise(self, secret: bytes, customer: str, links: Sequence[Link]) -> None:
        """Show ``customer`` and ``links`` by their keyed hashes, as views of
        the journal before their erasure do (for the snapshots)."""
        hidden = hashed_customer(secret, customer)

        def rename(who: str | None) -> str | None:
            return hidden if who == customer else who

        self.order = [rename(c) or c for c in self.order]
        if customer in self.attributes:
            self.attributes[hidden] = self.attributes.pop(customer)
        for mid, merge in self.merges.items():
            self.merges[mid] = [rename(merge[0]), rename(merge[1]), *merge[2:]]
        self.points = {
            (hashed_link(secret, link) if link in links else link): [(t, rename(o)) for t, o in pts]
            for link, pts in self.points.items()
        }


class GraphMachine(RuleBasedStateMachine):
    """Drives ``IdentityGraph`` and ``NaiveModel`` side by side."""

    CONFLICTS: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "limits": GENEROUS,
            "link_types": {name: LinkType(conflict=c) for name, c in self.CONFLICTS.items()},
        }
        self.g = IdentityGraph(secret=SECRET, **self.config)
        self.model = NaiveModel(dict(self.CONFLICTS))
        self.snapshots: list[NaiveModel] = [copy.deepcopy(self.model)]
        self.merge_ids: list[str] = []
        self.event_checks = 0
        # The erased texts no object of the graph may hold (until released).
        self.gone: set[str] = set()

    # ---------------------------------------------------------------- helpers

    def _changed(self, op: str, result: Any, changed: bool, t: datetime | None = None) -> None:
        """Check a call's result against the model's prediction."""
        entries = list(self.g.journal())
        assert len(entries) == self.model.seq
        if not changed:
            assert result is None, f"{op} should have changed nothing, returned {result!r}"
            return
        last = entries[-1]
        if op != "merge":
            assert isinstance(result, Entry), f"{op} returned {result!r}"
            assert result == last
        assert last.seq == self.model.seq
        assert last.op == op
        if t is not None:
            assert last.at == t
        self.snapshots.append(copy.deepcopy(self.model))

    @property
    def secret(self) -> bytes:
        """The key of the graph's keyed hashes (a store's own, once opened)."""
        return self.g.state.suppression.secret

    def _refused(self, call: Callable[[], object]) -> None:
        """``call`` brings an erased value back: refused, logged by its hash
        only, and nothing changes."""
        refusals = len(self.g.refusals())
        with pytest.raises(SuppressedLink):
            call()
        assert len(list(self.g.journal())) == self.model.seq
        new = self.g.refusals()[refusals:]
        assert new and {refusal.error for refusal in new} == {"SuppressedLink"}, new
        self._assert_unreachable(repr(new), "the refusal")

    def _assert_unreachable(self, text: str, where: str) -> None:
        # A value is held as itself, or quoted in a message.
        leaked = text in self.gone or ("'" in text and any(f"'{v}'" in text for v in self.gone))
        assert not leaked, f"{where} holds an erased value: {text!r} ({sorted(self.gone)})"

    def _assert_nothing_erased_reachable(self, root: object, where: str) -> None:
        if self.gone:
            for text in reachable_strings(root):
                self._assert_unreachable(text, where)

    def _registered(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.model.order), label="customer")

    # ---------------------------------------------------------------- event helpers

    def _identity(
        self, data: st.DataObject, *, on_customer: bool
    ) -> tuple[str | None, tuple[tuple[str, str], ...]]:
        """A normalised identity: a pool customer (usually a registered one) with 0-1
        links, or 1-2 pool links (possibly the same one twice) and no customer."""
        # Erased values come back only as the extras of _spell and in
        # bring_back_erased, whose outcomes are worked out there.
        links = [link for link in LINKS if link not in self.model.suppressed_links]
        if not links:
            on_customer = True
        if on_customer:
            # Mostly a registered customer; else any (perhaps unregistered) one.
            customers = [c for c in CUSTOMERS if c not in self.model.suppressed_customers]
            if self.model.order and data.draw(st.integers(0, 3), label="registered only"):
                customers = self.model.order
            # Everyone erased: an erased customer comes back (and is refused).
            customer = data.draw(st.sampled_from(customers or CUSTOMERS), label="event customer")
            # Every link erased: none.
            some = st.lists(st.sampled_from(links), max_size=1) if links else st.just([])
            pool = data.draw(some, label="event links")
        else:
            customer = None
            pool = data.draw(
                st.lists(st.sampled_from(links), min_size=1, max_size=2), label="event links"
            )
        return customer, tuple(sorted({link.key for link in pool}))

    def _spell(self, data: st.DataObject, model: ModelEvent, event_id: str | None) -> Event:
        """An ``Event`` the ledger should normalise into ``model``: raw link
        spellings, any link order, a padded customer id, perhaps a blocked link
        (which it must drop and log)."""
        links = [
            RAW_FORMS.get(link, link) if data.draw(st.booleans(), label="raw form") else link
            for link in (Link(name, value) for name, value in model.links)
        ]
        links = data.draw(st.permutations(links), label="link order")
        if data.draw(st.integers(0, 3), label="blocked") == 0:
            links.insert(data.draw(st.integers(0, len(links)), label="where"), BLOCKED)
        erased = sorted(self.model.suppressed_links)
        if erased and data.draw(st.integers(0, 2), label="erased extra") == 0:
            # An erased value brought back beside the event's identity: dropped.
            extra = data.draw(st.sampled_from(erased), label="erased link")
            extra = RAW_FORMS.get(extra, extra) if data.draw(st.booleans()) else extra
            links.insert(data.draw(st.integers(0, len(links)), label="where"), extra)
        customer = model.customer_id
        if customer is not None and data.draw(st.booleans(), label="padded id"):
            customer = f" {customer} "
        return Event(
            model.type,
            at=model.at,
            customer_id=customer,
            links=links,
            data=copy.deepcopy(model.data),
            id=event_id,
        )

    def _new_event(
        self, data: st.DataObject, *, on_customer: bool, with_id: bool = True
    ) -> tuple[Event, ModelEvent]:
        customer, links = self._identity(data, on_customer=on_customer)
        ids = [i for i in EVENT_IDS if i not in self.model.suppressed_events] or ["E-last"]
        event_id = data.draw(st.sampled_from(ids), label="id") if with_id else None
        model = ModelEvent(
            event_id or "",
            data.draw(st.sampled_from(EVENT_TYPES), label="type"),
            data.draw(st.sampled_from(EVENT_TIMES), label="at"),
            customer,
            links,
            copy.deepcopy(data.draw(st.sampled_from(EVENT_DATA), label="data")),
        )
        if event_id is None:
            model = model._replace(id=model.hashed_id())
        return self._spell(data, model, event_id), model

    def _known_event(self, data: st.DataObject) -> ModelEvent:
        return data.draw(st.sampled_from(self.model.events), label="known event")

    def _other_content(self, data: st.DataObject, known: ModelEvent) -> ModelEvent:
        """``known`` with one field changed (the identity may come out equal)."""
        field = data.draw(st.sampled_from(["type", "at", "data", "identity"]), label="change")
        if field == "type":
            other = [kind for kind in EVENT_TYPES if kind != known.type]
            return known._replace(type=data.draw(st.sampled_from(other), label="type"))
        if field == "at":
            other = [t for t in EVENT_TIMES if t != known.at]
            return known._replace(at=data.draw(st.sampled_from(other), label="at"))
        if field == "data":
            payloads = [d for d in EVENT_DATA if d != known.data]
            payload = data.draw(st.sampled_from(payloads), label="data")
            return known._replace(data=copy.deepcopy(payload))
        on_customer = data.draw(st.booleans(), label="on customer")
        customer, links = self._identity(data, on_customer=on_customer)
        return known._replace(customer_id=customer, links=links)

    def _refusals_for(self, event: Event, outcome: str | type[Exception]) -> list[str]:
        """The refusals recording ``event`` must log: one per dropped link, then
        one for the refused event itself.  An erased event id or customer id
        is refused before anything else."""
        model = self.model
        customer = None if event.customer_id is None else event.customer_id.strip()
        if event.id in model.suppressed_events or customer in model.suppressed_customers:
            assert outcome is SuppressedLink
            return ["SuppressedLink"]
        dropped = [
            "BlockedLink" if link == BLOCKED else "SuppressedLink"
            for link in event.links
            if link == BLOCKED or POOL_OF.get(link, link) in model.suppressed_links
        ]
        return dropped + ([outcome.__name__] if isinstance(outcome, type) else [])

    def _seen_as(self, event: Event, outcome: str | type[Exception]) -> str | type[Exception]:
        """The model's outcome as the graph reports it: an event left with
        no identity once its links are dropped is ``SuppressedLink`` rather
        than ``InvalidEvent`` when one of the dropped links was erased (the
        model does not see the erased links the machine spells in)."""
        erased = any(POOL_OF.get(link, link) in self.model.suppressed_links for link in event.links)
        return SuppressedLink if outcome is InvalidEvent and erased else outcome

    def _new_refusals(self, before: int) -> list[str]:
        new = self.g.refusals()[before:]
        assert all(refusal.op == "record" for refusal in new), new
        return [refusal.error for refusal in new]

    def _record_one(self, event: Event, model: ModelEvent) -> str | type[Exception]:
        """Record ``event`` in the graph and ``model`` in the model; compare."""
        stored, refused = len(self.g._ledger), len(self.g.refusals())
        outcome = self._seen_as(event, self.model.record(model))
        if isinstance(outcome, type):
            with pytest.raises(outcome):
                self.g.record(event)
        else:
            assert self.g.record(event) is (outcome == "recorded"), (event, outcome)
        assert len(self.g._ledger) == stored + (outcome == "recorded")
        assert self._new_refusals(refused) == self._refusals_for(event, outcome)
        return outcome

    # ---------------------------------------------------------------- event rules

    @rule(data=st.data())
    def record_customer_event(self, data: st.DataObject) -> None:
        event, model = self._new_event(data, on_customer=True)
        self._record_one(event, model)

    @rule(data=st.data())
    def record_link_event(self, data: st.DataObject) -> None:
        event, model = self._new_event(data, on_customer=False)
        self._record_one(event, model)

    @rule(data=st.data(), on_customer=st.booleans())
    def record_event_without_id(self, data: st.DataObject, on_customer: bool) -> None:
        event, model = self._new_event(data, on_customer=on_customer, with_id=False)
        assert event.id is None
        if self._record_one(event, model) not in ("recorded", "unchanged"):
            return
        # Find it where the model says it is, under the id the model computed.
        anchor = model.anchor()
        if isinstance(anchor, str):
            ref: str | Link = anchor
        else:
            owner = self.model.owner_at(anchor, model.at)
            ref = owner if owner is not None else anchor
        # at=: a link resolves as it stood at the event's time, which reaches
        # an anonymous span even when someone owns the link now.
        found = [e for e in self.g.events(ref, at=model.at) if e.id == model.id]
        assert found == [model.as_event()], (found, model)
        assert found[0].content_id() == model.id

    @precondition(lambda self: self.model.events)
    @rule(data=st.data())
    def rerecord_known_event(self, data: st.DataObject) -> None:
        known = self._known_event(data)
        # A derived id may be left out: the ledger derives the same one again.
        # (Not any "h-" id: one may have been given explicitly with other content.)
        derived = known.id == known.hashed_id()
        omit = derived and data.draw(st.booleans(), label="omit id")
        event = self._spell(data, known, None if omit else known.id)
        assert self._record_one(event, known) == "unchanged"

    @precondition(lambda self: self.model.events)
    @rule(data=st.data())
    def record_known_id_with_other_content(self, data: st.DataObject) -> None:
        known = self._known_event(data)
        other = self._other_content(data, known)
        outcome = self._record_one(self._spell(data, other, known.id), other)
        if other.content() == known.content():
            assert outcome == "unchanged"
        else:
            # _record_one checked the graph against the model; here the kind of
            # outcome: an erased value in the new identity is refused first.
            assert outcome in (DuplicateEvent, UnknownCustomer, SuppressedLink), outcome

    @rule(data=st.data())
    def record_many_mixed_batch(self, data: st.DataObject) -> None:
        kinds = data.draw(
            st.lists(
                st.sampled_from(["new", "new", "again", "other", "unknown", "unidentified"]),
                min_size=1,
                max_size=5,
            ),
            label="batch",
        )
        known = list(self.model.events)  # before the batch
        batch: list[tuple[Event, ModelEvent]] = []
        for kind in kinds:
            if kind in ("again", "other") and not (known or batch):
                kind = "new"
            if kind == "new":
                on_customer = data.draw(st.booleans(), label="on customer")
                with_id = data.draw(st.booleans(), label="with id")
                batch.append(self._new_event(data, on_customer=on_customer, with_id=with_id))
            elif kind == "again":  # a known event, or one earlier in this batch
                model = data.draw(st.sampled_from(known + [m for _e, m in batch]), label="again")
                batch.append((self._spell(data, model, model.id), model))
            elif kind == "other":
                base = data.draw(st.sampled_from(known or [batch[0][1]]), label="known event")
                model = self._other_content(data, base)
                batch.append((self._spell(data, model, model.id), model))
            elif kind == "unknown":
                _event, model = self._new_event(data, on_customer=True)
                model = model._replace(customer_id=UNREGISTERED_PROBE)
                batch.append((self._spell(data, model, model.id), model))
            else:  # nothing left to identify it once the blocked link is dropped
                at = data.draw(st.sampled_from(EVENT_TIMES), label="at")
                event = Event("visit", at=at, links=[BLOCKED], id="E-blocked")
                batch.append((event, ModelEvent("E-blocked", "visit", at, None, (), {})))
        stored, refused = len(self.g._ledger), len(self.g.refusals())
        outcomes = [self._seen_as(event, self.model.record(model)) for event, model in batch]
        recorded, unchanged = outcomes.count("recorded"), outcomes.count("unchanged")
        assert self.g.record_many(event for event, _model in batch) == (recorded, unchanged)
        assert len(self.g._ledger) == stored + recorded
        expected = [
            error
            for (event, _model), outcome in zip(batch, outcomes, strict=True)
            for error in self._refusals_for(event, outcome)
        ]
        assert self._new_refusals(refused) == expected

    @rule(
        data=st.data(),
        start=st.sampled_from([None, *EVENT_TIMES]),
        end=st.sampled_from([None, *EVENT_TIMES]),
        types=st.sampled_from([None, "purchase", ["call", "visit"], [], EVENT_TYPES]),
    )
    def query_events(
        self,
        data: st.DataObject,
        start: datetime | None,
        end: datetime | None,
        types: str | list[str] | None,
    ) -> None:
        ref = data.draw(st.sampled_from([*self.model.order, *LINKS]), label="ref")
        self._check_query(ref, start, end, types)

    def _check_query(
        self,
        ref: str | Link,
        start: datetime | None,
        end: datetime | None,
        types: str | list[str] | None,
    ) -> None:
        wanted = [types] if isinstance(types, str) else types
        expected = self.model.event_ids(ref, start=start, end=end, types=wanted)
        found = self.g.events(ref, start, end, types=types)
        assert [e.id for e in found] == expected, (ref, start, end, types)
        by_id = {m.id: m for m in self.model.events}
        assert found == [by_id[event_id].as_event() for event_id in expected]

    # ---------------------------------------------------------------- rules

    @rule(
        customer=st.sampled_from(CUSTOMERS),
        attribute=st.sampled_from(ATTRIBUTES),
        t=st.sampled_from(TIMES),
    )
    def register(self, customer: str, attribute: tuple[str, str] | None, t: datetime) -> None:
        attributes = dict([attribute]) if attribute else None
        if self.model.refuses(customer):
            self._refused(lambda: self.g.register(customer, attributes=attributes, at=t))
            return
        changed = self.model.register(customer, attributes, t)
        result = self.g.register(customer, attributes=attributes, at=t)
        self._changed("register", result, changed, t)

    @rule(
        customer=st.sampled_from(CUSTOMERS), link=st.sampled_from(LINKS), t=st.sampled_from(TIMES)
    )
    def link(self, customer: str, link: Link, t: datetime) -> None:
        if self.model.refuses(customer, link):
            self._refused(lambda: self.g.link(customer, link, at=t))
            return
        outcome = self.model.link(customer, link, t)
        result = self.g.link(customer, link, at=t)
        if outcome == "merge":
            explicit = self.model.explicit_owner(link, t)
            assert explicit is not None
            new = set(self.g.profile(customer).merge_ids) - set(self.model.merges)
            assert len(new) == 1, f"a shared-link merge should add one merge, added {new}"
            merge_id = new.pop()
            self.model.add_merge(merge_id, customer, explicit)
            self.merge_ids.append(merge_id)
            edge = self.g.to_networkx().edges[customer, explicit]
            assert (edge["merge_id"], edge["reason"]) == (merge_id, "shared link")
        self._changed("link", result, outcome is not None, t)

    @rule(
        customer=st.sampled_from(CUSTOMERS), link=st.sampled_from(LINKS), t=st.sampled_from(TIMES)
    )
    def relink(self, customer: str, link: Link, t: datetime) -> None:
        if self.model.refuses(customer, link):
            self._refused(lambda: self.g.relink(RAW_FORMS.get(link, link), to=customer, at=t))
            return
        changed = self.model.relink(link, customer, t)
        result = self.g.relink(link, to=customer, at=t)
        self._changed("relink", result, changed, t)

    @rule(link=st.sampled_from(LINKS), t=st.sampled_from(TIMES))
    def unlink(self, link: Link, t: datetime) -> None:
        changed = self.model.unlink(link, t)
        result = self.g.unlink(link, at=t)
        self._changed("unlink", result, changed, t)

    @precondition(lambda self: self.model.order)
    @rule(data=st.data(), t=st.sampled_from(TIMES))
    def merge(self, data: st.DataObject, t: datetime) -> None:
        a, b = self._registered(data), self._registered(data)
        needed = self.model.merge_needed(a, b)
        if needed:
            self.model.seq += 1
        result = self.g.merge(a, b, reason="same person", at=t)
        if needed:
            assert isinstance(result, str), f"merge({a}, {b}) returned {result!r}"
            self.model.add_merge(result, a, b)
            self.merge_ids.append(result)
        self._changed("merge", result, needed, t)

    @precondition(lambda self: self.merge_ids)
    @rule(data=st.data())
    def split(self, data: st.DataObject) -> None:
        merge_id = data.draw(st.sampled_from(self.merge_ids), label="merge_id")
        changed = self.model.split(merge_id)
        result = self.g.split(merge_id)
        self._changed("split", result, changed)

    @precondition(lambda self: self.model.order)
    @rule(data=st.data(), t=st.sampled_from(TIMES))
    def forget(self, data: st.DataObject, t: datetime) -> None:
        customer = self._registered(data)
        secret = self.secret
        raw_links = {link: RAW_FORMS.get(link) for link in LINKS}
        merge_ids, links, events = self.model.forget(customer)
        entry = self.g.forget(customer, at=t, reason="request 1")
        # Right after the erasure, before any query hands a value back: no
        # object of the graph (or of its store) holds an erased value.
        self.gone.add(customer)
        self.gone.update(link.value for link in links)
        self.gone.update(raw.value for link in links if (raw := raw_links[link]) is not None)
        self.gone.update(events)
        self._assert_nothing_erased_reachable(self.g, "the graph")
        assert entry is not None
        assert entry.args == {
            "customer_id": hashed_customer(secret, customer),
            "reason": "request 1",
            "merge_ids": tuple(merge_ids),
            "links": tuple(sorted(hashed_link(secret, link) for link in links)),
            "events": tuple(sorted(hashed_event(secret, e) for e in events)),
        }
        assert entry.changes[-1].kind == "erased"
        assert entry.changes[-1].before == (hashed_customer(secret, customer),)
        for merge_id in [m for m in self.merge_ids if m not in self.model.merges]:
            self.merge_ids.remove(merge_id)
            with pytest.raises(UnknownMerge):
                self.g.split(merge_id)
        for snapshot in self.snapshots:
            snapshot.pseudonymise(secret, customer, links)
        self._changed("forget", entry, True, t)
        assert self.g.forget(customer) is None  # met already

    @precondition(lambda self: self.model.suppressed_customers or self.model.suppressed_links)
    @rule(data=st.data())
    def release_suppression(self, data: st.DataObject) -> None:
        model = self.model
        refs: list[str | Link] = [*sorted(model.suppressed_customers)]
        refs.extend(sorted(model.suppressed_links))
        ref = data.draw(st.sampled_from(refs), label="released")
        assert self.g.suppressed(ref)
        if isinstance(ref, Link):
            model.suppressed_links.discard(ref)
            self.gone.discard(ref.value)
            raw = RAW_FORMS.get(ref)
            if raw is not None:
                self.gone.discard(raw.value)
            result = self.g.release_suppression(RAW_FORMS.get(ref, ref))
        else:
            model.suppressed_customers.discard(ref)
            self.gone.discard(ref)
            result = self.g.release_suppression(f" {ref} ")
        model.seq += 1
        self._changed("release_suppression", result, True)
        assert not self.g.suppressed(ref)
        assert self.g.release_suppression(ref) is None

    @precondition(
        lambda self: (
            self.model.suppressed_customers
            or self.model.suppressed_links
            or self.model.suppressed_events
        )
    )
    @rule(data=st.data(), t=st.sampled_from(EVENT_TIMES))
    def bring_back_erased(self, data: st.DataObject, t: datetime) -> None:
        """Events naming only erased values: refused, logged by hash."""
        model = self.model
        kinds = [
            kind
            for kind, values in (
                ("customer", model.suppressed_customers),
                ("link", model.suppressed_links),
                ("event", model.suppressed_events),
            )
            if values
        ]
        kind = data.draw(st.sampled_from(kinds), label="brought back")
        if kind == "customer":
            customer = data.draw(st.sampled_from(sorted(model.suppressed_customers)))
            event = Event("visit", at=t, customer_id=customer)
        elif kind == "link":
            link = data.draw(st.sampled_from(sorted(model.suppressed_links)))
            event = Event("visit", at=t, links=[RAW_FORMS.get(link, link)])
        else:
            event_id = data.draw(st.sampled_from(sorted(model.suppressed_events)))
            registered = model.order or [None]
            customer = data.draw(st.sampled_from(registered))
            event = Event("call", at=t, customer_id=customer, links=[LINKS[0]], id=event_id)
        stored = len(self.g._ledger)
        self._refused(lambda: self.g.record(event))
        assert len(self.g._ledger) == stored

    @precondition(lambda self: self.model.order)
    @rule(data=st.data())
    def detach(self, data: st.DataObject) -> None:
        customer = self._registered(data)
        changed = self.model.detach(customer)
        result = self.g.detach(customer)
        self._changed("detach", result, changed)

    @precondition(lambda self: self.model.order)
    @rule(data=st.data())
    def refused_calls_change_nothing(self, data: st.DataObject) -> None:
        customer = self._registered(data)
        with pytest.raises(UnknownCustomer):
            self.g.merge(customer, UNREGISTERED_PROBE)
        with pytest.raises(UnknownCustomer):
            self.g.detach(UNREGISTERED_PROBE)
        with pytest.raises(UnknownCustomer):
            self.g.resolve(UNREGISTERED_PROBE)
        assert len(list(self.g.journal())) == self.model.seq

    @rule(data=st.data())
    def as_of_matches_prefix_replay(self, data: st.DataObject) -> None:
        k = data.draw(st.integers(0, self.model.seq), label="k")
        view = self.g.as_of(k)
        replay = IdentityGraph.from_journal(itertools.islice(self.g.journal(), k), **self.config)
        assert view == replay
        snapshot = self.snapshots[k]
        assert view.customers() == snapshot.order
        for customer in snapshot.order:
            assert (
                view.resolve(customer) == replay.resolve(customer) == snapshot.profile_id(customer)
            )
        for link in LINKS:
            assert view.history(link) == snapshot.history(link)
            assert view.owner(link) == snapshot.current_owner(link)
        assert len(list(view.journal())) == k
        # The view shares the ledger: every event, attributed as the graph stood then.
        for ref in [*snapshot.order, *LINKS]:
            expected = snapshot.event_ids(ref, events=self.model.events)
            assert [e.id for e in view.events(ref)] == expected, (k, ref)
        with pytest.raises(ReadOnlyGraph):
            view.register("c1", attributes={"city": "Espoo"}, at=T0)

    # ---------------------------------------------------------------- invariants

    @invariant()
    def internal_invariants_hold(self) -> None:
        self.g._check()

    @invariant()
    def links_agree(self) -> None:
        g, m = self.g, self.model
        for link in LINKS:
            assert g.history(link) == m.history(link), link
            current = m.current_owner(link)
            assert g.owner(link) == current, link
            assert g.resolve(link) == m.link_profile(link, current), link
            for t in PROBES:
                expected = m.owner_at(link, t)
                assert g.owner(link, at=t) == expected, (link, t)
                assert g.resolve(link, at=t) == m.link_profile(link, expected), (link, t)

    @invariant()
    def profiles_agree(self) -> None:
        g, m = self.g, self.model
        assert g.customers() == m.order
        components = m.components()
        by_id = {comp[0]: comp for comp in components}
        listed = list(g.profiles())
        assert [p.id for p in listed] == sorted(by_id)
        for customer in m.order:
            assert g.resolve(customer) == m.profile_id(customer), customer
        for profile in listed:
            comp = by_id[profile.id]
            assert list(profile.customer_ids) == comp
            assert list(profile.links) == m.profile_links(comp[0])
            assert list(profile.merge_ids) == m.profile_merge_ids(comp[0])
            assert dict(profile.attributes) == m.profile_attributes(comp[0])
        for customer in m.order:
            assert g.profile(customer) == g.profile(m.profile_id(customer))
        for customer in CUSTOMERS:
            if customer not in m.order:
                with pytest.raises(UnknownCustomer):
                    g.resolve(customer)

    @invariant()
    def events_agree(self) -> None:
        """Every profile's events are what scanning all events, each resolved at
        its own time, gives: each registered customer's profile, and each pool
        link's profile (its anonymous profile when nobody owns it now)."""
        g, m = self.g, self.model
        g._ledger.check()
        assert len(g._ledger) == len(m.events)
        refs: list[str | Link] = [*m.order, *LINKS]
        for ref in refs:
            assert [e.id for e in g.events(ref)] == m.event_ids(ref), ref
        # One profile per step, through a window and a type filter.
        rng = random.Random(self.event_checks)
        self.event_checks += 1
        bounds = [None, *EVENT_TIMES]
        types = rng.choice([None, "call", ["purchase", "visit"], []])
        self._check_query(rng.choice(refs), rng.choice(bounds), rng.choice(bounds), types)

    @invariant()
    def nothing_erased_is_reachable(self) -> None:
        """No erased value in the state, the ledger or the refusal log (the
        link normalisation cache is left out: the queries of this machine
        hand it erased values, which a refused call would drop)."""
        self._assert_nothing_erased_reachable((self.g._core, self.g._ledger), "the state")

    @invariant()
    def journal_replays(self) -> None:
        entries = list(self.g.journal())
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert len(entries) == self.model.seq
        assert IdentityGraph.from_journal(entries, secret=self.secret, **self.config) == self.g


class MergePolicyMachine(GraphMachine):
    """The same, with ``crm_id`` links merging profiles on conflict."""

    CONFLICTS: ClassVar[dict[str, str]] = {"crm_id": "merge"}


class StoredGraphMachine(GraphMachine):
    """The same rules on a graph kept in a store: every call goes through
    the stored graph's transactions, and a second graph object loaded from the
    store's rows (with and without a checkpoint) must equal the first."""

    def __init__(self) -> None:
        super().__init__()
        self.g = IdentityGraph.open("memory:", **self.config)

    @rule(checkpoint=st.booleans())
    def reopen_from_the_rows(self, checkpoint: bool) -> None:
        if checkpoint:
            self.g.checkpoint()
        loaded = IdentityGraph.open(self.g.store, **self.config)
        assert loaded == self.g
        assert loaded.refusals() == self.g.refusals()


_SETTINGS = settings(
    max_examples=120,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestGraphMachine = GraphMachine.TestCase
TestGraphMachine.settings = _SETTINGS
TestMergePolicyMachine = MergePolicyMachine.TestCase
TestMergePolicyMachine.settings = _SETTINGS
TestStoredGraphMachine = StoredGraphMachine.TestCase
TestStoredGraphMachine.settings = settings(_SETTINGS, max_examples=60)


def test_attribute_resent_later_keeps_latest_value() -> None:
    g = IdentityGraph()
    g.register("c1", attributes={"city": "Oulu"}, at=TIMES[0])
    g.register("c1", attributes={"city": "Oulu"}, at=TIMES[4])  # confirmed, latest fact
    g.register("c1", attributes={"city": "Turku"}, at=TIMES[2])  # late-arriving, older
    assert g.profile("c1").attributes["city"] == "Oulu"
