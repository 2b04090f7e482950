"""Omnichannel indicators and RFM segmentation from purchase events.

The package holds, one module each:

- :mod:`~identity_graph.kpis.definitions`: the windows, the indicator table,
  the column names (plain and ICOMMKT) and the RFM segment rules;
- :mod:`~identity_graph.kpis.python`: the pure-Python engine (base install);
- :mod:`~identity_graph.kpis.columnar`: the polars engine, imported only
  when it runs (the ``[polars]`` extra);
- here, the dispatcher (:func:`compute`, :func:`compute_one`) and the CSV
  writing of a result (:func:`write_csv`, :func:`indicator_text`).

Money is :class:`decimal.Decimal` from end to end; nothing passes through
``float`` arithmetic.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from . import python
from .definitions import (
    ENGINES,
    GROUPS,
    ICOMMKT_NAMES,
    INDICATORS,
    NAMINGS,
    WINDOWS,
    Engine,
    Indicator,
    compute_empty,
    rfm_group,
    rfm_segment,
)

if TYPE_CHECKING:
    from ..journal import ProfileId
    from ..ledger import Ledger
    from ..state import GraphState

__all__ = [
    "COLUMNAR_PACKAGES",
    "ENGINES",
    "GROUPS",
    "ICOMMKT_NAMES",
    "INDICATORS",
    "NAMINGS",
    "WINDOWS",
    "Engine",
    "Indicator",
    "compute",
    "compute_empty",
    "compute_one",
    "compute_python",
    "indicator_text",
    "rfm_group",
    "rfm_segment",
    "run",
    "write_csv",
]

#: What the columnar engine imports beyond the base install (the ``[polars]``
#: extra).  ``"auto"`` falls back when any one of them is missing: the base
#: install must answer, whichever of them a machine happens to have.
COLUMNAR_PACKAGES = ("polars", "numpy")

Result: TypeAlias = Mapping["ProfileId", dict[str, Any]]


class Graph(Protocol):
    """What :func:`compute` needs of a graph: its ``kpis()`` method."""

    def kpis(
        self, as_of: datetime, ref: Any = None, *, engine: Engine = "auto"
    ) -> Mapping[Any, Any]: ...


def run(state: GraphState, ledger: Ledger, as_of: datetime, engine: Engine = "auto") -> Result:
    """Every indicator of every customer profile, and of every anonymous
    profile with a purchase, at ``as_of`` (aware), computed by ``engine``.

    ``"python"`` runs :mod:`identity_graph.kpis.python` (a ``dict``);
    ``"polars"`` the columnar engine of :mod:`identity_graph.kpis.columnar`
    (an :class:`~identity_graph.kpis.columnar.Indicators` mapping, equal
    value for value); ``"auto"`` the columnar one when polars is installed
    and the purchases fit its exact range, else the pure-Python one.
    """
    if engine not in ENGINES:
        raise ValueError(f"kpis engine {engine!r} is not one of {', '.join(ENGINES)}")
    # Windows and day counts are instants apart (W x 24 hours): Python would
    # count the wall-clock days of a zone with daylight saving time.
    as_of = as_of.astimezone(UTC)
    if engine == "python":
        return python.compute(state, ledger, as_of)
    try:
        from . import columnar
    except ModuleNotFoundError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in COLUMNAR_PACKAGES:
            raise
        if engine == "auto":
            return python.compute(state, ledger, as_of)
        raise ModuleNotFoundError(
            f"kpis engine 'polars' needs {missing}, which is not installed: "
            "pip install 'identity-graph[polars]'",
            name=missing,
        ) from None
    try:
        return columnar.compute(state, ledger, as_of)
    except columnar.EngineUnavailable as why:
        if engine == "auto":
            return python.compute(state, ledger, as_of)
        raise columnar.InexactEngine(f"kpis engine 'polars' cannot answer exactly: {why}") from None


def compute(graph: Graph, as_of: datetime, engine: Engine = "auto") -> Result:
    """``graph.kpis(as_of, engine=engine)``: every profile's indicators (see :func:`run`)."""
    every: Result = graph.kpis(as_of, engine=engine)
    return every


def compute_python(graph: Graph, as_of: datetime) -> dict[ProfileId, dict[str, Any]]:
    """Every profile's indicators by the pure-Python engine (a ``dict``)."""
    every: dict[ProfileId, dict[str, Any]] = graph.kpis(as_of, engine="python")  # type: ignore[assignment]
    return every


def compute_one(graph: Graph, as_of: datetime, ref: Any, engine: Engine = "auto") -> dict[str, Any]:
    """The indicators of ``ref``'s profile.  RFM ranks compare it with every
    profile, so this costs what :func:`compute` costs."""
    row: dict[str, Any] = graph.kpis(as_of, ref, engine=engine)  # type: ignore[assignment]
    return row


def indicator_text(value: Any, join: Callable[[Iterable[str]], str] = "|".join) -> str:
    """An indicator's value as the text of a CSV cell (before any formula guard).

    ``None`` is empty, a time is ISO 8601 with its offset, a ``Decimal`` is
    written exactly as it is (``10.50``), a list is ``join`` of its items
    (by default ``|`` between them, as :func:`write_csv` writes it).

    >>> from decimal import Decimal
    >>> indicator_text(None), indicator_text(Decimal("10.50")), indicator_text(("S01", "WEB"))
    ('', '10.50', 'S01|WEB')
    """
    if value is None:
        return ""
    if isinstance(value, tuple):
        return join(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def write_csv(
    result: Mapping[ProfileId, Mapping[str, Any]], path: str | Path, names: str = "plain"
) -> int:
    """Write ``kpis()`` output as CSV: one row per profile (sorted by id), one
    column per indicator, lists joined with ``|``; return the rows written.

    ``names``: the indicators' column names, ``"plain"`` (their own names)
    or ``"icommkt"`` (as the omnichannel platform prints them,
    :data:`ICOMMKT_NAMES`).  The first column is ``Profile_ID`` either way.

    Cells that a spreadsheet would evaluate as a formula (starting with
    ``=``, ``+``, ``-`` or ``@``) are prefixed with ``'``, except numbers.
    """
    if names not in NAMINGS:
        raise ValueError(f"names={names!r} is not one of {', '.join(NAMINGS)}")
    header = NAMINGS[names]
    indicators = [indicator.name for indicator in INDICATORS]
    rows = sorted(result.items(), key=lambda item: str(item[0]))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Profile_ID", *(header[name] for name in indicators)])
        for profile, row in rows:
            cells = [str(profile), *(indicator_text(row[name]) for name in indicators)]
            writer.writerow([_safe(cell) for cell in cells])
    return len(rows)


_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _safe(cell: str) -> str:
    # What a spreadsheet may evaluate starts with one of these; only a plain
    # negative number ("-5.00") is left as it is.
    if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
