"""The offline-data importer: tickets, other events, rejects with exact
rows and columns, idempotent re-import, and memory that stays flat."""

from __future__ import annotations

import csv
import gc
import random
import tracemalloc
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity_graph import Event, IdentityGraph
from identity_graph.io import FileFormatError, ImportSummary, import_offline_data, offline_data
from identity_graph.times import RANGE_RULE

HEADER = (
    "Time Stamp,Customer ID,Event Type,Category,Event Name,Num1,Num2,Var1,"
    "EventName Attr1,EventTransaction Attr1,EventTransaction Attr2"
)
HELSINKI = ZoneInfo("Europe/Helsinki")


@pytest.fixture(autouse=True, params=["python", "polars"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with each reader: ``python`` forces the CSV reader
    that streams; ``polars`` is the default, polars wherever it reads the
    file exactly (tests/unit/test_io_engines.py compares the two)."""
    if request.param == "python":
        monkeypatch.setattr(offline_data, "polars_rows", lambda _table, _engine: None)
    return str(request.param)


AS_OF = datetime(2025, 1, 1, tzinfo=UTC)


def write(tmp_path: Path, *lines: str, header: str = HEADER, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def rejects_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def ledger(g: IdentityGraph) -> list[tuple[str | None, str]]:
    """Every event of every profile, as (id, canonical content)."""
    return sorted((e.id, e.content()) for p in g.profiles() for e in g.events(p.id))


def journal(g: IdentityGraph) -> list[Any]:
    return list(g.journal())


GOOD = [
    "2024-03-01 10:15:00,c1,7,Coffee,SKU-1,2,7.80,HEL-01,Paulig,T-1,card",
    "2024-03-01 10:15:00,c1,7,Bakery,SKU-2,1,3.20,HEL-01,Fazer,T-1,card",
    "2024-03-02 09:00:00,c2,3,,CALL-IN,1,0,,,,",
    "2024-03-05 11:00:00,c2,7,Tea,SKU-3,3,9.90,TKU-01,Twinings,,",
    "2024-03-05 11:00:00,c2,7,Tea,SKU-4,1,2.00,TKU-01,Twinings,,",
]


# ------------------------------------------------------------------ good rows


def test_purchase_lines_become_one_ticket_per_transaction(tmp_path: Path) -> None:
    g = IdentityGraph()
    summary = import_offline_data(g, write(tmp_path, *GOOD), tz="Europe/Helsinki")
    assert summary == ImportSummary(read=5, imported=5, unchanged=0, rejected=0)
    ticket = g.events("c1", types=["purchase"])
    assert [e.id for e in ticket] == ["offline:T-1"]
    event = ticket[0]
    assert event.at == datetime(2024, 3, 1, 10, 15, tzinfo=HELSINKI)
    assert event.at.tzinfo is UTC  # stored in UTC
    assert event.data["amount"] == Decimal("11.00")
    assert isinstance(event.data["amount"], Decimal)
    items = event.data["items"]
    assert [item["sku"] for item in items] == ["SKU-1", "SKU-2"]
    assert items[0]["quantity"] == 2 and type(items[0]["quantity"]) is int
    assert items[0]["unit_price"] == Decimal("3.90")
    assert items[0]["line_total"] == Decimal("7.80")
    assert items[0]["category"] == "Coffee"
    assert items[0]["var1"] == "HEL-01" and items[0]["attr1"] == "Paulig"
    assert event.data["transaction"] == {"attr1": "T-1", "attr2": "card"}
    assert event.data["channel"] == "offline"


def test_lines_without_transaction_group_by_customer_and_time(tmp_path: Path) -> None:
    g = IdentityGraph()
    import_offline_data(g, write(tmp_path, *GOOD), tz=HELSINKI)
    (ticket,) = g.events("c2", types=["purchase"])
    assert ticket.id == "offline:c2@2024-03-05T09:00:00Z"
    assert ticket.data["amount"] == Decimal("11.90")
    assert len(ticket.data["items"]) == 2


def test_other_codes_map_to_types(tmp_path: Path) -> None:
    path = write(tmp_path, *GOOD, "2024-03-03 09:00:00,c2,5,,VISIT,1,0,,,,")
    g = IdentityGraph()
    import_offline_data(g, path, tz="UTC", event_types={"3": "call"})
    kinds = [e.type for e in g.events("c2")]
    assert kinds == ["call", "offline_5", "purchase"]
    call = g.events("c2", types=["call"])[0]
    assert call.data == {"name": "CALL-IN", "num1": Decimal("1"), "num2": Decimal("0")}
    assert call.id is not None and call.id.startswith("h-")  # derived from the content


def test_purchases_feed_the_indicators(tmp_path: Path) -> None:
    g = IdentityGraph()
    path = write(tmp_path, *GOOD)
    import_offline_data(
        g,
        path,
        tz="UTC",
        ticket_fields={"Var1": "store", "EventTransaction Attr2": "payment_methods"},
        item_fields={"EventName Attr1": "brand"},
    )
    row = g.kpis(AS_OF, ref="c1")
    assert row["Total_Purchases"] == 1
    assert row["Total_Value"] == Decimal("11.00")
    assert row["Total_Items"] == 3
    assert row["Total_Brands"] == 2
    assert row["Total_Stores"] == ("HEL-01",)
    assert row["Last_Purchase_Payment_Methods"] == ("card",)
    assert g.kpis(AS_OF, ref="c2")["Total_Value"] == Decimal("11.90")


def test_customers_are_registered_once(tmp_path: Path) -> None:
    g = IdentityGraph()
    import_offline_data(g, write(tmp_path, *GOOD), tz="UTC")
    # Registered as their events are recorded, batch by batch: in the
    # batches' order, which need not be the file's.
    assert sorted(g.customers()) == ["c1", "c2"]
    assert [e.op for e in g.journal()] == ["register", "register"]
    assert {e.args["customer_id"]: e.at for e in g.journal()} == {
        "c1": datetime(2024, 3, 1, 10, 15, tzinfo=UTC),
        "c2": datetime(2024, 3, 2, 9, 0, tzinfo=UTC),
    }
    assert g.register_unknown is False  # the graph's own setting is put back


def test_without_registering_unknown_customers_their_lines_are_rejected(tmp_path: Path) -> None:
    g = IdentityGraph()
    g.register("c2")
    rejects = tmp_path / "rejects.csv"
    summary = import_offline_data(
        g, write(tmp_path, *GOOD), tz="UTC", register_unknown=False, rejects=rejects
    )
    assert summary == ImportSummary(read=5, imported=3, unchanged=0, rejected=2)
    found = rejects_of(rejects)
    assert [(r["row"], r["column"]) for r in found] == [
        ("2", "EventTransaction Attr1"),
        ("3", "EventTransaction Attr1"),
    ]
    assert all("UnknownCustomer" in r["reason"] for r in found)
    assert g.customers() == ["c2"]


def test_decimal_comma_with_semicolons_and_tabs(tmp_path: Path) -> None:
    for delimiter in (";", "\t"):
        lines = [line.replace(",", delimiter) for line in (HEADER, *GOOD)]
        lines = [line.replace("7.80", "7,80").replace("3.20", "3,20") for line in lines]
        path = tmp_path / f"data{ord(delimiter)}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        g = IdentityGraph()
        summary = import_offline_data(g, path, tz="UTC")
        assert summary.imported == 5
        assert g.events("c1", types=["purchase"])[0].data["amount"] == Decimal("11.00")


def test_a_comma_is_not_a_decimal_separator_in_a_comma_file(tmp_path: Path) -> None:
    rejects = tmp_path / "r.csv"
    path = write(tmp_path, '2024-03-01 10:15:00,c1,7,Coffee,SKU-1,1,"7,80",,,T-1,')
    summary = import_offline_data(IdentityGraph(), path, tz="UTC", rejects=rejects)
    assert summary.rejected == 1
    (reject,) = rejects_of(rejects)
    assert (reject["row"], reject["column"], reject["value"]) == ("2", "Num2", "7,80")
    assert "'.' as the decimal separator" in reject["reason"]


def test_interleaved_tickets_are_grouped(tmp_path: Path) -> None:
    lines = [
        "2024-03-01 10:00:00,c1,7,,A,1,1.00,,,T-1,",
        "2024-03-01 10:00:05,c2,7,,B,1,2.00,,,T-2,",
        "2024-03-01 10:00:10,c1,7,,C,1,3.00,,,T-1,",
        "2024-03-01 10:00:15,c2,7,,D,1,4.00,,,T-2,",
    ]
    g = IdentityGraph()
    assert import_offline_data(g, write(tmp_path, *lines), tz="UTC").imported == 4
    (t1,) = g.events("c1")
    assert t1.data["amount"] == Decimal("4.00")
    assert t1.at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)  # the ticket's first line
    assert g.events("c2")[0].data["amount"] == Decimal("6.00")


def test_a_ticket_split_beyond_the_window_is_rejected_as_a_duplicate(tmp_path: Path) -> None:
    lines = [
        "2024-03-01 10:00:00,c1,7,,A,1,1.00,,,T-1,",
        "2024-03-01 10:00:00,c2,7,,B,1,2.00,,,T-2,",
        "2024-03-01 10:00:00,c2,7,,C,1,2.00,,,T-3,",
        "2024-03-01 10:00:00,c1,7,,D,1,3.00,,,T-1,",
    ]
    rejects = tmp_path / "r.csv"
    g = IdentityGraph()
    summary = import_offline_data(
        g, write(tmp_path, *lines), tz="UTC", ticket_window=1, rejects=rejects
    )
    assert summary == ImportSummary(read=4, imported=3, unchanged=0, rejected=1)
    (reject,) = rejects_of(rejects)
    assert reject["row"] == "5" and reject["value"] == "offline:T-1"
    assert "DuplicateEvent" in reject["reason"] and "ticket_window" in reject["reason"]
    assert [r.error for r in g.refusals()] == ["DuplicateEvent"]


# ------------------------------------------------------------------ bad rows


BAD = {
    # line: (column, value, words in the reason)
    "2024-13-01 10:00:00,c1,3,,X,1,0,,,,": ("Time Stamp", "2024-13-01 10:00:00", "real date"),
    "2024-03-01T10:00:00,c1,3,,X,1,0,,,,": ("Time Stamp", "2024-03-01T10:00:00", "YYYY-MM-DD"),
    "2024-03-31 03:30:00,c1,3,,X,1,0,,,,": ("Time Stamp", "2024-03-31 03:30:00", "skipped"),
    ",c1,3,,X,1,0,,,,": ("Time Stamp", "", "mandatory"),
    "2024-03-01 10:00:00,,3,,X,1,0,,,,": ("Customer ID", "", "mandatory"),
    "2024-03-01 10:00:00,c\x01,3,,X,1,0,,,,": ("Customer ID", "c\\x01", "control character"),
    "2024-03-01 10:00:00,c1,call,,X,1,0,,,,": ("Event Type", "call", "code number"),
    "2024-03-01 10:00:00,c1,,,X,1,0,,,,": ("Event Type", "", "mandatory"),
    "2024-03-01 10:00:00,c1,3,,,1,0,,,,": ("Event Name", "", "mandatory"),
    "2024-03-01 10:00:00,c1,3,,X,one,0,,,,": ("Num1", "one", "not a number"),
    "2024-03-01 10:00:00,c1,3,,X,1,,,,,": ("Num2", "", "mandatory"),
    "2024-03-01 10:00:00,c1,3,,X,1,1e3,,,,": ("Num2", "1e3", "not a number"),
    "2024-03-01 10:00:00,c1,7,,X,-1,-3.00,,,T-9,": ("Num1", "-1", "whole number >= 0"),
    "2024-03-01 10:00:00,c1,7,,X,1.5,3.00,,,T-9,": ("Num1", "1.5", "whole number"),
    # A NUL in any cell is named there (the graph would refuse the event,
    # naming neither the row's column nor its value).
    "2024-03-01 10:00:00,c1,3,,CA\x00LL,1,0,,,,": ("Event Name", "CA\\x00LL", "NUL"),
    "2024-03-01 10:00:00,c1,3,Tea\x00,X,1,0,,,,": ("Category", "Tea\\x00", "NUL"),
    # 29 significant digits: amounts are added at 28, so it would be rounded.
    "2024-03-01 10:00:00,c1,7,,X,1,1.0000000000000000000000000001,,,T-9,": (
        "Num2",
        "1.0000000000000000000000000001",
        "more than 28 significant digits",
    ),
    "2024-03-01 10:00:00,c1,3,,X,1,0,,,": ("", "", "10 cells but the header has 11"),
    "2024-03-01 10:00:00,c1,3,,X,1,0,,,,,": ("", "", "12 cells but the header has 11"),
    # Outside the supported range once moved to UTC (never an OverflowError).
    "0001-01-01 00:00:00,c1,3,,X,1,0,,,,": ("Time Stamp", "0001-01-01 00:00:00", RANGE_RULE),
    "9999-12-31 23:59:59,c1,7,,X,1,1.00,,,T-9,": ("Time Stamp", "9999-12-31 23:59:59", RANGE_RULE),
}


@pytest.mark.parametrize("line", list(BAD))
def test_each_kind_of_bad_row_is_rejected_with_row_and_column(tmp_path: Path, line: str) -> None:
    column, value, words = BAD[line]
    rejects = tmp_path / "rejects.csv"
    g = IdentityGraph()
    path = write(tmp_path, GOOD[2], line, GOOD[2].replace("c2", "c3"))
    summary = import_offline_data(g, path, tz="Europe/Helsinki", rejects=rejects)
    assert summary == ImportSummary(read=3, imported=2, unchanged=0, rejected=1)
    (reject,) = rejects_of(rejects)
    assert reject["row"] == "3"
    assert reject["column"] == column
    assert reject["value"] == value
    assert words in reject["reason"]


def test_a_bad_line_rejects_its_whole_ticket(tmp_path: Path) -> None:
    lines = [
        "2024-03-01 10:00:00,c1,7,,A,1,1.00,,,T-1,",
        "2024-03-01 10:00:00,c1,7,,B,x,1.00,,,T-1,",
        "2024-03-01 10:00:00,c1,7,,C,1,1.00,,,T-1,",
        "2024-03-01 10:00:00,c2,7,,D,1,1.00,,,T-1,",
        "2024-03-01 10:00:00,c1,7,,E,1,1.00,,,T-1,visa",
        "2024-03-01 10:00:00,c1,7,,F,1,1.00,,,T-1,cash",
    ]
    rejects = tmp_path / "r.csv"
    g = IdentityGraph()
    summary = import_offline_data(g, write(tmp_path, *lines), tz="UTC", rejects=rejects)
    assert summary == ImportSummary(read=6, imported=0, unchanged=0, rejected=6)
    found = [(r["row"], r["column"]) for r in rejects_of(rejects)]
    assert found == [
        ("2", ""),
        ("3", "Num1"),
        ("4", ""),
        ("5", "Customer ID"),
        ("6", ""),
        ("7", "EventTransaction Attr2"),
    ]
    reasons = [r["reason"] for r in rejects_of(rejects)]
    assert "row 3" in reasons[0] and "whole or not at all" in reasons[0]
    assert "belongs to customer 'c1'" in reasons[3]
    assert "'visa' on another line" in reasons[5]
    assert g.customers() == []


def test_rejects_file_is_rewritten_and_sorted(tmp_path: Path) -> None:
    rejects = tmp_path / "r.csv"
    rejects.write_text("stale\n", encoding="utf-8")
    g = IdentityGraph()
    import_offline_data(g, write(tmp_path, *GOOD), tz="UTC", rejects=rejects)
    assert rejects.read_text(encoding="utf-8") == "row,column,value,reason\n"
    lines = [
        "2024-03-01 10:00:00,c1,7,,A,1,1.00,,,T-1,",
        "2024-03-01 10:00:00,c1,3,,X,1,bad,,,,",
        "2024-03-01 10:00:00,c1,7,,B,x,1.00,,,T-1,",
    ]
    import_offline_data(g, write(tmp_path, *lines), tz="UTC", rejects=rejects)
    assert [r["row"] for r in rejects_of(rejects)] == ["2", "3", "4"]


# ------------------------------------------------------------------ the file


def test_missing_and_unknown_columns_are_file_errors(tmp_path: Path) -> None:
    path = write(tmp_path, header="Time Stamp,Customer ID,Event Type,Event Name,Num1")
    with pytest.raises(FileFormatError, match=r"row 1: .*lacks the column\(s\) \['Num2'\]"):
        import_offline_data(IdentityGraph(), path, tz="UTC")
    path = write(tmp_path, header=HEADER + ",Comment")
    with pytest.raises(FileFormatError, match=r"\['Comment'\].*does not define"):
        import_offline_data(IdentityGraph(), path, tz="UTC")
    with pytest.raises(FileFormatError, match=r"the ticket field\(s\) Var2=store name"):
        import_offline_data(
            IdentityGraph(), write(tmp_path, *GOOD), tz="UTC", ticket_fields={"Var2": "store"}
        )


def test_the_time_zone_is_required_and_checked(tmp_path: Path) -> None:
    path = write(tmp_path, *GOOD)
    with pytest.raises(TypeError):
        import_offline_data(IdentityGraph(), path)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="is not a name the zoneinfo database knows"):
        import_offline_data(IdentityGraph(), path, tz="Mars/Olympus_Mons")


def test_bad_keywords_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, *GOOD)
    with pytest.raises(ValueError, match="other than 7"):
        import_offline_data(IdentityGraph(), path, tz="UTC", event_types={"7": "sale"})
    with pytest.raises(ValueError, match="the field must be"):
        import_offline_data(IdentityGraph(), path, tz="UTC", ticket_fields={"Var1": "amount"})
    with pytest.raises(ValueError, match="not one of"):
        import_offline_data(IdentityGraph(), path, tz="UTC", item_fields={"Num1": "x"})
    for column in ("Customer ID", "EventTransaction Attr1", "Category"):
        with pytest.raises(ValueError, match="not one of"):
            import_offline_data(IdentityGraph(), path, tz="UTC", ticket_fields={column: "x"})
    with pytest.raises(ValueError, match="ticket_window"):
        import_offline_data(IdentityGraph(), path, tz="UTC", ticket_window=0)


# ------------------------------------------------------------------ idempotency


def test_reimport_changes_nothing(tmp_path: Path) -> None:
    g = IdentityGraph()
    path = write(tmp_path, *GOOD, "2024-03-01 10:00:00,c1,7,,B,x,1.00,,,T-7,")
    first = import_offline_data(g, path, tz="UTC", event_types={"3": "call"})
    before_journal, before_ledger = journal(g), ledger(g)
    again = import_offline_data(g, path, tz="UTC", event_types={"3": "call"})
    assert first == ImportSummary(read=6, imported=5, unchanged=0, rejected=1)
    assert again == ImportSummary(read=6, imported=0, unchanged=5, rejected=1)
    assert journal(g) == before_journal
    assert ledger(g) == before_ledger


def test_the_same_instant_written_in_another_zone_is_the_same_ticket(tmp_path: Path) -> None:
    g = IdentityGraph()
    import_offline_data(g, write(tmp_path, GOOD[3]), tz="Europe/Helsinki")
    shifted = GOOD[3].replace("2024-03-05 11:00:00", "2024-03-05 09:00:00")
    again = import_offline_data(g, write(tmp_path, shifted, name="utc.csv"), tz="UTC")
    assert again.unchanged == 1


def test_a_store_behind_the_graph_is_fine(tmp_path: Path) -> None:
    if not hasattr(IdentityGraph, "open"):
        pytest.skip("IdentityGraph.open is not there yet")
    path = write(tmp_path, *GOOD)
    with IdentityGraph.open(tmp_path / "g.db") as g:
        assert import_offline_data(g, path, tz="UTC").imported == 5
    with IdentityGraph.open(tmp_path / "g.db") as g:
        assert import_offline_data(g, path, tz="UTC").unchanged == 5
        assert len(g.events("c1")) == 1
        # Refused events are found in a stored graph's refusal log too.
        rejects = tmp_path / "r.csv"
        changed = write(tmp_path, GOOD[0].replace("7.80", "9.99"), name="changed.csv")
        summary = import_offline_data(g, changed, tz="UTC", rejects=rejects)
        assert summary == ImportSummary(read=1, imported=0, unchanged=0, rejected=1)
        assert "DuplicateEvent" in rejects_of(rejects)[0]["reason"]
    with IdentityGraph.open(tmp_path / "g.db") as g:
        assert [r.error for r in g.refusals()] == ["DuplicateEvent"]


# ------------------------------------------------------------------ memory


class _Sink:
    """A graph that keeps nothing, so what is left to measure is the importer;
    it notes the traced peak each time a batch arrives."""

    register_unknown = False

    def __init__(self) -> None:
        self.events = 0
        self.peaks: list[int] = []

    def refusals(self) -> list[Any]:
        return []

    def record_many(self, events: list[Event], refused: Any = None) -> tuple[int, int]:
        self.events += len(events)
        self.peaks.append(tracemalloc.get_traced_memory()[1])
        return len(events), 0

    def record_table(self, table: Any, refused: Any = None) -> tuple[int, int]:
        rows = len(table["type"])
        self.events += rows
        self.peaks.append(tracemalloc.get_traced_memory()[1])
        return rows, 0


def _big_file(path: Path, rows: int) -> None:
    """Tickets of ten lines, with the required columns only."""
    rng = random.Random(20240601)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(
            "Time Stamp,Customer ID,Event Type,Event Name,Num1,Num2,EventTransaction Attr1\n"
        )
        for ticket in range(rows // 10):
            customer = rng.randrange(10_000)
            stamp = f"2024-{1 + ticket % 12:02d}-{1 + ticket % 28:02d} 12:{ticket % 60:02d}:00"
            for line in range(10):
                handle.write(f"{stamp},c{customer},7,SKU-{line},1,{line + 1}.50,T{ticket}\n")


@pytest.mark.slow
def test_memory_is_flat_in_the_file_size(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    _big_file(path, 200_000)
    assert path.stat().st_size > 8 * 2**20
    sink = _Sink()
    gc.collect()
    tracemalloc.start()
    try:
        summary = import_offline_data(
            sink,  # type: ignore[arg-type]
            path,
            tz="UTC",
            batch_size=1_000,
            ticket_window=2_000,
            engine="python",  # the reader that streams; polars holds the file's cells
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary == ImportSummary(read=200_000, imported=200_000, unchanged=0, rejected=0)
    assert sink.events == 20_000 and len(sink.peaks) == 20
    # Bounded by batch_size and ticket_window, not by the file: the peak after
    # the whole file is the peak after its first tenth.  Keeping the rows
    # would take over 100 MiB.
    early = sink.peaks[1]  # after 20,000 rows
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert peak < 1.25 * early + 2**20, (early, sink.peaks)


@pytest.mark.parametrize("blank", ["", " "])
def test_a_value_under_an_unnamed_column_is_a_rejected_row(tmp_path: Path, blank: str) -> None:
    """Every column of the format means something: a value no header names
    cannot be placed, so its row is rejected rather than read without it.
    An unnamed column left empty (a trailing delimiter) is fine."""

    def spread(line: str, middle: str = "", end: str = "") -> str:
        cells = line.split(",")  # an unnamed column before Var1, another at the end
        return ",".join([*cells[:7], middle, *cells[7:], end])

    header = spread(HEADER, blank)
    lost = spread(GOOD[0], "LOST")
    trailing = spread(GOOD[2], end="x")
    lines = [spread(line) for line in GOOD[2:]]
    rejects = tmp_path / "rejects.csv"
    g = IdentityGraph()
    path = write(tmp_path, lost, *lines, trailing, header=header)
    summary = import_offline_data(g, path, tz="UTC", rejects=rejects)
    assert summary == ImportSummary(read=5, imported=3, unchanged=0, rejected=2)
    reasons = {r["row"]: r["reason"] for r in rejects_of(rejects)}
    assert reasons.keys() == {"2", "6"}
    assert "column 8 has the value 'LOST' but no name" in reasons["2"]
    assert "column 13 has the value 'x' but no name" in reasons["6"]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tickets=st.lists(st.integers(1, 3), min_size=1, max_size=12),
    bad=st.integers(0, 40),
    window=st.integers(1, 6),
)
def test_fixing_an_unreadable_row_and_importing_again_gives_the_clean_import(
    tmp_path: Path, tickets: list[int], bad: int, window: int
) -> None:
    """Rows before an unreadable one are recorded, except the tickets still
    open at it (their lines may go on past it); importing the fixed file
    then gives exactly what a clean import gives, with nothing rejected."""
    lines: list[str] = []
    for number, size in enumerate(tickets):
        stamp = f"2024-03-01 10:{number:02d}:00"
        lines.append(f"{stamp},c{number % 3},3,,CALL,1,0,,,,")  # not a ticket line
        lines += [f"{stamp},c{number % 3},7,Tea,SKU-{i},1,1.00,,,T-{number}," for i in range(size)]
    bad = min(bad, len(lines))
    good = write(tmp_path, *lines, name="good.csv")
    broken = tmp_path / "broken.csv"
    text = good.read_bytes().split(b"\n")
    text.insert(bad + 1, b"2024-03-01 10:00:00,c\xff,3,,CALL,1,0,,,,")  # after the header
    broken.write_bytes(b"\n".join(text))

    clean = IdentityGraph()
    import_offline_data(clean, good, tz="UTC", ticket_window=window, register_unknown=True)
    g = IdentityGraph()
    with pytest.raises(FileFormatError, match=f"row {bad + 2}"):
        import_offline_data(g, broken, tz="UTC", ticket_window=window, register_unknown=True)
    recorded = set(ledger(g))
    assert recorded <= set(ledger(clean))  # no ticket cut short
    before = lines[:bad]
    calls = [line for line in before if ",3,,CALL," in line]
    assert len([e for e in recorded if "CALL" in e[1]]) == len(calls)
    # A ticket whose last line lies more than `window` rows before the last
    # row read (the one before the bad one) is closed, hence recorded.
    last_row = {line.split(",")[9]: row for row, line in enumerate(before) if ",7,Tea," in line}
    closed = {txn for txn, row in last_row.items() if row < bad - 1 - window}
    for txn in closed:
        assert any(f'"{txn}"' in content for _id, content in recorded), txn
    summary = import_offline_data(g, good, tz="UTC", ticket_window=window, register_unknown=True)
    assert summary.rejected == 0
    assert ledger(g) == ledger(clean)


def test_a_unit_price_is_kept_only_when_it_is_exact(tmp_path: Path) -> None:
    # 1.00 / 7 and 10.00 / 6 have no finite decimal: they were stored rounded
    # to 28 digits, and the check price * quantity == total, itself rounded,
    # hid it.  10.00 / 4 is exactly 2.50.
    lines = [
        "2024-03-01 10:15:00,c1,7,,SKU-1,7,1.00,,,T-1,",
        "2024-03-01 10:15:00,c1,7,,SKU-2,6,10.00,,,T-1,",
        "2024-03-01 10:15:00,c1,7,,SKU-3,4,10.00,,,T-1,",
    ]
    g = IdentityGraph()
    import_offline_data(g, write(tmp_path, *lines), tz=HELSINKI)
    (ticket,) = g.events("c1", types=["purchase"])
    items = {item["sku"]: item for item in ticket.data["items"]}
    assert "unit_price" not in items["SKU-1"]
    assert "unit_price" not in items["SKU-2"]
    assert str(items["SKU-3"]["unit_price"]) == "2.50"
    assert items["SKU-1"]["line_total"] == Decimal("1.00")


# ------------------------------------------------------------------ erased values


def forgotten_graph(tmp_path: Path) -> IdentityGraph:
    """``qx-9`` erased, with its tickets (``T-9``, one without a transaction
    id) and its call; ``c1`` stays."""
    g = IdentityGraph()
    old = write(
        tmp_path,
        "2024-03-01 10:15:00,qx-9,7,Coffee,SKU-1,2,7.80,HEL-01,Paulig,T-9,card",
        "2024-03-02 09:00:00,qx-9,3,,CALL-IN,1,0,,,,",
        "2024-03-03 12:00:00,qx-9,7,Tea,SKU-2,1,1.00,HEL-01,Paulig,,",
        "2024-03-01 10:15:00,c1,7,Coffee,SKU-1,2,7.80,HEL-01,Paulig,T-1,card",
        name="old.csv",
    )
    assert import_offline_data(g, old, tz="UTC").rejected == 0
    assert g.forget("qx-9") is not None
    return g


def test_an_erased_customer_is_rejected_under_its_own_column(tmp_path: Path) -> None:
    """Regression: a new line of an erased customer was rejected under
    ``EventTransaction Attr1`` (the batches' one column), even a call line
    whose transaction cell is empty; the customer id is the erased value."""
    g = forgotten_graph(tmp_path)
    hashed = g.state.suppression.customer_hash("qx-9")
    path = write(
        tmp_path,
        "2024-04-01 10:00:00,qx-9,7,Coffee,SKU-1,1,1.00,HEL-01,Paulig,T-10,card",
        "2024-04-02 09:00:00,qx-9,3,,CALL-IN,1,0,,,,",
        "2024-04-03 09:00:00,qx-9,7,Tea,SKU-2,1,1.00,HEL-01,Paulig,,",
        # Re-sent: the tickets' ids were erased (the call is refused for its
        # customer id, checked before an id is derived from its content).
        "2024-03-01 10:15:00,qx-9,7,Coffee,SKU-1,2,7.80,HEL-01,Paulig,T-9,card",
        "2024-03-03 12:00:00,qx-9,7,Tea,SKU-2,1,1.00,HEL-01,Paulig,,",
        "2024-03-02 09:00:00,qx-9,3,,CALL-IN,1,0,,,,",
        header=HEADER.replace("Customer ID", "customer_id"),
    )
    rejects = tmp_path / "rejects.csv"
    summary = import_offline_data(g, path, tz="UTC", rejects=rejects)
    assert summary == ImportSummary(read=6, imported=0, unchanged=0, rejected=6)
    lines = rejects_of(rejects)
    assert [(line["row"], line["column"]) for line in lines] == [
        ("2", "customer_id"),  # the file's spelling
        ("3", "customer_id"),
        ("4", "customer_id"),
        ("5", "EventTransaction Attr1"),  # the ticket's id derives from it
        ("6", ""),  # from the customer and the time: no one column
        ("7", "customer_id"),
    ]
    assert [line["value"] for line in lines[:3]] == [hashed] * 3
    assert all(line["value"].startswith("erased:") for line in lines)
    assert "qx-9" not in repr(lines) and "T-9" not in repr(lines)


def test_lines_that_disagree_with_an_erased_ticket_name_hashes_only(tmp_path: Path) -> None:
    """Regression: a line whose ticket belongs to another customer named
    both customers and the ticket in clear, erased or not."""
    g = forgotten_graph(tmp_path)
    suppression = g.state.suppression
    path = write(
        tmp_path,
        "2024-03-01 10:15:00,qx-9,7,Coffee,SKU-1,2,7.80,HEL-01,Paulig,T-9,card",
        "2024-03-01 10:15:00,c1,7,Coffee,SKU-2,1,1.00,HEL-01,Paulig,T-9,card",
        "2024-04-01 10:00:00,c1,7,Coffee,SKU-1,1,1.00,HEL-01,Paulig,T-11,card",
        "2024-04-01 10:00:00,qx-9,7,Coffee,SKU-2,1,1.00,HEL-01,Paulig,T-11,card",
    )
    rejects = tmp_path / "rejects.csv"
    assert import_offline_data(g, path, tz="UTC", rejects=rejects).rejected == 4
    lines = rejects_of(rejects)
    ticket = suppression.event_hash("offline:T-9")
    customer = suppression.customer_hash("qx-9")
    assert lines[0]["reason"].startswith(f"ticket {ticket} has a rejected line (row 3)")
    assert lines[1]["value"] == "c1"
    assert f"ticket {ticket} belongs to customer {customer!r}" in lines[1]["reason"]
    assert lines[3]["value"] == customer
    assert "ticket 'T-11' belongs to customer 'c1'" in lines[3]["reason"]
    assert "qx-9" not in repr(lines) and "T-9" not in repr(lines)
