"""The offline-events importer: members only, one mailing each, the
three row types, extra columns kept, re-import changes nothing."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from identity_graph import IdentityGraph, Link
from identity_graph.io import FileFormatError, ImportSummary, import_offline_events, offline_events
from identity_graph.io.csvfiles import MAX_ROW_CHARACTERS
from identity_graph.times import RANGE_RULE

HEADER = (
    "Type,Event Name,Member Email Address,Mailing,Time Stamp,Interest Stage,"
    "Interest Points,Quantity,Coupon"
)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
GOOD = [
    "plain,Store visit,ann@example.com,Spring,2024-03-01 10:00:00,,,,",
    "interest,Catalogue,ANN@Example.com,Spring,2024-03-02 11:00:00,Aware,10,,",
    "purchase,Sofa,ann@example.com,Spring,2024-03-09 15:30:00,Bought,50,1,SPRING10",
    "Purchase,Lamp,bob@example.com,Summer,2024-06-01 12:00:00,,,2,",
]


@pytest.fixture(autouse=True, params=["python", "polars"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with each reader: ``python`` forces the CSV reader
    that streams; ``polars`` is the default, polars wherever it reads the
    file exactly (tests/unit/test_io_engines.py compares the two)."""
    if request.param == "python":
        monkeypatch.setattr(offline_events, "polars_rows", lambda _table, _engine: None)
    return str(request.param)


def members() -> IdentityGraph:
    g = IdentityGraph()
    g.link("c1", Link("email", "ann@example.com"), at=T0)
    g.link("c2", Link("email", "bob@example.com"), at=T0)
    return g


