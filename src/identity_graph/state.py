"""``GraphState``: everything an identity graph knows, and the one code that changes it.

The state is the registration order (which decides profile ids), each
customer's attributes, the :class:`Ownership` index (every link's history
and every customer's claims), the :class:`~identity_graph.resolution.Partition`
of customers into profiles, the guards and the journal.  Readers above it
(the facade, the ledger, the indicator engines, explain, checkpoints) use
its public reads; nothing outside this module sees how it keeps them.

:meth:`GraphState.apply` is the only code that changes the state: a live
call and a replay of the journal both go through it, so a replay cannot
drift from what happened.  :meth:`GraphState.check` verifies every internal
invariant (for tests), in the manner of ``sortedcontainers``' ``_check()``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, ItemsView, Iterable, KeysView, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias

from . import history as hist
from .guards import Guards, Limits
from .ids import CustomerId, LinkKey
from .journal import Entry, Journal, RawProfileId
from .resolution import Merge, Partition
from .suppression import Suppression, names_in

__all__ = ["AttributeRecord", "GraphState", "Ownership"]

#: One attribute of one customer: ``(value, set at, seq of the entry that set it)``.
AttributeRecord: TypeAlias = tuple[Any, datetime, int]


class Ownership:
    """Which customer owns each link over time, and which links each customer
    ever claimed.

    A link's history is kept bare (one change point) or as a
    :class:`~identity_graph.history.LinkHistory`; a customer's claims as the
    bare key when there is one (most customers) or a tuple of keys.  Both
    encodings stay inside this class: readers get histories through the
    functions of :mod:`identity_graph.history` and claims as tuples.
    """

    __slots__ = ("_claimed", "_history", "history")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every link and claim."""
        self._history: dict[LinkKey, hist.History] = {}
        #: ``history(key)``: the change points of ``key`` or None (read them
        #: with :mod:`identity_graph.history`).  O(1).  The dict's own ``get``:
        #: every query reads it, so it costs no Python call of its own.
        self.history: Callable[[LinkKey], hist.History | None] = self._history.get
        # customer -> every link a change point ever named it as owner of.
        # Current links (links_of) and the ledger's anchors derive from it,
        # so one small dict serves both.
        self._claimed: dict[CustomerId, LinkKey | tuple[LinkKey, ...]] = {}

    # --- reads -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._history)

    def __contains__(self, key: object) -> bool:
        return key in self._history

    def links(self) -> KeysView[LinkKey]:
        """Every link ever claimed."""
        return self._history.keys()

    def items(self) -> ItemsView[LinkKey, hist.History]:
        """Every ``(link, history)``."""
        return self._history.items()

    def owner_at(self, key: LinkKey, at: datetime) -> CustomerId | None:
        """Who owns ``key`` at ``at``.  O(log k) for k change points."""
        return hist.owner_at(self._history.get(key), at)

    def current_owner(self, key: LinkKey) -> CustomerId | None:
        """Who owns ``key`` now.  O(1)."""
        return hist.current_owner(self._history.get(key))

    def spans(self, key: LinkKey) -> list[hist.Span]:
        """``key``'s ownership spans, oldest first; empty for a link never claimed.  O(k)."""
        history = self._history.get(key)
        return [] if history is None else hist.spans(history)

    def points(self, key: LinkKey) -> list[hist.Point]:
        """``key``'s change points ``(valid_from, owner or None, seq)``, oldest
        first; empty for a link never claimed.  O(k)."""
        history = self._history.get(key)
        return [] if history is None else hist.points(history)

    def claimants(self) -> KeysView[CustomerId]:
        """Every customer that ever claimed a link."""
        return self._claimed.keys()

    def claimed_by(self, customer: CustomerId) -> tuple[LinkKey, ...]:
        """Keys of every link ever named as owned by ``customer``.  O(1)."""
        held = self._claimed.get(customer)
        if held is None:
            return ()
        if type(held[0]) is str:  # a single LinkKey, stored bare
            return (held,)
        return held  # type: ignore[return-value]

    def saved_claims(
        self,
    ) -> tuple[list[CustomerId], list[LinkKey], list[tuple[CustomerId, tuple[LinkKey, ...]]]]:
        """Every claim, for a checkpoint: the customers that claimed one link
        and those links (in claim order), then the others with their keys.
        O(claimants), without a call per claimant."""
        one: list[CustomerId] = []
        keys: list[LinkKey] = []
        several: list[tuple[CustomerId, tuple[LinkKey, ...]]] = []
        for customer, held in self._claimed.items():
            if type(held[0]) is str:  # a single LinkKey, stored bare
                one.append(customer)
                keys.append(held)
            else:
                several.append((customer, held))  # type: ignore[arg-type]
        return one, keys, several

    def links_of(self, customer: CustomerId) -> tuple[LinkKey, ...]:
        """Keys of the links ``customer`` owns now.  O(links it ever owned)."""
        history = self._history
        return tuple(
            key for key in self.claimed_by(customer) if hist.current_owner(history[key]) == customer
        )

    # --- changes -----------------------------------------------------------

    def first_claim(self, key: LinkKey, point: hist.Point) -> None:
        """Record the first change point of a link never seen, naming an owner.  O(1)."""
        self._history[key] = point
        owner: CustomerId = point[1]  # type: ignore[assignment]
        held = self._claimed.get(owner)
        # A first claim of the link: it cannot be among the owner's claims yet.
        self._claimed[owner] = key if held is None else (*self.claimed_by(owner), key)

    def put(self, key: LinkKey, point: hist.Point) -> hist.History:
        """Insert a change point of ``key``; return its new history.  O(log k)."""
        after, _replaced = hist.insert(self._history.get(key), point)
        self._history[key] = after
        owner = point[1]
        if owner is not None:
            self._claim(owner, key)
        return after

    def _claim(self, owner: CustomerId, key: LinkKey) -> None:
        held = self._claimed.get(owner)
        if held is None:
            self._claimed[owner] = key
        elif key not in (claimed := self.claimed_by(owner)):
            self._claimed[owner] = (*claimed, key)

    def restore(self, key: LinkKey, points: list[hist.Point]) -> None:
        """Set the history of ``key`` from saved points (a checkpoint).  O(k log k)."""
        self._history[key] = points[0] if len(points) == 1 else hist.LinkHistory(points)

    def restore_point(self, key: LinkKey, point: hist.Point) -> None:
        """Set the history of ``key`` to its one saved point: most links have
        one, and a checkpoint of millions of links pays no list for it.  O(1)."""
        self._history[key] = point

    def restore_many(self, keys: Iterable[LinkKey], points: Iterable[hist.Point]) -> None:
        """Set the histories of links never seen to one saved point each (a
        checkpoint), pairing ``keys`` and ``points`` in order.  O(n), in C."""
        self._history.update(zip(keys, points, strict=True))

    def restore_claims_many(self, customers: Iterable[CustomerId], keys: Iterable[LinkKey]) -> None:
        """Set the claims of customers to one saved key each (a checkpoint),
        pairing ``customers`` and ``keys`` in order.  O(n), in C."""
        self._claimed.update(zip(customers, keys, strict=True))

    def restore_claims(self, customer: CustomerId, keys: list[LinkKey]) -> None:
        """Set the claims of ``customer`` from a checkpoint (in their order)."""
        self._claimed[customer] = keys[0] if len(keys) == 1 else tuple(keys)

    def restore_claim(self, customer: CustomerId, key: LinkKey) -> None:
        """Set the claims of ``customer`` to its one saved key (most customers).  O(1)."""
        self._claimed[customer] = key

    def erase(self, key: LinkKey) -> None:
        """Drop ``key``'s whole history (a link erased with its only holder;
        the holder's claims are dropped by :meth:`drop_claims`).  O(1)."""
        del self._history[key]

    def disown(self, key: LinkKey, customer: CustomerId) -> None:
        """Make every change point of ``key`` that names ``customer`` name
        nobody (the link keeps its other owners' spans).  O(k log k)."""
        points = [
            (at, None if owner == customer else owner, seq)
            for at, owner, seq in hist.points(self._history[key])
        ]
        self._history[key] = points[0] if len(points) == 1 else hist.LinkHistory(points)

    def drop_claims(self, customer: CustomerId) -> None:
        """Forget which links ``customer`` ever claimed.  O(1)."""
        self._claimed.pop(customer, None)

    def check(self, registered: Mapping[CustomerId, int]) -> None:
        """Verify histories against claims (for tests); raises AssertionError.  O(size)."""
        owned: dict[CustomerId, set[LinkKey]] = {}
        for key, history in self._history.items():
            points = hist.points(history)
            assert points == sorted(points, key=lambda p: p[0]), f"{key} out of order"
            assert len({p[0] for p in points}) == len(points), f"{key} repeats an instant"
            for _at, owner, _seq in points:
                if owner is not None:
                    assert owner in registered, f"{key} names unregistered {owner!r}"
                    assert key in self.claimed_by(owner), f"{owner} misses claim {key}"
            owner = hist.current_owner(history)
            if owner is not None:
                owned.setdefault(owner, set()).add(key)
        current = {c: set(self.links_of(c)) for c in self._claimed}
        assert {c: v for c, v in current.items() if v} == owned
        for customer in self._claimed:
            claimed = self.claimed_by(customer)
            assert len(set(claimed)) == len(claimed), f"{customer} lists a link twice"


