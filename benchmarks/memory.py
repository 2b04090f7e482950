"""Measurement helpers shared by the benchmark scripts: peak memory, and
running one measurement in a fresh subprocess of the calling script.

Peak memory is the kernel's peak resident set size (``VmHWM``), reset by
writing 5 to ``/proc/self/clear_refs`` before a measured region, so a peak
reached while building the input does not count.  Where Linux's counters
are not available it falls back to ``ru_maxrss``, which cannot be reset.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
from typing import Any


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset the peak-RSS counter; False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """Peak RSS of this process in bytes (since the last reset, on Linux)."""
    kib = _status_kib("VmHWM:")
    if kib is not None:
        return kib * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss() -> int:
    """Current RSS in bytes (0 where unknown)."""
    kib = _status_kib("VmRSS:")
    return 0 if kib is None else kib * 1024


class PeakMeter:
    """Peak RSS above the RSS at construction (after a collection)."""

    def __init__(self) -> None:
        gc.collect()
        self.reset = reset_peak()
        self.base = current_rss()

    def delta(self) -> int:
        return peak_rss() - self.base


def run_worker(script: str, args: list[str]) -> dict[str, Any]:
    """Run ``python script *args`` in a fresh process; return the JSON object
    it prints on its last line.  A failing worker stops the benchmark."""
    proc = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker {args} failed with exit code {proc.returncode}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
