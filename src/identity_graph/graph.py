"""``IdentityGraph``: the facade that wires ids, history, resolution, journal and guards.

Data flows one way through every mutating call::

    input -> normalise / validate -> guard -> decide -> journal entry -> apply -> changes

The *decision* (which customer now owns the link, which merge id was issued,
which merges a detach removed) is what the journal keeps, and ``_apply`` is
the only code that changes state: live calls and replay share it, so a replay
cannot drift from what happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeAlias

import attrs

from . import history as hist
from .errors import (
    BlockedLink,
    IdentityGraphError,
    LimitExceeded,
    LinkConflict,
    ReadOnlyGraph,
    UnknownCustomer,
    UnknownMerge,
)
from .events import Event, prepare
from .guards import Guards, Limits, Refusal
from .ids import CustomerId, Link, LinkKey, LinkType, LinkTypes, check_customer_id
from .journal import Entry, Journal, ProfileChange, ProfileId, RawProfileId, raw
from .ledger import Ledger
from .resolution import Merge, Partition
from .times import utc

__all__ = ["IdentityGraph", "Profile"]

Ref: TypeAlias = "str | Link"
AttributeValue: TypeAlias = "str | int | float | bool | date | datetime | Decimal | None"
_ATTRIBUTE_TYPES = (str, int, float, bool, type(None), date, datetime, Decimal)
_ATTRIBUTE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _span(delta: timedelta) -> str:
    """``timedelta(days=30)`` as "30 days" rather than "30 days, 0:00:00"."""
    if delta.seconds == 0 and delta.microseconds == 0:
        return f"{delta.days} day" + ("" if delta.days == 1 else "s")
    return str(delta)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class Profile:
    """What the outside world sees as one person.

    - ``id``: the oldest customer's id, or the link of an anonymous profile;
    - ``customer_ids``: its customers, oldest first;
    - ``links``: the links they own now, sorted;
    - ``attributes``: their attributes merged, the latest-set value winning;
    - ``merge_ids``: the active merges that hold it together, oldest first.
    """

    id: ProfileId
    customer_ids: tuple[CustomerId, ...]
    links: tuple[Link, ...]
    attributes: Mapping[str, Any]
    merge_ids: tuple[str, ...]


class IdentityGraph:
    """Customers, links over time, profiles, a journal and guards, in memory.

    Parameters
    ----------
    default_region:
        ISO region for phone numbers written without a country code
        (``"FI"``).  ``None`` (the default) refuses such numbers rather than
        guessing a country.
    link_types:
        Per link name, a :class:`LinkType` overriding the built-in behaviour.
    limits:
        The guards' caps (:class:`Limits`).
    clock:
        Returns the time of calls made without ``at=`` (aware; UTC now).
    register_unknown:
        Whether events naming an unregistered customer register it.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> g = IdentityGraph()
    >>> _ = g.link("c1", Link("email", "Ann@Example.com"), at=t)
    >>> _ = g.link("c2", Link("phone", "+358 40 123 4567"), at=t)
    >>> merge_id = g.merge("c1", "c2", reason="same person", at=t)
    >>> g.resolve(Link("phone", "+358401234567"))
    'c1'
    >>> _ = g.split(merge_id)
    >>> g.resolve("c2")
    'c2'
    """

    def __init__(
        self,
        *,
        default_region: str | None = None,
        link_types: Mapping[str, LinkType] | None = None,
        limits: Limits | None = None,
        clock: Callable[[], datetime] | None = None,
        register_unknown: bool = False,
    ) -> None:
        self._types = LinkTypes(link_types, default_region)
        self.limits = limits if limits is not None else Limits()
        if not isinstance(self.limits, Limits):
            raise TypeError(f"limits must be a Limits, not {self.limits!r}")
        self._clock = clock or _utc_now
        self.register_unknown = register_unknown
        self._config: dict[str, Any] = {
            "default_region": default_region,
            "link_types": dict(link_types or {}),
            "limits": self.limits,
            "clock": clock,
            "register_unknown": register_unknown,
        }
        # Registration order decides profile ids.
        self._order: dict[CustomerId, int] = {}
        # customer -> attribute -> (value, set at, seq); only customers with attributes.
        self._attributes: dict[CustomerId, dict[str, tuple[Any, datetime, int]]] = {}
        self._history: dict[LinkKey, hist.History] = {}
        # customer -> every link a change point ever named it as owner of: the
        # bare key when there is one (most customers), else a tuple of keys.
        # Current links (_links_of) and the ledger's anchors derive from it,
        # so one small dict serves both.
        self._claimed: dict[CustomerId, LinkKey | tuple[LinkKey, ...]] = {}
        self._partition = Partition(self._order)
        self._journal = Journal()
        self._guards = Guards(self.limits)
        self._ledger = Ledger(self._claimed_by, self._history.get)
        self._read_only = False

    @property
    def clock(self) -> Callable[[], datetime]:
        """What calls made without ``at=`` read the time from (aware)."""
        return self._clock

    @property
    def link_types(self) -> LinkTypes:
        """The link types this graph normalises and decides with."""
        return self._types

    # ------------------------------------------------------------------ helpers

    def _now(self, at: datetime | None) -> datetime:
        if at is None:
            at = self._clock()
        if type(at) is datetime and at.tzinfo is UTC:  # the common case, checked cheaply
            return at
        return utc(at)

    def _writable(self, op: str) -> None:
        if self._read_only:
            raise ReadOnlyGraph(f"{op}() on a read-only view from as_of(); the view never changes")

    def _customer(self, customer_id: object) -> CustomerId:
        """A registered customer id (stripped), or UnknownCustomer."""
        if isinstance(customer_id, str) and customer_id in self._order:
            return customer_id
        checked = check_customer_id(customer_id)
        if checked not in self._order:
            raise UnknownCustomer(f"customer {checked!r} is not registered")
        return checked

    def _key(self, link: Link, op: str, args: Mapping[str, Any], at: datetime) -> LinkKey:
        """Normalise a link for a mutating call; log a blocked value as a refusal."""
        try:
            return self._types.key(link)
        except BlockedLink as error:
            # Blocked values are refusals; merely malformed values are
            # plain input errors (InvalidLink) and are not logged.
            raise self._guards.refuse(at, op, args, error) from None

    def _claimed_by(self, customer: CustomerId) -> tuple[LinkKey, ...]:
        """Keys of every link ever named as owned by ``customer``.  O(1)."""
        held = self._claimed.get(customer)
        if held is None:
            return ()
        if type(held[0]) is str:  # a single LinkKey, stored bare
            return (held,)
        return held  # type: ignore[return-value]

    def _links_of(self, customer: CustomerId) -> tuple[LinkKey, ...]:
        """Keys of the links ``customer`` owns now.  O(links it ever owned)."""
        history = self._history
        return tuple(
            key
            for key in self._claimed_by(customer)
            if hist.current_owner(history[key]) == customer
        )

    def _raw_profile_id(self, customer: CustomerId | None, link: LinkKey) -> RawProfileId:
        return link if customer is None else self._partition.profile_id(customer)

    def _commit(self, op: str, args: dict[str, Any], at: datetime) -> Entry:
        seq = self._journal.next_seq()
        changes = self._apply(op, args, at, seq)
        self._journal.append(op, args, at, changes)
        return self._journal.entry(seq)

    # ------------------------------------------------------------------ apply

    def _apply(self, op: str, args: Mapping[str, Any], at: datetime, seq: int) -> list[Any]:
        """Apply one decided operation; return the profile changes in the journal's
        flat form (journal.py).  The only code that changes the graph's state."""
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
                    self._guards.frozen.add(args["link"])
        elif op == "unlink":
            self._set_owner(args["link"], None, at, seq, changes)
        elif op == "merge":
            merge = Merge(args["merge_id"], args["a"], args["b"], args["reason"], at, seq)
            changes.extend(self._merge(merge))
        elif op in ("split", "detach"):
            merge_ids = [args["merge_id"]] if op == "split" else list(args["merge_ids"])
            old_id, parts = self._partition.deactivate(merge_ids)
            changes.extend(("split", old_id, tuple(parts)))
        elif op == "release":
            self._guards.release(args["link"])
        else:
            raise ValueError(f"journal operation {op!r} is not one this library writes")
        return changes

    def _ensure(self, customer: CustomerId, changes: list[Any]) -> None:
        if customer not in self._order:
            self._order[customer] = len(self._order)
            changes.extend(("created", customer))

    def _merge(self, merge: Merge) -> tuple[str, CustomerId, CustomerId, CustomerId]:
        id_a, id_b, survivor = self._partition.union(merge)
        return ("merged", id_a, id_b, survivor)

    def _set_owner(
        self,
        link: LinkKey,
        owner: CustomerId | None,
        at: datetime,
        seq: int,
        changes: list[Any],
    ) -> None:
        before = self._history.get(link)
        if before is None and owner is not None:
            # A link's first claim: by far the most common change in bulk
            # loads, and one with nothing to compare against.
            self._history[link] = (at, owner, seq)
            held = self._claimed.get(owner)
            if held is None:
                self._claimed[owner] = link
            else:
                self._claimed[owner] = (*self._claimed_by(owner), link)
            changes.extend(("link_moved", link, self._partition.profile_id(owner), link))
            return
        previous = hist.current_owner(before)
        explicit = hist.explicit_owner_at(before, at)
        mover = hist.previous_customer(before, at)
        if owner is not None and mover is not None and mover != owner:
            self._guards.record_move(link, at)
        after, _replaced = hist.insert(before, (at, owner, seq))
        self._history[link] = after
        if owner is not None:
            held = self._claimed.get(owner)
            if held is None:
                self._claimed[owner] = link
            elif link not in (claimed := self._claimed_by(owner)):
                self._claimed[owner] = (*claimed, link)
        current = hist.current_owner(after)
        if current != previous:
            old_profile = self._raw_profile_id(previous, link)
            new_profile = self._raw_profile_id(current, link)
            if old_profile != new_profile:
                changes.extend(("link_moved", old_profile, new_profile, link))
                return
        touched = [self._partition.profile_id(c) for c in (explicit, owner, current) if c]
        unique: tuple[RawProfileId, ...] = tuple(dict.fromkeys(touched)) or (link,)
        changes.extend(("link_history", unique, link))

    # ------------------------------------------------------------------ mutations

    def register(
        self,
        customer_id: CustomerId,
        attributes: Mapping[str, AttributeValue] | None = None,
        at: datetime | None = None,
    ) -> Entry | None:
        """Register a customer, or update its attributes.

        Each attribute keeps the time it was set and the latest value wins: a
        value set at an earlier time than the stored one changes nothing, and
        re-sending an equal value later moves its set time on.
        Returns the journal entry, or None when nothing changed.
        O(number of attributes).
        """
        self._writable("register")
        at = self._now(at)
        customer = check_customer_id(customer_id)
        changed: dict[str, Any] = {}
        known = self._attributes.get(customer, {})
        for name, value in (attributes or {}).items():
            if not isinstance(name, str) or not name or not set(name) <= _ATTRIBUTE_NAME_CHARS:
                raise ValueError(
                    f"attribute name {name!r} of customer {customer!r} must match [a-z0-9_]+"
                )
            if not isinstance(value, _ATTRIBUTE_TYPES):
                raise TypeError(
                    f"attribute {name!r} of customer {customer!r} is a {type(value).__name__}; "
                    "values are str, int, float, bool, None, date, datetime or Decimal"
                )
            old = known.get(name)
            if (
                # Set later (even to an equal value: its set time moves on, so a
                # late-arriving older value cannot win), or at the same
                # instant with another value (the later call replaces it).
                old is None or at > old[1] or (at == old[1] and value != old[0])
            ):
                changed[name] = value
        if customer in self._order and not changed:
            return None
        args: dict[str, Any] = {"customer_id": customer}
        if changed:
            args["attributes"] = changed
        return self._commit("register", args, at)

    def link(self, customer_id: CustomerId, link: Link, at: datetime | None = None) -> Entry | None:
        """Point ``link`` at ``customer_id`` from ``at`` on.

        Registers an unknown customer.  If another customer explicitly owns the
        link at ``at``, the link type's conflict policy decides: ``move`` (the
        old owner keeps it before ``at``), ``merge`` (the two profiles merge,
        reason ``shared link``) or ``reject`` (``LinkConflict``).
        O(log k) for a link with k change points, plus O(profile size) for a merge.
        """
        self._writable("link")
        at = self._now(at)
        call = {"customer_id": customer_id, "link": link}
        customer, key, before, args = self._claim("link", customer_id, link, call, at)
        explicit = hist.explicit_owner_at(before, at)
        if explicit == customer:
            return None
        if explicit is not None:
            policy = self._types.get(key[0]).conflict
            if policy == "reject":
                raise self._guards.refuse(
                    at,
                    "link",
                    call,
                    LinkConflict(
                        f"{key[0]} {key[1]!r} is owned by customer {explicit!r} at "
                        f"{at.isoformat()}; the {key[0]} conflict policy is 'reject'"
                    ),
                )
            if policy == "merge":
                if customer in self._order and self._same_profile(customer, explicit):
                    return None
                self._check_profile_size(customer, explicit, "link", call, at)
                args["merge_id"] = f"m{self._journal.next_seq()}"
                args["merged_with"] = explicit
                return self._commit("link", args, at)
        return self._commit_claim("link", customer, key, before, args, call, at)

    def relink(self, link: Link, to: CustomerId, at: datetime | None = None) -> Entry | None:
        """Move ``link`` to customer ``to`` from ``at`` on, whatever the policy.

        Registers an unknown customer.  O(log k).
        """
        self._writable("relink")
        at = self._now(at)
        call = {"link": link, "to": to}
        customer, key, before, args = self._claim("relink", to, link, call, at)
        if hist.explicit_owner_at(before, at) == customer:
            return None
        return self._commit_claim("relink", customer, key, before, args, call, at)

    def _claim(
        self, op: str, customer_id: object, link: Link, call: Mapping[str, Any], at: datetime
    ) -> tuple[CustomerId, LinkKey, hist.History | None, dict[str, Any]]:
        """Validate a claim of ``link`` by a customer: (customer, key, history, args)."""
        customer = check_customer_id(customer_id)
        key = self._key(link, op, call, at)
        args: dict[str, Any] = {"customer_id": customer, "link": key}
        if link.value != key[1]:
            args["raw"] = link.value
        return customer, key, self._history.get(key), args

    def _commit_claim(
        self,
        op: str,
        customer: CustomerId,
        key: LinkKey,
        before: hist.History | None,
        args: dict[str, Any],
        call: Mapping[str, Any],
        at: datetime,
    ) -> Entry:
        """Guard a claim that changes ownership, then journal and apply it."""
        if self._check_ownership(key, customer, before, op, call, at):
            args["freezes"] = True
        return self._commit(op, args, at)

    def unlink(self, link: Link, at: datetime | None = None) -> Entry | None:
        """From ``at`` on, ``link`` points to nobody.  O(log k).

        Returns None when the link has no explicit owner at ``at``.
        """
        self._writable("unlink")
        at = self._now(at)
        key = self._key(link, "unlink", {"link": link}, at)
        if hist.explicit_owner_at(self._history.get(key), at) is None:
            return None
        return self._commit("unlink", {"link": key}, at)

    def merge(
        self, a: CustomerId, b: CustomerId, reason: str = "", at: datetime | None = None
    ) -> str | None:
        """Merge the profiles of customers ``a`` and ``b``; return the merge id.

        Both must be registered.  Returns None when they already share a
        profile.  Amortised O(α(n)) plus O(size of the smaller profile).
        """
        self._writable("merge")
        at = self._now(at)
        first, second = self._customer(a), self._customer(b)
        if not isinstance(reason, str):
            raise TypeError(f"merge reason {reason!r} must be a string")
        if self._same_profile(first, second):
            return None
        call = {"a": a, "b": b, "reason": reason}
        self._check_profile_size(first, second, "merge", call, at)
        merge_id = f"m{self._journal.next_seq()}"
        self._commit("merge", {"a": first, "b": second, "reason": reason, "merge_id": merge_id}, at)
        return merge_id

    def split(self, merge_id: str, at: datetime | None = None) -> Entry | None:
        """Deactivate merge ``merge_id``; its profile falls apart exactly.

        Returns None when the merge is already inactive.  O(size of the profile).
        """
        self._writable("split")
        at = self._now(at)
        merge = self._partition.merges.get(merge_id) if isinstance(merge_id, str) else None
        if merge is None:
            raise UnknownMerge(f"merge {merge_id!r} was never issued by this graph")
        if not merge.active:
            return None
        return self._commit("split", {"merge_id": merge_id}, at)

    def detach(self, customer_id: CustomerId, at: datetime | None = None) -> Entry | None:
        """Deactivate every merge touching ``customer_id``, leaving it alone.

        Returns None when it is merged with nobody.  O(size of the profile).
        """
        self._writable("detach")
        at = self._now(at)
        customer = self._customer(customer_id)
        merge_ids = sorted(
            self._partition.active_merges(customer), key=lambda m: self._partition.merges[m].seq
        )
        if not merge_ids:
            return None
        return self._commit("detach", {"customer_id": customer, "merge_ids": merge_ids}, at)

    def release(self, link: Link, at: datetime | None = None) -> Entry | None:
        """Unfreeze a link frozen for moving too often; None if it was not frozen."""
        self._writable("release")
        at = self._now(at)
        key = self._types.key(link)
        if key not in self._guards.frozen:
            return None
        return self._commit("release", {"link": key}, at)

    # ------------------------------------------------------------------ guards

    def _same_profile(self, a: CustomerId, b: CustomerId) -> bool:
        return self._partition.find(a) == self._partition.find(b)

    def _check_profile_size(
        self, a: CustomerId, b: CustomerId, op: str, call: Mapping[str, Any], at: datetime
    ) -> None:
        size_a = self._partition.size(a) if a in self._order else 1
        size_b = self._partition.size(b)
        cap = self.limits.max_customers_per_profile
        if size_a + size_b > cap:
            raise self._guards.refuse(
                at,
                op,
                call,
                LimitExceeded(
                    f"merging customers {a!r} ({size_a} in profile) and {b!r} ({size_b} in "
                    f"profile) would make a profile of {size_a + size_b} customers; "
                    f"max_customers_per_profile is {cap}"
                ),
            )

    def _check_ownership(
        self,
        key: LinkKey,
        customer: CustomerId,
        before: hist.History | None,
        op: str,
        call: Mapping[str, Any],
        at: datetime,
    ) -> bool:
        """Refuse a move of a frozen link, or a claim past a customer's caps.

        Returns whether the claim is a move that freezes the link (the
        decision the journal records as ``freezes``).
        """
        name, value = key
        mover = None if before is None else hist.previous_customer(before, at)
        moving = mover is not None and mover != customer
        if moving and key in self._guards.frozen:
            raise self._guards.refuse(
                at,
                op,
                call,
                LimitExceeded(
                    f"{name} {value!r} is frozen: it moved between owners "
                    f"{self.limits.max_moves} times within {_span(self.limits.move_window)}; "
                    "release() it to allow moves again"
                ),
            )
        freezes = moving and self._guards.would_freeze(key, at)
        becomes_current = before is None or at >= hist.last_point(before)[0]
        if not becomes_current or hist.current_owner(before) == customer:
            return freezes
        owned = self._links_of(customer)
        cap = self._types.get(name).max_per_customer
        if cap is not None:
            same_name = sum(1 for owned_name, _ in owned if owned_name == name)
            if same_name >= cap:
                raise self._guards.refuse(
                    at,
                    op,
                    call,
                    LimitExceeded(
                        f"customer {customer!r} already owns {same_name} {name} links; "
                        f"max_per_customer for {name} is {cap}"
                    ),
                )
        if len(owned) >= self.limits.max_links_per_customer:
            raise self._guards.refuse(
                at,
                op,
                call,
                LimitExceeded(
                    f"customer {customer!r} already owns {len(owned)} links; "
                    f"max_links_per_customer is {self.limits.max_links_per_customer}"
                ),
            )
        return freezes

    # ------------------------------------------------------------------ queries

    def normalize(self, link: Link) -> Link:
        """``link`` with its normalised value, or ``InvalidLink`` / ``BlockedLink``.  O(len)."""
        name, value = self._types.key(link)
        return Link(name, value)

    def owner(self, link: Link, at: datetime | None = None) -> CustomerId | None:
        """The customer ``link`` belongs to at ``at``, or now.  O(log k)."""
        key = self._types.key(link)
        history = self._history.get(key)
        if at is None:
            return hist.current_owner(history)
        return hist.owner_at(history, self._now(at))

    def history(self, link: Link) -> list[tuple[datetime, CustomerId | None]]:
        """Every change point of ``link``: ``[(valid_from, owner or None), ...]``.  O(k)."""
        history = self._history.get(self._types.key(link))
        return [] if history is None else [(at, o) for at, o, _ in hist.points(history)]

    def resolve(self, ref: Ref, at: datetime | None = None) -> ProfileId:
        """The profile id of a customer id or a link.

        A link resolves through its owner at ``at`` (or its current owner);
        with no owner, to its anonymous profile, whose id is the normalised
        link.  Amortised O(α(n)) for a customer; O(log k + α(n)) for a link.
        """
        if isinstance(ref, str):
            if at is not None:
                self._now(at)  # a naive time is refused even where it changes nothing
            if ref in self._order:
                return self._partition.profile_id(ref)
            return self._partition.profile_id(self._customer(ref))
        if isinstance(ref, Link):
            key = self._types.key(ref)
            history = self._history.get(key)
            owner = (
                hist.current_owner(history) if at is None else hist.owner_at(history, self._now(at))
            )
            if owner is None:
                return Link(key[0], key[1])
            return self._partition.profile_id(owner)
        raise TypeError(f"reference {ref!r} is neither a customer id (str) nor a Link")

    def profile(self, ref: Ref) -> Profile:
        """The profile of ``ref`` as a frozen :class:`Profile`.  O(size of the profile)."""
        profile_id = self.resolve(ref)
        if isinstance(profile_id, Link):
            return Profile(profile_id, (), (profile_id,), {}, ())
        customers = sorted(self._partition.members(profile_id), key=self._order.__getitem__)
        links = sorted(Link(name, value) for c in customers for name, value in self._links_of(c))
        merged: dict[str, tuple[Any, datetime, int]] = {}
        for customer in customers:
            for name, record in self._attributes.get(customer, {}).items():
                known = merged.get(name)
                if known is None or (record[1], record[2]) > (known[1], known[2]):
                    merged[name] = record
        return Profile(
            id=profile_id,
            customer_ids=tuple(customers),
            links=tuple(links),
            attributes={name: record[0] for name, record in sorted(merged.items())},
            merge_ids=tuple(self._partition.merges_of_profile(profile_id)),
        )

    def profiles(self) -> Iterator[Profile]:
        """Every customer profile, ordered by id.  O(n log n) to start."""
        ids = {self._partition.profile_id(c) for c in self._order}
        for profile_id in sorted(ids):
            yield self.profile(profile_id)

    def customers(self) -> list[CustomerId]:
        """Every registered customer id, in registration order.  O(n)."""
        return list(self._order)

    def attributes(self, customer_id: CustomerId) -> dict[str, Any]:
        """The attributes of one customer (not of its whole profile), sorted by name.

        Importers compare with these to skip unchanged cells.  O(attributes).
        """
        customer = self._customer(customer_id)
        return {
            name: record[0] for name, record in sorted(self._attributes.get(customer, {}).items())
        }

    def links(self, customer_id: CustomerId) -> list[Link]:
        """The links one customer (not its whole profile) owns now, sorted.

        O(links it ever owned).
        """
        return sorted(
            Link(name, value) for name, value in self._links_of(self._customer(customer_id))
        )

    def explain(self, ref_a: Ref, ref_b: Ref) -> list[Any]:
        """Why two references share a profile: the shortest chain of steps."""
        from .explain import explain

        return explain(self, ref_a, ref_b)

    def to_networkx(self) -> Any:
        """The identity graph as a ``networkx.Graph``.  O(n + links + merges)."""
        from .explain import to_networkx

        return to_networkx(self)

    # ------------------------------------------------------------------ events

    def record(self, event: Event) -> bool:
        """Record one event in the ledger; False if it was recorded before.

        Raises ``DuplicateEvent`` (same id, other content), ``InvalidEvent``
        (nothing left to identify it), ``UnknownCustomer`` (unless
        ``register_unknown``) or ``ValueError`` (naive time).  O(log n).
        """
        self._writable("record")
        try:
            return self._record(event)
        except IdentityGraphError as error:
            self._refuse_event(event, error)
            raise

    def record_many(self, events: Iterable[Event]) -> tuple[int, int]:
        """Record many events; return ``(recorded, unchanged)``.

        Refused events are logged in ``refusals()`` and skipped.  O(m log n).
        """
        self._writable("record_many")
        recorded = unchanged = 0
        for event in events:
            try:
                if self._record(event):
                    recorded += 1
                else:
                    unchanged += 1
            except (IdentityGraphError, ValueError) as error:
                self._refuse_event(event, error)
        return recorded, unchanged

    def _record(self, event: object) -> bool:
        """Check ``event``, register its unknown customer, file it in the ledger."""
        normalised, anchor = prepare(
            event, self._types, self._order, self.register_unknown, self._drop_link
        )
        if not self._ledger.is_new(normalised):
            return False
        if type(anchor) is str and anchor not in self._order:
            self.register(anchor, at=normalised.at)  # register_unknown=True
        self._ledger.add(normalised, anchor)
        return True

    def _drop_link(self, at: datetime, event_id: str | None, link: Link, error: Exception) -> None:
        self._guards.refuse(at, "record", {"event": event_id, "link": link}, error)

    def _refuse_event(self, event: object, error: Exception) -> None:
        """Log a refused event at its own time, or now if it has no valid time."""
        at = getattr(event, "at", None)
        if not isinstance(at, datetime) or at.utcoffset() is None:
            at = self._clock()
        self._guards.refuse(at, "record", {"event": event}, error)

    def events(
        self,
        ref: Ref,
        start: datetime | None = None,
        end: datetime | None = None,
        types: Iterable[str] | None = None,
        at: datetime | None = None,
    ) -> list[Event]:
        """Events of ``ref``'s profile in ``[start, end)``, ordered by ``(at, id)``.

        Each event belongs to the profile that owned its anchor at the time of
        the event, as the graph stands now.  ``ref`` resolves as in
        ``resolve(ref, at)``: ``events(link, at=t)`` is the profile the link
        belonged to at ``t`` — its anonymous profile if it was unowned then.
        O(anchors × spans × log n + result).
        """
        for bound in (start, end):
            if bound is not None:
                self._now(bound)  # refuses naive or non-datetime bounds, naming them
        profile = self.resolve(ref, at)
        members = () if isinstance(profile, Link) else self._partition.members(profile)
        return self._ledger.events(profile, members, start, end, types)

    def kpis(self, as_of: datetime, ref: Ref | None = None, *, engine: str = "auto") -> Any:
        """Omnichannel indicators at ``as_of``.

        Without ``ref``: a mapping ``{profile id: {indicator: value}}`` for
        every customer profile (with or without purchases) and every anonymous
        profile with a purchase.  With ``ref``: the indicators of that one
        profile.  The RFM ranks compare profiles with each other, so both cost
        one pass over the purchases: O(p log p) plus O(q log q) per window.
        ``engine`` is ``"auto"``, ``"python"`` or ``"polars"``
        (:func:`identity_graph.kpis.compute`); every engine gives equal values.
        """
        from . import kpis

        as_of = self._now(as_of)
        if ref is None:
            return kpis.compute(self, as_of, engine)
        return kpis.compute_one(self, as_of, ref, engine)

    # ------------------------------------------------------------------ journal

    def journal(self, since: int = 0) -> Iterator[Entry]:
        """Journal entries with ``seq > since``, oldest first."""
        return self._journal.entries(since)

    def changes(self, since: int = 0) -> list[ProfileChange]:
        """Profile changes of the entries with ``seq > since``.  O(result)."""
        return [change for entry in self._journal.entries(since) for change in entry.changes]

    def as_of(self, seq: int) -> IdentityGraph:
        """A read-only graph as it stood after entry ``seq``.  O(seq) to build."""
        if not isinstance(seq, int) or not 0 <= seq <= len(self._journal):
            raise ValueError(f"as_of({seq!r}): seq must be between 0 and {len(self._journal)}")
        view = IdentityGraph(**self._config)
        view._replay_from(self, seq)
        view._ledger = self._ledger.view(view._claimed_by, view._history.get)
        view._read_only = True
        return view

    def _replay_from(self, source: IdentityGraph, upto: int) -> None:
        for seq, record in source._journal.records(0, upto):
            op, args, at = raw(record)
            changes = self._apply(op, args, at, seq)
            self._journal.append(op, args, at, changes)

    @classmethod
    def open(cls, target: Any = None, **config: Any) -> IdentityGraph:
        """A graph kept in a store: ``"graph.db"`` (SQLite), a
        ``"postgresql://…"`` URL, or ``"memory:"``.

        ``None`` means ``$IDENTITY_GRAPH_POSTGRES_URL`` when set, else
        ``identity-graph.db``.  ``config`` takes the constructor's keywords,
        plus ``checkpoint_every`` and ``batch_size`` (see
        :mod:`identity_graph.stored`) and the store's own options
        (SQLite: ``synchronous``, ``timeout``, ``read_only``; PostgreSQL:
        ``connect_timeout``).  Opening loads the latest
        checkpoint and replays only the entries after it: O(state + tail +
        events).  Use it as a context manager, or call ``close()``.
        """
        from .stored import StoredGraph
        from .stores import open_store

        names = ("synchronous", "timeout", "read_only", "connect_timeout")
        options = {k: config.pop(k) for k in names if k in config}
        return StoredGraph(open_store(target, **options), **config)

    @classmethod
    def from_journal(cls, entries: Iterable[Entry], **config: Any) -> IdentityGraph:
        """Replay ``entries`` (from ``seq`` 1, gap-free) into a new graph.

        The entries' decisions are applied as recorded, so the result equals
        the graph that wrote them whatever ``config`` says.  O(total work).
        """
        graph = cls(**config)
        for entry in entries:
            expected = len(graph._journal) + 1
            if entry.seq != expected:
                raise ValueError(f"journal entry {entry.seq} out of order; expected {expected}")
            args: dict[str, Any] = {
                k: v.key if isinstance(v, Link) else v for k, v in entry.args.items()
            }
            if "attributes" in args:
                args["attributes"] = dict(args["attributes"])
            changes = graph._apply(entry.op, args, entry.at, entry.seq)
            graph._journal.append(entry.op, args, entry.at, changes)
        return graph

    def refusals(self) -> list[Refusal]:
        """Every refused call since this graph was created, oldest first."""
        return list(self._guards.log)

    def frozen_links(self) -> list[Link]:
        """Links frozen for moving too often, sorted."""
        return [Link(name, value) for name, value in sorted(self._guards.frozen)]

    # ------------------------------------------------------------------ lifecycle

    @contextlib.contextmanager
    def batch(self) -> Iterator[IdentityGraph]:
        """Group calls into one unit of work: ``with g.batch(): ...``.

        In memory every call takes effect at once and this changes nothing.
        On a store the calls inside share one transaction: one lock,
        one commit, one disk sync, instead of one per call — what the
        importers use.  A refused call inside still raises (and is logged)
        without undoing the others; an exception that leaves the block rolls
        the whole batch back.
        """
        yield self

    def close(self) -> None:
        """Release resources; an in-memory graph has none to release."""

    def __enter__(self) -> IdentityGraph:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _state(self) -> dict[str, Any]:
        """Everything that defines the graph, in comparable form (for equality)."""
        merges = self._partition.merges
        return {
            "order": list(self._order.items()),
            "attributes": sorted(
                (c, sorted(attrs_.items())) for c, attrs_ in self._attributes.items()
            ),
            "history": sorted((k, hist.points(h)) for k, h in self._history.items()),
            "merges": sorted(
                (m.id, m.a, m.b, m.reason, m.at, m.seq, m.active) for m in merges.values()
            ),
            "profiles": sorted((c, self._partition.profile_id(c)) for c in self._order),
            "owned": sorted((c, sorted(self._links_of(c))) for c in self._claimed),
            "guards": self._guards.state(),
            "journal": list(self._journal.entries()),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdentityGraph):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]

    def _check(self) -> None:
        """Verify every internal invariant; raises AssertionError.  O(everything)."""
        self._partition.check()
        owned_from_history: dict[CustomerId, set[LinkKey]] = {}
        for key, history in self._history.items():
            points = hist.points(history)
            assert points == sorted(points, key=lambda p: p[0]), f"{key} out of order"
            assert len({p[0] for p in points}) == len(points), f"{key} repeats an instant"
            owner = hist.current_owner(history)
            if owner is not None:
                assert owner in self._order, f"{key} owned by unregistered {owner!r}"
                owned_from_history.setdefault(owner, set()).add(key)
        current = {c: set(self._links_of(c)) for c in self._claimed}
        assert {c: v for c, v in current.items() if v} == owned_from_history
        for key, history in self._history.items():
            for _at, owner, _seq in hist.points(history):
                if owner is not None:
                    assert key in self._claimed_by(owner), f"{owner} misses claim {key}"
        for customer in self._claimed:
            claimed = self._claimed_by(customer)
            assert len(set(claimed)) == len(claimed), f"{customer} lists a link twice"
        assert sorted(self._order.values()) == list(range(len(self._order)))
