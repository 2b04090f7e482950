"""``import offline-data`` on the command line: per-line columns (``--item-field``)
reach the brand and seller indicators; column names match however spelt."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from identity_graph.cli import main

# Two tickets of c1 (four brands in all, two on the first ticket), one of c2.
HEADER = (
    "Time Stamp;Customer ID;Event Type;Category;Event Name;Num1;Num2;Var 1;Var 2;"
    "EventName Attr1;EventTransaction Attr1"
)
DATA = f"""\
{HEADER}
2024-03-01 10:15:00;c1;7;Coffee;SKU-1;2;7,80;HEL;Mia;Paulig;T-1
2024-03-01 10:15:00;c1;7;Bakery;SKU-2;1;3,20;HEL;Ola;Fazer;T-1
2024-03-20 12:00:00;c1;7;Coffee;SKU-3;1;5,00;HEL;Mia;Juhla;T-2
2024-03-20 12:00:00;c1;7;Tea;SKU-4;1;4,00;HEL;Mia;Lipton;T-2
2024-01-05 09:00:00;c2;7;Tea;SKU-4;1;4,00;TKU;Ola;Lipton;T-3
"""


def run(*args: str) -> tuple[int, str, str]:
    """The command line in this process: exit code, stdout, stderr."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        pytest.raises(SystemExit) as exit_,
    ):
        main(list(args))
    code = exit_.value.code
    assert "Traceback" not in err.getvalue()
    return code if isinstance(code, int) else 0, out.getvalue(), err.getvalue()


def imported(tmp_path: Path, *options: str) -> tuple[int, str, str]:
    path = tmp_path / "sales.csv"
    path.write_text(DATA, encoding="utf-8")
    return run(
        "import",
        "offline-data",
        str(path),
        "--tz",
        "Europe/Helsinki",
        "--db",
        str(tmp_path / "g.db"),
        "--rejects",
        str(tmp_path / "rejects.csv"),
        *options,
    )


def indicators(tmp_path: Path) -> dict[str, dict[str, str]]:
    out = tmp_path / "kpis.csv"
    code, _, err = run(
        "kpis", "--as-of", "2024-03-31", "--out", str(out), "--db", str(tmp_path / "g.db")
    )
    assert code == 0, err
    with open(out, newline="", encoding="utf-8") as handle:
        return {row["Profile_ID"]: row for row in csv.DictReader(handle)}


def test_item_fields_fill_the_brand_and_seller_indicators(tmp_path: Path) -> None:
    code, out, err = imported(
        tmp_path,
        "--item-field",
        "EventName Attr1=brand",
        "--item-field",
        "var_2=seller",  # matched however it is spelt
        "--ticket-field",
        "Var1=store",
    )
    assert code == 0, err
    assert out.startswith("sales.csv: read 5, imported 5, unchanged 0, rejected 0")
    rows = indicators(tmp_path)
    c1, c2 = rows["c1"], rows["c2"]
    assert c1["Total_Brands"] == "4"  # Paulig, Fazer, Juhla, Lipton
    # T-1 is 31 days before the end of the as-of day: outside the 30 days.
    assert c1["Brands_30_Days"] == "2" and c1["Brands_60_Days"] == "4"
    assert c1["Last_Purchase_Brands"] == "Juhla|Lipton"
    # Sellers are listed for the latest ticket; they have no per-window count.
    assert c1["Last_Purchase_Sellers"] == "Mia"
    # Categories come from the Category column, with or without item fields.
    assert c1["Total_Categories"] == "3" and c1["Last_Purchase_Categories"] == "Coffee|Tea"
    assert c1["Total_Stores"] == "HEL"
    assert c2["Total_Brands"] == "1" and c2["Brands_30_Days"] == "0"
    assert c2["Brands_90_Days"] == "1" and c2["Last_Purchase_Sellers"] == "Ola"


def test_without_item_fields_no_brand_is_counted(tmp_path: Path) -> None:
    code, _, err = imported(tmp_path)
    assert code == 0, err
    c1 = indicators(tmp_path)["c1"]
    assert c1["Total_Brands"] == "0" and c1["Last_Purchase_Sellers"] == ""
    assert c1["Total_Categories"] == "3"


def test_a_ticket_field_cannot_hold_two_brands_of_one_ticket(tmp_path: Path) -> None:
    code, out, err = imported(tmp_path, "--ticket-field", "EventName Attr1=brand")
    assert code == 0, err
    assert "rejected 4" in out  # both tickets of c1: their lines disagree
    reasons = (tmp_path / "rejects.csv").read_text(encoding="utf-8")
    assert "EventName Attr1 is 'Paulig' on another line" in reasons


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("Var2=category", "the field must be a name other than ['category'"),
        ("Num1=brand", "'Num1' is not one of Var1-Var5, EventName Attr1-Attr10"),
        ("brand", "'brand' must be COLUMN=NAME"),
    ],
)
def test_a_bad_item_field_is_one_line(tmp_path: Path, option: str, words: str) -> None:
    code, _, err = imported(tmp_path, "--item-field", option)
    assert code == 2  # a usage error, found before the file is read
    (line,) = err.strip().splitlines()
    assert line.startswith("identity-graph: error: ") and words in line
    # Named as the command line names it, not as the Python argument.
    assert "--item-field" in line and "item_fields" not in line


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--ticket-field", "Num1=store"], "--ticket-field: 'Num1' is not one of"),
        (["--event-type", "7=visit"], "--event-type: code '7' must be a number other than 7"),
        (["--event-type", "3=purchase"], "--event-type: code '3' cannot be typed 'purchase'"),
    ],
)
def test_options_are_named_as_the_command_line_names_them(
    tmp_path: Path, options: list[str], words: str
) -> None:
    code, _, err = imported(tmp_path, *options)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert words in line and "_fields" not in line and "event_types" not in line


def test_two_spellings_of_one_item_column_are_refused(tmp_path: Path) -> None:
    code, _, err = imported(tmp_path, "--item-field", "Var2=seller", "--item-field", "VAR 2=brand")
    assert code == 2
    assert "--item-field: 'Var2' and 'VAR 2' name one column twice" in err


def test_an_item_field_the_file_lacks_is_one_line(tmp_path: Path) -> None:
    code, _, err = imported(tmp_path, "--item-field", "Var3=brand")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "the item field(s) Var3=" in line and "name column(s) that the header lacks" in line
