"""Omnichannel indicators and RFM segmentation from purchase events (§4).

One pass groups the purchases at or before ``as_of`` by the profile each one
belongs to (the ledger's attribution: links over time, then merges); each
profile's purchases are sorted once by ``(at, id)``, so every window is a
bisection, and the RFM ranks of a window come from sorting each measure once
over the profiles that bought in it.  Cost: O(p log p) for p purchases plus
O(q log q) per window for the q profiles with purchases in it — never a
query per profile per indicator.

Money is :class:`decimal.Decimal` from end to end; nothing passes through
``float`` arithmetic.
"""

from __future__ import annotations

import csv
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import history as hist
from .ids import Link

if TYPE_CHECKING:
    from .graph import IdentityGraph, Ref
    from .journal import ProfileId
    from .ledger import Event

__all__ = [
    "INDICATORS",
    "WINDOWS",
    "Indicator",
    "rfm_group",
    "rfm_segment",
    "write_csv",
]

#: Window lengths in days; each window is ``(as_of - W days, as_of]``.
WINDOWS = (30, 60, 90, 180, 360)
_PERIODS: tuple[int | None, ...] = (*WINDOWS, None)  # None: Total


@attrs.frozen
class Indicator:
    """One indicator: its name, the Python type of its value, its definition."""

    name: str
    type: str
    definition: str


def _window_name(measure: str, days: int | None) -> str:
    return f"Total_{measure}" if days is None else f"{measure}_{days}_Days"


_WINDOW_MEASURES = (
    ("Items", "int", "sum of the items' quantities"),
    ("Brands", "int", "number of distinct item brands"),
    ("Categories", "int", "number of distinct item categories"),
    ("Purchases", "int", "number of purchases (tickets)"),
    ("Value", "Decimal", "sum of the purchases' amounts"),
    ("Average_Value", "Decimal | None", "Value / Purchases; None without a purchase"),
    ("RFM", "str | None", "three-digit R, F, M code (§4.1); None without a purchase"),
    ("Promo_Codes", "tuple[str, ...]", "sorted distinct promo codes"),
    ("Stores", "tuple[str, ...]", "sorted distinct store codes"),
)
_LAST_FIELDS = (
    ("Payment_Methods", "payment_methods"),
    ("Shipping_Methods", "shipping_methods"),
    ("Items", "sku"),
    ("Brands", "brand"),
    ("Categories", "category"),
    ("Sellers", "seller"),
    ("Stores", "store"),
    ("Promo_Codes", "promo_codes"),
)


def _indicators() -> tuple[Indicator, ...]:
    found = [
        Indicator("First_Purchase_Date", "datetime | None", "time of the first purchase"),
        Indicator("Last_Purchase_Date", "datetime | None", "time of the latest purchase"),
        Indicator(
            "Days_Since_First_Purchase",
            "int | None",
            "whole days (floor) from the first purchase to as_of",
        ),
        Indicator(
            "Days_Since_Last_Purchase",
            "int | None",
            "whole days (floor) from the latest purchase to as_of",
        ),
        Indicator("Last_Purchase_Amount", "Decimal | None", "amount of the latest purchase"),
    ]
    for days in _PERIODS:
        span = "all purchases at or before as_of" if days is None else f"the last {days} days"
        for measure, kind, definition in _WINDOW_MEASURES:
            found.append(Indicator(_window_name(measure, days), kind, f"{definition}, {span}"))
    for name, field in _LAST_FIELDS:
        found.append(
            Indicator(
                f"Last_Purchase_{name}",
                "tuple[str, ...]",
                f"sorted distinct {field} values of the latest purchase",
            )
        )
    found.append(Indicator("RFM_Segment", "str | None", "segment of Total_RFM's R and F (§4.1)"))
    found.append(Indicator("RFM_Group", "str | None", "coarser group of RFM_Segment"))
    return tuple(found)


#: Every indicator, in the column order of :func:`write_csv`.
INDICATORS: tuple[Indicator, ...] = _indicators()

_SEGMENTS = {
    **{f"{r}{f}": "Hibernating" for r in "12" for f in "12"},
    **{f"{r}{f}": "At Risk" for r in "12" for f in "34"},
    **{f"{r}5": "Can't Lose Them" for r in "12"},
    **{f"3{f}": "About To Sleep" for f in "12"},
    "33": "Need Attention",
    **{f"{r}{f}": "Loyal Customers" for r in "34" for f in "45"},
    "41": "Promising",
    "51": "New Customers",
    **{f"{r}{f}": "Potential Loyalists" for r in "45" for f in "23"},
    **{f"5{f}": "Champions" for f in "45"},
}

#: The documented coarser grouping of the segments (docs/indicators.md).
GROUPS = {
    "Champions": "Best",
    "Loyal Customers": "Best",
    "Potential Loyalists": "Promising",
    "New Customers": "Promising",
    "Promising": "Promising",
    "Need Attention": "Needs Attention",
    "About To Sleep": "Needs Attention",
    "At Risk": "At Risk",
    "Can't Lose Them": "At Risk",
    "Hibernating": "Lost",
}


