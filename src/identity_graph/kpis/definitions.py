"""What the indicators are: windows, the indicator table, the column names, RFM rules.

Pure definitions, shared by both engines and by the files that print the
indicators; nothing here reads a graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import attrs

__all__ = [
    "DAY_NAMES",
    "ENGINES",
    "GROUPS",
    "ICOMMKT_NAMES",
    "INDICATORS",
    "LAST_FIELDS",
    "NAMINGS",
    "PERIODS",
    "PERIOD_NAMES",
    "SEGMENTS",
    "WINDOWS",
    "WINDOW_MEASURES",
    "Engine",
    "Indicator",
    "compute_empty",
    "rfm_group",
    "rfm_segment",
    "window_name",
]

#: The engines that compute the indicators (see docs/indicators.md).
Engine: TypeAlias = Literal["auto", "python", "polars"]
ENGINES: tuple[Engine, ...] = ("auto", "python", "polars")

#: Window lengths in days; each window is ``(as_of - W days, as_of]``.
WINDOWS = (30, 60, 90, 180, 360)
#: The periods of the window indicators: each window, then ``None`` for Total.
PERIODS: tuple[int | None, ...] = (*WINDOWS, None)


@attrs.frozen
class Indicator:
    """One indicator: its name, the Python type of its value, its definition."""

    name: str
    type: str
    definition: str


def window_name(measure: str, days: int | None) -> str:
    return f"Total_{measure}" if days is None else f"{measure}_{days}_Days"


WINDOW_MEASURES = (
    ("Items", "int", "sum of the items' quantities"),
    ("Brands", "int", "number of distinct item brands"),
    ("Categories", "int", "number of distinct item categories"),
    ("Purchases", "int", "number of purchases (tickets)"),
    ("Value", "Decimal", "sum of the purchases' amounts"),
    ("Average_Value", "Decimal | None", "Value / Purchases; None without a purchase"),
    ("RFM", "str | None", "three-digit R, F, M code; None without a purchase"),
    ("Promo_Codes", "tuple[str, ...]", "sorted distinct promo codes"),
    ("Stores", "tuple[str, ...]", "sorted distinct store codes"),
)
LAST_FIELDS = (
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
    for days in PERIODS:
        span = "all purchases at or before as_of" if days is None else f"the last {days} days"
        for measure, kind, definition in WINDOW_MEASURES:
            found.append(Indicator(window_name(measure, days), kind, f"{definition}, {span}"))
    for name, field in LAST_FIELDS:
        found.append(
            Indicator(
                f"Last_Purchase_{name}",
                "tuple[str, ...]",
                f"sorted distinct {field} values of the latest purchase",
            )
        )
    found.append(Indicator("RFM_Segment", "str | None", "segment of Total_RFM's R and F"))
    found.append(Indicator("RFM_Group", "str | None", "coarser group of RFM_Segment"))
    return tuple(found)


#: Every indicator, in the column order of :func:`write_csv`.
INDICATORS: tuple[Indicator, ...] = _indicators()

#: The names the omnichannel platform's profile record prints the
#: indicators under: ``ICOMMKT_`` before each name, except ``RFM_Group`` and
#: ``RFM_Segment``, which it prints bare.  Indicator name -> column name, in
#: the order of :data:`INDICATORS`.
ICOMMKT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        indicator.name: (
            indicator.name
            if indicator.name in ("RFM_Group", "RFM_Segment")
            else f"ICOMMKT_{indicator.name}"
        )
        for indicator in INDICATORS
    }
)

#: The column names :func:`write_csv` can give the indicators: ``"plain"``
#: (the indicators' own names) or ``"icommkt"`` (:data:`ICOMMKT_NAMES`).
NAMINGS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "plain": MappingProxyType({indicator.name: indicator.name for indicator in INDICATORS}),
        "icommkt": ICOMMKT_NAMES,
    }
)

SEGMENTS = {
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
    """The segment of an RFM code by its R and F digits."""
    return None if code is None else SEGMENTS[code[:2]]


def rfm_group(code: str | None) -> str | None:
    """The coarser group of an RFM code's segment."""
    segment = rfm_segment(code)
    return None if segment is None else GROUPS[segment]


#: Per period, each window measure's indicator name.
DAY_NAMES = {
    days: {measure: window_name(measure, days) for measure, _, _ in WINDOW_MEASURES}
    for days in PERIODS
}
#: Per period, the window indicators' names in the order of WINDOW_MEASURES.
PERIOD_NAMES = {
    days: tuple(window_name(measure, days) for measure, _, _ in WINDOW_MEASURES) for days in PERIODS
}


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
