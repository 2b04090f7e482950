"""Purchase events kept as columns, for the columnar indicator engine.

The ledger files every event by anchor; :class:`PurchaseColumns` also keeps
what the indicators read of each *purchase* as flat typed arrays, appended
when the event is filed: its anchor (as a code), its time in microseconds,
its amount as an exact integer with a decimal exponent, its item count, and
one ``(row, kind, code)`` triple per distinct string the indicators list or
count (brands, categories, promo codes, stores, skus, sellers, payment and
shipping methods).  Nothing here depends on the identity graph's state: who a
purchase belongs to is decided when the indicators are computed, so merges,
splits and relinks never rewrite a column.

Appending is O(items) per purchase and allocates no Python object per
number (``array.array``); the columns turn into polars series without a
per-value conversion.  The ledger does not append as it files: it only
notes each purchase's id and anchor (:meth:`PurchaseColumns.defer`, O(1))
and the columns read the notes on the first access that needs them
(:meth:`PurchaseColumns.settle`), so recording and opening a store never pay
for columns a process that does not compute indicators would not read.
Everything in this module is pure Python: the columns are kept whether or
not polars is installed.

The readers (:func:`plain_data`, :func:`strings`, :func:`whole`,
:func:`ticket_value`) are shared with the pure-Python engine, so both engines
read a ticket the same way.
"""

from __future__ import annotations

from array import array
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from itertools import accumulate, chain, compress
from typing import TYPE_CHECKING, Any

from .events import MONEY_DIGITS, as_decimal, plain_data
from .times import micros

if TYPE_CHECKING:
    from collections.abc import Callable

    from .events import Anchor, Event

__all__ = [
    "KINDS",
    "WINDOW_KINDS",
    "PurchaseColumns",
    "exact_sum",
    "exact_unit_price",
    "plain_data",
    "strings",
    "ticket_strings",
    "ticket_value",
    "whole",
]

#: The string families a purchase contributes, in code order; the first four
#: are counted or listed per window, all eight are listed for the last ticket.
KINDS = (
    "Brands",
    "Categories",
    "Promo_Codes",
    "Stores",
    "Items",
    "Sellers",
    "Payment_Methods",
    "Shipping_Methods",
)
BRANDS, CATEGORIES, PROMO_CODES, STORES, ITEMS, SELLERS, PAYMENT, SHIPPING = range(len(KINDS))
#: The kinds counted (brands, categories) or listed (promo codes, stores) per window.
WINDOW_KINDS = KINDS[:4]

_ITEM_STRINGS = ((ITEMS, "sku"), (BRANDS, "brand"), (CATEGORIES, "category"))
_TICKET_STRINGS = (
    (SELLERS, "seller"),
    (PAYMENT, "payment_methods"),
    (SHIPPING, "shipping_methods"),
    (PROMO_CODES, "promo_codes"),
)

#: Amounts kept as ``unscaled * 10**exponent`` with both bounded, so every
#: sum the engine forms fits its 128-bit integers and 28 significant digits
#: (the default ``Decimal`` precision the pure-Python engine adds with).
MAX_UNSCALED = 10**18
MIN_EXPONENT, MAX_EXPONENT = -18, 18


