"""The command line, run as a user runs it: a subprocess per command,
one store file, one-line errors and never a traceback."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from identity_graph import Event, IdentityGraph, InvalidLink, Link
from identity_graph.cli import (
    CARD_EVENTS,
    NEXT_COMMANDS,
    PROG,
    main,
    parse_ref,
    parse_time,
    sample,
)
from identity_graph.times import RANGE_RULE

MAPPING = [
    "--attribute",
    "Firstname=first_name",
    "--attribute",
    "City=city",
    "--link",
    "Email=email",
    "--link",
    "Phone=phone",
    "--link",
    "customerId=loyalty_card",
]


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("IDENTITY_GRAPH_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "identity_graph.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def ok(cwd: Path, *args: str) -> str:
    result = run(cwd, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def fails(cwd: Path, *args: str, code: int = 1) -> str:
    result = run(cwd, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("identity-graph: ")
    return lines[0]


def call(cwd: Path, *args: str) -> tuple[int, str, str]:
    """Run the command line in this process (no start-up cost): exit code, stdout, stderr."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    os.chdir(cwd)
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            pytest.raises(SystemExit) as exit_,
        ):
            main(list(args))
    finally:
        os.chdir(here)
    assert "Traceback" not in err.getvalue()
    code = exit_.value.code
    return code if isinstance(code, int) else 0, out.getvalue(), err.getvalue()


def quick(cwd: Path, *args: str) -> str:
    code, out, err = call(cwd, *args)
    assert code == 0, err
    return out


def quick_fails(cwd: Path, *args: str, code: int = 1) -> str:
    found, _out, err = call(cwd, *args)
    assert found == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("identity-graph: "), err
    return lines[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store built once from the sample files with the command line."""
    cwd = tmp_path_factory.mktemp("cli")
    for name in ("customers.xlsx", "offline_data.csv", "offline_events.csv"):
        (cwd / name).write_bytes(sample(name).read_bytes())
    out = ok(cwd, "import", "customers", "customers.xlsx", *MAPPING)
    assert out == (
        "customers.xlsx: read 7, imported 6, unchanged 0, rejected 1; "
        "rejects in customers.rejects.csv\n"
    )
    out = ok(
        cwd,
        "import",
        "offline-data",
        "offline_data.csv",
        "--tz",
        "Europe/Helsinki",
        "--event-type",
        "3=call",
        "--ticket-field",
        "Var1=store",
    )
    assert out.startswith("offline_data.csv: read 15, imported 14, unchanged 0, rejected 1")
    out = ok(cwd, "import", "offline-events", "offline_events.csv", "--tz", "Europe/Helsinki")
    assert out.startswith("offline_events.csv: read 7, imported 6, unchanged 0, rejected 1")
    assert (cwd / "identity-graph.db").exists()
    return cwd


# ------------------------------------------------------------------ in process


def test_refs_and_times() -> None:
    assert parse_ref("C-1001") == "C-1001"
    assert parse_ref("email:ann@example.com") == Link("email", "ann@example.com")
    assert parse_ref("customer:crm:42") == "crm:42"
    assert parse_ref("Email:x") == "Email:x"  # not a link name: a customer id
    assert parse_time("2024-06-01T12:00+03:00").utcoffset() is not None
    assert parse_time("2024-06-01T09:00Z") == parse_time("2024-06-01T12:00+03:00")


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("import", "export", "resolve", "profile", "explain", "events", "kpis"):
        assert command in out
    assert "refusals" in out and "demo" in out
    assert "forget" in out and "release-suppression" in out


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["import", "offline-data", "x.csv"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "identity-graph: error:" in err


def test_a_read_command_on_a_missing_store_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "identity_graph.cli", "resolve", "c1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "identity-graph: error: no store at identity-graph.db; import a file first, or pass --db"
    )
    assert not (tmp_path / "identity-graph.db").exists()


READ_COMMANDS = [
    ["resolve", "x"],
    ["profile", "x"],
    ["explain", "x", "y"],
    ["events", "x"],
    ["kpis", "--as-of", "2024-06-30"],
    ["refusals"],
    ["verify"],
    ["export", "customers", "out.csv"],
    ["export", "profiles", "out.csv", "--as-of", "2024-06-30"],
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_a_read_command_on_an_empty_file_says_so_and_leaves_it_empty(
    tmp_path: Path, command: list[str]
) -> None:
    """An empty file (``: > zero.db``) is no store: a read command must not
    create one in it (it did, and ``verify`` then found "no damage")."""
    (tmp_path / "zero.db").touch()
    line = quick_fails(tmp_path, "--db", "zero.db", *command)
    assert "no store at zero.db (the file is empty)" in line, line
    assert (tmp_path / "zero.db").stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zero.db"]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_a_read_command_leaves_another_applications_database_alone(
    tmp_path: Path, command: list[str]
) -> None:
    """A SQLite file of another application is no store: a read command
    created the store's tables in it and switched it to WAL."""
    import sqlite3

    other = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:
        connection.execute("CREATE TABLE app_users (name TEXT)")
        connection.commit()
    before = other.read_bytes()
    line = quick_fails(tmp_path, "--db", "app.db", *command)
    assert "no store at app.db (the SQLite file holds other tables" in line, line
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
    (tmp_path / "app.db").write_bytes(b"not a database at all, just some text " * 10)
    line = quick_fails(tmp_path, "--db", "app.db", *command)
    assert "no store at app.db (it is not a SQLite database" in line, line


def test_a_write_command_creates_the_store_in_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "zero.db").touch()
    (tmp_path / "offline_events.csv").write_bytes(sample("offline_events.csv").read_bytes())
    out = quick(
        tmp_path, "--db", "zero.db", "import", "offline-events", "offline_events.csv", "--tz", "UTC"
    )
    assert out.startswith("offline_events.csv: read ")
    assert "no damage found" in quick(tmp_path, "--db", "zero.db", "verify")
    assert (tmp_path / "zero.db").stat().st_size > 0


