"""The columnar indicator engine: every indicator of every profile with polars.

It reads the ledger's :class:`~identity_graph.purchases.PurchaseColumns` and
gives exactly what the pure-Python engine (:func:`identity_graph.kpis.compute`
with ``engine="python"``) gives, value for value and type for type; the
tests hold the two equal on generated purchases.  polars is an optional extra
(``pip install identity-graph[polars]``).

How it works, for p purchases over q profiles:

1. **Attribution.** A purchase anchored on a customer belongs to that
   customer's profile; only customers in a merged profile need a lookup.  A
   purchase anchored on a link belongs to the owner of the link *at its
   time*: an as-of join of those purchases onto the links' ownership spans.
   Python work: O(merged customers + link anchors + spans), not O(p).
2. **Windows.** One simple group-by per window over the purchases inside it
   (count, items, money, smallest exponent), run in parallel; money is exact
   (64- or 128-bit integers at one common decimal scale).  O(p) each.
3. **First and latest purchase.** The purchases at their profile's first
   (latest) time; the few profiles with several at that instant compare
   event ids in Python.
4. **Distinct strings.** One group-by of the ``(row, kind, string)`` triples
   by ``(profile, kind, string)`` keeps each string's latest time; a string is
   in a window when that time is, so counts and lists of every window come
   from one more group-by.  The latest ticket's lists are its own triples.
5. **RFM.** Per window, ranks over the profiles that bought in it:
   O(q log q).

Every frame has one row per *profile code* (:class:`_Profiles`), so results
are spread by code instead of joined.

The result is an :class:`Indicators` mapping over that frame: the numbers
are computed when ``kpis()`` returns, and each profile's ``dict`` of Python
values (``Decimal``, ``datetime``, tuples of strings) is built when it is
read.  :attr:`Indicators.frame` exposes the columns themselves.
"""

from __future__ import annotations

import bisect
import copy
import decimal
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ..ids import Link
from ..purchases import (
    KINDS,
    PROMO_CODES,
    STORES,
    WINDOW_KINDS,
    PurchaseColumns,
    plain_data,
    ticket_value,
)
from ..times import micros
from .definitions import PERIOD_NAMES, WINDOWS, compute_empty, rfm_group, rfm_segment

if TYPE_CHECKING:
    from ..journal import ProfileId
    from ..ledger import Ledger
    from ..state import GraphState

__all__ = ["EngineUnavailable", "Indicators", "compute"]

DAY = 86_400_000_000  # microseconds
_NOBODY = -2  # the profile code of purchases the graph does not know (in a view)
_NEVER = 2**63 - 1  # their time: after every as_of
_I64 = pl.Int64
_LAST_NAMES = tuple(f"Last_Purchase_{kind}" for kind in KINDS)
# Sums stay below this (in units of the smallest decimal place present), so
# they fit 128-bit integers and the 28 digits of Decimal's default context.
_SUM_LIMIT = 10**27


class EngineUnavailable(Exception):
    """The columnar engine cannot answer exactly; the pure-Python one can."""


class InexactEngine(EngineUnavailable, ValueError):
    """What ``kpis(engine="polars")`` raises when the engine cannot answer
    exactly: a ``ValueError`` for the caller who chose the engine, and still
    an :class:`EngineUnavailable` for code written against this module."""


# ------------------------------------------------------------------ attribution