def strings(value: Any) -> tuple[str, ...]:
    """A field that may hold one name or a list of them, as strings (a number
    is read as its text, ``None`` as nothing)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list):
        return tuple(str(item) for item in value if item is not None)
    return (str(value),)


def whole(quantity: Any) -> int:
    """A quantity as an int; the ledger checked it is whole when recording."""
    return quantity if type(quantity) is int else int(as_decimal(quantity))


#: The precision unit prices are divided at: the 28 significant digits of
#: ``Decimal``'s default context, which every sum of the indicators uses.
PRICE_DIGITS = MONEY_DIGITS
# Inexact trapped: a quotient that would need rounding raises instead.
_EXACT = Context(prec=PRICE_DIGITS, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])


def exact_unit_price(total: Decimal, quantity: int) -> Decimal | None:
    """``total / quantity`` when that quotient is exact, else None.

    Exact means a finite decimal of at most 28 significant digits, so
    ``price * quantity == total`` holds with no rounding at all: 1,00 for 7
    units has no unit price (0.142857…), 10,00 for 4 has 2.50.  A quantity
    below 1 has none either.  Checking the product afterwards would not do:
    it is itself rounded to 28 digits and hides the rounding it checks.
    O(digits).
    """
    if quantity < 1:
        return None
    try:
        price = _EXACT.divide(total, Decimal(quantity))
    except (Inexact, InvalidOperation, Overflow):
        return None
    return price


def exact_sum(total: Decimal, amount: Decimal) -> Decimal | None:
    """``total + amount`` when that sum needs no rounding at 28 significant
    digits (the precision the indicators add at), else None.  O(digits)."""
    try:
        return _EXACT.add(total, amount)
    except (Inexact, InvalidOperation, Overflow):
        return None


def ticket_value(data: Any, items: list[Any]) -> Decimal:
    """A ticket's value: its ``amount``, else the sum of ``unit_price × quantity``."""
    amount = data.get("amount")
    if amount is not None:
        return as_decimal(amount)
    computed = Decimal(0)
    for item in items:
        price = item.get("unit_price")
        if price is not None:
            computed += as_decimal(price) * whole(item.get("quantity", 1))
    return computed


_UNSCALED: dict[str, tuple[int, int]] = {}  # text -> (unscaled, exponent); prices recur
_UNSCALED_SIZE = 65_536


def ticket_strings(data: Any, items: list[Any]) -> list[tuple[int, str]]:
    """Every ``(kind, string)`` a ticket lists (kinds index :data:`KINDS`), in
    reading order, possibly repeated: the one reading of names both engines
    use.  O(items)."""
    found: list[tuple[int, str]] = []
    for item in items:
        for kind, field in _ITEM_STRINGS:
            value = item.get(field)
            if value is not None:
                found.append((kind, value if type(value) is str else str(value)))
        seller = item.get("seller")
        if seller is not None:
            found.extend((SELLERS, name) for name in strings(seller))
    for kind, field in _TICKET_STRINGS:
        value = data.get(field)
        if value is not None:
            found.extend((kind, name) for name in strings(value))
    store = data.get("store")
    if store is not None:
        found.append((STORES, str(store)))
    return found


def _unscaled(value: Decimal) -> tuple[int, int]:
    """``value`` as ``(unscaled, exponent)`` with ``value == unscaled * 10**exponent``
    and the exponent ``value`` carries (so ``10.50`` is ``(1050, -2)``)."""
    text = str(value)  # keyed by text: 10.5 and 10.50 are equal but not the same
    known = _UNSCALED.get(text)
    if known is not None:
        return known
    if "E" not in text:  # the usual plain notation: cheaper than as_tuple()
        dot = text.find(".")
        if dot < 0:
            known = int(text), 0
        else:
            known = int(text[:dot] + text[dot + 1 :]), dot + 1 - len(text)
    else:
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite: the ledger refuses NaN and infinities
        unscaled = int("".join(map(str, digits)) or "0")
        known = (-unscaled if sign else unscaled), exponent
    if len(_UNSCALED) >= _UNSCALED_SIZE:
        _UNSCALED.clear()
    _UNSCALED[text] = known
    return known


def _renumbered(items: list[Any], kept: list[int]) -> tuple[list[Any], list[int]]:
    """The ``items`` whose codes (indexes) are still used in ``kept``, in
    their old order, and each old code's new code.  O(len(kept) + items)."""
    used = sorted(set(kept))
    code = [0] * len(items)
    for new, old in enumerate(used):
        code[old] = new
    return [items[old] for old in used], code


