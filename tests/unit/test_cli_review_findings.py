"""Review findings on the command line: each test pins a bug found in review and since fixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from identity_graph import IdentityGraph
from identity_graph.cli import main


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_kpis_at_the_ends_of_the_calendar_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], day: str
) -> None:
    db = tmp_path / "g.db"
    IdentityGraph.open(db).close()
    with pytest.raises(SystemExit) as exit_:
        main(["kpis", "--as-of", day, "--db", str(db)])
    err = capsys.readouterr().err
    if exit_.value.code != 0:
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
