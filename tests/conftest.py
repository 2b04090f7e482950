"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from identity_graph import IdentityGraph
from identity_graph.kpis import ENGINES


@pytest.fixture(scope="module", params=[e for e in ENGINES if e != "auto"])
def each_kpis_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests once per indicator engine: ``g.kpis(...)`` without
    an ``engine`` argument uses ``request.param`` instead of ``"auto"``."""
    original = IdentityGraph.kpis
    engine = request.param

    def kpis(self: IdentityGraph, as_of: Any, ref: Any = None, *, engine: str = engine) -> Any:
        return original(self, as_of, ref, engine=engine)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IdentityGraph, "kpis", kpis)
        yield engine