class _Profiles:
    """Profile codes -> profile ids.  Codes extend anchor codes: a customer
    anchor that is its own profile keeps its code, a link anchor's code stands
    for its anonymous profile, and other profile ids get codes after them."""

    def __init__(self, columns: PurchaseColumns) -> None:
        self.anchors = columns.anchors
        self.codes = columns.anchor_codes
        # Anchors filed later take codes from here on: not this snapshot's.
        self.size = len(columns.anchors)
        self.extra: list[Any] = []
        self.extra_codes: dict[Any, int] = {}

    def __len__(self) -> int:
        return self.size + len(self.extra)

    def __getitem__(self, code: int) -> ProfileId:
        if code < self.size:
            anchor = self.anchors[code]
            return anchor if isinstance(anchor, str) else Link(*anchor)
        profile: ProfileId = self.extra[code - self.size]
        return profile

    def code(self, profile: object) -> int | None:
        """The code of a profile id, if it has one in this snapshot.  O(1)."""
        key = profile.key if isinstance(profile, Link) else profile
        code: int | None = self.codes.get(key)  # type: ignore[call-overload]
        if code is not None and code < self.size:
            return code
        return None if isinstance(profile, Link) else self.extra_codes.get(profile)

    def customer(self, customer: str) -> int:
        """The code of a customer profile id, given one if it has none.  O(1)."""
        code = self.code(customer)
        if code is None:
            code = self.extra_codes[customer] = self.size + len(self.extra)
            self.extra.append(customer)
        return code


def _profile_codes(
    state: GraphState, ledger: Ledger, columns: PurchaseColumns
) -> tuple[list[int], _Profiles, pl.DataFrame | None]:
    """Each anchor code's profile code, the profile ids, and the ownership spans.

    Links with an ownership history map to ``-1`` and are resolved through
    the spans frame ``(anchor, at, profile)``.  O(anchors) to copy the
    identity map, plus Python work for merged customers and link anchors.
    """
    codes = columns.anchor_codes
    partition = state.partition
    of_anchor = list(range(len(columns.anchors)))
    profiles = _Profiles(columns)
    if ledger.is_view:  # an as_of() view: purchases of later customers are not its
        order = state.order
        for index, anchor in enumerate(columns.anchors):
            if isinstance(anchor, str) and anchor not in order:
                of_anchor[index] = _NOBODY
    for profile, members in partition.groups():
        target = profiles.customer(profile)
        for member in members:
            code = codes.get(member)
            if code is not None:
                of_anchor[code] = target
    span_anchor: list[int] = []
    span_start: list[int] = []
    span_profile: list[int] = []
    anchors = columns.anchors
    ownership = state.ownership
    for code in columns.link_anchors:
        spans_of_link = ownership.spans(anchors[code])  # type: ignore[arg-type]
        if not spans_of_link:
            continue  # never claimed: the anonymous profile of the link (its own code)
        of_anchor[code] = -1
        for start, _end, owner in spans_of_link:
            span_anchor.append(code)
            span_start.append(-(2**63) if start is None else micros(start))
            span_profile.append(
                code if owner is None else profiles.customer(partition.profile_id(owner))
            )
    spans = None
    if span_anchor:
        spans = pl.DataFrame(
            {"anchor": span_anchor, "at": span_start, "profile": span_profile},
            schema={"anchor": _I64, "at": _I64, "profile": _I64},
        ).sort("at")
    return of_anchor, profiles, spans


def _attributed(
    columns: PurchaseColumns, of_anchor: list[int], spans: pl.DataFrame | None
) -> pl.DataFrame:
    """Every purchase, in row order, with its profile code:
    ``row, anchor, at, unscaled, exponent, quantity, profile``."""

    def series(values: Any, dtype: Any) -> pl.Series:
        # A copy: a view would pin the array, which must stay appendable.
        return pl.Series(np.array(values, dtype=dtype))

    rows = pl.DataFrame(
        {
            "anchor": series(columns.anchor, np.int64),
            "at": series(columns.at, np.int64),
            "unscaled": series(columns.unscaled, np.int64),
            "exponent": series(columns.exponent, np.int8),
            "quantity": series(columns.quantity, np.int64),
        }
    ).with_row_index("row")
    profile = series(of_anchor, np.int64).gather(rows["anchor"])
    if spans is not None:
        moving = rows.filter(profile < 0).select("row", "anchor", "at").sort("at")
        # Both sides are sorted by time; polars cannot check that within groups.
        owned = moving.join_asof(
            spans, on="at", by="anchor", strategy="backward", check_sortedness=False
        )
        profile = profile.scatter(owned["row"], owned["profile"])
    rows = rows.with_columns(profile=profile)
    if (profile == _NOBODY).any():
        # Rows stay in place (position = row number, which _strings relies
        # on); a time after every as_of keeps them out of every filter.
        rows = rows.with_columns(
            at=pl.when(pl.col("profile") == _NOBODY).then(_NEVER).otherwise(pl.col("at"))
        )
    return rows


