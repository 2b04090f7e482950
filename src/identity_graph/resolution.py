"""Which customers form one profile: union-find over the active merges.

Active merges always form a forest: a merge is only recorded between two
customers of *different* profiles (merging inside one profile records
nothing), so it never closes a cycle.  Therefore

- ``find`` is union-find with path halving and union by size: amortised
  ``O(α(n))``;
- a profile's id is its customer with the smallest registration order,
  kept per root, so ``profile_id`` is ``find`` plus one dict lookup;
- ``split`` removes one tree edge and recomputes the connected components
  of that one profile only: ``O(size of the profile)``, never the world.

Customers that were never merged cost nothing here: a customer absent from
``_parent`` is its own root, with itself as its only member.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from .ids import CustomerId

__all__ = ["Merge", "Partition"]

#: Up to how many active merge ids of one customer are kept in a tuple.
_SMALL = 8


class Merge:
    """One merge between two customers; ``active`` turns False when split."""

    __slots__ = ("a", "active", "at", "b", "id", "reason", "seq")

    def __init__(
        self, merge_id: str, a: CustomerId, b: CustomerId, reason: str, at: datetime, seq: int
    ) -> None:
        self.id = merge_id
        self.a = a
        self.b = b
        self.reason = reason
        self.at = at
        self.seq = seq
        self.active = True

    def other(self, customer: CustomerId) -> CustomerId:
        return self.b if customer == self.a else self.a


class Partition:
    """Customers grouped into profiles by active merges.

    ``order`` is the graph's registration order (customer id -> index), read
    to choose each profile's id; the partition never writes it.
    """

    def __init__(self, order: dict[CustomerId, int]) -> None:
        self._order = order
        self.clear()

    def clear(self) -> None:
        """Forget every merge (the registration order is the graph's to clear)."""
        self._parent: dict[CustomerId, CustomerId] = {}
        self._members: dict[CustomerId, list[CustomerId]] = {}  # root -> members, size > 1
        self._oldest: dict[CustomerId, CustomerId] = {}  # root -> profile id, size > 1
        self.merges: dict[str, Merge] = {}
        # customer -> its active merge ids: the bare id when there is one (most
        # merged customers), a tuple of a few, else a set.  Read it through
        # _merge_ids().
        self._adjacent: dict[CustomerId, str | tuple[str, ...] | set[str]] = {}

    # --- queries -------------------------------------------------------------

    def find(self, customer: CustomerId) -> CustomerId:
        """The root of ``customer``'s tree.  Amortised O(α(n))."""
        parent = self._parent
        node = customer
        up = parent.get(node)
        while up is not None:
            grand = parent.get(up)
            if grand is not None:
                parent[node] = grand  # path halving
                node = grand
            else:
                node = up
            up = parent.get(node)
        return node

    def profile_id(self, customer: CustomerId) -> CustomerId:
        """The id of ``customer``'s profile: its oldest customer.  Amortised O(α(n))."""
        root = self.find(customer)
        return self._oldest.get(root, root)

    def members(self, customer: CustomerId) -> list[CustomerId]:
        """Every customer in ``customer``'s profile, in no particular order.  O(size)."""
        root = self.find(customer)
        return list(self._members.get(root, (root,)))

    def _merge_ids(self, customer: CustomerId) -> Iterable[str]:
        held = self._adjacent.get(customer)
        if held is None:
            return ()
        return (held,) if type(held) is str else held

    def _attach(self, customer: CustomerId, merge_id: str) -> None:
        held = self._adjacent.get(customer)
        if held is None:
            self._adjacent[customer] = merge_id
        elif type(held) is str:
            self._adjacent[customer] = (held, merge_id)
        elif type(held) is tuple:
            # A few merge ids as a tuple (a set costs four times the memory);
            # a customer at the centre of many merges gets a set, so that
            # attaching and detaching stay O(1).
            self._adjacent[customer] = (
                (*held, merge_id) if len(held) < _SMALL else {*held, merge_id}
            )
        else:
            assert isinstance(held, set)
            held.add(merge_id)

    def _detach(self, customer: CustomerId, merge_id: str) -> None:
        held = self._adjacent[customer]
        if type(held) is str:
            del self._adjacent[customer]
            return
        if type(held) is tuple:
            rest = tuple(other for other in held if other != merge_id)
            self._adjacent[customer] = rest[0] if len(rest) == 1 else rest
            return
        assert isinstance(held, set)
        held.discard(merge_id)
        if len(held) == 1:
            self._adjacent[customer] = next(iter(held))

    def active_merges(self, customer: CustomerId) -> set[str]:
        """Ids of the active merges that touch ``customer``.  O(degree)."""
        return set(self._merge_ids(customer))

    def size(self, customer: CustomerId) -> int:
        """How many customers ``customer``'s profile has.  Amortised O(α(n))."""
        members = self._members.get(self.find(customer))
        return 1 if members is None else len(members)

    def root_size(self, root: CustomerId) -> int:
        """How many customers the profile whose tree has root ``root`` has.  O(1)."""
        members = self._members.get(root)
        return 1 if members is None else len(members)

    def merges_of_profile(self, customer: CustomerId) -> list[str]:
        """Active merge ids inside ``customer``'s profile, sorted by their seq."""
        found: set[str] = set()
        for member in self.members(customer):
            found.update(self._merge_ids(member))
        return sorted(found, key=lambda merge_id: self.merges[merge_id].seq)

    def groups(self) -> Iterator[tuple[CustomerId, list[CustomerId]]]:
        """``(profile id, members)`` of every profile with more than one
        customer; the lists are the partition's own, never to be changed.  O(1) each."""
        oldest = self._oldest
        for root, members in self._members.items():
            yield oldest.get(root, root), members

    # --- changes -------------------------------------------------------------

    def union(self, merge: Merge) -> tuple[CustomerId, CustomerId, CustomerId]:
        """Activate ``merge``; return (profile id of a, of b, of the union).

        The two customers must be in different profiles.  Union by size keeps
        trees shallow; the smaller member list is appended to the larger one,
        so each customer is copied O(log n) times over any sequence of merges.
        """
        root_a, root_b = self.find(merge.a), self.find(merge.b)
        if root_a == root_b:
            raise AssertionError(f"merge {merge.id}: {merge.a} and {merge.b} share a profile")
        id_a = self._oldest.get(root_a, root_a)
        id_b = self._oldest.get(root_b, root_b)
        members_a = self._members.pop(root_a, None) or [root_a]
        members_b = self._members.pop(root_b, None) or [root_b]
        self._oldest.pop(root_a, None)
        self._oldest.pop(root_b, None)
        if len(members_a) < len(members_b):
            root_a, root_b, members_a, members_b = root_b, root_a, members_b, members_a
        self._parent[root_b] = root_a
        members_a.extend(members_b)
        self._members[root_a] = members_a
        survivor = id_a if self._order[id_a] < self._order[id_b] else id_b
        self._oldest[root_a] = survivor
        self.merges[merge.id] = merge
        self._attach(merge.a, merge.id)
        self._attach(merge.b, merge.id)
        return id_a, id_b, survivor

    def deactivate(self, merge_ids: Iterable[str]) -> tuple[CustomerId, list[CustomerId]]:
        """Deactivate merges of one profile; return (old id, ids of the parts).

        Every merge must be active and inside the same profile.  The parts are
        the connected components of the profile's remaining active merges,
        found by a walk over that profile only: O(size of the profile).  The
        parts are listed by their ids' registration order.
        """
        merge_ids = list(merge_ids)
        first = self.merges[merge_ids[0]]
        root = self.find(first.a)
        old_id = self._oldest.get(root, root)
        members = self._members.pop(root, None) or [root]
        self._oldest.pop(root, None)
        for merge_id in merge_ids:
            merge = self.merges[merge_id]
            merge.active = False
            self._detach(merge.a, merge_id)
            self._detach(merge.b, merge_id)
        for member in members:
            self._parent.pop(member, None)
        seen: set[CustomerId] = set()
        part_ids: list[CustomerId] = []
        for start in members:
            if start in seen:
                continue
            seen.add(start)
            component = [start]
            stack = [start]
            while stack:
                node = stack.pop()
                for merge_id in self._merge_ids(node):
                    neighbour = self.merges[merge_id].other(node)
                    if neighbour not in seen:
                        seen.add(neighbour)
                        component.append(neighbour)
                        stack.append(neighbour)
            oldest = min(component, key=self._order.__getitem__)
            if len(component) > 1:
                for member in component:
                    if member != start:
                        self._parent[member] = start
                self._members[start] = component
                self._oldest[start] = oldest
            part_ids.append(oldest)
        part_ids.sort(key=self._order.__getitem__)
        return old_id, part_ids

    def forget(self, customer: CustomerId) -> None:
        """Drop every merge that touches ``customer``, which must be merged
        with nobody now (``deactivate`` first): an erased customer leaves no
        trace in the merge history.  O(merges)."""
        assert customer not in self._adjacent, f"{customer} still has active merges"
        gone = [m.id for m in self.merges.values() if customer in (m.a, m.b)]
        for merge_id in gone:
            del self.merges[merge_id]

    def check(self) -> None:
        """Verify every internal invariant (for tests).  O(n)."""
        for root, members in self._members.items():
            assert root not in self._parent, f"root {root} has a parent"
            assert len(members) > 1, f"root {root} lists a single member"
            assert len(set(members)) == len(members), f"root {root} lists a member twice"
            for member in members:
                assert self.find(member) == root, f"{member} not under its root {root}"
            assert self._oldest[root] == min(members, key=self._order.__getitem__)
        for customer, held in self._adjacent.items():
            assert isinstance(held, str) or len(held) > 1, f"{customer}: degenerate adjacency"
            for merge_id in self._merge_ids(customer):
                merge = self.merges[merge_id]
                assert merge.active and customer in (merge.a, merge.b)
                assert self.find(merge.a) == self.find(merge.b)
        active = sum(1 for merge in self.merges.values() if merge.active)
        in_trees = sum(len(members) - 1 for members in self._members.values())
        assert active == in_trees, "active merges do not form a spanning forest"