class GraphState:
    """Registration order, attributes, ownership, partition, guards and journal.

    ``journal`` is the record every other part derives from; pass a journal
    of another kind (a store's) to keep it elsewhere.
    """

    def __init__(self, limits: Limits, journal: Journal | None = None) -> None:
        self._order: dict[CustomerId, int] = {}
        # customer -> attribute -> record; only customers with attributes.
        self._attributes: dict[CustomerId, dict[str, AttributeRecord]] = {}
        #: Registration order (customer -> index): it decides profile ids.
        self.order: Mapping[CustomerId, int] = self._order
        self.ownership = Ownership()
        self.partition = Partition(self._order)
        self.guards = Guards(limits)
        #: The erased values refused until released, as keyed hashes.
        self.suppression = Suppression()
        #: How many operations ``apply`` has begun: a session compares it to
        #: tell whether a failed call changed memory (and a reload is owed).
        self.applied = 0
        self.journal = journal if journal is not None else Journal()

    def clear(self, journal: Journal) -> None:
        """Forget everything and start again from ``journal`` (empty); a store
        session reloads this way after a failed write.  The parts keep their
        identity, so whoever holds them sees the change."""
        self._order.clear()
        self._attributes.clear()
        self.ownership.clear()
        self.partition.clear()
        self.guards.clear()
        self.suppression.clear()
        self.journal = journal

    # --- reads -------------------------------------------------------------

    def attributes_of(self, customer: CustomerId) -> Mapping[str, AttributeRecord]:
        """The attribute records of one customer (empty if none).  O(1)."""
        return self._attributes.get(customer, {})

    def with_attributes(self) -> ItemsView[CustomerId, dict[str, AttributeRecord]]:
        """Every customer with attributes, with its records."""
        return self._attributes.items()

    def raw_profile_id(self, customer: CustomerId | None, link: LinkKey) -> RawProfileId:
        """The profile a link is in when ``customer`` owns it (its own when nobody does)."""
        return link if customer is None else self.partition.profile_id(customer)

    def comparable(self) -> dict[str, Any]:
        """Everything that defines the state, in comparable form (for equality).  O(size)."""
        merges = self.partition.merges
        ownership = self.ownership
        return {
            "order": list(self._order.items()),
            "attributes": sorted((c, sorted(held.items())) for c, held in self._attributes.items()),
            "history": sorted((k, hist.points(h)) for k, h in ownership.items()),
            "merges": sorted(
                (m.id, m.a, m.b, m.reason, m.at, m.seq, m.active) for m in merges.values()
            ),
            "profiles": sorted((c, self.partition.profile_id(c)) for c in self._order),
            "owned": sorted((c, sorted(ownership.links_of(c))) for c in ownership.claimants()),
            "guards": self.guards.state(),
            "suppressed": self.suppression.state(),
            "journal": list(self.journal.entries()),
        }

    def next_merge_id(self) -> str:
        """The id of a merge decided now: ``m`` and the seq of the entry that
        will make it (deterministic, unique, the same after replay).  O(1)."""
        return f"m{self.journal.next_seq()}"

    # --- changes -----------------------------------------------------------

    def commit(
        self, op: str, args: dict[str, Any], at: datetime, alias: Mapping[Any, Any] | None = None
    ) -> Entry:
        """Apply a decided operation as the next journal entry; return the entry.

        ``alias`` maps the keyed hashes in a ``forget`` entry's arguments to
        the live values they stand for (the replayed journal holds the hashes
        themselves)."""
        return self.journal.entry(self.commit_seq(op, args, at, alias))

    def commit_seq(
        self, op: str, args: dict[str, Any], at: datetime, alias: Mapping[Any, Any] | None = None
    ) -> int:
        """:meth:`commit`, returning the entry's seq rather than the entry
        (for a caller that does not hand the entry out).  O(the operation)."""
        journal = self.journal
        seq = journal.next_seq()
        changes = self.apply(op, args, at, seq, alias)
        journal.append(op, args, at, changes)
        return seq

    def commit_first_claim(
        self, op: str, customer: CustomerId, key: LinkKey, args: dict[str, Any], at: datetime
    ) -> int:
        """``commit_seq(op, args, at)`` (``link`` or ``relink``) for the claim of ``key``, a link
        nobody ever claimed, by ``customer`` (registered or not), once the
        guards let it through: the same entry and the same changes as
        :meth:`apply` makes, without its dispatch (the commonest write of a
        bulk load).  Returns the seq.  O(1)."""
        journal = self.journal
        seq = journal.next_seq()
        self.applied += 1
        order = self._order
        short: tuple[Any, ...] | None
        if customer in order:
            profile = self.partition.profile_id(customer)
            changes = ["link_moved", key, profile, key]
            short = (at, customer, key, profile)
        else:
            order[customer] = len(order)
            changes = ["created", customer, "link_moved", key, customer, key]
            short = (at, customer, key)
        self.ownership.first_claim(key, (at, customer, seq))
        # The journal's short records stand for exactly this op and args.
        if op != "link" or len(args) != 2:
            short = None
        journal.append(op, args, at, changes, short)
        return seq

    def replay(self, op: str, args: Mapping[str, Any], at: datetime, seq: int) -> None:
        """Apply entry ``seq`` read from a journal and append it to this one."""
        changes = self.apply(op, args, at, seq)
        self.journal.append(op, args, at, changes)

    def commit_merge(self, a: CustomerId, b: CustomerId, reason: str, at: datetime) -> str:
        """``commit_seq("merge", ...)`` of a merge of two registered customers
        of different profiles that the guards let through: the same entry
        and changes as :meth:`apply` makes, without its dispatch.  Returns
        the merge id.  Amortised O(α(n)) plus the smaller profile."""
        journal = self.journal
        seq = journal.next_seq()
        merge_id = f"m{seq}"
        self.applied += 1
        id_a, id_b, survivor = self.partition.union(Merge(merge_id, a, b, reason, at, seq))
        journal.append(
            "merge",
            {"a": a, "b": b, "reason": reason, "merge_id": merge_id},
            at,
            ["merged", id_a, id_b, survivor],
            (at, a, b, reason, merge_id, id_a, id_b, survivor),
        )
        return merge_id

    def restore_customers(
        self, customers: Iterable[CustomerId], numbers: Sequence[int] | None = None
    ) -> None:
        """Register customers in this order (a checkpoint), without journal
        entries.  ``numbers`` (``0, 1, 2, ...``, at least as many) gives the
        int objects to keep as their indexes, on an empty state, so that a
        checkpoint can share them with the seqs it restores.  O(n), in C."""
        order = self._order
        start = len(order)
        indexes = numbers if numbers is not None and start == 0 else itertools.count(start)
        # numbers may be longer than customers: zip stops at the customers.
        order.update(zip(customers, indexes))  # noqa: B905

    def restore_attribute(self, customer: CustomerId, name: str, record: AttributeRecord) -> None:
        """Set one attribute record (a checkpoint), without a journal entry."""
        self._attributes.setdefault(customer, {})[name] = record

    def apply(
        self,
        op: str,
        args: Mapping[str, Any],
        at: datetime,
        seq: int,
        alias: Mapping[Any, Any] | None = None,
    ) -> list[Any]:
        """Apply one decided operation; return the profile changes in the journal's
        flat form (journal.py).  The only code that changes the state."""
        self.applied += 1
        changes: list[Any] = []
        if op == "register":
            customer = args["customer_id"]
            self._ensure(customer, changes)
            attributes = args.get("attributes")
            if attributes:
                store = self._attributes.setdefault(customer, {})
                for name, value in attributes.items():
                    store[name] = (value, at, seq)
        elif op in ("link", "relink"):
            customer = args["customer_id"]
            self._ensure(customer, changes)
            if "merge_id" in args:
                merge = Merge(
                    args["merge_id"], customer, args["merged_with"], "shared link", at, seq
                )
                changes.extend(self._merge(merge))
            else:
                self._set_owner(args["link"], customer, at, seq, changes)
                if args.get("freezes"):
                    self.guards.frozen.add(args["link"])
        elif op == "unlink":
            self._set_owner(args["link"], None, at, seq, changes)
        elif op == "merge":
            merge = Merge(args["merge_id"], args["a"], args["b"], args["reason"], at, seq)
            changes.extend(self._merge(merge))
        elif op in ("split", "detach"):
            merge_ids = [args["merge_id"]] if op == "split" else list(args["merge_ids"])
            old_id, parts = self.partition.deactivate(merge_ids)
            changes.extend(("split", old_id, tuple(parts)))
        elif op == "release":
            self.guards.release(args["link"])
        elif op == "forget":
            self._forget(args, alias or {}, changes)
        elif op == "release_suppression":
            if "customer_id" in args:
                self.suppression.customers.discard(args["customer_id"])
            if "link" in args:
                self.suppression.links.discard(args["link"])
        else:
            raise ValueError(f"journal operation {op!r} is not one this library writes")
        return changes

    def _ensure(self, customer: CustomerId, changes: list[Any]) -> None:
        if customer not in self._order:
            self._order[customer] = len(self._order)
            changes.extend(("created", customer))

    def _forget(
        self, args: Mapping[str, Any], alias: Mapping[Any, Any], changes: list[Any]
    ) -> None:
        """Erase one customer as a ``forget`` entry decided (see
        :mod:`identity_graph.erasure`).  The entry names the customer and its
        erased links by their keyed hashes; ``alias`` gives the live values
        (empty in a replay, whose state holds the hashes).  O(profile +
        the customer's links + merges + customers)."""
        hashed = args["customer_id"]
        customer = alias.get(hashed, hashed)

        def shown(profile: RawProfileId) -> RawProfileId:
            return hashed if profile == customer else profile

        merge_ids = list(args["merge_ids"])
        if merge_ids:
            old_id, parts = self.partition.deactivate(merge_ids)
            changes.extend(("split", shown(old_id), tuple(shown(p) for p in parts)))
        ownership = self.ownership
        erased = {alias.get(key, key) for key in args["links"]}
        for key in ownership.claimed_by(customer):
            if key in erased:
                ownership.erase(key)
                self.guards.release(key)
                continue
            previous = ownership.current_owner(key)
            ownership.disown(key, customer)
            current = ownership.current_owner(key)
            if previous == customer:
                changes.extend(("link_moved", hashed, self.raw_profile_id(current, key), key))
            else:
                changes.extend(("link_history", (self.raw_profile_id(current, key),), key))
        ownership.drop_claims(customer)
        self.partition.forget(customer)
        self._attributes.pop(customer, None)
        # Others' free text that names the person (an attribute holding their
        # email, a merge reason quoting it) becomes its hash, as the journal's
        # entries do.  In a replay the entries hold the hashes already and the
        # texts looked for are hashes too: nothing is found.
        suppression = self.suppression
        names = names_in(customer, [key[1] for key in erased])
        for held in self._attributes.values():
            for name, (value, when, set_by) in held.items():
                if isinstance(value, str) and names(value):
                    held[name] = (suppression.value_hash(value), when, set_by)
        for merge in self.partition.merges.values():
            if names(merge.reason):
                merge.reason = suppression.value_hash(merge.reason)
        order = self._order
        place = order.pop(customer)
        for other, index in order.items():
            if index > place:  # the registration order closes up
                order[other] = index - 1
        suppression.customers.add(hashed)
        suppression.links.update(args["links"])
        suppression.events.update(args["events"])
        changes.extend(("erased", hashed))

    def _merge(self, merge: Merge) -> tuple[str, CustomerId, CustomerId, CustomerId]:
        id_a, id_b, survivor = self.partition.union(merge)
        return ("merged", id_a, id_b, survivor)

    def _set_owner(
        self,
        link: LinkKey,
        owner: CustomerId | None,
        at: datetime,
        seq: int,
        changes: list[Any],
    ) -> None:
        ownership = self.ownership
        before = ownership.history(link)
        if before is None and owner is not None:
            # A link's first claim: by far the most common change in bulk
            # loads, and one with nothing to compare against.
            ownership.first_claim(link, (at, owner, seq))
            changes.extend(("link_moved", link, self.partition.profile_id(owner), link))
            return
        previous = hist.current_owner(before)
        explicit = hist.explicit_owner_at(before, at)
        mover = hist.previous_customer(before, at)
        if owner is not None and mover is not None and mover != owner:
            self.guards.record_move(link, at)
        after = ownership.put(link, (at, owner, seq))
        current = hist.current_owner(after)
        if current != previous:
            old_profile = self.raw_profile_id(previous, link)
            new_profile = self.raw_profile_id(current, link)
            if old_profile != new_profile:
                changes.extend(("link_moved", old_profile, new_profile, link))
                return
        touched = [self.partition.profile_id(c) for c in (explicit, owner, current) if c]
        unique: tuple[RawProfileId, ...] = tuple(dict.fromkeys(touched)) or (link,)
        changes.extend(("link_history", unique, link))

    # --- invariants --------------------------------------------------------

    def check(self) -> None:
        """Verify every internal invariant; raises AssertionError.  O(everything)."""
        assert sorted(self._order.values()) == list(range(len(self._order)))
        assert set(self._attributes) <= set(self._order), "attributes of an unknown customer"
        self.partition.check()
        self.ownership.check(self._order)
        self.guards.check()
        for key in self.guards.tracked():
            assert key in self.ownership, f"the guards track {key}, which has no history"
        suppression = self.suppression
        for key in suppression.links:
            assert key not in self.ownership, f"suppressed link {key} has a history"