# ------------------------------------------------------------------ subprocesses


def test_reimport_reports_everything_unchanged(store: Path) -> None:
    out = ok(store, "import", "customers", "customers.xlsx", *MAPPING, "--rejects", "again.csv")
    assert out.startswith("customers.xlsx: read 7, imported 0, unchanged 6, rejected 1")
    with open(store / "again.csv", newline="", encoding="utf-8") as handle:
        (reject,) = list(csv.DictReader(handle))
    assert reject["row"] == "8" and reject["column"] == "Email"
    options = ["--tz", "Europe/Helsinki", "--event-type", "3=call", "--ticket-field", "Var1=store"]
    out = ok(store, "import", "offline-data", "offline_data.csv", *options)
    assert "imported 0, unchanged 14, rejected 1" in out


@pytest.mark.parametrize("engine", ["python", "polars"])
def test_either_reader_imports_the_same(tmp_path: Path, engine: str) -> None:
    """``--engine`` picks the CSV reader; the import is the same either way,
    and a workbook, which neither reads, refuses the option."""
    for name in ("customers.xlsx", "offline_data.csv"):
        (tmp_path / name).write_bytes(sample(name).read_bytes())
    options = ["--tz", "Europe/Helsinki", "--event-type", "3=call", "--ticket-field", "Var1=store"]
    options += ["--engine", engine]
    out = quick(tmp_path, "import", "offline-data", "offline_data.csv", *options)
    assert out.startswith("offline_data.csv: read 15, imported 14, unchanged 0, rejected 1")
    assert "--engine" in quick_fails(
        tmp_path, "import", "customers", "customers.xlsx", *MAPPING, "--engine", engine, code=2
    )