# ------------------------------------------------------------------ aggregation


def _windows(as_of_us: int) -> list[tuple[int | None, str, int | None]]:
    """``(days, tag, start)`` per period; a window is ``(start, as_of]``."""
    return [*((d, f"{d}", as_of_us - d * DAY) for d in WINDOWS), (None, "Total", None)]


def _dense(frame: pl.DataFrame, size: int, names: list[str]) -> dict[str, pl.Series]:
    """``frame``'s columns spread over ``size`` rows, row = profile code (0 elsewhere)."""
    where = frame["profile"]
    return {
        name: pl.zeros(size, frame.schema[name], eager=True).scatter(where, frame[name]).alias(name)
        for name in names
    }


def _main(rows: pl.DataFrame, as_of_us: int, scale: int, wide: bool, size: int) -> pl.DataFrame:
    """One row per profile code: per window the count, items, money sum at
    ``scale`` and smallest exponent, and the first and latest times.

    One simple group-by per window over the purchases inside it (the windows
    are nested: O(p) each at most), run together; then spread by code."""
    money_type = pl.Int128 if wide else pl.Int64
    money = pl.col("unscaled").cast(money_type) * pl.lit(10, money_type).pow(
        (pl.col("exponent").cast(pl.Int64) + scale).cast(pl.UInt32)
    )
    base = rows.lazy().filter(pl.col("at") <= as_of_us).with_columns(money=money)
    plans = []
    for _days, tag, start in _windows(as_of_us):
        part = base if start is None else base.filter(pl.col("at") > start)
        aggs = [
            pl.len().cast(_I64).alias(f"n_{tag}"),
            pl.col("quantity").sum().alias(f"items_{tag}"),
            pl.col("money").sum().alias(f"value_{tag}"),
            pl.col("exponent").min().alias(f"exp_{tag}"),
        ]
        if start is None:
            aggs += [pl.col("at").min().alias("first_at"), pl.col("at").max().alias("last_at")]
        plans.append(part.group_by("profile").agg(aggs))
    columns: dict[str, pl.Series] = {}
    for frame in pl.collect_all(plans):
        columns.update(_dense(frame, size, frame.columns[1:]))
    return pl.DataFrame(columns)


def _ends(main: pl.DataFrame, rows: pl.DataFrame, as_of_us: int, ids: list[str]) -> pl.DataFrame:
    """The first and latest purchase of each profile by ``(at, event id)``.

    A purchase is a candidate when its time is its profile's first (latest);
    profiles with one candidate take it, and only the few with several
    (equal times) compare event ids, in Python.  O(p) plus O(tied candidates)."""
    base = rows.filter(pl.col("at") <= as_of_us)
    for side, best in (("first", min), ("last", max)):
        ends = main[f"{side}_at"].gather(base["profile"])
        candidates = base.filter(pl.col("at") == ends).select("profile", "row")
        tied = candidates["profile"].is_duplicated()
        chosen = pl.zeros(main.height, pl.UInt32, eager=True)
        plain = candidates.filter(~tied)
        chosen.scatter(plain["profile"], plain["row"])
        picks: dict[int, int] = {}
        for profile, row in candidates.filter(tied).iter_rows():
            held = picks.get(profile)
            if held is None or best(ids[row], ids[held]) == ids[row]:
                picks[profile] = row
        if picks:
            chosen.scatter(list(picks), list(picks.values()))
        main = main.with_columns(chosen.alias(f"{side}_row"))
    return main