def write(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    path = tmp_path / "events.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def rejects_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_good_rows_become_events_of_their_members(tmp_path: Path) -> None:
    g = members()
    summary = import_offline_events(g, write(tmp_path, *GOOD), tz="Europe/Helsinki")
    assert summary == ImportSummary(read=4, imported=4, unchanged=0, rejected=0)
    plain, interest, purchase = g.events("c1")
    assert [plain.type, interest.type, purchase.type] == ["offline", "interest", "offline_purchase"]
    assert plain.customer_id == "c1" and plain.links == (Link("email", "ann@example.com"),)
    assert plain.at == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert plain.data == {"name": "Store visit", "mailing": "Spring"}
    assert interest.data == {
        "name": "Catalogue",
        "mailing": "Spring",
        "interest_stage": "Aware",
        "interest_points": 10,
    }
    assert purchase.data["quantity"] == 1
    assert purchase.data["fields"] == {"Coupon": "SPRING10"}
    (lamp,) = g.events("c2")
    assert lamp.type == "offline_purchase" and lamp.data["quantity"] == 2
    assert all(e.id is not None and e.id.startswith("oe-") for e in g.events("c1"))
    # Offline purchases are not tickets: they do not feed the indicators.
    assert g.kpis(datetime(2025, 1, 1, tzinfo=UTC), ref="c1")["Total_Purchases"] == 0


def test_reimport_changes_nothing(tmp_path: Path) -> None:
    g = members()
    path = write(tmp_path, *GOOD, "plain,Visit,nobody@example.com,Spring,2024-03-01 10:00:00,,,,")
    assert import_offline_events(g, path, tz="UTC").imported == 4
    journal, events = list(g.journal()), [e.content() for e in g.events("c1")]
    again = import_offline_events(g, path, tz="UTC")
    assert again == ImportSummary(read=5, imported=0, unchanged=4, rejected=1)
    assert list(g.journal()) == journal
    assert [e.content() for e in g.events("c1")] == events


def test_the_same_event_for_two_mailings_is_two_events(tmp_path: Path) -> None:
    g = members()
    path = write(tmp_path, GOOD[0], GOOD[0].replace("Spring", "Summer"), GOOD[0])
    assert import_offline_events(g, path, tz="UTC") == ImportSummary(
        read=3, imported=2, unchanged=1, rejected=0
    )
    assert [e.data["mailing"] for e in g.events("c1")] == ["Spring", "Summer"]


def test_the_address_must_be_the_current_owner(tmp_path: Path) -> None:
    g = members()
    g.relink(Link("email", "bob@example.com"), to="c1", at=datetime(2024, 2, 1, tzinfo=UTC))
    g.unlink(Link("email", "ann@example.com"), at=datetime(2024, 2, 1, tzinfo=UTC))
    rejects = tmp_path / "r.csv"
    summary = import_offline_events(g, write(tmp_path, *GOOD), tz="UTC", rejects=rejects)
    assert summary == ImportSummary(read=4, imported=1, unchanged=0, rejected=3)
    assert [e.data["name"] for e in g.events("c1")] == ["Lamp"]
    found = rejects_of(rejects)
    assert [(r["row"], r["column"]) for r in found] == [("2", "Member Email Address")] * 1 + [
        ("3", "Member Email Address"),
        ("4", "Member Email Address"),
    ]
    assert "ann@example.com is not a member" in found[0]["reason"]


BAD = {
    "visit,X,ann@example.com,Spring,2024-03-01 10:00:00,,,,": ("Type", "visit", "plain, inter"),
    ",X,ann@example.com,Spring,2024-03-01 10:00:00,,,,": ("Type", "", "mandatory"),
    "plain,,ann@example.com,Spring,2024-03-01 10:00:00,,,,": ("Event Name", "", "mandatory"),
    "plain,X,,Spring,2024-03-01 10:00:00,,,,": ("Member Email Address", "", "mandatory"),
    "plain,X,not-an-email,Spring,2024-03-01 10:00:00,,,,": (
        "Member Email Address",
        "not-an-email",
        "exactly one '@'",
    ),
    "plain,X,null,Spring,2024-03-01 10:00:00,,,,": ("Member Email Address", "null", "blocklist"),
    "plain,X,carol@example.com,Spring,2024-03-01 10:00:00,,,,": (
        "Member Email Address",
        "carol@example.com",
        "not a member",
    ),
    "plain,X,ann@example.com,,2024-03-01 10:00:00,,,,": ("Mailing", "", "mandatory"),
    "plain,X,ann@example.com,Spring,01.03.2024 10:00,,,,": (
        "Time Stamp",
        "01.03.2024 10:00",
        "YYYY",
    ),
    "plain,X,ann@example.com,Spring,2024-03-01 10:00:00,Aware,,,": (
        "Interest Stage",
        "Aware",
        "plain events have no",
    ),
    "interest,X,ann@example.com,Spring,2024-03-01 10:00:00,,5,,": (
        "Interest Stage",
        "",
        "mandatory for interest",
    ),
    "interest,X,ann@example.com,Spring,2024-03-01 10:00:00,Aware,many,,": (
        "Interest Points",
        "many",
        "whole number",
    ),
    "interest,X,ann@example.com,Spring,2024-03-01 10:00:00,Aware,5,1,": (
        "Quantity",
        "1",
        "interest events have no",
    ),
    "purchase,X,ann@example.com,Spring,2024-03-01 10:00:00,,,,": (
        "Quantity",
        "",
        "mandatory for purchase",
    ),
    "purchase,X,ann@example.com,Spring,2024-03-01 10:00:00,,,0,": ("Quantity", "0", ">= 1"),
    "purchase,X,ann@example.com,Spring,2024-03-01 10:00:00,,,1.5,": ("Quantity", "1.5", "whole"),
    "plain,X,ann@example.com,Spring,2024-03-01 10:00:00,,,": ("", "", "8 cells"),
    # A NUL is named in its own cell, not as the event the graph refuses.
    "plain,X\x00,ann@example.com,Spring,2024-03-01 10:00:00,,,,": (
        "Event Name",
        "X\\x00",
        "contains NUL",
    ),
}


@pytest.mark.parametrize("line", list(BAD))
def test_each_kind_of_bad_row(tmp_path: Path, line: str) -> None:
    column, value, words = BAD[line]
    rejects = tmp_path / "r.csv"
    g = members()
    path = write(tmp_path, GOOD[0], line, GOOD[3])
    summary = import_offline_events(g, path, tz="UTC", rejects=rejects)
    assert summary == ImportSummary(read=3, imported=2, unchanged=0, rejected=1)
    (reject,) = rejects_of(rejects)
    assert (reject["row"], reject["column"], reject["value"]) == ("3", column, value)
    assert words in reject["reason"]


def test_several_problems_of_one_row_are_all_listed(tmp_path: Path) -> None:
    rejects = tmp_path / "r.csv"
    path = write(tmp_path, "purchase,,carol@example.com,,yesterday,,,,")
    summary = import_offline_events(members(), path, tz="UTC", rejects=rejects)
    assert summary.rejected == 1
    assert [r["column"] for r in rejects_of(rejects)] == [
        "Event Name",
        "Member Email Address",
        "Mailing",
        "Time Stamp",
        "Quantity",
    ]


def test_optional_columns_may_be_missing(tmp_path: Path) -> None:
    g = members()
    header = "Type,Event Name,Member Email Address,Mailing,Time Stamp"
    path = write(tmp_path, "plain,Visit,ann@example.com,Spring,2024-03-01 10:00:00", header=header)
    assert import_offline_events(g, path, tz="UTC").imported == 1
    path = write(
        tmp_path, "purchase,Visit,ann@example.com,Spring,2024-03-01 10:00:00", header=header
    )
    assert import_offline_events(g, path, tz="UTC").rejected == 1
    with pytest.raises(
        FileFormatError,
        match=r"lacks the column\(s\) \['Member Email Address', 'Mailing', 'Time Stamp'\]",
    ):
        import_offline_events(g, write(tmp_path, header="Type,Event Name"), tz="UTC")


@pytest.mark.parametrize("stamp", ["9999-12-31 23:59:59", "0001-01-01 00:00:00"])
def test_a_time_outside_the_range_is_a_rejected_row_and_the_import_goes_on(
    tmp_path: Path, stamp: str
) -> None:
    g = members()
    rejects = tmp_path / "rejects.csv"
    bad = GOOD[1].replace("2024-03-02 11:00:00", stamp)
    path = write(tmp_path, GOOD[0], bad, GOOD[2])
    summary = import_offline_events(g, path, tz="America/New_York", rejects=rejects)
    assert summary == ImportSummary(read=3, imported=2, unchanged=0, rejected=1)
    assert [e.type for e in g.events("c1")] == ["offline", "offline_purchase"]
    assert rejects_of(rejects) == [
        {
            "row": "3",
            "column": "Time Stamp",
            "value": stamp,
            "reason": f"time stamp {stamp!r} in America/New_York: {RANGE_RULE}",
        }
    ]


def test_a_long_field_is_imported_and_a_row_too_long_is_rejected(tmp_path: Path) -> None:
    g = members()
    rejects = tmp_path / "rejects.csv"
    long_coupon = GOOD[0][: -len(",")] + "," + "C" * 200_000  # a 200 KB Coupon
    too_long = GOOD[1] + "x" * (MAX_ROW_CHARACTERS + 1)
    path = write(tmp_path, long_coupon, too_long, GOOD[2])
    summary = import_offline_events(g, path, tz="UTC", rejects=rejects)
    assert summary == ImportSummary(read=3, imported=2, unchanged=0, rejected=1)
    plain, _purchase = g.events("c1")
    assert plain.data["fields"] == {"Coupon": "C" * 200_000}
    (reject,) = rejects_of(rejects)
    assert reject["row"] == "3" and reject["column"] == "" and reject["value"] == ""
    assert f"longer than {MAX_ROW_CHARACTERS:,} characters" in reject["reason"]


def test_a_value_under_an_unnamed_column_is_a_rejected_row(tmp_path: Path) -> None:
    """Every column of the format means something: a value no header names
    cannot be placed, so its row is rejected rather than read without it."""
    header = HEADER.replace(",Time Stamp,", ",Time Stamp,,")
    placed = [line.replace(":00,", ":00,,", 1) for line in GOOD]
    lost = GOOD[0].replace(":00,", ":00,LOST,", 1)
    rejects = tmp_path / "r.csv"
    path = write(tmp_path, lost, *placed, header=header)
    summary = import_offline_events(members(), path, tz="UTC", rejects=rejects)
    assert summary == ImportSummary(read=5, imported=4, unchanged=0, rejected=1)
    (reject,) = rejects_of(rejects)
    assert reject["row"] == "2"
    assert "column 6 has the value 'LOST' but no name" in reject["reason"]


def test_the_rows_before_an_unreadable_one_are_imported(tmp_path: Path) -> None:
    """Fix the file and import it again: the rows before the unreadable one
    are recorded already, so the second import finds them unchanged."""
    path = write(tmp_path, *GOOD)
    good = path.read_bytes()
    path.write_bytes(good + b"plain,Visit,ann@example.com,Spring,2024-03-0\xff 10:00:00,,,,\n")
    g = members()
    with pytest.raises(FileFormatError, match="row 6"):
        import_offline_events(g, path, tz="UTC")
    path.write_bytes(good)
    assert import_offline_events(g, path, tz="UTC") == ImportSummary(
        read=4, imported=0, unchanged=4, rejected=0
    )


def test_erased_addresses_and_events_are_rejected_under_the_file_s_column(
    tmp_path: Path,
) -> None:
    """Regression: a row refused for an erased value named the column
    ``Member Email Address`` as the format spells it, not as the file does;
    the line names the value's keyed hash only."""
    g = members()
    header = HEADER.replace("Member Email Address", "member_email_address")
    assert import_offline_events(g, write(tmp_path, GOOD[0], header=header), tz="UTC").imported
    (erased_id,) = [event.id for event in g.events("c1")]
    assert erased_id is not None
    g.forget("c1")
    rows = [GOOD[0], GOOD[1].replace("2024-03-02", "2024-04-02")]  # re-sent, and new
    rejects = tmp_path / "rejects.csv"
    summary = import_offline_events(
        g, write(tmp_path, *rows, header=header), tz="UTC", rejects=rejects
    )
    assert summary == ImportSummary(read=2, imported=0, unchanged=0, rejected=2)
    suppression = g.state.suppression
    address = suppression.link_hash(("email", "ann@example.com"))[1]
    assert [(r["row"], r["column"], r["value"]) for r in rejects_of(rejects)] == [
        ("2", "member_email_address", suppression.event_hash(erased_id)),
        ("3", "member_email_address", address),
    ]
    assert "ann@" not in rejects.read_text(encoding="utf-8").lower()