def rfm_segment(code: str | None) -> str | None:
    """The segment of an RFM code by its R and F digits (§4.1)."""
    return None if code is None else _SEGMENTS[code[:2]]


def rfm_group(code: str | None) -> str | None:
    """The coarser group of an RFM code's segment."""
    segment = rfm_segment(code)
    return None if segment is None else GROUPS[segment]


# --------------------------------------------------------------------- purchases


@attrs.frozen
class _Ticket:
    """What the indicators need of one purchase event, read once."""

    at: datetime
    id: str
    amount: Decimal
    quantity: int
    brands: frozenset[str]
    categories: frozenset[str]
    promo_codes: frozenset[str]
    store: str | None
    last_fields: Mapping[str, tuple[str, ...]]


def _money(value: Any, where: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{where} {value!r} is not an amount")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # The shortest text that reads back as the float: no binary noise,
        # and no float arithmetic anywhere after this.
        return Decimal(repr(value))
    if isinstance(value, str):
        return Decimal(value.strip())
    raise ValueError(f"{where} {value!r} is not an amount")


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value if item is not None)


def _ticket(event: Event) -> _Ticket:
    data = event.data
    items = data.get("items") or ()
    quantity = 0
    brands: set[str] = set()
    categories: set[str] = set()
    skus: set[str] = set()
    computed = Decimal(0)
    for item in items:
        count = item.get("quantity", 1)
        quantity += int(count)
        if item.get("brand") is not None:
            brands.add(str(item["brand"]))
        if item.get("category") is not None:
            categories.add(str(item["category"]))
        if item.get("sku") is not None:
            skus.add(str(item["sku"]))
        if item.get("unit_price") is not None:
            computed += _money(item["unit_price"], f"event {event.id} unit_price") * int(count)
    amount = data.get("amount")
    value = computed if amount is None else _money(amount, f"event {event.id} amount")
    store = data.get("store")
    promo = frozenset(_strings(data.get("promo_codes")))
    sellers = set(_strings(data.get("seller")))
    for item in items:
        sellers.update(_strings(item.get("seller")))
    last_fields = {
        "Payment_Methods": tuple(sorted(set(_strings(data.get("payment_methods"))))),
        "Shipping_Methods": tuple(sorted(set(_strings(data.get("shipping_methods"))))),
        "Items": tuple(sorted(skus)),
        "Brands": tuple(sorted(brands)),
        "Categories": tuple(sorted(categories)),
        "Sellers": tuple(sorted(sellers)),
        "Stores": () if store is None else (str(store),),
        "Promo_Codes": tuple(sorted(promo)),
    }
    assert event.id is not None
    return _Ticket(
        at=event.at,
        id=event.id,
        amount=value,
        quantity=quantity,
        brands=frozenset(brands),
        categories=frozenset(categories),
        promo_codes=promo,
        store=None if store is None else str(store),
        last_fields=last_fields,
    )


def _purchases_by_profile(graph: IdentityGraph, as_of: datetime) -> dict[ProfileId, list[_Ticket]]:
    """Every purchase at or before ``as_of``, grouped by the profile it belongs to."""
    ledger = graph._ledger
    partition = graph._partition
    grouped: dict[Any, list[_Ticket]] = {}
    for anchor, index in ledger._by_anchor.items():
        if isinstance(anchor, str):
            owner_of = None
            profile: Any = partition.profile_id(anchor)
        else:
            owner_of = graph._history.get(anchor)
        for at, event_id in index:
            if at > as_of:
                break  # the index is sorted by time
            event = ledger._events[event_id]
            if event.type != "purchase":
                continue
            if isinstance(anchor, tuple):
                owner = hist.owner_at(owner_of, at)
                profile = anchor if owner is None else partition.profile_id(owner)
            grouped.setdefault(profile, []).append(_ticket(event))
    result: dict[ProfileId, list[_Ticket]] = {}
    for profile, tickets in grouped.items():
        tickets.sort(key=lambda t: (t.at, t.id))
        result[Link(*profile) if isinstance(profile, tuple) else profile] = tickets
    return result


# --------------------------------------------------------------------- indicators


def _days(delta: timedelta) -> int:
    return delta // timedelta(days=1)


def _window(tickets: list[_Ticket], times: list[datetime], start: datetime | None) -> list[_Ticket]:
    if start is None:
        return tickets
    return tickets[bisect_right(times, start) :]  # (as_of - W, as_of]


def _measures(window: list[_Ticket]) -> dict[str, Any]:
    brands: set[str] = set()
    categories: set[str] = set()
    promo: set[str] = set()
    stores: set[str] = set()
    value = Decimal(0)
    items = 0
    for ticket in window:
        items += ticket.quantity
        value += ticket.amount
        brands |= ticket.brands
        categories |= ticket.categories
        promo |= ticket.promo_codes
        if ticket.store is not None:
            stores.add(ticket.store)
    count = len(window)
    return {
        "Items": items,
        "Brands": len(brands),
        "Categories": len(categories),
        "Purchases": count,
        "Value": value,
        "Average_Value": value / count if count else None,
        "Promo_Codes": tuple(sorted(promo)),
        "Stores": tuple(sorted(stores)),
    }


