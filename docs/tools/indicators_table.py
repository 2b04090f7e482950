"""Regenerate the table of docs/indicators.md from kpis.INDICATORS.

Example values come from one small, fixed scenario computed with the library
itself, so the table cannot drift from the code:
``python docs/tools/indicators_table.py > /tmp/table.md``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from identity_graph import Event, IdentityGraph, Link
from identity_graph.kpis import INDICATORS

AS_OF = datetime(2024, 12, 31, tzinfo=timezone.utc)


def scenario() -> dict[str, Any]:
    g = IdentityGraph()
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for c in ("ann", "bob", "cy", "dee"):
        g.register(c, at=start)
    g.link("ann", Link("loyalty_card", "CARD-1"), at=start)
    tickets = [
        ("ann", 20, "49.90", "S01", ["WELCOME"]),
        ("ann", 300, "19.90", "S02", []),
        ("ann", 350, "129.00", "WEB", ["XMAS24"]),
        ("bob", 100, "15.00", "S01", []),
        ("cy", 340, "60.00", "S02", []),
        ("dee", 200, "25.00", "S01", []),
    ]
    for n, (who, day, amount, store, promo) in enumerate(tickets):
        g.record(
            Event(
                "purchase",
                at=start + timedelta(days=day),
                links=[Link("loyalty_card", "CARD-1")] if who == "ann" else [],
                customer_id=None if who == "ann" else who,
                id=f"T-{n + 1}",
                data={
                    "amount": Decimal(amount),
                    "store": store,
                    "seller": "Mia",
                    "payment_methods": ["card"],
                    "shipping_methods": ["home"] if store == "WEB" else [],
                    "promo_codes": promo,
                    "items": [
                        {
                            "sku": f"SKU{n}",
                            "brand": "Acme",
                            "category": "Shoes",
                            "quantity": 1,
                            "unit_price": Decimal(amount),
                        },
                    ],
                },
            )
        )
    result: dict[str, Any] = g.kpis(AS_OF, ref="ann")
    return result


def show(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, tuple):
        return "(" + ", ".join(repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"Decimal('{value}')"
    return repr(value)


def table() -> str:
    """The markdown table, one row per indicator."""
    row = scenario()
    lines = ["| indicator | type | definition | example |", "|---|---|---|---|"]
    for indicator in INDICATORS:
        kind = indicator.type.replace("|", "\\|")
        example = show(row[indicator.name]).replace("|", "\\|")
        lines.append(f"| `{indicator.name}` | `{kind}` | {indicator.definition} | `{example}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    print(table(), end="")


if __name__ == "__main__":
    main()