class PurchaseColumns:
    """The purchases of one ledger as columns (row ``i`` is the ``i``-th filed).

    ``exact`` turns False, for good, when a purchase cannot be represented
    exactly (an amount beyond 18 digits or exponents, an item count beyond
    64 bits, data the readers cannot read); the columnar engine then refuses
    and the pure-Python engine, which has no such bounds, answers instead.
    """

    def __init__(self) -> None:
        self._reset()
        self.exact = True
        self.problem = ""
        self._culprit: str | None = None  # the id of the purchase that turned exact off

    def _reset(self) -> None:
        self.anchor = array("q")  # anchor code
        self.at = array("q")  # microseconds since 1970-01-01 UTC
        self.unscaled = array("q")  # amount = unscaled * 10**exponent
        self.exponent = array("b")
        self.quantity = array("q")  # sum of the items' quantities
        self.ids: list[str] = []  # event id, for ties on `at` and the Python values
        # One (row, kind, code) per distinct string of a row and kind; row i's
        # triples are x[x_end[i - 1]:x_end[i]] (they are appended in row order).
        self.x_end = array("q")
        self.x_row = array("q")
        self.x_kind = array("b")
        self.x_code = array("q")
        self.anchors: list[Anchor] = []  # code -> anchor
        self.link_anchors: list[int] = []  # codes of the anchors that are links
        self.quantity_total = 0
        self.anchor_codes: dict[Anchor, int] = {}
        self.names: list[str] = []  # code -> string
        self.name_codes: dict[str, int] = {}
        # Purchases noted but not yet read into the columns, in filing order
        # (fresh objects when read: a snapshot's shallow copy keeps its own).
        self.pending_ids: list[str] = []
        self.pending_anchor = array("q")  # anchor code

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, event: Event, anchor: Anchor) -> None:
        """Append one purchase (after the ones noted before).  O(items +
        strings); never raises: a purchase the columns cannot hold exactly
        turns ``exact`` off instead."""
        if not self.exact:
            return
        if self.pending_ids:
            raise ValueError("purchases are noted but not read: settle() them first")
        self._append(event, self._code(anchor))

    def defer(self, event_id: str, anchor: Anchor) -> None:
        """Note one purchase, read into the columns by the next :meth:`settle`
        (its anchor gets its code now, so codes follow the filing order
        either way).  O(1)."""
        if self.exact:
            self.pending_ids.append(event_id)
            self.pending_anchor.append(self._code(anchor))

    def settle(self, lookup: Callable[[str], Event]) -> None:
        """Read the purchases noted since the last call, in their order;
        ``lookup`` gives the event of an id.  O(their items + strings)."""
        if not self.pending_ids:
            return
        ids, codes = self.pending_ids, self.pending_anchor
        self.pending_ids, self.pending_anchor = [], array("q")
        append = self._append
        for event_id, code in zip(ids, codes, strict=True):
            if not self.exact:
                break
            append(lookup(event_id), code)

    def _code(self, anchor: Anchor) -> int:
        code = self.anchor_codes.get(anchor)
        if code is None:
            code = self.anchor_codes[anchor] = len(self.anchors)
            self.anchors.append(anchor)
            if not isinstance(anchor, str):
                self.link_anchors.append(code)
        return code

    def _append(self, event: Event, code: int) -> None:
        try:
            self._add(event, code)
        except Exception as error:  # any unreadable ticket disables the engine, never ingest
            self._give_up(f"purchase {event.id!r} cannot be read as columns: {error}", event.id)

    def _give_up(self, problem: str, culprit: str | None) -> None:
        self.exact = False
        self.problem = problem
        self._culprit = culprit
        self._reset()  # the columns are no longer used: free them

    def _add(self, event: Event, code: int) -> None:
        # On the ingest path of every purchase: one pass over the items, plain
        # dict reads, and nothing appended until everything is read.
        data = plain_data(event.data)
        items = [plain_data(item) for item in data.get("items") or ()]
        found = ticket_strings(data, items)
        quantity = 0
        for item in items:
            count = item.get("quantity", 1)
            quantity += count if type(count) is int else whole(count)
        amount = data.get("amount")
        if type(amount) is int:
            unscaled, exponent = amount, 0
        else:
            unscaled, exponent = _unscaled(ticket_value(data, items))
        if not (
            -MAX_UNSCALED < unscaled < MAX_UNSCALED
            and MIN_EXPONENT <= exponent <= MAX_EXPONENT
            and -(2**62) < quantity < 2**62
        ):
            self._give_up(
                f"purchase {event.id!r}: amount {unscaled}E{exponent} or quantity {quantity} "
                "is beyond the columnar engine's exact range (18 digits, exponents within ±18)",
                event.id,
            )
            return
        assert event.id is not None
        row = len(self.ids)
        self.anchor.append(code)
        self.at.append(micros(event.at))
        self.unscaled.append(unscaled)
        self.exponent.append(exponent)
        self.quantity.append(quantity)
        self.quantity_total += quantity  # quantities are >= 0: bounds every sum
        self.ids.append(event.id)
        if found:
            self._explode(row, found if len(found) == 1 else list(dict.fromkeys(found)))
        self.x_end.append(len(self.x_row))

    def remove(self, ids: set[str]) -> None:
        """Drop the purchases whose ids are in ``ids`` (an erasure).  The
        columns are filtered whole (``itertools.compress``), and anchor and
        string codes renumbered in their first-appearance order, so no code
        of an erased anchor or string remains; the noted purchases not read
        yet are filtered the same way.  O(purchases + strings), in C loops
        but for one list comprehension per column of codes."""
        if not self.exact:
            if self._culprit in ids:
                # The reason quoted the erased purchase (its id, its amount).
                self.problem = "a purchase that was since erased could not be read as columns"
                self._culprit = None
            return
        keep = [event_id not in ids for event_id in self.ids]
        waiting = [event_id not in ids for event_id in self.pending_ids]
        if all(keep) and all(waiting):
            return
        kept_anchor = list(compress(self.anchor, keep))
        kept_pending = list(compress(self.pending_anchor, waiting))
        self.anchors, anchor_code = _renumbered(self.anchors, kept_anchor + kept_pending)
        self.anchor_codes = {anchor: code for code, anchor in enumerate(self.anchors)}
        self.link_anchors = [
            code for code, anchor in enumerate(self.anchors) if not isinstance(anchor, str)
        ]
        self.pending_ids = list(compress(self.pending_ids, waiting))
        self.pending_anchor = array("q", [anchor_code[old] for old in kept_pending])
        self.anchor = array("q", [anchor_code[old] for old in kept_anchor])
        if all(keep):
            return
        self.at = array("q", compress(self.at, keep))
        self.unscaled = array("q", compress(self.unscaled, keep))
        self.exponent = array("b", compress(self.exponent, keep))
        self.quantity = array("q", compress(self.quantity, keep))
        self.quantity_total = sum(self.quantity)
        self.ids = list(compress(self.ids, keep))
        # The strings: each triple follows its row.
        x_keep = [keep[row] for row in self.x_row]
        position = list(accumulate(keep))  # a kept row's new index, plus one
        self.x_row = array("q", [position[row] - 1 for row in compress(self.x_row, x_keep)])
        self.x_kind = array("b", compress(self.x_kind, x_keep))
        kept_code = list(compress(self.x_code, x_keep))
        self.names, name_code = _renumbered(self.names, kept_code)
        self.name_codes = {name: code for code, name in enumerate(self.names)}
        self.x_code = array("q", [name_code[old] for old in kept_code])
        ends = self.x_end
        counts = [end - start for start, end in zip(chain((0,), ends), ends, strict=False)]
        self.x_end = array("q", accumulate(compress(counts, keep)))

    def strings_of(self, row: int) -> dict[int, tuple[str, ...]]:
        """Row ``row``'s strings by kind, each sorted and distinct.  O(its strings)."""
        start = self.x_end[row - 1] if row else 0
        found: dict[int, list[str]] = {}
        names = self.names
        for i in range(start, self.x_end[row]):
            found.setdefault(self.x_kind[i], []).append(names[self.x_code[i]])
        return {kind: tuple(sorted(values)) for kind, values in found.items()}

    def _explode(self, row: int, found: list[tuple[int, str]]) -> None:
        """Append one triple per distinct ``(kind, string)`` of ``row``."""
        codes = self.name_codes
        for kind, name in found:
            code = codes.get(name)
            if code is None:
                code = codes[name] = len(self.names)
                self.names.append(name)
            self.x_row.append(row)
            self.x_kind.append(kind)
            self.x_code.append(code)
