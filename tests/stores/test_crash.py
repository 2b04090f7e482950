"""Crash safety of the SQLite store: "every operation is durable when it
returns, a crash never leaves a half-applied operation".

A child process (``workers.py crash``) writes a random mix of link, relink,
merge, split, record, ``record_many`` (several transactions per call) and
checkpoint calls, with explicit times, to one file; this test SIGKILLs it at
random moments, starts a new child on the same file, and after every kill
checks the file with SQLite's own ``integrity_check`` and the library's
invariants (see ``helpers.check_store``): gap-free journal, every returned
call stored, opening (checkpoint + tail) equal to a full replay.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from .helpers import Reported, check_store, integrity_check, start, wait_for

KILLS = 22
MORE = 20
SEED = 20240611
OPS = ("link", "relink", "merge", "split", "detach", "release")


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_half_applies_a_call(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    rng = random.Random(SEED)
    reported = Reported()
    lengths = []
    in_checkpoint = 0
    # The next child is started (and imports the library) while this one is
    # checked; it opens the file only on "go", after the previous one is dead.
    upcoming = start("crash", path, SEED, tmp_path / "report-0.txt")
    kill = 0
    # KILLS kills, and more (up to MORE) until a call of every kind has
    # returned before one: on a loaded machine a child does fewer calls
    # between kills, and the rarest kind may not have come up yet.
    while kill < KILLS or (kill < KILLS + MORE and not set(OPS) <= set(reported.seqs.values())):
        child = upcoming
        wait_for(child, "IMPORTED")
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        # The child opens the file on "go", so a kill can land in opening
        # (which checkpoints a long tail), in a call, in a record_many
        # batch or in a checkpoint.  Two kills in three wait until it has
        # opened: on a loaded machine opening alone can outlast the pause,
        # and the store must also be killed in the middle of its calls.
        if kill % 3:
            wait_for(child, "READY")
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"the child died by itself:\n{err}"
        upcoming = start("crash", path, SEED + kill + 1, tmp_path / f"report-{kill + 1}.txt")

        integrity_check(path)
        report = tmp_path / f"report-{kill}.txt"
        lines = report.read_text().split("\n")[:-1] if report.exists() else []
        in_checkpoint += bool(lines) and lines[-1].startswith("S ")
        reported.read(report)
        lengths.append(check_store(path, reported, OPS))
        kill += 1
    upcoming.kill()  # started for a next round that did not come
    upcoming.communicate(timeout=30)

    # The children did work: the journal grew, calls of every kind returned.
    assert lengths[-1] > 200, lengths
    assert len(set(lengths)) > KILLS // 2, f"too few kills came after a write: {lengths}"
    assert len(lengths) == kill
    assert set(OPS) <= set(reported.seqs.values())
    assert len(reported.events) > 100
    assert reported.checkpoints, "no checkpoint returned before a kill"
    print(f"{kill} kills, {in_checkpoint} during a checkpoint; journal lengths {lengths}")
