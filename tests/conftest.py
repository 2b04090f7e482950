"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from identity_graph import IdentityGraph
from identity_graph.kpis import ENGINES

# No time limit per example: speed is measured in benchmarks/, never asserted
# in a test, and a loaded 2-core CI machine makes Hypothesis's 200 ms default
# a source of flaky failures (DeadlineExceeded, then Flaky on the replay).
settings.register_profile(
    "identity_graph", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("identity_graph")


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