def _strings(
    columns: PurchaseColumns, rows: pl.DataFrame, as_of_us: int, main: pl.DataFrame
) -> pl.DataFrame:
    """Distinct brands and categories (counts), promo codes and stores (lists)
    per window.  Each string's latest time per profile decides which windows
    it is in, so two group-bys serve every window.  The latest ticket's lists
    are not computed here: they are its own strings (``strings_of``)."""
    triples = pl.DataFrame(
        {
            "row": pl.Series(np.array(columns.x_row, dtype=np.int64)),
            "kind": pl.Series(np.array(columns.x_kind, dtype=np.int8)),
            "code": pl.Series(np.array(columns.x_code, dtype=np.int64)),
        }
    ).filter(pl.col("kind") < len(WINDOW_KINDS))
    if not triples.height:
        return main
    triples = triples.with_columns(
        profile=rows["profile"].gather(triples["row"]), at=rows["at"].gather(triples["row"])
    ).filter(pl.col("at") <= as_of_us)
    latest = triples.group_by("profile", "kind", "code").agg(pl.col("at").max())
    aggs: list[pl.Expr] = []
    for _days, tag, start in _windows(as_of_us):
        if start is None:  # (a literal True would count once per group, not per row)
            aggs += [
                pl.len().cast(_I64).alias(f"count_{tag}"),
                pl.col("code").alias(f"codes_{tag}"),
            ]
            continue
        inside = pl.col("at") > start
        aggs += [
            inside.sum().cast(_I64).alias(f"count_{tag}"),
            pl.col("code").filter(inside).alias(f"codes_{tag}"),
        ]
    per_kind = latest.group_by("profile", "kind").agg(aggs)
    tags = [tag for _days, tag, _start in _windows(as_of_us)]
    for kind, name in enumerate(WINDOW_KINDS):
        picked = per_kind.filter(pl.col("kind") == kind)
        if kind in (PROMO_CODES, STORES):
            lists = picked.select(
                "profile", *(pl.col(f"codes_{tag}").alias(f"{name}_{tag}") for tag in tags)
            )
            main = (
                main.with_row_index("profile")
                .with_columns(pl.col("profile").cast(_I64))
                .join(lists, on="profile", how="left", maintain_order="left")
                .drop("profile")
            )
        else:
            counts = picked.select(
                "profile", *(pl.col(f"count_{tag}").alias(f"{name}_{tag}") for tag in tags)
            )
            main = main.with_columns(**_dense(counts, main.height, counts.columns[1:]))
    return main


