"""The base install (no extra) must run the README's first command.

The suite itself runs with ``.[dev]``, which brings every optional package,
so these tests start a Python in which every module outside the base
install's dependency closure fails to import, as on a fresh machine after
``pip install identity-graph``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from packaging.requirements import Requirement

DIST = "identity-graph"


def _closure(dist: str) -> set[str]:
    """Normalised names of ``dist`` and everything it needs without extras."""
    seen: set[str] = set()
    todo = [dist]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            need = Requirement(text)
            if need.marker is None or need.marker.evaluate({"extra": ""}):
                todo.append(need.name)
    return seen


def _blocked() -> list[str]:
    """Top-level modules that only packages outside the base closure provide."""
    base = _closure(DIST)
    blocked = []
    for module, dists in metadata.packages_distributions().items():
        owners = {d.lower().replace("_", "-") for d in dists}
        if not owners & base and module.isidentifier():
            blocked.append(module)
    return sorted(blocked)


BOOT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = frozenset(json.loads(sys.argv[1]))

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in BLOCKED:
                raise ModuleNotFoundError(f"No module named {top!r}", name=top)
            return None

    sys.meta_path.insert(0, NotInstalled())
    sys.argv = sys.argv[2:]
    """
)


def _run_without_extras(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    blocked = _blocked()
    return subprocess.run(
        [sys.executable, "-c", BOOT + textwrap.dedent(code), json.dumps(blocked), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_optional_packages_are_really_blocked() -> None:
    """The harness hides what the extras bring and keeps what the base needs."""
    blocked = set(_blocked())
    assert {"polars", "numpy", "psycopg", "hypothesis", "pytest"} <= blocked
    assert not {"attrs", "sortedcontainers", "networkx", "phonenumbers", "click"} & blocked
    result = _run_without_extras(
        """
        for name in ("polars", "numpy", "psycopg"):
            try:
                __import__(name)
            except ModuleNotFoundError as error:
                print("missing", error.name)
        """
    )
    assert result.stdout.splitlines() == ["missing polars", "missing numpy", "missing psycopg"]


def test_demo_runs_on_the_base_install(tmp_path: Path) -> None:
    """``identity-graph demo`` imports the samples into SQLite and shows the
    indicators, computed by the pure-Python engine."""
    db = tmp_path / "demo.db"
    result = _run_without_extras(
        """
        from identity_graph.cli import main
        main(sys.argv)
        """,
        "demo",
        "--db",
        str(db),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Total_Purchases" in result.stdout
    assert "RFM_Segment" in result.stdout
    assert db.exists()
    # and the store it wrote answers the README's next commands
    again = _run_without_extras(
        """
        from identity_graph.cli import main
        main(sys.argv)
        """,
        "--db",
        str(db),
        "kpis",
        "--as-of",
        "2024-06-30",
    )
    assert again.returncode == 0, again.stderr
    assert "68.10" in again.stdout  # C-1001's purchases, as the demo shows them


def test_the_polars_reader_asked_for_without_polars_is_one_line(tmp_path: Path) -> None:
    """``--engine polars`` on the base install says what to install; ``auto``
    reads the same file with the Python reader."""
    data = tmp_path / "data.csv"
    data.write_text(
        "Time Stamp;Customer ID;Event Type;Event Name;Num1;Num2\n"
        "2024-03-01 10:15:00;c-1;3;CALL;1;0\n",
        encoding="utf-8",
    )
    code = """
        from identity_graph.cli import main
        main(sys.argv)
        """
    db = ["--db", str(tmp_path / "g.db")]
    args = ["import", "offline-data", str(data), "--tz", "UTC", *db]
    refused = _run_without_extras(code, *args, "--engine", "polars")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "engine='polars' needs the polars package" in refused.stderr
    read = _run_without_extras(code, *args, "--engine", "auto")
    assert read.returncode == 0, read.stderr
    assert "read 1, imported 1" in read.stdout


def test_the_package_imports_on_the_base_install() -> None:
    """Every module that needs no extra imports, and ``kpis()`` answers."""
    result = _run_without_extras(
        """
        import identity_graph, identity_graph.io, identity_graph.cli, identity_graph.kpis
        from datetime import datetime, timezone
        from decimal import Decimal
        from identity_graph import Event, IdentityGraph
        t = datetime(2024, 1, 1, tzinfo=timezone.utc)
        g = IdentityGraph()
        g.register("c1", at=t)
        g.record(Event("purchase", at=t, customer_id="c1", data={"amount": Decimal("9.50")}))
        print(type(g.kpis(t)).__name__, g.kpis(t, ref="c1")["Total_Value"])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["dict", "9.50"]
