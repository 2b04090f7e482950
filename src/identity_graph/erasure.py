"""Erasure: what ``forget`` removes, the keyed hashes that replace it, and
the suppression list that keeps it from coming back.

``IdentityGraph.forget(customer)`` erases one person.  This module decides
*what* goes (:func:`plan`) and how the journal's past entries are rewritten
(:meth:`Erasure.record`); :meth:`GraphState.apply
<identity_graph.state.GraphState.apply>` removes the person from the state,
and the session removes their rows from a store.

Each erased value is replaced by its keyed hash
(:mod:`identity_graph.suppression`).

**What goes**, for customer ``c``:

- ``c``'s attributes, and ``c`` itself (its place in the registration order
  closes up; the others keep their order);
- every link only ``c`` ever held (each change point names ``c`` or
  nobody, and no other customer ever claimed it): its whole history;
- on links others also held, ``c``'s change points, which now name nobody
  (the link keeps its value and its other owners' spans);
- the merges that touch ``c``: active ones are removed as ``detach``
  removes them, so the rest of the profile falls apart exactly where ``c``
  held it together; all of them then leave the merge history;
- the events anchored on ``c``, on a link only ``c`` held, or on a shared
  link at a time ``c`` owned it, and every event whose links name a link
  only ``c`` held (its record names the person);
- the refusals that name ``c``, one of those link values, or one of those
  events;
- other customers' free text that names ``c`` (an attribute, the reason of
  a merge between two others) becomes its hash
  (:func:`~identity_graph.suppression.names_in`).

**Suppression.**  The hashes of ``c``, of the erased link values and of the
erased event ids go on the suppression list
(:class:`~identity_graph.suppression.Suppression`).

Costs: :func:`plan` is O(the person's links, spans and events +
customers, whose claims are scanned + merges); rewriting the journal is
O(journal) in memory (a store searches its rows for the values' text in SQL
first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from . import history as hist
from .errors import InvalidLink
from .events import Anchor, Event
from .guards import Refusal
from .ids import CustomerId, Link, LinkKey, LinkTypes
from .journal import ARITY, Record
from .suppression import Suppression, ascii_lower, names_in, token_in
from .times import utc

if TYPE_CHECKING:
    from .ledger import Ledger
    from .state import GraphState

#: A quoted text in a message, as ``repr`` writes one.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")

#: The texts a record holds besides values: operations, argument names and
#: change kinds, never free text (a customer id equal to one is found all
#: the same: whole values are compared first).
_WORDS = frozenset(
    {
        *("register", "link", "relink", "unlink", "merge", "split", "detach", "release"),
        *("forget", "release_suppression"),
        *("customer_id", "attributes", "raw", "freezes", "merge_id", "merged_with", "a", "b"),
        *("reason", "merge_ids", "links", "events", "to"),
        *ARITY,
    }
)

#: Record arguments that hold a customer id.
_CUSTOMER_ARGS = frozenset({"customer_id", "a", "b", "merged_with"})

__all__ = ["Erasure", "EventFinder", "plan"]


@attrs.frozen
class Erasure:
    """What one ``forget`` removes, decided against the state before it.

    - ``customer`` and ``hashed``: the person and its keyed hash;
    - ``erased``: each link only the person held -> its hashed key;
    - ``shared``: links others also held, which lose the person's spans;
    - ``merge_ids``: the active merges removed as ``detach`` removes them;
    - ``events``: ids of the events erased, with their hashes;
    - ``values``: hashes of the other texts the journal's entries about the
      person hold (attribute values, raw link texts, merge reasons), filled
      while the journal is rewritten.
    """

    customer: CustomerId
    hashed: str
    erased: Mapping[LinkKey, LinkKey]
    shared: tuple[LinkKey, ...]
    merge_ids: tuple[str, ...]
    events: Mapping[str, str]
    suppression: Suppression
    types: LinkTypes
    #: The reprs of every erased text (the customer id, link values, event
    #: ids), for the quoted texts of a refusal's reason.
    quoted: frozenset[str]
    #: The erased link values, case-folded: a cheap first look for them
    #: inside free text.
    texts: tuple[str, ...]
    #: The person's id quoted (``'ann-1'``, ``"ann-1"``): the same for the id,
    #: which counts in free text only quoted (whole values are compared apart).
    quotes: tuple[str, ...]
    #: Whether free text names the person
    #: (:func:`~identity_graph.suppression.names_in`).
    names_text: Callable[[str], bool]
    #: The erased link values of four characters or more, found in a
    #: reason even unquoted, as tokens of their own (an email inside a
    #: longer message).
    plain: tuple[str, ...]

    # --- the forget entry ----------------------------------------------------

    def args(self, reason: str) -> dict[str, Any]:
        """The decided arguments of the ``forget`` entry (hashes only)."""
        return {
            "customer_id": self.hashed,
            "reason": reason,
            "merge_ids": self.merge_ids,
            "links": tuple(sorted(self.erased.values())),
            "events": tuple(sorted(self.events.values())),
        }

    def alias(self) -> dict[Any, Any]:
        """Hash -> live value, for applying the entry to the live state."""
        alias: dict[Any, Any] = {self.hashed: self.customer}
        alias.update((hashed, key) for key, hashed in self.erased.items())
        return alias

    def needles(self) -> tuple[list[str], list[str]]:
        """What a store searches its journal rows for before decoding any:
        texts one of which every row to rewrite holds, as JSON writes them
        inside a string (so also inside another customer's free text).
        First the exact ones (the customer id and each erased link value as
        stored, and the id quoted); then the same link values lower-cased
        in ASCII, to be found in a row lower-cased in ASCII (another
        customer's free text may spell an email in capitals)."""
        exact = {json.dumps(self.customer, ensure_ascii=False)}
        exact.update(json.dumps(quote, ensure_ascii=False)[1:-1] for quote in self.quotes)
        exact.update(json.dumps(key[1], ensure_ascii=False)[1:-1] for key in self.erased)
        folded = {ascii_lower(json.dumps(key[1], ensure_ascii=False)[1:-1]) for key in self.erased}
        return sorted(exact), sorted(folded)

    # --- the journal ---------------------------------------------------------

    def _touches(self, record: Record) -> bool:
        """Whether ``record`` may name the person or an erased link: one
        look at each item and inside each tuple (a link key, the parts of a
        split, the profiles of a link_history).  About 1 us a record."""
        customer, erased = self.customer, self.erased
        for item in record:
            kind = type(item)
            if kind is str:
                if item == customer:
                    return True
                if item in _WORDS:  # an op, argument name or change kind: not free text
                    continue
                if self._may_name(item):
                    return True
            elif kind is MappingProxyType or kind is dict:  # attributes (a store's: a dict)
                for value in item.values():
                    if type(value) is str and (value == customer or self._may_name(value)):
                        return True
            elif kind is tuple:
                if item in erased:
                    return True
                for inner in item:
                    if inner == customer or (type(inner) is tuple and inner in erased):
                        return True
        return False

    def _may_name(self, text: str) -> bool:
        """A cheap first look: whether free text holds one of :attr:`texts`
        (the id as quoted, a link value in any letter case)."""
        lowered = text.casefold()
        return any(needle in lowered for needle in self.texts) or any(
            quote in text for quote in self.quotes
        )

    def record(self, record: Record) -> Record | None:
        """``record`` with every erased value replaced by its hash, or None
        when it names none of them.  O(size of the record)."""
        if not self._touches(record):
            return None
        customer, erased = self.customer, self.erased
        op, n = record[0], record[2]
        end = 3 + 2 * n
        names = record[3:end:2]
        values = list(record[4:end:2])
        args = dict(zip(names, values, strict=True))
        about = any(args.get(name) == customer for name in _CUSTOMER_ARGS)
        link_erased = args.get("link") in erased
        changed = False
        for index, (name, value) in enumerate(zip(names, values, strict=True)):
            new = value
            if name in _CUSTOMER_ARGS and value == customer:
                new = self.hashed
            elif name == "link" and link_erased:
                new = erased[value]
            elif name == "raw" and link_erased:
                new = self.suppression.value_hash(value)
            elif name == "attributes" and about:
                new = MappingProxyType(
                    {k: self.suppression.value_hash(v) for k, v in value.items()}
                )
            elif name == "attributes":  # another customer's: values that name the person
                hidden = {k: self._hidden(v) for k, v in value.items()}
                if any(hidden[k] is not v for k, v in value.items()):
                    new = MappingProxyType(hidden)
            elif name == "reason" and op == "merge":
                new = self.suppression.value_hash(value) if about else self._hidden(value)
            if new is not value:
                values[index] = new
                changed = True
        out: list[Any] = [record[0], record[1], n]
        for name, value in zip(names, values, strict=True):
            out.append(name)
            out.append(value)
        index = end
        while index < len(record):
            kind = record[index]
            items = record[index + 1 : index + 1 + ARITY[kind]]
            index += 1 + ARITY[kind]
            new_items = [
                self._change_item(kind, position, item) for position, item in enumerate(items)
            ]
            if any(a is not b for a, b in zip(new_items, items, strict=True)):
                changed = True
            out.append(kind)
            out.extend(new_items)
        return tuple(out) if changed else None

    def _hidden(self, value: Any) -> Any:
        """``value`` (free text about someone else) as its hash when it
        names the person (:func:`~identity_graph.suppression.names_in`),
        else ``value`` itself."""
        if isinstance(value, str) and self.names_text(value):
            return self.suppression.value_hash(value)
        return value

    def _profile(self, profile: Any) -> Any:
        if profile == self.customer and type(profile) is str:
            return self.hashed
        if type(profile) is tuple:
            return self.erased.get(profile, profile)
        return profile

    def _change_item(self, kind: str, position: int, item: Any) -> Any:
        # Profile ids are customers or (anonymous) link keys, and so is the
        # link of "link_moved" and "link_history"; the parts of "split" and
        # the profiles of "link_history" are tuples of profile ids.
        if (kind == "split" and position == 1) or (kind == "link_history" and position == 0):
            new = tuple(self._profile(p) for p in item)
            return item if new == item else new
        return self._profile(item)

    # --- refusals ------------------------------------------------------------

    def names(self, refusal: Refusal) -> bool:
        """Whether ``refusal`` names the person, an erased link value or an
        erased event: in its arguments (a link counts by its normalised
        value) or in its reason's text, where a value shows by its repr (any
        quoted text of the reason is looked up) and a link value of four
        characters or more also as a token of its own.  O(size of the
        refusal)."""
        if any(self._mentions(value) for value in refusal.args.values()):
            return True
        reason = refusal.reason
        if any(quoted in self.quoted for quoted in _QUOTED.findall(reason)):
            return True
        return any(token_in(text, reason) for text in self.plain)

    def _mentions(self, value: Any, depth: int = 0) -> bool:
        if depth > 40:
            return False
        if isinstance(value, str):
            return value == self.customer or value in self.events
        if isinstance(value, Link):
            return self._link_named(value)
        if isinstance(value, Event):
            if value.customer_id == self.customer or value.id in self.events:
                return True
            return any(self._link_named(link) for link in value.links)
        if isinstance(value, Mapping):
            return any(self._mentions(v, depth + 1) for v in value.values())
        if isinstance(value, tuple | list | set | frozenset):
            return any(self._mentions(v, depth + 1) for v in value)
        return False

    def _link_named(self, link: Link) -> bool:
        if (link.name, link.value) in self.erased:
            return True
        try:
            return self.types.key(link) in self.erased
        except (InvalidLink, TypeError, ValueError):
            return False


def _only_holder(points: list[hist.Point], customer: CustomerId) -> bool:
    return all(owner is None or owner == customer for _at, owner, _seq in points)


#: Finds a store's events that may go with a person: given the anchors
#: (the person's id and every link they claimed) and the erased link
#: values, every event anchored on one of the anchors or whose text holds
#: one of the values, with its anchor (more is harmless: each is checked).
EventFinder: TypeAlias = Callable[[list[Anchor], list[str]], Iterable[tuple[Event, Anchor]]]


def plan(
    state: GraphState,
    ledger: Ledger,
    customer: CustomerId,
    types: LinkTypes,
    find: EventFinder | None = None,
) -> Erasure:
    """Decide what forgetting ``customer`` removes (see the module notes).
    Reads only.  The events come from the ledger's index, or, for a stored
    graph that has not loaded its events, from ``find`` (one search of the
    store's event rows).  O(the person's links and events + customers,
    whose claims are scanned)."""
    suppression = state.suppression
    ownership = state.ownership
    claimed = ownership.claimed_by(customer)
    candidates = {key for key in claimed if _only_holder(ownership.points(key), customer)}
    if candidates:
        # A link another customer once claimed (its point replaced at the
        # same instant) is shared, not the person's alone.
        for other in ownership.claimants():
            if other != customer and candidates.intersection(ownership.claimed_by(other)):
                candidates.difference_update(ownership.claimed_by(other))
    erased = {key: suppression.link_hash(key) for key in sorted(candidates)}
    shared = tuple(key for key in claimed if key not in erased)
    partition = state.partition
    merge_ids = tuple(
        sorted(partition.active_merges(customer), key=lambda m: partition.merges[m].seq)
    )
    if find is None:
        events = _events(ledger, ownership, customer, erased, shared)
    else:
        anchors: list[Anchor] = [customer, *claimed]
        shared_set = set(shared)
        events = {
            event.id
            for event, anchor in find(anchors, [key[1] for key in erased])
            if event.id is not None
            and _goes(event, anchor, ownership, customer, erased, shared_set)
        }
    erased_values = [key[1] for key in erased]
    texts = [customer, *erased_values, *events]
    return Erasure(
        customer=customer,
        hashed=suppression.customer_hash(customer),
        erased=erased,
        shared=shared,
        merge_ids=merge_ids,
        events={event_id: suppression.event_hash(event_id) for event_id in sorted(events)},
        suppression=suppression,
        types=types,
        quoted=frozenset(repr(text) for text in texts),
        texts=tuple(sorted({key[1].casefold() for key in erased})),
        quotes=(repr(customer), f'"{customer}"'),
        names_text=names_in(customer, [key[1] for key in erased]),
        # Customer ids are always quoted in messages; only link values are
        # looked for unquoted too (four characters or more).
        plain=tuple(sorted({key[1] for key in erased if len(key[1]) >= 4})),
    )


def _goes(
    event: Event,
    anchor: Anchor,
    ownership: Any,
    customer: CustomerId,
    erased: Mapping[LinkKey, LinkKey],
    shared: set[LinkKey],
) -> bool:
    """Whether one event goes with the person: the rule :func:`_events`
    applies through the ledger's index, for one event found in a store."""
    if anchor == customer or anchor in erased:
        return True
    if anchor in shared and ownership.owner_at(anchor, utc(event.at)) == customer:
        return True
    return any(link.key in erased for link in event.links)


def _events(
    ledger: Ledger,
    ownership: Any,
    customer: CustomerId,
    erased: Mapping[LinkKey, LinkKey],
    shared: Iterable[LinkKey],
) -> set[str]:
    """Ids of the events that go with the person, through the ledger's
    indexes.  O(the person's events + events with several identities)."""
    found: set[str] = set()

    def take(anchor: Any, start: datetime | None = None, end: datetime | None = None) -> None:
        found.update(ledger.between(anchor, start, end))

    take(customer)
    for key in erased:
        take(key)
    for key in shared:
        for start, end, owner in ownership.spans(key):
            if owner == customer:
                take(key, start, end)
    if erased:
        # An event anchored elsewhere whose links name the person's link.
        found.update(ledger.naming(erased))
    return found
