"""Header matching, the one rule every importer uses: case, spaces, underscores
and hyphens do not tell column names apart.  Any respelling of a file's column
names (and of the caller's mapping) imports the same as the canonical spelling;
rejects and messages name a column as the file spells it."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from identity_graph import IdentityGraph, Link
from identity_graph.io import (
    FileFormatError,
    ImportSummary,
    export_customers,
    import_customers,
    import_offline_data,
    import_offline_events,
)
from identity_graph.io.cells import quote_formula
from identity_graph.io.tables import column_index, column_key

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SEPARATORS = " _-"


@st.composite
def respelt(draw: st.DrawFn, name: str) -> str:
    """``name`` with each letter's case drawn and any run of spaces,
    underscores and hyphens inserted or removed around each character."""
    core = [c for c in name if c not in SEPARATORS]
    gap = st.text(st.sampled_from(SEPARATORS), max_size=2)
    out = [draw(gap)]
    for char in core:
        out.append(draw(st.sampled_from([char.lower(), char.upper()])))
        out.append(draw(gap))
    return "".join(out)


def respelling(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    """``{name: a respelling}`` for every name."""
    return st.fixed_dictionaries({name: respelt(name) for name in names})


def rejects_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, header: list[str], rows: list[list[Any]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append([None if cell == "" else cell for cell in row])
    book.save(path)
    return path


def events_of(g: IdentityGraph) -> list[tuple[str | None, str]]:
    return sorted((e.id, e.content()) for p in g.profiles() for e in g.events(p.id))


# ------------------------------------------------------------------ the key


@given(
    st.sampled_from(["Var 1", "EventTransaction Attr12", "Customer ID", "phoneNumber:2"]).flatmap(
        lambda name: st.tuples(st.just(name), respelt(name))
    )
)
def test_a_respelling_has_the_key_of_its_name(pair: tuple[str, str]) -> None:
    name, other = pair
    assert column_key(other) == column_key(name)


def test_the_key_ignores_exactly_case_spaces_underscores_and_hyphens() -> None:
    assert column_key("Var 1") == column_key("var_1") == column_key("VAR-1") == "var1"
    assert column_key("Customer ID") == column_key("customer_id") == column_key("CustomerId")
    assert column_key("Customer\u00a0ID") == "customerid"  # a spreadsheet's no-break space
    assert column_key("phoneNumber:1") != column_key("phoneNumber:2")
    assert column_key("Var1") != column_key("Var 11")
    assert column_key("Event Name") != column_key("EventName Attr1")


def test_a_header_found_by_any_spelling(tmp_path: Path) -> None:
    columns = column_index(tmp_path, ["Time Stamp", "", "var_1"], ["time-stamp", "VAR 1"])
    assert columns["TIME STAMP"] == 0 and columns["Var1"] == 2
    assert columns.spelling("Var1") == "var_1"
    assert columns.position("Var2") is None and "Var2" not in columns
    assert list(columns.items()) == [("Time Stamp", "timestamp", 0), ("var_1", "var1", 2)]


# ------------------------------------------------------------------ offline data

DATA_HEADER = [
    "Time Stamp",
    "Customer ID",
    "Event Type",
    "Category",
    "Event Name",
    "Num1",
    "Num2",
    "Var1",
    "Var2",
    "EventName Attr1",
    "EventTransaction Attr1",
    "EventTransaction Attr2",
]
DATA_ROWS = [
    line.split(";")
    for line in (
        "2024-03-01 10:15:00;c1;7;Coffee;SKU-1;2;7.80;HEL;Mia;Paulig;T-1;card",
        "2024-03-01 10:15:00;c1;7;Bakery;SKU-2;1;3.20;HEL;Ola;Fazer;T-1;card",
        "2024-03-02 09:00:00;c2;3;;CALL-IN;1;0;;;;;",
        "2024-03-05 11:00:00;c2;7;Tea;SKU-3;x;9.90;TKU;;;T-2;",
        ";c3;5;;VISIT;1;0;;;;;",
    )
]
DATA_OPTIONS: dict[str, Any] = {
    "ticket_fields": {"Var1": "store", "EventTransaction Attr2": "payment_methods"},
    "item_fields": {"EventName Attr1": "brand", "Var2": "seller"},
}


def import_data(folder: Path, header: list[str], options: dict[str, Any]) -> tuple[Any, ...]:
    g = IdentityGraph()
    path = write_csv(folder / "data.csv", header, DATA_ROWS, delimiter=";")
    rejects = folder / "rejects.csv"
    summary = import_offline_data(g, path, tz="Europe/Helsinki", rejects=rejects, **options)
    return summary, events_of(g), rejects_of(rejects)


@settings(max_examples=30, deadline=None)
@given(
    spelt=respelling(DATA_HEADER),
    keys=respelling([*DATA_OPTIONS["ticket_fields"], *DATA_OPTIONS["item_fields"]]),
)
def test_offline_data_imports_the_same_however_its_columns_are_spelt(
    spelt: dict[str, str], keys: dict[str, str]
) -> None:
    options = {
        kind: {keys[column]: field for column, field in mapping.items()}
        for kind, mapping in DATA_OPTIONS.items()
    }
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        summary, events, rejects = import_data(folder, DATA_HEADER, DATA_OPTIONS)
        again, events_again, rejects_again = import_data(
            folder, [spelt[name] for name in DATA_HEADER], options
        )
    assert summary == ImportSummary(read=5, imported=3, unchanged=0, rejected=2)
    assert again == summary
    assert events_again == events
    # The rejects name each column as the respelt file does (trimmed, as
    # every header cell; quoted, as any rejects cell that starts like a formula).
    named = {name: spelling.strip() for name, spelling in spelt.items()}
    assert rejects_again == [
        {
            **reject,
            "column": quote_formula(named[reject["column"]]),
            "reason": quote_formula(
                reject["reason"].replace(reject["column"], named[reject["column"]])
            ),
        }
        for reject in rejects
    ]
    assert {r["column"] for r in rejects} == {"Num1", "Time Stamp"}


def test_the_format_documents_spelling_imports(tmp_path: Path) -> None:
    header = (
        "Time Stamp;Customer ID;Event Type;Event Name;Num1;Num2;Var 1;Var 5;EventName Attr1;"
        "EventName Attr10;EventTransaction Attr1;EventTransaction Attr2;EventTransaction Attr12"
    )
    line = "2024-03-01 10:15:00;c1;7;SKU-1;1;2,50;HEL;B2C;Paulig;Dark;T-1;card;web"
    path = tmp_path / "data.csv"
    path.write_text(f"{header}\n{line}\n", encoding="utf-8")
    g = IdentityGraph()
    summary = import_offline_data(
        g,
        path,
        tz="UTC",
        ticket_fields={"Var 1": "store"},
        item_fields={"EventName Attr1": "brand"},
    )
    assert summary == ImportSummary(read=1, imported=1, unchanged=0, rejected=0)
    (ticket,) = g.events("c1")
    assert ticket.data["store"] == "HEL"
    assert ticket.data["transaction"] == {"attr1": "T-1", "attr2": "card", "attr12": "web"}
    (item,) = ticket.data["items"]
    assert (item["brand"], item["var5"], item["attr10"]) == ("Paulig", "B2C", "Dark")


def test_a_missing_mandatory_column_names_the_expected_and_the_found(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("time_stamp,customer id,EVENT TYPE,Event Name,Num 1\n", encoding="utf-8")
    with pytest.raises(FileFormatError) as error:
        import_offline_data(IdentityGraph(), path, tz="UTC")
    message = str(error.value)
    assert "row 1: the header lacks the column(s) ['Num2']" in message
    expected = "['Time Stamp', 'Customer ID', 'Event Type', 'Event Name', 'Num1', 'Num2']"
    assert f"expected {expected}" in message
    assert "found ['time_stamp', 'customer id', 'EVENT TYPE', 'Event Name', 'Num 1']" in message
    assert "case, spaces, underscores and hyphens" in message


@pytest.mark.parametrize(
    ("extra", "first", "second"),
    [("var 1", "'Var1' (column 8)", "'var 1' (column 9)"), ("NUM-2", "'Num2'", "'NUM-2'")],
)
def test_two_spellings_of_one_offline_data_column_are_refused(
    tmp_path: Path, extra: str, first: str, second: str
) -> None:
    path = write_csv(tmp_path / "data.csv", [*DATA_HEADER[:8], extra], [])
    with pytest.raises(FileFormatError, match="repeats a column") as error:
        import_offline_data(IdentityGraph(), path, tz="UTC")
    assert first in str(error.value) and second in str(error.value)


def test_two_spellings_of_one_mapped_column_are_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.csv", DATA_HEADER, DATA_ROWS[:1])
    for keyword in ("ticket_fields", "item_fields"):
        with pytest.raises(ValueError, match=r"'Var2' and 'var_2' name one column twice"):
            import_offline_data(
                IdentityGraph(), path, tz="UTC", **{keyword: {"Var2": "a", "var_2": "b"}}
            )
    with pytest.raises(FileFormatError, match=r"the ticket field\(s\) var 3=store name column"):
        import_offline_data(IdentityGraph(), path, tz="UTC", ticket_fields={"var 3": "store"})
    with pytest.raises(ValueError, match="'customer_id' is not one of"):
        import_offline_data(IdentityGraph(), path, tz="UTC", ticket_fields={"customer_id": "x"})
    with pytest.raises(ValueError, match="'EVENTTRANSACTION ATTR1' is not one of"):
        import_offline_data(
            IdentityGraph(), path, tz="UTC", ticket_fields={"EVENTTRANSACTION ATTR1": "x"}
        )


# ------------------------------------------------------------------ offline events

EVENTS_HEADER = [
    "Type",
    "Event Name",
    "Member Email Address",
    "Mailing",
    "Time Stamp",
    "Interest Stage",
    "Interest Points",
    "Quantity",
]
EVENTS_ROWS = [
    line.split(",")
    for line in (
        "plain,Store visit,ann@example.com,Spring,2024-03-01 10:00:00,,,,",
        "interest,Catalogue,ann@example.com,Spring,2024-03-02 11:00:00,Aware,10,,",
        "purchase,Sofa,ann@example.com,Spring,2024-03-09 15:30:00,,,1,X1",
        "purchase,Lamp,bob@example.com,,2024-03-09 15:30:00,,,0,",
    )
]


def import_events(folder: Path, header: list[str]) -> tuple[Any, ...]:
    g = IdentityGraph()
    g.link("c1", Link("email", "ann@example.com"), at=T0)
    g.link("c2", Link("email", "bob@example.com"), at=T0)
    path = write_csv(folder / "events.csv", header, EVENTS_ROWS)
    rejects = folder / "rejects.csv"
    summary = import_offline_events(g, path, tz="UTC", rejects=rejects)
    return summary, events_of(g), rejects_of(rejects)


@settings(max_examples=30, deadline=None)
@given(spelt=respelling(EVENTS_HEADER))
def test_offline_events_import_the_same_however_their_columns_are_spelt(
    spelt: dict[str, str],
) -> None:
    # A further column is data, kept under its header as written: not respelt.
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        summary, events, rejects = import_events(folder, [*EVENTS_HEADER, "Coupon"])
        again, events_again, rejects_again = import_events(
            folder, [*(spelt[name] for name in EVENTS_HEADER), "Coupon"]
        )
    assert summary == ImportSummary(read=4, imported=3, unchanged=0, rejected=1)
    assert again == summary and events_again == events
    assert [r["column"] for r in rejects] == ["Mailing", "Quantity"]
    named = [quote_formula(spelt[name].strip()) for name in ("Mailing", "Quantity")]
    assert [r["column"] for r in rejects_again] == named
    assert rejects_again[0]["reason"] == quote_formula(f"{spelt['Mailing'].strip()} is mandatory")


def test_offline_events_refuse_two_spellings_of_one_column(tmp_path: Path) -> None:
    for extra, other in [("quantity", "Quantity"), ("coupon", "Coupon")]:
        path = write_csv(tmp_path / "events.csv", [*EVENTS_HEADER, "Coupon", extra], [])
        with pytest.raises(FileFormatError, match=f"'{other}' .* and '{extra}' .* are one name"):
            import_offline_events(IdentityGraph(), path, tz="UTC")
    path = write_csv(tmp_path / "events.csv", ["type", "event-name", "Mailing"], [])
    with pytest.raises(FileFormatError) as error:
        import_offline_events(IdentityGraph(), path, tz="UTC")
    assert "lacks the column(s) ['Member Email Address', 'Time Stamp']" in str(error.value)
    assert "found ['type', 'event-name', 'Mailing']" in str(error.value)


# ------------------------------------------------------------------ customers

CUSTOMER_MAPPING: dict[str, Any] = {
    "id_column": "Customer ID",
    "attributes": {"Firstname": "first_name", "Last Name": "last_name"},
    "links": {
        "Email": "email",
        "phoneNumber:1": "phone",
        "phoneNumber:2": "phone",
        "Card": "loyalty_card",
    },
}
CUSTOMER_HEADER = ["Customer ID", "Firstname", "Last Name", "Email", "phoneNumber:1"]
CUSTOMER_HEADER += ["phoneNumber:2", "Card", "Notes"]
CUSTOMER_ROWS = [
    ["c1", "Ann", "Lee", "ann@example.com", "+358401234567", "", "7001 2345", "x"],
    ["c2", "Bob", "", "bob@example.com", "+358401234568", "+358401234569", "generate()", ""],
    ["c3", "Cid", "", "null", "", "", "", ""],
]


def numbers() -> Iterator[str]:
    n = 1000
    while True:
        n += 1
        yield f"99{n:08d}"


def import_people(
    folder: Path, suffix: str, header: list[str], mapping: dict[str, Any]
) -> tuple[Any, ...]:
    g = IdentityGraph()
    path = folder / f"customers.{suffix}"
    (write_csv if suffix == "csv" else write_xlsx)(path, header, CUSTOMER_ROWS)
    rejects = folder / "rejects.csv"
    made = numbers()
    summary = import_customers(
        g, path, **mapping, rejects=rejects, at=T0, generate=lambda: next(made)
    )
    people = [(c, g.attributes(c), g.links(c)) for c in g.customers()]
    return summary, people, rejects_of(rejects)


def respell_mapping(mapping: dict[str, Any], spelt: dict[str, str]) -> dict[str, Any]:
    # A mapping's names are trimmed (a padded one is refused): they are what an export writes.
    keys = {name: spelling.strip() for name, spelling in spelt.items()}
    return {
        "id_column": keys[mapping["id_column"]],
        "attributes": {keys[k]: v for k, v in mapping["attributes"].items()},
        "links": {keys[k]: v for k, v in mapping["links"].items()},
    }


@settings(max_examples=25, deadline=None)
@given(
    spelt=respelling(CUSTOMER_HEADER),
    keys=respelling(CUSTOMER_HEADER[:-1]),
    suffix=st.sampled_from(["csv", "xlsx"]),
)
def test_customers_import_the_same_however_columns_and_mapping_are_spelt(
    spelt: dict[str, str], keys: dict[str, str], suffix: str
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        summary, people, rejects = import_people(folder, suffix, CUSTOMER_HEADER, CUSTOMER_MAPPING)
        again, people_again, rejects_again = import_people(
            folder,
            suffix,
            [spelt[name] for name in CUSTOMER_HEADER],
            respell_mapping(CUSTOMER_MAPPING, keys),
        )
    assert summary == ImportSummary(read=3, imported=2, unchanged=0, rejected=1)
    assert again == summary and people_again == people
    assert [(r["row"], r["column"]) for r in rejects] == [("4", "Email")]
    named = quote_formula(spelt["Email"].strip())
    assert [(r["row"], r["column"]) for r in rejects_again] == [("4", named)]


def test_two_spellings_in_the_file_each_found_by_its_exact_name(tmp_path: Path) -> None:
    # The loyalty system's own layout: "Customer ID" is the id, "customerId" the card.
    header = ["Customer ID", "customerId"]
    path = write_csv(tmp_path / "a.csv", header, [["c1", "7001 2345"]])
    g = IdentityGraph()
    links = {"customerId": "loyalty_card"}
    assert import_customers(g, path, links=links).imported == 1
    assert g.links("c1") == [Link("loyalty_card", "70012345")]
    # Mapping only the id: the card column is one the mapping does not name.
    assert import_customers(IdentityGraph(), path).imported == 1
    # A name spelt as neither column cannot tell which one it means.
    with pytest.raises(FileFormatError) as error:
        import_customers(IdentityGraph(), path, id_column="customer_id")
    message = str(error.value)
    assert "'customer_id' could be 'Customer ID' (column 1) and 'customerId' (column 2)" in message
    # Two mapped names that find one column of the file.
    one = write_csv(tmp_path / "b.csv", ["CUSTOMER-ID"], [["c1"]])
    with pytest.raises(
        FileFormatError, match="'Customer ID' and 'customerId' both find the column 'CUSTOMER-ID'"
    ):
        import_customers(IdentityGraph(), one, links=links)


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_customers_refuse_a_repeated_column_and_name_a_missing_one(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"a.{suffix}"
    (write_csv if suffix == "csv" else write_xlsx)(path, ["Customer ID", "Email", "Email"], [])
    with pytest.raises(FileFormatError, match=r"repeats a column: 'Email' \(column 2\)"):
        import_customers(IdentityGraph(), path, links={"Email": "email"})
    path = tmp_path / f"b.{suffix}"
    (write_csv if suffix == "csv" else write_xlsx)(path, ["Customer ID", "Email"], [])
    with pytest.raises(FileFormatError) as error:
        import_customers(IdentityGraph(), path, links={"Phone": "phone"})
    message = str(error.value)
    assert "lacks the column(s) ['Phone']" in message
    assert "expected ['Customer ID', 'Phone'], found ['Customer ID', 'Email']" in message


def test_export_writes_the_mappings_own_spelling(tmp_path: Path) -> None:
    g = IdentityGraph()
    g.register("c1", attributes={"first_name": "Ann"}, at=T0)
    g.link("c1", Link("email", "ann@example.com"), at=T0)
    path = tmp_path / "out.csv"
    export_customers(
        g,
        path,
        id_column="customer_id",
        attributes={"first name": "first_name"},
        links={"E-Mail": "email"},
    )
    assert path.read_text(encoding="utf-8").splitlines()[0] == "customer_id,first name,E-Mail"
    # Read back with the canonical spelling: the same columns, nothing changes.
    again = import_customers(
        g,
        path,
        id_column="Customer ID",
        attributes={"Firstname": "first_name"},
        links={"email": "email"},
    )
    assert again == ImportSummary(read=1, imported=0, unchanged=1, rejected=0)
