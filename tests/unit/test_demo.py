"""`make demo` runs examples/demo.py; it must run and tell the truth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_demo_runs_and_its_claims_hold() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, check=True, timeout=60
    )
    out = result.stdout
    assert "a purchase with the card on Feb 10 belongs to: web-1" in out
    assert "a purchase with the card on Feb 25 belongs to: pos-9" in out
    assert (
        "each part gets back exactly its own events: "
        "{'pos-7': ['T-1', 'T-2'], 'pos-9': ['T-3'], 'web-1': ['call-1']}" in out
    )
    assert "replaying the journal gives an equal graph: True" in out
    assert result.stderr == ""