def _rfm(main: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    """Per window, ``100 R + 10 F + M`` over the profiles that bought in
    it; null for the others.  Ranks: O(q log q) per window."""
    recency = (pl.lit(as_of_us) - pl.col("last_at")) // DAY
    codes: list[pl.Expr] = []
    for _days, tag, _start in _windows(as_of_us):
        active = pl.col(f"n_{tag}") > 0
        n = active.sum().cast(_I64)

        def rank(expr: pl.Expr, method: str, active: pl.Expr = active) -> pl.Expr:
            # Nulls (profiles without a purchase in the window) take no rank.
            return pl.when(active).then(expr).rank(method).cast(_I64)  # type: ignore[arg-type]

        fewer_f = rank(pl.col(f"n_{tag}"), "min") - 1
        fewer_m = rank(pl.col(f"value_{tag}"), "min") - 1
        greater_r = n - rank(recency, "max")
        digit = [1 + 5 * count // n for count in (greater_r, fewer_f, fewer_m)]
        codes.append((100 * digit[0] + 10 * digit[1] + digit[2]).cast(pl.Int16).alias(f"rfm_{tag}"))
    return main.with_columns(codes)


# ------------------------------------------------------------------ entry point


def _scale(rows: pl.DataFrame) -> tuple[int, bool]:
    """The common decimal scale of the amounts, and whether sums need 128 bits.

    Raises :class:`EngineUnavailable` when a sum could pass 27 digits."""
    if not rows.height:
        return 0, False
    scale = max(0, -int(rows["exponent"].min()))  # type: ignore[arg-type]
    widest = (
        rows.select(
            (
                pl.col("unscaled").abs().cast(pl.Float64)
                * pl.lit(10.0).pow(pl.col("exponent").cast(pl.Float64) + scale)
            ).sum()
        ).item()
        or 0.0
    )
    if widest >= _SUM_LIMIT:
        raise EngineUnavailable(
            f"the amounts add up to about {widest:.3g} units of 10**-{scale}, beyond "
            f"the columnar engine's exact range ({_SUM_LIMIT:.0e})"
        )
    return scale, widest >= 2**62  # a float estimate: 2**62 leaves room for its error


def compute(state: GraphState, ledger: Ledger, as_of: datetime) -> Indicators:
    """Every indicator of every customer profile and of every anonymous profile
    with a purchase, at ``as_of``, computed on columns.  Raises
    :class:`EngineUnavailable` where it could not be exact."""
    columns = ledger.purchases
    if not columns.exact:
        raise EngineUnavailable(columns.problem)
    if decimal.getcontext().prec < 28:  # the pure engine rounds each addition there
        raise EngineUnavailable(
            f"the decimal context has {decimal.getcontext().prec} digits; exact sums "
            "need the default 28 or more"
        )
    if columns.quantity_total >= 2**63:
        raise EngineUnavailable(
            f"the items add up to {columns.quantity_total}, beyond 64-bit integers"
        )
    as_of_us = micros(as_of)
    of_anchor, profiles, spans = _profile_codes(state, ledger, columns)
    rows = _attributed(columns, of_anchor, spans)
    scale, wide = _scale(rows)
    main = _main(rows, as_of_us, scale, wide, len(profiles))
    main = _ends(main, rows, as_of_us, columns.ids)
    main = _strings(columns, rows, as_of_us, main)
    main = _rfm(main, as_of_us)
    return Indicators(state, ledger, as_of, columns, profiles, main, scale)


class Indicators(Mapping["ProfileId", dict[str, Any]]):
    """``{profile id: {indicator: value}}`` over a computed frame.

    A snapshot: it answers for the graph as it was when computed.  Each
    ``result[profile]`` builds a fresh ``dict`` of Python values (O(number of
    indicators + list lengths)); ``items()`` walks the frame once.
    """

    def __init__(
        self,
        state: GraphState,
        ledger: Ledger,
        as_of: datetime,
        columns: PurchaseColumns,
        profiles: _Profiles,
        frame: pl.DataFrame,
        scale: int,
    ) -> None:
        self._as_of = as_of
        self._events = ledger.by_id()
        # A shallow copy shares the append-only columns but keeps them should
        # the ledger drop its own (PurchaseColumns turning inexact).
        self._columns = copy.copy(columns)
        self._profiles = profiles
        self._scale = scale
        self._empty = compute_empty()
        #: Row ``i`` holds profile code ``i`` (:meth:`profile_of`); ``n_Total``
        #: is 0 in the rows of codes without a purchase at or before as_of.
        self.frame = frame
        # Every customer profile, then the anonymous profiles with a purchase.
        self._hidden: set[Any] = set()
        for keep, members in state.partition.groups():
            self._hidden.update(m for m in members if m != keep)
        self._customers = list(state.order)
        self._customer_set: set[Any] | None = None
        # Anonymous profiles: link anchors of this snapshot with a purchase,
        # selected on the columns, in the order of their link keys.
        links = pl.Series(
            columns.link_anchors[: bisect.bisect_left(columns.link_anchors, profiles.size)],
            dtype=_I64,
        )
        anonymous = links.filter(frame["n_Total"].gather(links) > 0).to_list()
        self._anonymous = anonymous
        self._sorted = False  # sorted on the first iteration, not in kpis()
        self._layout()

    def profile_of(self, code: int) -> ProfileId:
        """The profile id of row ``code`` of :attr:`frame`."""
        return self._profiles[code]

    def _code(self, profile: object) -> int | None:
        return self._profiles.code(profile)

    # --- Mapping ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._customers) - len(self._hidden) + len(self._anonymous)

    def __iter__(self) -> Iterator[ProfileId]:
        hidden = self._hidden
        for customer in self._customers:
            if customer not in hidden:
                yield customer
        profiles = self._profiles
        if not self._sorted:
            self._anonymous.sort(key=profiles.anchors.__getitem__)
            self._sorted = True
        for code in self._anonymous:
            yield profiles[code]

    def __contains__(self, profile: object) -> bool:
        if isinstance(profile, Link):
            code = self._code(profile)
            return code is not None and bool(self.frame["n_Total"][code])
        if not isinstance(profile, str) or profile in self._hidden:
            return False
        if self._customer_set is None:
            self._customer_set = set(self._customers)
        return profile in self._customer_set

    def __getitem__(self, profile: ProfileId) -> dict[str, Any]:
        if profile not in self:
            raise KeyError(profile)
        code = self._code(profile)
        if code is None or not self.frame["n_Total"][code]:
            return dict(self._empty)
        return self._values(self.frame.row(code))

    def items(self) -> Iterator[tuple[ProfileId, dict[str, Any]]]:  # type: ignore[override]
        """Every ``(profile, indicators)``, walking the frame once."""
        of = self._profiles
        codes = pl.int_range(self.frame.height, dtype=_I64, eager=True)
        with_purchases = self.frame.filter(pl.col("n_Total") > 0)
        bought = dict(
            zip(
                (of[code] for code in codes.filter(self.frame["n_Total"] > 0)),
                with_purchases.iter_rows(),
                strict=True,
            )
        )
        for profile in self:
            values = bought.get(profile)
            yield profile, dict(self._empty) if values is None else self._values(values)

    def values(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        return (row for _profile, row in self.items())

    # --- one profile's Python values ----------------------------------------

    def _layout(self) -> None:
        """Where each value sits in a row tuple of :attr:`frame`."""
        at = {name: i for i, name in enumerate(self.frame.columns)}
        self._first_i, self._last_i = at["first_row"], at["last_row"]
        self._windows: list[tuple[Any, ...]] = [
            (
                PERIOD_NAMES[days],
                *(at[f"{column}_{tag}"] for column in ("n", "items", "value", "exp", "rfm")),
                *(at.get(f"{kind}_{tag}") for kind in WINDOW_KINDS),
            )
            for days, tag, _start in _windows(0)
        ]

    def _values(self, raw: tuple[Any, ...]) -> dict[str, Any]:
        """One profile's indicators as Python values, from its row of the frame."""
        row = dict(self._empty)
        events, ids, as_of = self._events, self._columns.ids, self._as_of
        first = events[ids[raw[self._first_i]]]
        last = events[ids[raw[self._last_i]]]
        row["First_Purchase_Date"] = first.at
        row["Last_Purchase_Date"] = last.at
        row["Days_Since_First_Purchase"] = (as_of - first.at).days
        row["Days_Since_Last_Purchase"] = (as_of - last.at).days
        data = plain_data(last.data)
        row["Last_Purchase_Amount"] = ticket_value(
            data, [plain_data(item) for item in data.get("items") or ()]
        )
        names = self._columns.names
        scale = self._scale
        for (
            (items, brands, categories, purchases, value_name, average, rfm, promo, stores),
            n_i, items_i, value_i, exp_i, rfm_i, brands_i, categories_i, promo_i, stores_i,
        ) in self._windows:  # fmt: skip
            count = raw[n_i]
            if not count:
                continue
            # The exponent a pure Decimal sum from Decimal(0) carries.
            exponent = min(0, raw[exp_i])
            value = Decimal(raw[value_i] // 10 ** (scale + exponent)).scaleb(exponent)
            row[items] = raw[items_i]
            row[purchases] = count
            row[value_name] = value
            row[average] = value / count
            row[rfm] = str(raw[rfm_i])
            if brands_i is not None:
                row[brands] = raw[brands_i]
            if categories_i is not None:
                row[categories] = raw[categories_i]
            if promo_i is not None and raw[promo_i]:
                row[promo] = tuple(sorted(names[code] for code in raw[promo_i]))
            if stores_i is not None and raw[stores_i]:
                row[stores] = tuple(sorted(names[code] for code in raw[stores_i]))
        for kind, values in self._columns.strings_of(raw[self._last_i]).items():
            row[_LAST_NAMES[kind]] = values
        code = row["Total_RFM"]
        row["RFM_Segment"] = rfm_segment(code)
        row["RFM_Group"] = rfm_group(code)
        return row
