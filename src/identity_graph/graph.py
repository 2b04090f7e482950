"""``IdentityGraph``: the facade over a graph's state, its ledger and a store.

Data flows one way through every mutating call::

    input -> normalise / validate -> guard -> decide -> journal entry -> apply -> changes

The facade validates the input, asks :mod:`identity_graph.decisions` for
the decision (which customer now owns the link, which merge id is issued,
which merges a detach removes), and hands it to
:meth:`GraphState.commit <identity_graph.state.GraphState.commit>`, which
journals and applies it.  Events are checked (:mod:`identity_graph.events`)
and their customer registered here before the ledger files them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

import attrs

from . import bulk, decisions, erasure, link_tables
from . import history as hist
from . import kpis as indicators
from .errors import (
    BlockedLink,
    DuplicateEvent,
    IdentityGraphError,
    NotConnected,
    ReadOnlyGraph,
    StoreError,
    SuppressedLink,
    UnknownCustomer,
    UnknownMerge,
)
from .events import Anchor, Event, build_event, plain_anchor, prepare, same_event
from .explain import Step, explain_path, graph_of
from .guards import Limits, Refusal
from .ids import CustomerId, Link, LinkKey, LinkType, LinkTypes, check_customer_id
from .journal import Entry, ProfileChange, ProfileId, raw
from .kpis.definitions import Engine
from .ledger import Ledger
from .session import Session, StoreSession
from .state import GraphState
from .text import text_problem
from .times import utc

if TYPE_CHECKING:
    from .stores.base import Store

__all__ = ["IdentityGraph", "Profile"]

Ref: TypeAlias = "str | Link"
AttributeValue: TypeAlias = "str | int | float | bool | date | datetime | Decimal | None"
#: A link table's checks, kept across its chunks: raw customer id -> checked
#: id (None where the check failed), (name, raw value) -> why the value is
#: refused; at most _TABLE_CACHE of each.
_LinkCache: TypeAlias = "tuple[dict[str, CustomerId | None], dict[tuple[str, str], Exception]]"
_TABLE_CACHE = 65536


def _utc_now() -> datetime:
    return datetime.now(UTC)


F = TypeVar("F", bound=Callable[..., Any])

#: Attribute that marks a method to run through a store session, and how.
_SESSION_MARK = "__identity_graph_session__"


def _through_session(write: bool, events: bool) -> Callable[[F], F]:
    """Mark a public method to run through the session of a stored graph: a
    query after the session caught up, a mutation as one write transaction
    (``events``: with the ledger's events loaded).

    Only a stored graph pays for it: ``open()`` puts a wrapped method on the
    instance (:func:`_bind_session`), and an in-memory graph calls the plain
    method, with no wrapper between the caller and the work."""

    def mark(method: F) -> F:
        setattr(method, _SESSION_MARK, (write, events))
        return method

    return mark


def _reads(events: bool = False) -> Callable[[F], F]:
    """A query: on a stored graph, answered after the session caught up."""
    return _through_session(False, events)


def _writes(events: bool = False) -> Callable[[F], F]:
    """A mutation: on a stored graph, run as one write transaction of the session."""
    return _through_session(True, events)


def _routed(method: Callable[..., Any], call: Callable[..., Any], events: bool) -> Any:
    """``method`` (bound) run through a session's ``read`` or ``write``."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        return call(functools.partial(method, *args, **kwargs), events)

    return run


def _check_refused(refused: object, op: str) -> None:
    """``TypeError`` for a ``refused`` argument that is not a list, before
    anything is written (found only after the writes, it would lose the
    call's answer).  O(1)."""
    if refused is not None and not isinstance(refused, list):
        raise TypeError(
            f"{op}: refused={refused!r} must be a list (the refused rows are appended "
            "to it) or None"
        )


def _bind_session(graph: IdentityGraph, session: Session) -> None:
    """Route every marked method of ``graph`` through ``session``.  O(methods)."""
    for name, (write, events) in _SESSION_METHODS.items():
        call = session.write if write else session.read
        setattr(graph, name, _routed(getattr(graph, name), call, events))


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
    secret:
        The key of the keyed hashes that replace erased values (at least 16
        bytes).  ``None`` (the default) draws a random one; a stored graph
        uses the one its store keeps.  Give the same secret to a graph
        replayed from another's journal for it to recognise the values that
        graph erased.

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
        secret: bytes | None = None,
    ) -> None:
        if secret is not None and (not isinstance(secret, bytes) or len(secret) < 16):
            raise ValueError("secret must be bytes, at least 16 of them")
        self._types = LinkTypes(link_types, default_region)
        limits = limits if limits is not None else Limits()
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits, not {limits!r}")
        self._clock = clock or _utc_now
        self.register_unknown = register_unknown
        self._config: dict[str, Any] = {
            "default_region": default_region,
            "link_types": dict(link_types or {}),
            "limits": limits,
            "clock": clock,
            "register_unknown": register_unknown,
            "secret": secret,
        }
        self._core = core = GraphState(limits)
        if secret is not None:
            core.suppression.secret = secret
        # The parts of the state every call reads, named once (never replaced).
        self._order = core.order
        self._partition = core.partition
        self._ownership = core.ownership
        self._guards = core.guards
        self._ledger = Ledger(core.ownership)
        self._read_only = False
        # The last merge reason found valid: most merges give the same one.
        self._checked_reason: object = ""
        # What keeps a store in step around each call; open() gives a store's.
        self._session: Session = Session()
        self._stored = False

    @property
    def limits(self) -> Limits:
        """The guards' caps."""
        return self._guards.limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits, not {limits!r}")
        self._guards.limits = limits

    @property
    def state(self) -> GraphState:
        """The graph's state, for readers (indicator engines, exporters, tests);
        on a stored graph, caught up with other processes first.

        Read it through its public methods; change it only through the
        graph's own methods, which journal every change.
        """
        if self._stored:
            return self._session.read(lambda: self._core)
        return self._core

    @property
    def clock(self) -> Callable[[], datetime]:
        """What calls made without ``at=`` read the time from (aware)."""
        return self._clock

    @property
    def link_types(self) -> LinkTypes:
        """The link types this graph normalises and decides with."""
        return self._types

    # ------------------------------------------------------------------ helpers

    def _now(self, at: datetime | None, what: str = "at") -> datetime:
        """``at`` (or the clock's now) as a UTC instant; ``InvalidTime`` naming
        ``what`` when it is naive or outside the supported range.  O(1)."""
        if at is None:
            at = self._clock()
        if type(at) is datetime and at.tzinfo is UTC and 1 < at.year < 9999:
            return at  # the common case, checked cheaply (utc's own fast path, inlined)
        return utc(at, what)

    def _writable(self, op: str) -> None:
        if self._read_only:
            raise ReadOnlyGraph(f"{op}() on a read-only view from as_of(); the view never changes")

    def _id(self, customer_id: object) -> CustomerId:
        """A customer id, registered or not (checked, stripped, NFC).

        A registered id is taken as it is: it passed the door when it was
        registered, perhaps under an earlier version's rules, and stays
        addressable as stored."""
        if type(customer_id) is str and customer_id in self._order:
            return customer_id
        return check_customer_id(customer_id)

    def _customer(self, customer_id: object) -> CustomerId:
        """A registered customer id (stripped), or UnknownCustomer."""
        if isinstance(customer_id, str) and customer_id in self._order:
            return customer_id
        checked = check_customer_id(customer_id)
        if checked not in self._order:
            raise UnknownCustomer(f"customer {checked!r} is not registered")
        return checked

    def _not_suppressed(self, customer: CustomerId, op: str, at: datetime) -> None:
        """``SuppressedLink`` (logged with the id's keyed hash) if ``customer``
        was erased and not released.  O(1); O(len) while the list is not empty."""
        suppressed = self._core.suppression.customer(customer)
        if suppressed is not None:
            raise self._guards.refuse(at, op, suppressed.shown, suppressed) from None

    def _forget_values(self) -> None:
        """Drop what this object remembers of values it was given: raw
        spellings in the link normalisation cache and the last merge reason
        checked.  Called by ``forget`` and whenever the session reloads the
        state (another connection may have erased the person those values
        name).  O(cache size)."""
        self._types.forget_recent()
        self._checked_reason = ""

    def _key(self, link: Link, op: str, args: Mapping[str, Any], at: datetime) -> LinkKey:
        """Normalise a link for a mutating call; log a blocked value as a refusal."""
        try:
            key = self._types.key(link)
        except BlockedLink as error:
            # Blocked values are refusals; merely malformed values are
            # plain input errors (InvalidLink) and are not logged.
            raise self._guards.refuse(at, op, args, error) from None
        suppression = self._core.suppression
        if suppression.links and suppression.link_hash(key) in suppression.links:
            self._types.forget_recent(link)  # an erased value stays out of the cache
        return key

    # ------------------------------------------------------------------ mutations

    @_writes()
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
        customer = self._id(customer_id)
        if customer not in self._order:
            self._not_suppressed(customer, "register", at)
        changed = (
            decisions.attribute_changes(self._core, customer, attributes, at) if attributes else {}
        )
        if customer in self._order and not changed:
            return None
        args: dict[str, Any] = {"customer_id": customer}
        if changed:
            args["attributes"] = changed
        return self._core.commit("register", args, at)

    @_writes()
    def link(self, customer_id: CustomerId, link: Link, at: datetime | None = None) -> Entry | None:
        """Point ``link`` at ``customer_id`` from ``at`` on.

        Registers an unknown customer.  If another customer explicitly owns the
        link at ``at``, the link type's conflict policy decides: ``move`` (the
        old owner keeps it before ``at``), ``merge`` (the two profiles merge,
        reason ``shared link``) or ``reject`` (``LinkConflict``).
        O(log k) for a link with k change points, plus O(profile size) for a merge.
        """
        self._writable("link")
        return self._link(customer_id, link, self._now(at))

    def _link(self, customer_id: object, link: Link, at: datetime) -> Entry | None:
        """:meth:`link` once ``at`` is a checked UTC instant."""
        call = {"customer_id": customer_id, "link": link}
        customer, key, before, args = self._claim("link", customer_id, link, call, at)
        if before is None:
            return self._journal_entry(self._first_claim("link", customer, key, args, call, at))
        explicit = hist.explicit_owner_at(before, at)
        if explicit == customer:
            return None
        if explicit is not None:
            core = self._core
            outcome = decisions.conflict(core, self._types, key, customer, explicit, call, at)
            if outcome == "same":
                return None
            if outcome == "merge":
                decisions.check_profile_size(core, customer, explicit, "link", call, at)
                args["merge_id"] = core.next_merge_id()
                args["merged_with"] = explicit
                return self._core.commit("link", args, at)
        return self._commit_claim("link", customer, key, before, args, call, at)

    def link_table(
        self,
        table: object,
        *,
        at: datetime | None = None,
        refused: list[tuple[int, str, Exception]] | None = None,
    ) -> tuple[int, int]:
        """Link many customers at once, from columns; return ``(changed,
        unchanged)``: how many journal entries were written, and how many
        cells changed nothing.

        ``table`` is a polars ``DataFrame``, an object with ``to_pydict()``
        (a pyarrow ``Table``) or a mapping of column names to equal-length
        sequences.  Its columns: ``customer_id`` (required); ``at``
        (optional: aware datetimes, or a polars ``Datetime`` column with a
        time zone; an empty cell, or no column, means the ``at`` argument,
        else one reading of the clock for the whole call); and one column
        per link name (``email``, ``phone``, ``loyalty_card`` and the names
        of ``link_types``) holding the value, or None or ``""`` for no link.

        Each non-empty cell, in row order then column order, has exactly
        the effect of ``link(customer_id, Link(name, value), at)``: the same
        journal entries, the same refusals logged, the same conflicts,
        guards and limits.  A refused cell is skipped and, with a
        ``refused`` list, appended to it as ``(row, column, error)`` (rows
        count from 0).  A table that cannot be read as a whole (an unknown
        column, columns of unequal length, no ``customer_id``, a time
        without a zone) raises ``ValueError`` before anything is written.
        A stored graph writes one transaction per ``batch_size`` rows.

        Each distinct customer id and link value is checked once, and a new
        customer's claim of a link nobody held is written without the
        per-call steps.  O(cells), plus what each cell's ``link`` costs
        when it meets a link already claimed.
        """
        self._writable("link_table")
        _check_refused(refused, "link_table")
        columns = link_tables.link_columns(table, self._types.names())
        when = self._now(at)
        cache: _LinkCache = ({}, {})
        done = self._in_chunks(
            columns.rows,
            lambda start, stop: self._link_rows(columns, start, stop, when, cache),
        )
        if refused is not None:
            refused.extend(done[2])
        return done[0], done[1]

    def merge_table(
        self,
        table: object,
        *,
        at: datetime | None = None,
        refused: list[tuple[int, Exception]] | None = None,
    ) -> tuple[int, int]:
        """Merge many pairs of customers at once, from columns; return
        ``(merged, unchanged)``.

        ``table`` is read as for :meth:`link_table`.  Its columns: ``a`` and
        ``b`` (required), ``reason`` and ``at`` (optional; an empty cell or
        no column means ``""`` and the ``at`` argument, else one reading of
        the clock for the whole call).  Each row has exactly the effect of
        ``merge(a, b, reason, at)``; a refused row is skipped and, with a
        ``refused`` list, appended to it as ``(row, error)``.  A stored graph
        writes one transaction per ``batch_size`` rows.  Amortised O(rows ×
        α(n)) plus the smaller profile of each merge.
        """
        self._writable("merge_table")
        _check_refused(refused, "merge_table")
        columns = link_tables.merge_columns(table)
        when = self._now(at)
        done = self._in_chunks(
            columns.rows, lambda start, stop: self._merge_rows(columns, start, stop, when)
        )
        if refused is not None:
            refused.extend(done[2])
        return done[0], done[1]

    def _in_chunks(
        self, rows: int, run: Callable[[int, int], tuple[int, int, list[Any]]]
    ) -> tuple[int, int, list[Any]]:
        """``run(start, stop)`` over ``range(rows)``: at once in memory, one
        write transaction per ``batch_size`` rows on a store.  The refused
        rows come back with the counts (a store retries a whole chunk after
        a serialisation failure, and a retry must not report a row twice)."""
        chunk = self._session.chunks()
        if chunk is None:
            return run(0, rows)
        changed = unchanged = 0
        errors: list[Any] = []
        for start in range(0, rows, chunk):
            stop = min(start + chunk, rows)
            done = self._session.write(functools.partial(run, start, stop), False)
            changed += done[0]
            unchanged += done[1]
            errors.extend(done[2])
        return changed, unchanged, errors

    def _link_rows(
        self,
        columns: link_tables.LinkColumns,
        start: int,
        stop: int,
        default_at: datetime,
        cache: _LinkCache,
    ) -> tuple[int, int, list[tuple[int, str, Exception]]]:
        """The cells of rows ``start`` to ``stop`` of a link table, each as
        :meth:`link` would take it.

        The common cell (a valid customer id not erased, a valid value, a
        link nobody ever claimed) is decided here: no conflict, no move, and
        for a new customer no cap that could trip.  Every other cell goes
        through :meth:`_link` itself, so it meets exactly the per-call
        rules.  ``cache`` keeps, across chunks, each distinct raw customer
        id's check (None: not valid, left to the per-call path to refuse)
        and each distinct raw value's refusal; the graph's link types keep
        the keys of the values they normalised."""
        ids, bad = cache
        order = self._order
        history = self._ownership.history
        core = self._core
        suppression = core.suppression
        commit_first_claim = core.commit_first_claim
        value_key = self._types.value_key
        customers, times, links = columns.customer_id, columns.at, columns.links
        changed = unchanged = 0
        errors: list[tuple[int, str, Exception]] = []
        for row in range(start, stop):
            raw_customer = customers[row]
            when = default_at
            if times is not None:
                when = times[row] or default_at
            for name, values in links:
                value = values[row]
                if value is None or value == "":
                    continue
                try:
                    if not suppression and type(value) is str and type(raw_customer) is str:
                        # The common cell, decided here: checks as _link makes them.
                        if raw_customer in order:
                            customer: str | None = raw_customer
                        elif raw_customer in ids:
                            customer = ids[raw_customer]
                        else:
                            try:
                                customer = check_customer_id(raw_customer)
                            except IdentityGraphError:
                                customer = None  # refused by the per-call path below
                            if len(ids) >= _TABLE_CACHE:
                                ids.clear()
                            ids[raw_customer] = customer
                        if customer is not None:
                            try:
                                failed = bad.get((name, value))
                                if failed is not None:
                                    raise failed
                                key = value_key(name, value)
                            except IdentityGraphError as error:
                                # Refused as _key refuses it (a blocked value logged).
                                if len(bad) >= _TABLE_CACHE:
                                    bad.clear()
                                bad[(name, value)] = error.with_traceback(None)
                                if isinstance(error, BlockedLink):
                                    call = {"customer_id": raw_customer, "link": Link(name, value)}
                                    self._guards.refuse(when, "link", call, error)
                                errors.append((row, name, error))
                                continue
                            if history(key) is None:
                                args: dict[str, Any] = {"customer_id": customer, "link": key}
                                if value != key[1]:
                                    args["raw"] = value
                                if customer in order:
                                    call = {"customer_id": raw_customer, "link": Link(name, value)}
                                    decisions.check_ownership(
                                        core, self._types, key, customer, None, "link", call, when
                                    )
                                commit_first_claim("link", customer, key, args, when)
                                changed += 1
                                continue
                    if self._link(raw_customer, Link(name, value), when) is None:
                        unchanged += 1
                    else:
                        changed += 1
                except StoreError:
                    raise  # the store's failure, not the cell's
                except IdentityGraphError as error:
                    errors.append((row, name, error))
        return changed, unchanged, errors

    def _merge_rows(
        self, columns: link_tables.MergeColumns, start: int, stop: int, default_at: datetime
    ) -> tuple[int, int, list[tuple[int, Exception]]]:
        """Rows ``start`` to ``stop`` of a merge table, each as :meth:`merge`."""
        a_column, b_column, reasons, times = columns.a, columns.b, columns.reason, columns.at
        merge = self._merge
        merged = unchanged = 0
        errors: list[tuple[int, Exception]] = []
        for row in range(start, stop):
            when = default_at
            if times is not None:
                when = times[row] or default_at
            reason = "" if reasons is None else reasons[row]
            try:
                if merge(a_column[row], b_column[row], "" if reason is None else reason, when):
                    merged += 1
                else:
                    unchanged += 1
            except StoreError:
                raise  # the store's failure, not the row's
            except (IdentityGraphError, TypeError, ValueError) as error:
                errors.append((row, error))
        return merged, unchanged, errors

    @_writes()
    def relink(self, link: Link, to: CustomerId, at: datetime | None = None) -> Entry | None:
        """Move ``link`` to customer ``to`` from ``at`` on, whatever the policy.

        Registers an unknown customer.  O(log k).
        """
        self._writable("relink")
        at = self._now(at)
        call = {"link": link, "to": to}
        customer, key, before, args = self._claim("relink", to, link, call, at)
        if before is None:
            return self._journal_entry(self._first_claim("relink", customer, key, args, call, at))
        if hist.explicit_owner_at(before, at) == customer:
            return None
        return self._commit_claim("relink", customer, key, before, args, call, at)

    def _claim(
        self, op: str, customer_id: object, link: Link, call: Mapping[str, Any], at: datetime
    ) -> tuple[CustomerId, LinkKey, hist.History | None, dict[str, Any]]:
        """Validate a claim of ``link`` by a customer: (customer, key, history, args)."""
        customer = self._id(customer_id)
        suppression = self._core.suppression
        if suppression.customers and customer not in self._order:
            self._not_suppressed(customer, op, at)
        key = self._key(link, op, call, at)
        if suppression.links:
            suppressed = suppression.link(key)
            if suppressed is not None:
                self._types.forget_recent(link)  # the erased value stays out of the cache
                raise self._guards.refuse(at, op, suppressed.shown, suppressed) from None
        args: dict[str, Any] = {"customer_id": customer, "link": key}
        if link.value != key[1]:
            args["raw"] = link.value
        return customer, key, self._ownership.history(key), args

    def _first_claim(
        self,
        op: str,
        customer: CustomerId,
        key: LinkKey,
        args: dict[str, Any],
        call: Mapping[str, Any],
        at: datetime,
    ) -> int:
        """Journal and apply the claim of ``key``, a link nobody ever claimed;
        return the entry's seq.  No owner means no conflict and no move; a
        new customer owns no link, so no cap can trip either (caps are at
        least 1): only a known customer's claim goes through the guards."""
        if customer in self._order:
            decisions.check_ownership(self._core, self._types, key, customer, None, op, call, at)
        return self._core.commit_first_claim(op, customer, key, args, at)

    def _journal_entry(self, seq: int) -> Entry:
        return self._core.journal.entry(seq)

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
        if decisions.check_ownership(self._core, self._types, key, customer, before, op, call, at):
            args["freezes"] = True
        return self._core.commit(op, args, at)

    @_writes()
    def unlink(self, link: Link, at: datetime | None = None) -> Entry | None:
        """From ``at`` on, ``link`` points to nobody.  O(log k).

        Returns None when the link has no explicit owner at ``at``.
        """
        self._writable("unlink")
        at = self._now(at)
        key = self._key(link, "unlink", {"link": link}, at)
        if hist.explicit_owner_at(self._ownership.history(key), at) is None:
            return None
        return self._core.commit("unlink", {"link": key}, at)

    @_writes()
    def merge(
        self, a: CustomerId, b: CustomerId, reason: str = "", at: datetime | None = None
    ) -> str | None:
        """Merge the profiles of customers ``a`` and ``b``; return the merge id.

        Both must be registered.  Returns None when they already share a
        profile.  Amortised O(α(n)) plus O(size of the smaller profile).
        """
        self._writable("merge")
        return self._merge(a, b, reason, self._now(at))

    def _merge(self, a: object, b: object, reason: object, at: datetime) -> str | None:
        """:meth:`merge` once ``at`` is a checked UTC instant."""
        first, second = self._customer(a), self._customer(b)
        if reason is not self._checked_reason:
            if not isinstance(reason, str):
                raise TypeError(f"merge reason {reason!r} must be a string")
            problem = text_problem(reason)
            if problem is not None:
                raise ValueError(f"merge reason {reason!r} {problem}")
            self._checked_reason = reason  # the next merge gives the same one, mostly
        partition = self._partition
        root_a, root_b = partition.find(first), partition.find(second)
        if root_a == root_b:
            return None
        core = self._core
        cap = self._guards.limits.max_customers_per_profile
        if partition.root_size(root_a) + partition.root_size(root_b) > cap:
            call = {"a": a, "b": b, "reason": reason}
            decisions.check_profile_size(core, first, second, "merge", call, at)
        return core.commit_merge(first, second, cast(str, reason), at)  # checked above

    @_writes()
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
        return self._core.commit("split", {"merge_id": merge_id}, at)

    @_writes()
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
        return self._core.commit("detach", {"customer_id": customer, "merge_ids": merge_ids}, at)

    @_writes()
    def release(self, link: Link, at: datetime | None = None) -> Entry | None:
        """Unfreeze a link frozen for moving too often; None if it was not frozen."""
        self._writable("release")
        at = self._now(at)
        key = self._query_key(link)
        if key not in self._guards.frozen:
            return None
        return self._core.commit("release", {"link": key}, at)

    @_writes()
    def forget(
        self, customer_id: CustomerId, at: datetime | None = None, reason: str = ""
    ) -> Entry | None:
        """Erase a person: customer ``customer_id`` and what only it held.

        Gone: its attributes; every link value only it ever held (a link
        others also held keeps its value and loses this customer's spans);
        the merges that touch it (active ones removed as :meth:`detach`
        removes them); the events anchored on it, on those links, or on a
        shared link while it owned it, and events whose links name such a
        value; the refusals that name any of them.  The journal keeps every
        entry, each erased value replaced by its keyed hash, so replaying it
        gives this graph.  The id, the link values and the event ids go on
        the suppression list: bringing one back raises
        :class:`~identity_graph.errors.SuppressedLink` until
        :meth:`release_suppression`.  A store deletes the rows in the same
        transaction and then clears the freed space (see ``docs/erasure.md``).

        Returns the ``forget`` entry, whose changes name the customer by
        its hash; None when the id was erased already.  ``reason`` is kept
        in the journal as given: name the request, not the person.
        In memory O(journal + purchases + customers + merges); on a store,
        SQL searches of its rows, a new checkpoint (O(state)) and the
        freed space cleared (SQLite's ``VACUUM``: O(file size)).
        """
        self._writable("forget")
        at = self._now(at)
        if not isinstance(reason, str):
            raise TypeError(f"forget reason {reason!r} must be a string")
        problem = text_problem(reason)
        if problem is not None:
            raise ValueError(f"forget reason {reason!r} {problem}")
        core = self._core
        if not (isinstance(customer_id, str) and customer_id in self._order):
            checked = check_customer_id(customer_id)
            if checked not in self._order:
                if core.suppression.customer(checked) is not None:
                    return None  # erased before: the request is met
                raise UnknownCustomer(f"customer {checked!r} is not registered")
            customer_id = checked
        find = self._session.event_finder()
        plan = erasure.plan(core, self._ledger, customer_id, self._types, find)
        self._session.erase(plan, core, self._ledger)
        self._forget_values()
        return core.commit("forget", plan.args(reason), at, plan.alias())

    @_writes()
    def release_suppression(self, ref: Ref, at: datetime | None = None) -> Entry | None:
        """Take an erased customer id or link value off the suppression list,
        so it may be registered, linked or recorded again (the person came
        back on their own).  Returns None when it is not suppressed.  O(len).
        """
        self._writable("release_suppression")
        at = self._now(at)
        suppression = self._core.suppression
        if isinstance(ref, Link):
            hashed = suppression.link_hash(self._types.key(ref))
            if hashed not in suppression.links:
                return None
            return self._core.commit("release_suppression", {"link": hashed}, at)
        if isinstance(ref, str):
            customer = suppression.customer_hash(check_customer_id(ref))
            if customer not in suppression.customers:
                return None
            return self._core.commit("release_suppression", {"customer_id": customer}, at)
        raise TypeError(f"reference {ref!r} is neither a customer id (str) nor a Link")

    @_reads()
    def suppressed(self, ref: Ref) -> bool:
        """Whether a customer id or link value was erased by :meth:`forget`
        and is refused until released.  O(len)."""
        suppression = self._core.suppression
        if isinstance(ref, Link):
            found = suppression.link_hash(self._types.key(ref)) in suppression.links
            if found:
                self._types.forget_recent(ref)  # the erased value stays out of the cache
            return found
        if isinstance(ref, str):
            return suppression.customer_hash(check_customer_id(ref)) in suppression.customers
        raise TypeError(f"reference {ref!r} is neither a customer id (str) nor a Link")

    # ------------------------------------------------------------------ queries

    def _query_key(self, link: Link) -> LinkKey:
        """``link``'s key for a query.  A value erased by ``forget`` is asked
        about by whoever still has it; the graph's cache of recently
        normalised links must not keep it afterwards.  O(len)."""
        key = self._types.key(link)
        suppression = self._core.suppression
        if suppression.links and suppression.link_hash(key) in suppression.links:
            self._types.forget_recent(link)
        return key

    def normalize(self, link: Link) -> Link:
        """``link`` with its normalised value, or ``InvalidLink`` / ``BlockedLink``.  O(len)."""
        name, value = self._query_key(link)
        return Link(name, value)

    @_reads()
    def owner(self, link: Link, at: datetime | None = None) -> CustomerId | None:
        """The customer ``link`` belongs to at ``at``, or now.  O(log k)."""
        history = self._ownership.history(self._query_key(link))
        if at is None:
            return hist.current_owner(history)
        return hist.owner_at(history, self._now(at))

    @_reads()
    def history(self, link: Link) -> list[tuple[datetime, CustomerId | None]]:
        """Every change point of ``link``: ``[(valid_from, owner or None), ...]``.  O(k)."""
        history = self._ownership.history(self._query_key(link))
        return [] if history is None else [(at, o) for at, o, _ in hist.points(history)]

    @_reads()
    def resolve(self, ref: Ref, at: datetime | None = None) -> ProfileId:
        """The profile id of a customer id or a link.

        A link resolves through its owner at ``at`` (or its current owner);
        with no owner, to its anonymous profile, whose id is the normalised
        link.  Amortised O(α(n)) for a customer; O(log k + α(n)) for a link.
        """
        if at is None:  # the common cases, answered here (a hot path)
            if type(ref) is str:
                if ref in self._order:
                    return self._partition.profile_id(ref)
            elif type(ref) is Link:
                key = self._query_key(ref)
                owner = hist.current_owner(self._ownership.history(key))
                return Link(key[0], key[1]) if owner is None else self._partition.profile_id(owner)
        return self._resolve(ref, at)

    def _resolve(self, ref: Ref, at: datetime | None = None) -> ProfileId:
        if isinstance(ref, str):
            if at is not None:
                self._now(at)  # a naive time is refused even where it changes nothing
            if ref in self._order:
                return self._partition.profile_id(ref)
            return self._partition.profile_id(self._customer(ref))
        if isinstance(ref, Link):
            key = self._query_key(ref)
            history = self._ownership.history(key)
            owner = (
                hist.current_owner(history) if at is None else hist.owner_at(history, self._now(at))
            )
            if owner is None:
                return Link(key[0], key[1])
            return self._partition.profile_id(owner)
        raise TypeError(f"reference {ref!r} is neither a customer id (str) nor a Link")

    @_reads()
    def profile(self, ref: Ref) -> Profile:
        """The profile of ``ref`` as a frozen :class:`Profile`.  O(size of the profile)."""
        return self._profile(ref)

    def _profile(self, ref: Ref) -> Profile:
        profile_id = self._resolve(ref)
        if isinstance(profile_id, Link):
            return Profile(profile_id, (), (profile_id,), {}, ())
        customers = sorted(self._partition.members(profile_id), key=self._order.__getitem__)
        links_of = self._ownership.links_of
        links = sorted(Link(name, value) for c in customers for name, value in links_of(c))
        merged: dict[str, tuple[Any, datetime, int]] = {}
        for customer in customers:
            for name, record in self._core.attributes_of(customer).items():
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

    @_reads()
    def profiles(self) -> Iterator[Profile]:
        """Every customer profile, ordered by id.  O(n log n) to start."""
        ids = {self._partition.profile_id(c) for c in self._order}
        for profile_id in sorted(ids):
            yield self._profile(profile_id)

    @_reads()
    def customers(self) -> list[CustomerId]:
        """Every registered customer id, in registration order.  O(n)."""
        return list(self._order)

    @_reads()
    def attributes(self, customer_id: CustomerId) -> dict[str, Any]:
        """The attributes of one customer (not of its whole profile), sorted by name.

        Importers compare with these to skip unchanged cells.  O(attributes).
        """
        customer = self._customer(customer_id)
        return {
            name: record[0] for name, record in sorted(self._core.attributes_of(customer).items())
        }

    @_reads()
    def links(self, customer_id: CustomerId) -> list[Link]:
        """The links one customer (not its whole profile) owns now, sorted.

        O(links it ever owned).
        """
        return sorted(
            Link(name, value)
            for name, value in self._ownership.links_of(self._customer(customer_id))
        )

    @_reads()
    def explain(self, ref_a: Ref, ref_b: Ref) -> list[Step]:
        """Why two references share a profile: the shortest chain of ownerships
        and merges between them.

        Raises ``NotConnected`` when they are in different profiles.  An empty
        list means the two references are the same node.  O(size of the profile).
        """
        profile_a, profile_b = self._resolve(ref_a), self._resolve(ref_b)
        source, target = self._node(ref_a), self._node(ref_b)
        if profile_a != profile_b:
            raise NotConnected(
                f"{source!s} (profile {profile_a!s}) and {target!s} (profile {profile_b!s}) "
                "are not in one profile"
            )
        if source == target or isinstance(profile_a, Link):
            return []
        return explain_path(self._core, profile_a, source, target)

    def _node(self, ref: Ref) -> CustomerId | Link:
        return self.normalize(ref) if isinstance(ref, Link) else self._customer(ref)

    @_reads()
    def to_networkx(self) -> Any:
        """The identity graph as a ``networkx.Graph``: see
        :func:`identity_graph.explain.graph_of`.  O(n + links + merges)."""
        return graph_of(self._core)

    # ------------------------------------------------------------------ events

    @_writes(events=True)
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

    def record_many(
        self,
        events: Iterable[Event],
        *,
        refused: list[tuple[Event, Exception]] | None = None,
    ) -> tuple[int, int]:
        """Record many events; return ``(recorded, unchanged)``.

        Refused events are logged in ``refusals()`` and skipped; with a
        ``refused`` list, each is also appended to it as ``(event as given,
        error)`` (what an importer reports; the log may keep only the keyed
        hashes of an erased value the event brought back).  A stored graph
        writes one transaction per ``batch_size`` events.  O(m log n).
        """
        _check_refused(refused, "record_many")
        chunk = self._session.chunks()
        if chunk is None:
            recorded, unchanged, errors = self._record_many(events)
            if refused is not None:
                refused.extend(errors)
            return recorded, unchanged
        recorded = unchanged = 0
        iterator = iter(events)
        while batch := list(itertools.islice(iterator, chunk)):
            done = self._session.write(functools.partial(self._record_many, batch), True)
            recorded += done[0]
            unchanged += done[1]
            if refused is not None:
                refused.extend(done[2])
        return recorded, unchanged

    def _record_many(
        self, events: Iterable[Event]
    ) -> tuple[int, int, list[tuple[Event, Exception]]]:
        # The refused events come back with the counts (not through a list
        # passed in): a store retries the whole call after a serialisation
        # failure, and a retry must not report an event twice.
        self._writable("record_many")
        recorded = unchanged = 0
        errors: list[tuple[Event, Exception]] = []
        record = self._record  # bound once: this loop runs per event of a backfill
        # The bulk path: an event already in its checked form (plain_anchor)
        # is filed as it is, in batches; any other event (a fault, a link to
        # drop, a customer to check or register, a duplicate id) goes the
        # per-event way, after the batch before it was filed, so that it
        # meets the ledger as one record() after another would leave it.
        # Not while something is erased: each event then checks the list.
        fast = not self._core.suppression
        types, order = self._types, self._order
        ledger = self._ledger
        filed = ledger.ids()  # (a membership test: no stored text decoded)
        kinds: dict[str, bool] = {}
        pending: dict[str, Event] = {}
        items: list[tuple[Event, Anchor]] = []
        for event in events:
            if fast:
                anchor = plain_anchor(event, types, order, kinds)
                if anchor is not None:
                    event_id = event.id
                    assert event_id is not None
                    if event_id not in pending and event_id not in filed:
                        pending[event_id] = event
                        items.append((event, anchor))
                        recorded += 1
                        continue
                if items:
                    ledger.add_many(items)
                    items = []
                    pending.clear()
            try:
                if record(event):
                    recorded += 1
                else:
                    unchanged += 1
            except (IdentityGraphError, ValueError) as error:
                self._refuse_event(event, error)
                errors.append((event, error))
        if items:
            ledger.add_many(items)
        return recorded, unchanged, errors

    def record_table(
        self,
        table: Any,
        *,
        refused: list[tuple[int, Exception]] | None = None,
    ) -> tuple[int, int]:
        """Record the events of a table, checked per column; return
        ``(recorded, unchanged)``.

        ``table`` is a polars DataFrame, an object with ``to_pydict()`` (a
        pyarrow Table) or a mapping of equal-length columns: ``type`` and
        ``at`` (required), ``id``, ``customer_id``, ``data`` (a mapping or
        None) and one column per link name the graph knows
        (:meth:`LinkTypes.names <identity_graph.ids.LinkTypes.names>`),
        holding that link's value or None / ``""`` for none.  Row ``i`` is
        ``Event(type, at=at, customer_id=customer_id, links=(the non-empty
        link cells, in column order), data=data or {}, id=id)``, and the call
        has exactly the effect of :meth:`record_many` of those events in row
        order: the same ledger, journal entries, refusals and errors.  A
        refused row is logged and skipped; with a ``refused`` list, it is
        also appended to it as ``(row index, error)``.  A row that cannot
        be an ``Event`` at all (a link cell that is not text, data that is
        not a mapping of storable values) is refused alike, logged with its
        row index.  A table with an unknown column, a missing ``type`` or
        ``at`` column or columns of different lengths raises ``ValueError``
        before anything is recorded.  A polars ``Datetime`` column with a
        time zone is converted to UTC in polars: those events keep their
        time in UTC.  A stored graph writes one transaction per
        ``batch_size`` rows.  O(rows × log n + distinct values × their check).
        """
        self._writable("record_table")
        _check_refused(refused, "record_table")
        suppression = self._core.suppression
        erased = (lambda key: suppression.link(key) is not None) if suppression.links else None
        rows = bulk.EventRows(bulk.read_table(table, self._types.names()), self._types, erased)
        batch_size = self._session.chunks()
        chunk = batch_size or rows.rows or 1
        recorded = unchanged = 0
        for start in range(0, rows.rows, chunk):
            call = functools.partial(self._record_rows, rows, start, min(start + chunk, rows.rows))
            done = call() if batch_size is None else self._session.write(call, True)
            recorded += done[0]
            unchanged += done[1]
            if refused is not None:
                refused.extend(done[2])
        return recorded, unchanged

    def _record_rows(
        self, rows: bulk.EventRows, start: int, stop: int
    ) -> tuple[int, int, list[tuple[int, Exception]]]:
        """Record rows ``[start, stop)`` of a checked table.  A plain row is
        filed from its checked parts; any other row (a fault to name, a
        value to log, an erased value, a duplicate id) goes the per-event
        way of ``record_many``, after the plain rows before it were filed,
        so that it meets the ledger as ``record_many`` would leave it."""
        self._writable("record_table")
        order, core = self._order, self._core
        suppression = core.suppression
        ledger = self._ledger
        filed = ledger.ids()
        register_unknown = self.register_unknown
        plain, kinds, ats, ids = rows.plain, rows.kinds, rows.ats, rows.ids
        customers, data, links, keys = rows.customers, rows.data, rows.links, rows.keys
        link_anchor, checked_customer = rows.link_anchor, rows.checked_customer
        recorded = unchanged = 0
        errors: list[tuple[int, Exception]] = []
        pending: dict[str, Event] = {}
        items: list[tuple[Event, Anchor]] = []
        for i in range(start, stop):
            if plain[i]:
                event = None
                customer = customers[i]
                if customer is not None and customer not in order:
                    customer = checked_customer(customer)
                    if suppression.customers and suppression.customer(customer) is not None:
                        customer = ""  # erased: the per-event path refuses it
                    elif customer not in order and not register_unknown:
                        customer = ""  # unknown: likewise
                event_id = ids[i]
                if customer != "" and not (
                    suppression
                    and (
                        (event_id is not None and suppression.event(event_id) is not None)
                        or any(suppression.link(key) is not None for key in keys[i])
                    )
                ):
                    kind, at, row_data = kinds[i], ats[i], data[i]
                    assert kind is not None
                    event = build_event(kind, at, customer, links[i], row_data, event_id)
                    if event_id is None:
                        event_id = event.content_id()
                        event = build_event(kind, at, customer, links[i], row_data, event_id)
                        if suppression.events and suppression.event(event_id) is not None:
                            event = None
                if event is not None:
                    assert event_id is not None
                    known = pending.get(event_id)
                    if known is None and event_id in filed:
                        # Compared as the ledger compares (a stored text as
                        # text first), keeping nothing decoded; other
                        # content goes the per-event way, which refuses it.
                        try:
                            ledger.is_new(event)
                        except DuplicateEvent:
                            pass
                        else:
                            unchanged += 1
                            continue
                    elif known is None:
                        anchor: Anchor | None = customer if customer is not None else link_anchor[i]
                        assert anchor is not None  # a plain row has a customer or a link
                        if type(anchor) is str and anchor not in order:
                            self.register(anchor, at=event.at)  # register_unknown=True
                        pending[event_id] = event
                        items.append((event, anchor))
                        recorded += 1
                        continue
                    elif same_event(known, event):
                        unchanged += 1
                        continue
            # The per-event path, meeting the ledger as record_many would.
            if items:
                ledger.add_many(items)
                items = []
                pending.clear()
            broken = rows.broken.get(i)
            if broken is not None:
                self._guards.refuse(rows.time(i, self._clock), "record", {"row": i}, broken)
                errors.append((i, broken))
                continue
            row = rows.event(i)
            try:
                if self._record(row):
                    recorded += 1
                else:
                    unchanged += 1
            except (IdentityGraphError, ValueError) as error:
                self._refuse_event(row, error)
                errors.append((i, error))
        if items:
            ledger.add_many(items)
        return recorded, unchanged, errors

    def _record(self, event: object) -> bool:
        """Check ``event``, register its unknown customer, file it in the ledger."""
        suppression = self._core.suppression
        if suppression and type(event) is Event:
            self._not_erased(event)
        normalised, anchor = prepare(
            event,
            self._types,
            self._order,
            self.register_unknown,
            self._drop_link,
            suppression if suppression else None,
        )
        if suppression.events:
            assert normalised.id is not None
            suppressed = suppression.event(normalised.id)
            if suppressed is not None:
                raise suppressed
        if not self._ledger.is_new(normalised):
            return False
        if type(anchor) is str and anchor not in self._order:
            self.register(anchor, at=normalised.at)  # register_unknown=True
        self._ledger.add(normalised, anchor)
        return True

    def _not_erased(self, event: Event) -> None:
        """``SuppressedLink`` for an event that names an erased event id or
        customer id, before anything else is checked: any other refusal
        would log the event, or name it in its reason, with that value.
        O(len) while the list is not empty."""
        suppression = self._core.suppression
        if suppression.events and isinstance(event.id, str):
            suppressed = suppression.event(event.id)
            if suppressed is not None:
                raise suppressed
        customer = event.customer_id
        if suppression.customers and isinstance(customer, str) and customer not in self._order:
            try:
                customer = check_customer_id(customer)
            except IdentityGraphError:
                return  # no valid id: refused as such later, and never erased
            suppressed = suppression.customer(customer)
            if suppressed is not None:
                raise suppressed

    def _drop_link(self, at: datetime, event_id: str | None, link: Link, error: Exception) -> None:
        self._guards.refuse(at, "record", {"event": event_id, "link": link}, error)

    def _refuse_event(self, event: object, error: Exception) -> None:
        """Log a refused event at its own time, or now if it has no valid time."""
        try:
            at = utc(getattr(event, "at", None))
        except (TypeError, ValueError):  # no valid time: naive, outside the range, missing
            at = self._clock()
        # Refused for an erased value: the log keeps its hash, not the event.
        if isinstance(error, SuppressedLink):
            args = error.shown
        else:
            args = {"event": self._without_erased(event)}
        self._guards.refuse(at, "record", args, error)

    def _without_erased(self, event: object) -> object:
        """``event`` with every erased link it brings back named by its keyed
        hash (refused for another reason, it is kept in the refusal log, which
        must not hold an erased value).  O(1) while nothing is suppressed;
        else O(links)."""
        suppression = self._core.suppression
        if not suppression.links or type(event) is not Event:
            return event
        links: list[Link] = []
        for link in event.links:
            try:
                refused = suppression.link(self._types.key(link))
            except (IdentityGraphError, TypeError, ValueError):
                refused = None
            if refused is None:
                links.append(link)
                continue
            self._types.forget_recent(link)
            hashed = refused.shown["link"]
            assert isinstance(hashed, Link)
            links.append(hashed)
        if all(a is b for a, b in zip(links, event.links, strict=True)):
            return event
        return attrs.evolve(event, links=tuple(links))

    @_reads(events=True)
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
        for what, bound in (("start", start), ("end", end)):
            if bound is not None:
                self._now(bound, what)  # refuses naive or non-datetime bounds, naming them
        profile = self._resolve(ref, at)
        members = () if isinstance(profile, Link) else self._partition.members(profile)
        return self._ledger.events(profile, members, start, end, types)

    @_reads(events=True)
    def kpis(
        self, as_of: datetime, ref: Ref | None = None, *, engine: Engine = "auto"
    ) -> Mapping[Any, Any]:
        """Omnichannel indicators at ``as_of``.

        Without ``ref``: a mapping ``{profile id: {indicator: value}}`` for
        every customer profile (with or without purchases) and every anonymous
        profile with a purchase.  With ``ref``: the indicators of that one
        profile (``{indicator: value}``).  The RFM ranks compare profiles with
        each other, so both cost one pass over the purchases: O(p log p) plus
        O(q log q) per window.  ``engine`` is ``"auto"``, ``"python"`` or
        ``"polars"`` (:func:`identity_graph.kpis.compute`); every engine gives
        equal values.
        """
        as_of = self._now(as_of, "as_of")
        # An unknown ref fails before the pass over every purchase.
        profile = None if ref is None else self._resolve(ref)
        every = indicators.run(self._core, self._ledger, as_of, engine)
        if profile is None:
            return every
        if profile in every:
            return every[profile]
        # An anonymous profile without purchases: all empty.
        return indicators.compute_empty()

    # ------------------------------------------------------------------ journal

    @_reads()
    def journal(self, since: int = 0) -> Iterator[Entry]:
        """Journal entries with ``seq > since``, oldest first."""
        return self._core.journal.entries(since)

    @_reads()
    def changes(self, since: int = 0) -> list[ProfileChange]:
        """Profile changes of the entries with ``seq > since``.  O(result)."""
        with self._session.snapshot():  # rows from one state of the store
            journal = self._core.journal
            return [change for entry in journal.entries(since) for change in entry.changes]

    def _replay_into(self, view: IdentityGraph, upto: int | None = None) -> None:
        """Replay this graph's journal (up to entry ``upto``) into the empty
        ``view``.  A stored entry that decodes but does not apply (rows
        below the checkpoint are only read here) is the store's damage:
        ``StoreError`` naming the row.  O(entries)."""
        replay = view._core.replay
        with self._session.snapshot():  # rows from one state of the store
            for seq, record in self._core.journal.records(0, upto):
                op, args, at = raw(record)
                try:
                    replay(op, args, at, seq)
                except Exception as error:  # whatever the entry trips on
                    raise self._session.unreplayable(seq, record, error) from error

    @_reads(events=True)
    def as_of(self, seq: int) -> IdentityGraph:
        """A read-only graph as it stood after entry ``seq``.  O(seq) to build."""
        journal = self._core.journal
        if not isinstance(seq, int) or isinstance(seq, bool):
            # as_of takes a journal position; a time goes to owner/resolve/kpis(at=…).
            raise TypeError(f"as_of({seq!r}): seq must be a journal entry number (an int)")
        if not 0 <= seq <= len(journal):
            raise ValueError(f"as_of({seq!r}): seq must be between 0 and {len(journal)}")
        view = IdentityGraph(**self._config)
        view._core.suppression.secret = self._core.suppression.secret
        self._replay_into(view, seq)
        view._ledger = self._ledger.view(view._ownership)
        view._read_only = True
        return view

    @classmethod
    def open(cls, target: Any = None, **config: Any) -> IdentityGraph:
        """A graph kept in a store: ``"graph.db"`` (SQLite), a
        ``"postgresql://…"`` URL, or ``"memory:"``.

        ``None`` means ``$IDENTITY_GRAPH_POSTGRES_URL`` when set, else
        ``identity-graph.db``; an opened :class:`~identity_graph.stores.base.Store`
        is used as it is.  ``config`` takes the constructor's keywords, plus
        ``checkpoint_every`` and ``batch_size`` (see
        :mod:`identity_graph.session`) and the store's own options (SQLite:
        ``synchronous``, ``timeout``, ``read_only``; PostgreSQL:
        ``connect_timeout``).  Opening loads the latest checkpoint and
        replays only the entries after it: O(state + tail + events).  Use it
        as a context manager, or call ``close()``.
        """
        from .stores import open_store

        names = ("synchronous", "timeout", "read_only", "connect_timeout")
        options = {k: config.pop(k) for k in names if k in config}
        sizes = {k: config.pop(k) for k in ("checkpoint_every", "batch_size") if k in config}
        store = open_store(target, **options)
        try:
            graph = cls(**config)
            graph._session = StoreSession(
                store,
                graph._core,
                graph._ledger,
                on_reset=graph._forget_values,
                **sizes,
            )
        except BaseException:
            store.close()
            raise
        graph._stored = True
        _bind_session(graph, graph._session)
        return graph

    @classmethod
    def from_journal(cls, entries: Iterable[Entry], **config: Any) -> IdentityGraph:
        """Replay ``entries`` (from ``seq`` 1, gap-free) into a new graph.

        The entries' decisions are applied as recorded, so the result equals
        the graph that wrote them whatever ``config`` says.  O(total work).
        """
        graph = cls(**config)
        for entry in entries:
            expected = len(graph._core.journal) + 1
            if entry.seq != expected:
                raise ValueError(f"journal entry {entry.seq} out of order; expected {expected}")
            args: dict[str, Any] = {
                k: v.key if isinstance(v, Link) else v for k, v in entry.args.items()
            }
            if "attributes" in args:
                args["attributes"] = dict(args["attributes"])
            if "links" in args:  # forget: the erased links' hashed keys
                args["links"] = tuple(link.key for link in args["links"])
            graph._core.replay(entry.op, args, entry.at, entry.seq)
        return graph

    @_reads()
    def refusals(self) -> list[Refusal]:
        """Every refused call since this graph was created, oldest first."""
        return list(self._guards.log)

    @_reads()
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
        with self._session.batch():
            yield self

    def checkpoint(self) -> int:
        """Save the current state as the store's checkpoint; return its seq.

        Opening then replays only the entries after it.  In memory there is
        nothing to save: the seq the graph stands at is returned.  O(state).
        """
        if isinstance(self._session, StoreSession):
            return self._session.checkpoint()
        return len(self._core.journal)

    def verify(self) -> int:
        """Check everything the graph is kept in; return how many journal
        entries were checked.

        On a store: the store's thorough page check (SQLite ``PRAGMA
        integrity_check``), every journal, event and refusal row read back
        (each must decode; journal rows must be gap-free and carry their own
        seq and checksum, event rows their number and checksum; the columns
        kept for SQL queries must say what their row says), and the graph
        rebuilt by replaying the journal from its first entry must equal
        the one the checkpoint gave.  Any damage raises :class:`StoreError`
        naming the table and row.  In memory only the replay is compared.
        O(whole journal + events).
        """
        self._session.verify()
        replayed = IdentityGraph(**self._config)
        # One state of the store for the replay and the comparison.
        with self._session.snapshot():
            self._replay_into(replayed)
            same = replayed._core.comparable() == self._core.comparable()
        if not same:
            raise StoreError(
                f"{self._session.describe()}: ig_checkpoints disagrees with the journal:"
                " replaying ig_journal from its first row gives another graph"
                " (deleting the checkpoint row makes the next open replay the journal)"
            )
        return len(self._core.journal)

    @property
    def store(self) -> Store | None:
        """The store this graph reads and writes (None in memory)."""
        return self._session.store

    def close(self) -> None:
        """Release the store (a checkpoint first if ``checkpoint_every``
        entries were appended); an in-memory graph has nothing to release."""
        self._session.close()

    def __repr__(self) -> str:
        where = self._session.describe()
        return f"<IdentityGraph {where} seq={len(self._core.journal)}>"

    def __enter__(self) -> IdentityGraph:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @_reads()
    @_reads()
    def _state(self) -> dict[str, Any]:
        """Everything that defines the graph, in comparable form (for equality)."""
        return self._core.comparable()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdentityGraph):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]

    @_reads(events=True)
    def _check(self) -> None:
        """Verify every internal invariant, the ledger's included; raises
        AssertionError.  O(everything)."""
        self._core.check()
        self._ledger.check()


#: The methods a stored graph runs through its session: ``{name: (write, events)}``.
_SESSION_METHODS: dict[str, tuple[bool, bool]] = {
    name: getattr(member, _SESSION_MARK)
    for name, member in vars(IdentityGraph).items()
    if hasattr(member, _SESSION_MARK)
}
