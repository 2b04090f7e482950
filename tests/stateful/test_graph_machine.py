"""Stateful test: a real ``IdentityGraph`` against a deliberately naive model.

The model (``NaiveModel``) keeps plain dicts and lists and recomputes everything
from scratch on every question: no union-find, no sorted containers.  It follows
SPEC.md §1.3-§1.6 and §2 literally:

- customers in registration order (journal order);
- per link a plain list of change points ``(valid_from, owner | None)``; a point
  recorded later at the same instant replaces the earlier one;
- ``owner(link, t)``: the last point at or before ``t`` if it names a customer,
  else the owner of the next point after ``t`` if that names a customer, else None;
- the current owner is the owner of the last point;
- merges as a list; profiles are the connected components of the active merges,
  found by a breadth-first search; a profile's id is its earliest-registered customer.

Times are drawn from a small pool so that late-arriving change points and
same-instant collisions are frequent.  Guards are disabled with generous limits.
"""

from __future__ import annotations

import copy
import itertools
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

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
    Entry,
    IdentityGraph,
    Limits,
    Link,
    LinkType,
    ReadOnlyGraph,
    UnknownCustomer,
)

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
ATTRIBUTES = [None, ("city", "Oulu"), ("city", "Turku"), ("tier", "gold"), ("tier", "silver")]
GENEROUS = Limits(
    max_links_per_customer=10**6,
    max_customers_per_profile=10**6,
    max_moves=10**6,
    move_window=timedelta(days=1),
)


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


class GraphMachine(RuleBasedStateMachine):
    """Drives ``IdentityGraph`` and ``NaiveModel`` side by side."""

    CONFLICTS: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "limits": GENEROUS,
            "link_types": {name: LinkType(conflict=c) for name, c in self.CONFLICTS.items()},
        }
        self.g = IdentityGraph(**self.config)
        self.model = NaiveModel(dict(self.CONFLICTS))
        self.snapshots: list[NaiveModel] = [copy.deepcopy(self.model)]
        self.merge_ids: list[str] = []

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

    def _registered(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.model.order), label="customer")

    # ---------------------------------------------------------------- rules

    @rule(
        customer=st.sampled_from(CUSTOMERS),
        attribute=st.sampled_from(ATTRIBUTES),
        t=st.sampled_from(TIMES),
    )
    def register(self, customer: str, attribute: tuple[str, str] | None, t: datetime) -> None:
        attributes = dict([attribute]) if attribute else None
        changed = self.model.register(customer, attributes, t)
        result = self.g.register(customer, attributes=attributes, at=t)
        self._changed("register", result, changed, t)

    @rule(
        customer=st.sampled_from(CUSTOMERS), link=st.sampled_from(LINKS), t=st.sampled_from(TIMES)
    )
    def link(self, customer: str, link: Link, t: datetime) -> None:
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
    def journal_replays(self) -> None:
        entries = list(self.g.journal())
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert len(entries) == self.model.seq
        assert IdentityGraph.from_journal(entries, **self.config) == self.g


class MergePolicyMachine(GraphMachine):
    """The same, with ``crm_id`` links merging profiles on conflict (§1.4)."""

    CONFLICTS: ClassVar[dict[str, str]] = {"crm_id": "merge"}


_SETTINGS = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestGraphMachine = GraphMachine.TestCase
TestGraphMachine.settings = _SETTINGS
TestMergePolicyMachine = MergePolicyMachine.TestCase
TestMergePolicyMachine.settings = _SETTINGS


def test_attribute_resent_later_keeps_latest_value() -> None:
    g = IdentityGraph()
    g.register("c1", attributes={"city": "Oulu"}, at=TIMES[0])
    g.register("c1", attributes={"city": "Oulu"}, at=TIMES[4])  # confirmed, latest fact
    g.register("c1", attributes={"city": "Turku"}, at=TIMES[2])  # late-arriving, older
    assert g.profile("c1").attributes["city"] == "Oulu"
