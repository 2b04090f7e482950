"""The pure-Python indicator engine: one pass over the ledger.

One pass groups the purchases at or before ``as_of`` by the profile each one
belongs to (the ledger's attribution: links over time, then merges); each
profile's purchases are sorted once by ``(at, id)``, so every window is a
bisection, and the RFM ranks of a window come from sorting each measure once
over the profiles that bought in it.  Cost: O(p log p) for p purchases plus
O(q log q) per window for the q profiles with purchases in it — never a
query per profile per indicator.  It runs on the base install.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import history as hist
from ..ids import Link
from ..purchases import KINDS, WINDOW_KINDS, plain_data, ticket_strings, ticket_value, whole
from ..times import EPOCH, micros
from .definitions import (
    DAY_NAMES,
    PERIOD_NAMES,
    PERIODS,
    WINDOWS,
    compute_empty,
    rfm_group,
    rfm_segment,
)

if TYPE_CHECKING:
    from ..events import Event
    from ..journal import ProfileId
    from ..ledger import Ledger
    from ..state import GraphState

__all__ = ["compute"]


class _Ticket(NamedTuple):
    """What the window indicators need of one purchase, read once.

    A tuple, not a frozen attrs class: a million of them are built per call.
    The latest-ticket lists are read from ``event`` for the latest one only.
    """

    at: datetime
    id: str
    amount: Decimal
    quantity: int
    brands: frozenset[str]
    categories: frozenset[str]
    promo_codes: frozenset[str]
    stores: frozenset[str]
    event: Event


_NOTHING: frozenset[str] = frozenset()


def _ticket(event: Event, at: datetime) -> _Ticket:
    """``at`` is the event's time in UTC (the ledger's index key)."""
    data = plain_data(event.data)
    items = [plain_data(item) for item in data.get("items") or ()]
    quantity = 0
    for item in items:
        quantity += whole(item.get("quantity", 1))
    families: tuple[set[str], ...] = tuple(set() for _ in WINDOW_KINDS)
    for kind, name in ticket_strings(data, items):
        if kind < len(WINDOW_KINDS):
            families[kind].add(name)
    brands, categories, promo, stores = (frozenset(f) if f else _NOTHING for f in families)
    assert event.id is not None
    return _Ticket(
        at,
        event.id,
        ticket_value(data, items),
        quantity,
        brands,
        categories,
        promo,
        stores,
        event,
    )


def _last_fields(event: Event) -> dict[str, tuple[str, ...]]:
    """The ``Last_Purchase_*`` lists of the latest ticket."""
    data = plain_data(event.data)
    found: dict[str, set[str]] = {name: set() for name in KINDS}
    for kind, name in ticket_strings(data, [plain_data(i) for i in data.get("items") or ()]):
        found[KINDS[kind]].add(name)
    return {name: tuple(sorted(names)) for name, names in found.items()}


def _purchases_by_profile(
    state: GraphState, ledger: Ledger, as_of: datetime
) -> dict[ProfileId, list[_Ticket]]:
    """Every purchase at or before ``as_of``, grouped by the profile it belongs
    to.  Each purchase read is decoded once and kept by the ledger; other
    events are skipped by their type, undecoded."""
    event_of, type_of = ledger.event, ledger.type_of
    partition = state.partition
    order = state.order
    ownership = state.ownership
    last = micros(as_of)
    grouped: dict[Any, list[_Ticket]] = {}
    for anchor, times, ids in ledger.anchored():
        on_customer = isinstance(anchor, str)
        history = None
        tickets: list[_Ticket] = []
        if isinstance(anchor, str):
            if anchor not in order:
                continue  # a later customer, seen through an as_of() view's shared ledger
            tickets = grouped.setdefault(partition.profile_id(anchor), [])
        else:
            history = ownership.history(anchor)
        for us, event_id in zip(times, ids, strict=True):
            if us > last:
                break  # the index is sorted by time
            if type_of(event_id) != "purchase":
                continue
            event = event_of(event_id)
            at = EPOCH + timedelta(microseconds=us)
            if not on_customer:  # a link's events follow its owner at their time
                owner = hist.owner_at(history, at)
                profile = anchor if owner is None else partition.profile_id(owner)
                tickets = grouped.setdefault(profile, [])
            tickets.append(_ticket(event, at))
    result: dict[ProfileId, list[_Ticket]] = {}
    for profile, found in grouped.items():
        if found:
            found.sort(key=lambda t: (t.at, t.id))
            result[Link(*profile) if isinstance(profile, tuple) else profile] = found
    return result


# --------------------------------------------------------------------- indicators


def _days(delta: timedelta) -> int:
    return delta.days  # whole days, floored: timedelta keeps days floored


def _windows(
    row: dict[str, Any], tickets: list[_Ticket], starts: list[datetime]
) -> list[int | None]:
    """Fill the window indicators of one profile in a single pass, newest
    ticket first: the windows are nested, so each one's totals are the
    running totals when the pass crosses its start (``starts[i]`` is
    ``as_of - WINDOWS[i]`` days; a window is ``(start, as_of]``).  Returns
    the periods in which the profile has a purchase.  O(k) for k tickets,
    plus the sizes of the distinct sets at each boundary."""
    brands: set[str] = set()
    categories: set[str] = set()
    promo: set[str] = set()
    stores: set[str] = set()
    items = count = 0
    value = Decimal(0)
    bought: list[int | None] = []
    values: tuple[Any, ...] = (0, 0, 0, 0, Decimal(0), None, None, (), ())
    changed = False

    def close(days: int | None) -> None:
        nonlocal values, changed
        if changed:  # else the previous (smaller) window's values still hold
            values = (
                items,
                len(brands),
                len(categories),
                count,
                value,
                value / count,
                None,
                tuple(sorted(promo)) if promo else (),
                tuple(sorted(stores)) if stores else (),
            )
            changed = False
        for name, item in zip(PERIOD_NAMES[days], values, strict=True):
            row[name] = item
        if count:
            bought.append(days)

    period = 0
    last = len(WINDOWS)
    for ticket in reversed(tickets):
        while period < last and ticket.at <= starts[period]:
            close(WINDOWS[period])
            period += 1
        changed = True
        items += ticket.quantity
        count += 1
        value += ticket.amount
        if ticket.brands:
            brands |= ticket.brands
        if ticket.categories:
            categories |= ticket.categories
        if ticket.promo_codes:
            promo |= ticket.promo_codes
        if ticket.stores:
            stores |= ticket.stores
    while period < last:
        close(WINDOWS[period])
        period += 1
    close(None)
    return bought


def _strictly_less(values: list[Any]) -> dict[Any, int]:
    """Each distinct value of a sorted list -> how many values are smaller.  O(n)."""
    table: dict[Any, int] = {}
    for index, value in enumerate(values):
        if value not in table:
            table[value] = index
    return table


def _key(link: Link) -> tuple[str, str]:
    return link.key


def compute(state: GraphState, ledger: Ledger, as_of: datetime) -> dict[ProfileId, dict[str, Any]]:
    """The pure-Python engine: one pass over the ledger, O(p log p + windows × q log q)."""
    as_of = as_of.astimezone(UTC)
    purchases = _purchases_by_profile(state, ledger, as_of)
    profile_id = state.partition.profile_id
    profiles: dict[Any, None] = dict.fromkeys(profile_id(c) for c in state.order)
    # Then the anonymous profiles, in the order of their link keys.
    profiles.update(dict.fromkeys(sorted((p for p in purchases if isinstance(p, Link)), key=_key)))
    template = compute_empty()
    starts = [as_of - timedelta(days=days) for days in WINDOWS]
    result: dict[ProfileId, dict[str, Any]] = {}
    # Per period: (row, recency days, purchases, value) of the profiles that bought.
    active: dict[int | None, list[tuple[dict[str, Any], int, int, Decimal]]] = {
        days: [] for days in PERIODS
    }
    for profile in profiles:
        row = template.copy()
        result[profile] = row
        tickets = purchases.get(profile)
        if not tickets:
            continue
        first, last = tickets[0], tickets[-1]
        row["First_Purchase_Date"] = first.event.at  # as recorded, in its own zone
        row["Last_Purchase_Date"] = last.event.at
        row["Days_Since_First_Purchase"] = _days(as_of - first.at)
        row["Days_Since_Last_Purchase"] = _days(as_of - last.at)
        row["Last_Purchase_Amount"] = last.amount
        recency = row["Days_Since_Last_Purchase"]
        for days in _windows(row, tickets, starts):
            names = DAY_NAMES[days]
            active[days].append((row, recency, row[names["Purchases"]], row[names["Value"]]))
        for name, values in _last_fields(last.event).items():
            row[f"Last_Purchase_{name}"] = values
    for days, rows in active.items():
        n = len(rows)
        if not n:
            continue
        recencies = sorted(r for _, r, _, _ in rows)
        # R counts the profiles with a strictly greater recency.
        greater = {r: n - k for r, k in _strictly_greater_end(recencies).items()}
        fewer_f = _strictly_less(sorted(f for _, _, f, _ in rows))
        fewer_m = _strictly_less(sorted(m for _, _, _, m in rows))
        name = DAY_NAMES[days]["RFM"]
        for row, r, f, m in rows:
            row[name] = (
                f"{1 + 5 * greater[r] // n}{1 + 5 * fewer_f[f] // n}{1 + 5 * fewer_m[m] // n}"
            )
    for row in result.values():
        code = row["Total_RFM"]
        if code is not None:
            row["RFM_Segment"] = rfm_segment(code)
            row["RFM_Group"] = rfm_group(code)
    return result


def _strictly_greater_end(values: list[Any]) -> dict[Any, int]:
    """Each distinct value of a sorted list -> the index just past its last copy."""
    table: dict[Any, int] = {}
    for index, value in enumerate(values):
        table[value] = index + 1
    return table
