"""``import identity_graph`` needs only the core dependencies (attrs,
sortedcontainers, networkx, phonenumbers) and the standard library."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = ("numpy", "scipy", "pandas", "hypothesis", "pytest", "psycopg", "openpyxl", "polars")


def test_import_pulls_in_no_optional_dependency() -> None:
    code = (
        f"import sys, identity_graph\nprint(','.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_import_works_with_optional_dependencies_blocked() -> None:
    # A None entry in sys.modules makes `import numpy` fail, as if not installed.
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in OPTIONAL)
    code = f"import sys; {blocked}; import identity_graph; print(identity_graph.__version__)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == identity_graph_version()


def identity_graph_version() -> str:
    import identity_graph

    return identity_graph.__version__