def _rank_digit(strictly_beaten: int, n: int) -> int:
    return 1 + (5 * strictly_beaten) // n


def compute(graph: IdentityGraph, as_of: datetime) -> dict[ProfileId, dict[str, Any]]:
    """Every indicator of every customer profile, and of every anonymous
    profile with a purchase, at ``as_of`` (§4).  O(p log p + windows × q log q)."""
    purchases = _purchases_by_profile(graph, as_of)
    profiles: set[Any] = {graph._partition.profile_id(c) for c in graph._order}
    profiles.update(purchases)
    result: dict[ProfileId, dict[str, Any]] = {}
    # Per window: (profile, recency days, purchases, value) of profiles that bought.
    active: dict[int | None, list[tuple[Any, int, int, Decimal]]] = {d: [] for d in _PERIODS}
    for profile in profiles:
        tickets = purchases.get(profile, [])
        times = [ticket.at for ticket in tickets]
        row: dict[str, Any] = {}
        if tickets:
            first, last = tickets[0], tickets[-1]
            row["First_Purchase_Date"] = first.at
            row["Last_Purchase_Date"] = last.at
            row["Days_Since_First_Purchase"] = _days(as_of - first.at)
            row["Days_Since_Last_Purchase"] = _days(as_of - last.at)
            row["Last_Purchase_Amount"] = last.amount
        else:
            for name in (
                "First_Purchase_Date",
                "Last_Purchase_Date",
                "Days_Since_First_Purchase",
                "Days_Since_Last_Purchase",
                "Last_Purchase_Amount",
            ):
                row[name] = None
        for days in _PERIODS:
            start = None if days is None else as_of - timedelta(days=days)
            window = _window(tickets, times, start)
            for measure, value in _measures(window).items():
                row[_window_name(measure, days)] = value
            row[_window_name("RFM", days)] = None
            if window:
                recency = _days(as_of - window[-1].at)
                active[days].append(
                    (profile, recency, len(window), row[_window_name("Value", days)])
                )
        for name, _field in _LAST_FIELDS:
            row[f"Last_Purchase_{name}"] = tickets[-1].last_fields[name] if tickets else ()
        result[profile] = row
    for days, rows in active.items():
        n = len(rows)
        recencies = sorted(r for _, r, _, _ in rows)
        frequencies = sorted(f for _, _, f, _ in rows)
        values = sorted(m for _, _, _, m in rows)
        name = _window_name("RFM", days)
        for profile, r, f, m in rows:
            big_r = _rank_digit(n - bisect_right(recencies, r), n)
            big_f = _rank_digit(bisect_left(frequencies, f), n)
            big_m = _rank_digit(bisect_left(values, m), n)
            result[profile][name] = f"{big_r}{big_f}{big_m}"
    for row in result.values():
        row["RFM_Segment"] = rfm_segment(row["Total_RFM"])
        row["RFM_Group"] = rfm_group(row["Total_RFM"])
    return {profile: {i.name: row[i.name] for i in INDICATORS} for profile, row in result.items()}


def compute_one(graph: IdentityGraph, as_of: datetime, ref: Ref) -> dict[str, Any]:
    """The indicators of ``ref``'s profile.  RFM ranks compare it with every
    profile, so this costs what :func:`compute` costs."""
    profile = graph.resolve(ref)
    every = compute(graph, as_of)
    if profile in every:
        return every[profile]
    # An anonymous profile without purchases: all empty.
    return compute_empty()


def compute_empty() -> dict[str, Any]:
    """The indicators of a profile without purchases."""
    row: dict[str, Any] = {}
    for indicator in INDICATORS:
        if indicator.type == "int":
            row[indicator.name] = 0
        elif indicator.type == "Decimal":
            row[indicator.name] = Decimal(0)
        elif indicator.type.startswith("tuple"):
            row[indicator.name] = ()
        else:
            row[indicator.name] = None
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "|".join(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def write_csv(result: Mapping[ProfileId, Mapping[str, Any]], path: str | Path) -> int:
    """Write ``kpis()`` output as CSV: one row per profile (sorted by id), one
    column per indicator, lists joined with ``|``; return the rows written.

    Cells that a spreadsheet would evaluate as a formula (starting with
    ``=``, ``+``, ``-`` or ``@``) are prefixed with ``'``, except numbers.
    """
    names = [indicator.name for indicator in INDICATORS]
    rows = sorted(result.items(), key=lambda item: str(item[0]))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Profile_ID", *names])
        for profile, row in rows:
            cells = [_cell(profile), *(_cell(row[name]) for name in names)]
            writer.writerow([_safe(cell) for cell in cells])
    return len(rows)


def _safe(cell: str) -> str:
    if cell[:1] in ("=", "+", "-", "@"):
        try:
            Decimal(cell)
        except ArithmeticError:
            return "'" + cell
    return cell
