"""The columnar indicator engine's former home, kept so that imports of it
still work: the engine is :mod:`identity_graph.kpis.columnar`.

Importing this module imports polars and numpy (the ``[polars]`` extra), as
it always did; ``g.kpis()`` never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .kpis.columnar import EngineUnavailable, Indicators

if TYPE_CHECKING:
    from datetime import datetime

    from .kpis import Graph

__all__ = ["EngineUnavailable", "Indicators", "compute"]


def compute(graph: Graph, as_of: datetime) -> Indicators:
    """Every profile's indicators by the columnar engine:
    ``graph.kpis(as_of, engine="polars")``."""
    result = graph.kpis(as_of, engine="polars")
    assert isinstance(result, Indicators)
    return result
