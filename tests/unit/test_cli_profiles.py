"""``identity-graph export profiles`` and ``kpis --names``, run in this process."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from identity_graph import Event, IdentityGraph, Link
from identity_graph.cli import main
from identity_graph.io import join_values
from identity_graph.io.cells import unescape_formula
from identity_graph.kpis import ICOMMKT_NAMES, INDICATORS, indicator_text

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOSTILE = "=cmd|' /C calc'!A0"
#: ``--as-of 2024-06-30`` is the end of that day.
AS_OF = datetime(2024, 7, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    with IdentityGraph.open(tmp_path / "g.db") as g:
        g.register("c1", attributes={"first_name": HOSTILE}, at=T0)
        g.link("c1", Link("email", "ann@example.com"), at=T0)
        g.link("c2", Link("email", "bob@example.com"), at=T0)
        g.merge("c1", "c2", reason="same person", at=T0)
        g.record(
            Event("purchase", at=T0, customer_id="c2", data={"amount": Decimal("9.90")}, id="T-1")
        )
        g.record(
            Event(
                "purchase",
                at=T0,
                links=(Link("loyalty_card", "7001 2345"),),
                data={"amount": Decimal("1.00")},
                id="T-2",
            )
        )
    return tmp_path


def run(
    capsys: pytest.CaptureFixture[str], cwd: Path, *args: str, code: int = 0
) -> tuple[str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        with pytest.raises(SystemExit) as exit_:
            main([*args, "--db", "g.db"])
    out, err = capsys.readouterr()
    assert exit_.value.code == code, err
    assert "Traceback" not in err
    return out, err


def rows_of(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_export_profiles_csv(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(capsys, store, "export", "profiles", "profiles.csv", "--as-of", "2024-06-30")
    assert out == "wrote 2 profiles at 2024-07-01T00:00:00+00:00 to profiles.csv\n"
    rows = rows_of(store / "profiles.csv")
    header = [
        "Profile_ID",
        "Customer_IDs",
        "email",
        "loyalty_card",
        "first_name",
        *ICOMMKT_NAMES.values(),
    ]
    assert rows[0] == header
    assert [row[:5] for row in rows[1:]] == [
        ["c1", "c1|c2", "ann@example.com|bob@example.com", "", "'" + HOSTILE],
        ["loyalty_card:70012345", "", "", "70012345", ""],
    ]
    with IdentityGraph.open(store / "g.db") as g:
        result = g.kpis(AS_OF)
        for row, (profile, indicators) in zip(rows[1:], result.items(), strict=True):
            assert unescape_formula(row[0]) == str(profile)
            assert [unescape_formula(cell) for cell in row[5:]] == [
                indicator_text(indicators[indicator.name], join_values) for indicator in INDICATORS
            ]


def test_export_profiles_xlsx(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(
        capsys, store, "export", "profiles", "p.xlsx", "--as-of", "2024-06-30", "--sheet", "Out"
    )
    assert out == "wrote 2 profiles at 2024-07-01T00:00:00+00:00 to p.xlsx\n"
    book = load_workbook(store / "p.xlsx")
    sheet = book["Out"]
    assert [cell.value for cell in sheet[1]][:3] == ["Profile_ID", "Customer_IDs", "email"]
    hostile = sheet.cell(row=2, column=5)
    assert (hostile.value, hostile.data_type) == (HOSTILE, "s")
    assert sheet.max_row == 3


def test_export_profiles_errors_are_one_line(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, err = run(capsys, store, "export", "profiles", "p.json", "--as-of", "2024-06-30", code=1)
    assert err.count("\n") == 1 and "must end in .csv or .xlsx" in err
    _, err = run(capsys, store, "export", "profiles", "p.csv", code=2)
    assert err.count("\n") == 1 and "Missing option '--as-of'" in err
    _, err = run(
        capsys, store, "export", "profiles", "p.csv", "--as-of", "2024-06-30T12:00", code=2
    )
    assert err.count("\n") == 1 and "has no UTC offset" in err
    assert not (store / "p.json").exists() and not (store / "p.csv").exists()


def test_kpis_names(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["kpis", "--as-of", "2024-06-30", "--out"]
    out, _ = run(capsys, store, *base, "plain.csv")
    assert out.startswith("wrote the indicators of 2 profiles")
    run(capsys, store, *base, "icommkt.csv", "--names", "icommkt")
    plain, icommkt = rows_of(store / "plain.csv"), rows_of(store / "icommkt.csv")
    assert plain[0] == ["Profile_ID", *(indicator.name for indicator in INDICATORS)]
    assert icommkt[0] == ["Profile_ID", *ICOMMKT_NAMES.values()]
    assert icommkt[0][1] == "ICOMMKT_First_Purchase_Date" and icommkt[0][-1] == "RFM_Group"
    assert plain[1:] == icommkt[1:]
    run(capsys, store, *base, "again.csv", "--names", "plain")
    assert rows_of(store / "again.csv") == plain
    _, err = run(capsys, store, *base, "x.csv", "--names", "ICOMM", code=2)
    assert err.count("\n") == 1 and "'ICOMM' is not one of 'plain', 'icommkt'" in err