def test_queries(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ok(store, "resolve", "email:ANN.LEE@example.com") == "C-1001\n"
    profile = ok(store, "profile", "phone:+358401234567")
    assert "C-1001" in profile and "Helsinki" in profile and "email:ann.lee@example.com" in profile
    monkeypatch.setenv("COLUMNS", "200")
    assert quick(store, "resolve", "C-1002") == "C-1002\n"
    assert quick(store, "resolve", "email:nobody@example.com") == "email:nobody@example.com\n"
    events = quick(store, "events", "C-1001")
    assert "offline:T-0001" in events and "interest" in events
    assert "4 events" in quick(store, "events", "C-1001", "--type", "purchase")
    window = ["--start", "2024-02-01", "--end", "2024-06-01"]
    assert "2 events" in quick(store, "events", "C-1001", "--type", "purchase", *window)
    explain = quick(store, "explain", "C-1001", "loyalty_card:7001 0000 0000 1008")
    assert "owns" in explain and "#" in explain
    assert quick(store, "explain", "C-1001", "C-1001") == "C-1001 and C-1001 are the same\n"
    assert quick(store, "refusals") == "no refusals\n"


def test_kpis(store: Path) -> None:
    out = ok(store, "kpis", "--as-of", "2024-06-30", "--out", "kpis.csv")
    assert out == ("wrote the indicators of 7 profiles at 2024-07-01T00:00:00+00:00 to kpis.csv\n")
    with open(store / "kpis.csv", newline="", encoding="utf-8") as handle:
        rows = {row["Profile_ID"]: row for row in csv.DictReader(handle)}
    assert rows["C-1001"]["Total_Value"] == "68.10"
    assert rows["C-2001"]["Total_Purchases"] == "1"  # registered by the offline data
    table = quick(store, "kpis", "--as-of", "2024-06-30", "--ref", "email:ann.lee@example.com")
    assert "68.10" in table and "Loyal Customers" in table


def test_export_and_import_again(store: Path) -> None:
    assert ok(store, "export", "customers", "out.xlsx", *MAPPING) == (
        "wrote 7 customers to out.xlsx\n"
    )
    out = ok(store, "import", "customers", "out.xlsx", *MAPPING)
    assert out == "out.xlsx: read 7, imported 0, unchanged 7, rejected 0\n"
    quick(store, "export", "customers", "out.csv", "--no-id-column", "--link", "Email=email")
    lines = (store / "out.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Email" and "ann.lee@example.com" in lines


def test_errors_are_one_line(store: Path) -> None:
    assert "customer 'nobody' is not registered" in fails(store, "resolve", "nobody")
    broken = store / "broken.csv"
    broken.write_bytes(b"Time Stamp,Customer ID,Event Type,Event Name,Num1,Num2\n\xff\n")
    line = fails(store, "import", "offline-data", "broken.csv", "--tz", "UTC")
    assert "broken.csv: row 2 (line 2)" in line and "0xff" in line
    assert "No such command" in fails(store, "bogus", code=2)
    # The same in this process, without a start-up per case:
    assert "no store at missing.db" in quick_fails(store, "resolve", "x", "--db", "missing.db")
    assert not (store / "missing.db").exists()
    assert "NotConnected: C-1001 (profile C-1001) and C-1002" in quick_fails(
        store, "explain", "C-1001", "C-1002"
    )
    assert "Missing option '--tz'" in quick_fails(
        store, "import", "offline-data", "offline_data.csv", code=2
    )
    assert "does not exist" in quick_fails(store, "import", "customers", "nothere.csv", code=2)
    # Usage errors, before any file is read:
    assert "'--tz': time zone 'Mars/Base' is not a name" in quick_fails(
        store, "import", "offline-events", "offline_events.csv", "--tz", "Mars/Base", code=2
    )
    for zone in ("", "localtime"):
        line = quick_fails(store, "import", "offline-data", "x.csv", "--tz", zone, code=2)
        assert "'--tz': time zone" in line and "tz=" not in line, line
    assert "'3' must be CODE=TYPE" in quick_fails(
        store,
        "import",
        "offline-data",
        "offline_data.csv",
        "--tz",
        "UTC",
        "--event-type",
        "3",
        code=2,
    )
    # Names the file's mapping cannot use, and an empty window, are usage errors.
    assert "link name 'Email' is not allowed" in quick_fails(
        store, "import", "customers", "customers.xlsx", "--link", "Email=Email", code=2
    )
    assert "attribute 'First'" in quick_fails(
        store, "export", "customers", "x.csv", "--attribute", "Email=First", code=2
    )
    assert "--start 2024-06-01 is not before --end 2024-01-01" in quick_fails(
        store, "events", "C-1001", "--start", "2024-06-01", "--end", "2024-01-01", code=2
    )
    # A plain ValueError is its message: Python's class name says nothing more.
    assert quick_fails(store, "export", "customers", "x.json") == (
        "identity-graph: error: x.json: the file name must end in .csv or .xlsx "
        "(it decides the format)"
    )
    assert "no UTC offset" in quick_fails(store, "kpis", "--as-of", "2024-06-30T10:00", code=2)
    assert "COLUMN=NAME" in quick_fails(
        store, "export", "customers", "x.csv", "--link", "Email", code=2
    )
    assert "column 'Email' is given twice ('email' and 'phone')" in quick_fails(
        store,
        "export",
        "customers",
        "x.csv",
        "--link",
        "Email=email",
        "--link",
        "Email=phone",
        code=2,
    )
    assert "lacks the column(s) ['Customer ID', 'Phone']" in quick_fails(
        store, "import", "customers", "offline_events.csv", "--link", "Phone=phone"
    )
    assert "end in .csv or .xlsx" in quick_fails(store, "export", "customers", "x.json")
    # Read as CSV whatever the delimiter, but written only as .csv: a .tsv of commas misleads.
    assert "end in .csv or .xlsx" in quick_fails(store, "export", "customers", "x.tsv")
    assert "end in .csv or .xlsx" in quick_fails(
        store, "export", "profiles", "x.txt", "--as-of", "2024-06-30"
    )
    assert "--out: x.xlsx: the file name must end in .csv" in quick_fails(
        store, "kpis", "--as-of", "2024-06-30", "--out", "x.xlsx", code=2
    )
    assert not (store / "x.xlsx").exists() and not (store / "x.tsv").exists()
    # A file the system refuses is named with its reason, not Python's class and errno.
    for command in (
        ["export", "profiles", "nowhere/x.csv", "--as-of", "2024-06-30"],
        ["export", "customers", "nowhere/x.csv"],
    ):
        line = quick_fails(store, *command)
        assert line.startswith("identity-graph: error: nowhere"), line
        assert "Errno" not in line and "Error:" not in line and ".partial" not in line
    assert "cannot be typed 'purchase'" in quick_fails(
        store,
        "import",
        "offline-data",
        "offline_data.csv",
        "--tz",
        "UTC",
        "--event-type",
        "3=purchase",
        code=2,
    )


# ------------------------------------------------------------------ where the store is


def test_db_before_or_after_the_command_or_from_the_environment(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(store / "identity-graph.db")
    assert quick(tmp_path, "--db", db, "resolve", "C-1002") == "C-1002\n"
    assert quick(tmp_path, "resolve", "C-1002", "--db", db) == "C-1002\n"
    assert quick(tmp_path, "--region", "FI", "--db", db, "resolve", "phone:040 123 4567") == (
        "C-1001\n"
    )
    assert "no store at missing.db" in quick_fails(tmp_path, "--db", "missing.db", "resolve", "x")
    # After the command wins over before it.
    assert quick(tmp_path, "--db", "missing.db", "resolve", "C-1002", "--db", db) == "C-1002\n"
    monkeypatch.setenv("IDENTITY_GRAPH_DB", db)
    assert quick(tmp_path, "resolve", "C-1002") == "C-1002\n"
    # An option, before or after, wins over the environment.
    assert "no store at missing.db" in quick_fails(tmp_path, "resolve", "x", "--db", "missing.db")
    assert "no store at missing.db" in quick_fails(tmp_path, "--db", "missing.db", "resolve", "x")
    assert not (tmp_path / "missing.db").exists()


def test_the_customer_card(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    card = quick(store, "profile", "phone:+358401234567", "--as-of", "2024-06-30")
    with IdentityGraph.open(store / "identity-graph.db") as g:
        row = g.kpis(datetime(2024, 7, 1, tzinfo=UTC), ref="C-1001")
        latest = g.events("C-1001")[-CARD_EVENTS:]
        ((linked, _),) = g.history(Link("email", "ann.lee@example.com"))
    assert "profile C-1001" in card
    assert f"email:ann.lee@example.com  since {linked:%Y-%m-%d %H:%M} UTC" in card
    assert "Helsinki" in card
    for event in latest:  # the newest events, with where they happened
        assert event.id in card
    assert "store HEL-01" in card and "mailing Spring 2024" in card
    assert "indicators at 2024-07-01T00:00:00+00:00" in card
    for name in ("Total_Value", "RFM_Segment", "RFM_Group"):
        assert f"{name} " in card and str(row[name]) in card
    # Without --as-of: now, when the sample purchases are long past.
    now = quick(store, "profile", "C-1001")
    assert "Days_Since_Last_Purchase" in now and "68.10" in now
    early = quick(store, "profile", "C-1001", "--as-of", "2024-03-01")
    assert "latest events before 2024-03-02 00:00 UTC" in early
    with IdentityGraph.open(store / "identity-graph.db") as g:
        before = g.events("C-1001", end=datetime(2024, 3, 2, tzinfo=UTC))
        after = g.events("C-1001", start=datetime(2024, 3, 2, tzinfo=UTC))
    assert before and after
    assert before[-1].id in early and not any(event.id in early for event in after)
    anonymous = quick(store, "profile", "email:walk.in@example.com")
    assert "(anonymous)" in anonymous and "never owned" in anonymous and "no events" in anonymous


@pytest.mark.parametrize(
    ("as_of", "code"),
    [
        ("9999-12-31", 2),  # its end is past the calendar
        ("0001-01-01", 2),  # 360-day windows would start before it
        ("0001-12-31T23:59+00:00", 2),
        ("9999-01-01T00:00:01+00:00", 2),
        ("0002-01-01", 0),  # the first and last supported days
        ("9998-12-31", 0),
    ],
)
def test_kpis_at_the_ends_of_the_calendar(
    store: Path, as_of: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    found, out, err = call(store, "kpis", "--as-of", as_of)
    assert found == code, err
    if code:
        (line,) = err.strip().splitlines()
        assert line.startswith("identity-graph: error: Invalid value for --as-of: ")
        assert RANGE_RULE in line and as_of in line
    else:
        assert "C-1001" in out and "Segment" in out and err == ""


@pytest.mark.parametrize(
    "args",
    [
        ["resolve", "C-1001", "--at", "9999-12-31T23:59:59-05:00"],
        ["resolve", "C-1001", "--at", "0001-01-01T00:00:00+05:00"],
        ["profile", "C-1001", "--as-of", "9999-12-31"],
        ["profile", "C-1001", "--as-of", "0001-01-01"],
        ["events", "C-1001", "--start", "0001-01-01T00:00+05:00"],
        ["events", "C-1001", "--end", "9999-12-31T23:00-05:00"],
        ["export", "profiles", "profiles.csv", "--as-of", "9999-12-31"],
    ],
)
def test_every_time_option_at_the_ends_of_the_calendar_is_one_line(
    store: Path, args: list[str]
) -> None:
    option, text = args[-2:]
    found, _, err = call(store, *args)
    assert found == 2, err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"identity-graph: error: Invalid value for {option}: {text}")
    assert RANGE_RULE in line


def _next_commands(out: str) -> list[list[str]]:
    tail = out[out.index("Try next") :].splitlines()[1:]
    return [shlex.split(line)[1:] for line in tail if line.startswith(f"  {PROG} ")]


def test_demo_builds_the_default_store_and_its_next_commands_work(tmp_path: Path) -> None:
    out = ok(tmp_path, "demo")
    for words in ("customers.xlsx", "offline_data.csv", "profile C-1001", "Loyal Customers"):
        assert words in out
    assert "rejected from offline_events.csv, row 8" in out
    assert (tmp_path / "identity-graph.db").exists()
    commands = _next_commands(out)
    assert len(commands) == len(NEXT_COMMANDS)
    assert all("--db" not in command for command in commands)
    for command in commands:
        quick(tmp_path, *command)
    assert (tmp_path / "kpis.csv").exists() and (tmp_path / "profiles.xlsx").exists()
    again = ok(tmp_path, "demo")
    assert "│ customers.xlsx     │    7 │        0 │         6 │        1 │" in again


def test_demo_elsewhere_names_its_store_in_the_next_commands(tmp_path: Path) -> None:
    code, out, err = call(tmp_path, "demo", "--db", "demo.db")
    assert code == 0, err
    commands = _next_commands(out)
    assert len(commands) == len(NEXT_COMMANDS)
    assert all(command[:2] == ["--db", "demo.db"] for command in commands)
    # Printed unwrapped on a narrow terminal: every line runs as it is.
    assert max(map(len, out.splitlines())) > 80
    for command in commands:
        quick(tmp_path, *command)
    assert quick(tmp_path, *commands[1]) == "C-1001\n"
    assert not (tmp_path / "identity-graph.db").exists()


def test_demo_leaves_a_store_with_other_customers_alone(tmp_path: Path) -> None:
    with IdentityGraph.open(tmp_path / "identity-graph.db") as g:
        g.register("crm-1", at=datetime(2024, 1, 1, tzinfo=UTC))
    line = quick_fails(tmp_path, "demo")
    assert "identity-graph.db already holds 1 customer(s) that are not the demo's" in line
    assert "'crm-1'" in line and "--db demo.db" in line
    with IdentityGraph.open(tmp_path / "identity-graph.db") as g:
        assert g.customers() == ["crm-1"] and len(list(g.journal())) == 1


@pytest.mark.parametrize("codec", ["rot13", "base64", "no-such-codec"])
@pytest.mark.parametrize("command", ["offline-data", "offline-events", "customers"])
def test_an_encoding_that_is_no_text_encoding_is_one_line_naming_the_option(
    tmp_path: Path, command: str, codec: str
) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    zone = [] if command == "customers" else ["--tz", "UTC"]
    line = quick_fails(tmp_path, "import", command, str(path), *zone, "--encoding", codec, code=2)
    assert line.startswith(
        f"identity-graph: error: Invalid value for '--encoding': '{codec}' is not"
    )


@pytest.mark.parametrize(
    ("name", "option", "fmt"),
    [
        ("c.xlsx", ["--encoding", "cp1252"], "CSV"),
        ("c.xlsx", ["--delimiter", ";"], "CSV"),
        ("c.csv", ["--max-rows", "5"], "XLSX"),
        ("c.csv", ["--max-bytes", "1000"], "XLSX"),
        ("c.csv", ["--sheet", "S"], "XLSX"),
        ("c.tsv", ["--sheet", "S"], "XLSX"),
    ],
)
def test_an_import_option_of_the_other_format_is_a_usage_error(
    tmp_path: Path, name: str, option: list[str], fmt: str
) -> None:
    """An option that does not apply to the file's format would be ignored
    without a word: it is refused, naming the option and its format."""
    path = tmp_path / name
    path.write_bytes(
        sample("customers.xlsx").read_bytes() if fmt == "CSV" else b"Customer ID\nc1\n"
    )
    line = quick_fails(tmp_path, "import", "customers", name, *option, code=2)
    assert f"{option[0]} applies to {fmt} files only" in line and name in line
    assert not (tmp_path / "identity-graph.db").exists()  # refused before the store is opened


@pytest.mark.parametrize("command", [["customers"], ["profiles", "--as-of", "2024-06-30"]])
def test_an_export_sheet_for_a_csv_target_is_a_usage_error(store: Path, command: list[str]) -> None:
    target = f"sheetless-{command[0]}.csv"
    line = quick_fails(store, "export", *command, target, "--sheet", "S", code=2)
    assert "--sheet applies to XLSX files only" in line and target in line
    assert not (store / target).exists()
    # Without --sheet, and with it for a workbook, the exports run.
    quick(store, "export", *command, target)
    quick(store, "export", *command, f"sheeted-{command[0]}.xlsx", "--sheet", "S")
    assert (store / target).exists()


def test_the_row_limit_is_named_as_the_command_line_names_it(store: Path) -> None:
    line = quick_fails(store, "import", "customers", "customers.xlsx", *MAPPING, "--max-rows", "2")
    assert "the sheet has more than 2 data rows, the limit" in line and "--max-rows" in line


# ------------------------------------------------------------------ erasure

SUMMARY = (
    r"erased the customer as erased:[0-9a-f]{32} in journal entry #(\d+): "
    r"(\d+) links?, (\d+) events? and (\d+) merges? went(; .*)?; "
    r"the store was vacuumed and its write-ahead log truncated\n"
)


@pytest.fixture
def demo_store(tmp_path: Path) -> Path:
    """A fresh store of the sample files (the demo's), in ``tmp_path``."""
    code, _out, err = call(tmp_path, "demo")
    assert code == 0, err
    return tmp_path


def _raw_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in folder.glob("identity-graph.db*"))


def test_forget_erases_the_person_and_the_demo_store_still_works(
    demo_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with IdentityGraph.open(demo_store / "identity-graph.db") as g:
        links = g.profile("C-1001").links
        events = g.events("C-1001")
        seq = len(list(g.journal()))
        assert all(len({owner for _, owner in g.history(link)}) == 1 for link in links)
    assert len(links) == 3 and len(events) == 7
    assert b"ann.lee@example.com" in _raw_bytes(demo_store)

    out = ok(demo_store, "forget", "C-1001", "--reason", "request 7")
    found = re.fullmatch(SUMMARY, out)
    assert found is not None, out
    assert found.groups() == (str(seq + 1), "3", "7", "0", None)
    assert "C-1001" not in out
    raw = _raw_bytes(demo_store)
    for gone in (b"ann.lee@example.com", b"+358401234567", b"7001000000001008", b"C-1001"):
        assert gone not in raw, gone
    for event in events:
        assert (event.id or "").encode() not in raw
    assert b"ben.virtanen@example.com" in raw  # the other customers stay

    # Asked again (a retried request): met already, nothing changes; the
    # answer names the person by the id's keyed hash, as the summary did.
    hashed = re.search(r"erased:[0-9a-f]{32}", out)
    assert hashed is not None
    again = f"customer {hashed.group()} was erased already; nothing to do\n"
    assert quick(demo_store, "forget", "C-1001") == again
    assert quick(demo_store, "forget", "customer:C-1001") == again
    assert "UnknownCustomer: customer 'C-1001' is not registered" in quick_fails(
        demo_store, "resolve", "C-1001"
    )
    assert quick(demo_store, "resolve", "email:ann.lee@example.com") == (
        "email:ann.lee@example.com\n"
    )
    # The store works on: every demo command that does not name the person.
    assert "no damage found" in quick(demo_store, "verify")
    for command in NEXT_COMMANDS:
        words = shlex.split(command)
        if "C-1001" in command or "phone:+358401234567" in command:
            continue
        quick(demo_store, *words)
    assert "C-1002" in quick(demo_store, "profile", "C-1002")
    assert "0 events of email:ann.lee@example.com" in quick(
        demo_store, "events", "email:ann.lee@example.com"
    )
    # Importing the sample files again brings nothing of the person back:
    # their rows are rejected, and the refusals name only keyed hashes.
    again = quick(demo_store, "demo")
    assert "SuppressedLink" in again
    refusals = quick(demo_store, "refusals")
    assert "SuppressedLink" in refusals and "erased:" in refusals
    raw = _raw_bytes(demo_store)
    assert b"ann.lee@example.com" not in raw and b"C-1001" not in raw
    with IdentityGraph.open(demo_store / "identity-graph.db") as g:
        assert "C-1001" not in g.customers() and g.suppressed("C-1001")
        assert g.suppressed(Link("email", "ann.lee@example.com"))


def test_release_suppression_lifts_an_id_or_a_link_once(demo_store: Path) -> None:
    quick(demo_store, "forget", "C-1001")
    cases = [
        ("email:ANN.LEE@example.com", "lifted the suppression of link email:ANN.LEE@example.com"),
        ("email:ann.lee@example.com", "link email:ann.lee@example.com is not suppressed"),
        ("C-1001", "lifted the suppression of customer id C-1001"),
        ("customer:C-1001", "customer id C-1001 is not suppressed"),
        ("phone:+358 40 123 4567", "lifted the suppression of link phone:+358 40 123 4567"),
        ("C-1002", "customer id C-1002 is not suppressed"),  # never erased
        ("bogus:x", "link bogus:x is not suppressed"),  # a link name no one used
        ("Email:x", "customer id Email:x is not suppressed"),  # not a link name: an id
    ]
    for ref, said in cases:
        out = quick(demo_store, "release-suppression", ref)
        assert out.startswith(said), (ref, out)
        lifted = out.startswith("lifted")
        assert out.endswith(")\n" if lifted else "; nothing was lifted\n"), out
    with IdentityGraph.open(demo_store / "identity-graph.db") as g:
        assert not g.suppressed("C-1001")
        assert not g.suppressed(Link("email", "ann.lee@example.com"))
        assert not g.suppressed(Link("phone", "+358401234567"))
        assert g.suppressed(Link("loyalty_card", "7001000000001008"))  # never released
        g.link("C-1001", Link("email", "ann.lee@example.com"))  # the person came back
        with pytest.raises(InvalidLink, match="suppressed"):
            g.link("C-1001", Link("loyalty_card", "7001000000001008"))


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["forget", ""], 1, "InvalidCustomerId: customer id '' is empty"),
        (["forget", " "], 1, "InvalidCustomerId: customer id ' ' is empty"),
        (["forget", "customer:"], 1, "InvalidCustomerId: customer id '' is empty"),
        (["forget", "a\x01b"], 1, r"customer id 'a\x01b' contains a control character"),
        (["forget", "a\x00b"], 1, r"customer id 'a\x00b' contains NUL"),
        (["forget", "\u202ec"], 1, "bidirectional format character U+202E"),
        (["forget", "x" * 300], 1, "has 300 characters; at most 256 are allowed"),
        (["forget", "nobody"], 1, "UnknownCustomer: customer 'nobody' is not registered"),
        (
            ["forget", "email:ann.lee@example.com"],
            2,
            "Invalid value for CUSTOMER_ID: 'email:ann.lee@example.com' is a link (email:…), "
            "not a customer id; write customer:email:ann.lee@example.com",
        ),
        (["forget", "C-1001", "--reason", "a\x00b"], 1, "forget reason 'a\\x00b' contains NUL"),
        (["forget"], 2, "Missing argument 'CUSTOMER_ID'"),
        (["release-suppression", ""], 1, "InvalidCustomerId: customer id '' is empty"),
        (["release-suppression", "a\nb"], 1, "contains a control character (U+000A)"),
        (["release-suppression", "email:nope"], 1, "InvalidLink: email 'nope' must contain"),
        (["release-suppression", "phone:12"], 1, "InvalidLink: phone '12'"),
        (["release-suppression"], 2, "Missing argument 'REF'"),
        (
            ["release-suppression", "erased:0123456789abcdef0123456789abcdef"],
            2,
            "is a keyed hash; release-suppression takes the customer id or the link value",
        ),
        (["forget", "C-1001", "--db", "missing.db"], 1, "no store at missing.db"),
        (["release-suppression", "C-1001", "--db", "missing.db"], 1, "no store at missing.db"),
    ],
)
def test_hostile_erasure_input_is_one_line_and_changes_nothing(
    demo_store: Path, args: list[str], code: int, said: str
) -> None:
    before = (demo_store / "identity-graph.db").read_bytes()
    line = quick_fails(demo_store, *args, code=code)
    assert said in line, line
    assert (demo_store / "identity-graph.db").read_bytes() == before
    assert not (demo_store / "missing.db").exists()
    with IdentityGraph.open(demo_store / "identity-graph.db") as g:
        assert "C-1001" in g.customers() and not g.suppressed("C-1001")


def test_forget_summary_counts_merges_and_shared_links(tmp_path: Path) -> None:
    """A merge that held the person goes; a link another customer also held
    stays theirs and is counted as kept, not as gone."""
    t = datetime(2024, 1, 1, tzinfo=UTC)
    with IdentityGraph.open(tmp_path / "identity-graph.db") as g:
        g.link("a", Link("email", "a@example.com"), at=t)
        g.link("a", Link("phone", "+358401111111"), at=t)
        g.link("b", Link("phone", "+358401111111"), at=t.replace(month=2))  # moves to b
        g.merge("a", "b", reason="same person", at=t.replace(month=3))
        g.record(Event("call", at=t.replace(day=2), customer_id="a", id="call-a"))
        g.record(Event("call", at=t.replace(day=3), customer_id="b", id="call-b"))
        seq = len(list(g.journal()))
    out = quick(tmp_path, "forget", "a")
    assert out.endswith(
        f"in journal entry #{seq + 1}: 1 link, 1 event and 1 merge went; "
        "1 shared link kept for its other owners; "
        "the store was vacuumed and its write-ahead log truncated\n"
    ), out
    with IdentityGraph.open(tmp_path / "identity-graph.db") as g:
        assert g.customers() == ["b"]
        assert g.owner(Link("phone", "+358401111111")) == "b"
        assert [e.id for e in g.events("b")] == ["call-b"]
        assert g.profile("b").merge_ids == ()


def test_forget_on_a_store_another_process_holds_open(demo_store: Path) -> None:
    """The command takes the store's write lock like any writer; a process
    that had the store open loads again and sees the person gone."""
    with IdentityGraph.open(demo_store / "identity-graph.db") as other:
        assert other.resolve(Link("email", "ben.virtanen@example.com")) == "C-1002"
        out = ok(demo_store, "forget", "C-1002", "--reason", "request 8")
        assert re.fullmatch(SUMMARY, out), out
        assert "C-1002" not in other.customers()
        assert other.suppressed("C-1002")
        assert other.resolve(Link("email", "ben.virtanen@example.com")) == Link(
            "email", "ben.virtanen@example.com"
        )
        other.register("C-3001")  # and writes on
        again = quick(demo_store, "forget", "C-1002")
        assert again.endswith("nothing to do\n") and "C-1002" not in again
    assert "no damage found" in quick(demo_store, "verify")
    assert quick(demo_store, "resolve", "C-3001") == "C-3001\n"


def test_forget_says_what_each_store_cleared() -> None:
    """Regression: the summary said "the store was vacuumed" whatever the
    store; what PostgreSQL does is checked in tests/stores/test_erasure.py."""
    from identity_graph.cli import _cleared
    from identity_graph.stores.memory import MemoryStore

    memory = IdentityGraph.open("memory:")
    assert isinstance(memory.store, MemoryStore)
    assert (
        _cleared(memory.store)
        == _cleared(None)
        == ("nothing to clear (the graph is kept in memory)")
    )
