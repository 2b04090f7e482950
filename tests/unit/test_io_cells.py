"""Single cells (io.cells), card numbers (io.cards) and what every import
shares (io.summary): times never guessed, exact numbers, the formula guard."""

from __future__ import annotations

import csv
import re
import sys
import unicodedata
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity_graph.errors import InvalidTime
from identity_graph.io import ImportSummary, luhn_check_digit, luhn_valid, new_card_number
from identity_graph.io.cells import (
    FORMULA_TRIGGERS,
    escape_formula,
    parse_decimal,
    parse_time,
    parse_whole,
    quote_formula,
    time_zone,
    unescape_formula,
)
from identity_graph.io.summary import Progress, Rejects
from identity_graph.times import EARLIEST, LATEST, RANGE_RULE

HELSINKI = ZoneInfo("Europe/Helsinki")

# ------------------------------------------------------------------ times


def test_local_time_becomes_utc() -> None:
    assert parse_time("2024-06-01 12:00:00", HELSINKI) == datetime(2024, 6, 1, 9, tzinfo=UTC)
    assert parse_time(" 2024-01-01 12:00:00 ", HELSINKI).tzinfo is UTC
    assert parse_time("2024-06-01 12:00:00", timezone(timedelta(hours=-5))).hour == 17


def test_a_skipped_local_time_is_refused_and_a_repeated_one_is_the_first() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        parse_time("2024-03-31 03:30:00", HELSINKI)
    # 2024-10-27 03:30 happens twice in Helsinki: first at +03:00.
    assert parse_time("2024-10-27 03:30:00", HELSINKI) == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["2024-06-01", "2024-06-01T12:00:00", "2024-06-01 12:00", "2024-02-30 12:00:00"]
)
def test_other_time_formats_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="time stamp"):
        parse_time(text, UTC)


@settings(max_examples=200)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
    ).map(lambda at: at.replace(microsecond=0)),
    near_an_end=st.sampled_from([None, 1, 2, 9998, 9999]),
    zone=st.one_of(st.timezones(), st.just(UTC), st.just(timezone(timedelta(hours=14)))),
)
def test_any_time_stamp_in_any_zone_is_a_time_or_a_value_error_naming_it(
    moment: datetime, near_an_end: int | None, zone: tzinfo
) -> None:
    if near_an_end is not None:
        moment = moment.replace(year=near_an_end, day=min(moment.day, 28))
    text = moment.isoformat(sep=" ")
    try:
        at = parse_time(text, zone)
    except InvalidTime as error:  # the supported range, never an OverflowError
        assert str(error) == f"time stamp {text!r} in {zone}: {RANGE_RULE}"
        assert moment.year in (1, 2, 9998, 9999)
    except ValueError as error:
        assert "clocks skipped it" in str(error) and text in str(error)
    else:
        assert EARLIEST <= at <= LATEST and at.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "zone"),
    [("0001-01-01 00:00:00", "Europe/Helsinki"), ("9999-12-31 23:59:59", "America/New_York")],
)
def test_the_ends_of_the_calendar_are_invalid_times(text: str, zone: str) -> None:
    with pytest.raises(InvalidTime, match=re.escape(f"{text!r} in {zone}: {RANGE_RULE}")):
        parse_time(text, ZoneInfo(zone))


def test_time_zones_are_names_or_tzinfo_never_a_default() -> None:
    assert time_zone("Europe/Helsinki") == HELSINKI
    assert time_zone(UTC) is UTC
    # "localtime" is the machine's zone (a guess); "Factory" means "not set".
    for bad in ("", "Not/AZone", "../etc/passwd", 3, "localtime", "Factory", " "):
        with pytest.raises(ValueError, match="time zone") as error:
            time_zone(bad)  # type: ignore[arg-type]
        assert "tz=" not in str(error.value)  # the API's and the command line's words


# ------------------------------------------------------------------ numbers


def test_numbers_are_decimal_and_plain() -> None:
    assert parse_decimal("12.50") == Decimal("12.50")
    assert str(parse_decimal("12.50")) == "12.50"  # the scale is kept
    assert parse_decimal("-3") == Decimal(-3)
    assert parse_decimal("12,5", decimal_comma=True) == Decimal("12.5")
    for bad in ("1e3", "NaN", "Infinity", "1_000", "1,000.00", "", "12.5.1", "0x10"):
        with pytest.raises(ValueError):
            parse_decimal(bad, decimal_comma=True)
    with pytest.raises(ValueError, match="decimal separator"):
        parse_decimal("12,5")


@pytest.mark.parametrize(
    ("text", "decimal_comma", "hint"),
    [
        ("1,5e3", True, "exponents are not read"),
        ("1.5E3", False, "exponents are not read"),
        ("1.000,50", True, "thousands separators"),
        ("1,000.50", False, "thousands separators"),
        ("1,000,000", True, "thousands separators"),
        ("12,50", False, "use '.' as the decimal separator"),
    ],
)
def test_a_number_not_read_says_why(text: str, decimal_comma: bool, hint: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_decimal(text, decimal_comma)
    assert hint in str(error.value)
    if decimal_comma:  # the comma is right there: the hint must not blame it
        assert "decimal separator" not in str(error.value)


def test_whole_numbers() -> None:
    assert parse_whole("3") == 3 and parse_whole("3.0") == 3 and parse_whole("-2") == -2
    for digit in ("٣", "３"):  # Arabic-Indic and full-width digits are not plain digits
        with pytest.raises(ValueError):
            parse_whole(digit)
        with pytest.raises(ValueError):
            parse_decimal(digit)
        with pytest.raises(ValueError):
            parse_time(f"2024-06-01 12:00:0{digit}", UTC)
    with pytest.raises(ValueError, match="whole"):
        parse_whole("2.5")
    with pytest.raises(ValueError, match="less than 1"):
        parse_whole("0", minimum=1)
    # Python will not even print an int of 4,301 digits: said as a rule.
    assert parse_whole("9" * 1000) == 10**1000 - 1
    for many in ("1" * 1001, "1" * 5000, "-" + "1" * 5000):
        with pytest.raises(ValueError, match="more than 1,000 digits") as error:
            parse_whole(many)
        assert "sys.set_int_max_str_digits" not in str(error.value)


# ------------------------------------------------------------------ formula guard


@given(st.text())
def test_escaping_round_trips_and_never_starts_a_formula(text: str) -> None:
    escaped = escape_formula(text)
    assert unescape_formula(escaped) == text
    assert escaped[:1] not in FORMULA_TRIGGERS


@pytest.mark.parametrize("text", ["=1+2", "+358401234567", "-5", "@SUM(A1)", "\tx", "\rx"])
def test_formula_triggers_get_a_quote(text: str) -> None:
    assert escape_formula(text) == "'" + text


def test_a_quote_before_a_plain_letter_is_part_of_the_value() -> None:
    assert unescape_formula("'t Hooft") == "'t Hooft"
    assert escape_formula("'t Hooft") == "''t Hooft"


@given(st.one_of(st.text(), st.decimals(allow_nan=False, allow_infinity=False).map(str)))
def test_escaping_that_keeps_numbers_round_trips_too(text: str) -> None:
    escaped = escape_formula(text, keep_numbers=True)
    assert unescape_formula(escaped) == text
    if escaped[:1] in FORMULA_TRIGGERS:  # only a plain negative number starts so
        assert escaped == text and re.fullmatch(r"-[0-9]+(\.[0-9]+)?", text)
    assert escape_formula("-12.50", keep_numbers=True) == "-12.50"
    assert escape_formula("-1E+2", keep_numbers=True) == "'-1E+2"  # Excel would read a number


def test_quote_formula_is_one_way_and_leaves_numbers() -> None:
    assert quote_formula("=HYPERLINK(x)") == "'=HYPERLINK(x)"
    assert quote_formula("-1.50") == "-1.50"
    assert quote_formula("-1-1") == "'-1-1"
    assert quote_formula("'quoted'") == "'quoted'"


# ------------------------------------------------------------------ cards


@given(st.text("0123456789", min_size=1, max_size=30))
def test_the_check_digit_makes_a_valid_number(digits: str) -> None:
    assert luhn_valid(digits + luhn_check_digit(digits))


@given(st.text("0123456789", min_size=5, max_size=20), st.data())
def test_any_single_wrong_digit_is_caught(digits: str, data: st.DataObject) -> None:
    number = digits + luhn_check_digit(digits)
    position = data.draw(st.integers(0, len(number) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    assert not luhn_valid(number[:position] + wrong + number[position + 1 :])


def test_known_luhn_numbers() -> None:
    assert luhn_valid("4539578763621486")  # a well-known test card number
    assert not luhn_valid("4539578763621487")
    assert not luhn_valid("1") and not luhn_valid("12a4")


def test_new_card_numbers() -> None:
    numbers = {new_card_number("70", 16) for _ in range(200)}
    assert len(numbers) == 200
    assert all(len(n) == 16 and n.startswith("70") and luhn_valid(n) for n in numbers)
    with pytest.raises(ValueError, match="at least 6"):
        new_card_number("1234567890", 12)
    with pytest.raises(ValueError, match="digits"):
        new_card_number("A1")


# ------------------------------------------------------------------ summary and rejects


def test_summary_counts_add_up() -> None:
    summary = ImportSummary(read=5, imported=2, unchanged=2, rejected=1)
    assert str(summary) == "read 5, imported 2, unchanged 2, rejected 1"
    with pytest.raises(ValueError, match="read 5 !="):
        ImportSummary(read=5, imported=2, unchanged=2, rejected=0)
    with pytest.raises(ValueError, match="count"):
        ImportSummary(read=-1, imported=-1, unchanged=0, rejected=0)
    with pytest.raises(AttributeError):
        summary.read = 6  # type: ignore[misc]


def test_rejects_are_sorted_guarded_and_counted_by_row(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Rejects(path) as rejects:
        rejects.add(5, [("Email", "=cmd|' /C calc'!A0", "bad"), ("Phone", "-1", "bad too")])
        rejects.add(2, [("", "", "+ a reason")])
    assert rejects.rows == 2
    with open(path, newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [
            ["row", "column", "value", "reason"],
            ["2", "", "", "'+ a reason"],
            ["5", "Email", "'=cmd|' /C calc'!A0", "bad"],
            ["5", "Phone", "-1", "bad too"],
        ]
    counted = Rejects(None)
    counted.add(1, [("", "", "x")])
    counted.close()
    assert counted.rows == 1


_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text())
def test_any_rejected_value_is_written_readable(tmp_path: Path, value: str) -> None:
    """A rejects file holds no raw NUL (which stops many CSV readers), no
    other control character but tab and line breaks, no invisible or
    bidirectional format character (which would hide why an identifier was
    refused) and no lone surrogate (which UTF-8 cannot hold); any other text
    is written as it was."""
    path = tmp_path / "r.csv"
    with Rejects(path) as rejects:
        rejects.add(2, [("Col", value, "why")])
    text = path.read_text(encoding="utf-8")
    assert not _UNWRITABLE.search(text)
    with open(path, newline="", encoding="utf-8") as handle:
        (_header, row) = list(csv.reader(handle))
    hidden = any(c > "\x7f" and unicodedata.category(c) in ("Cc", "Cf") for c in value)
    assert not any(c > "\x7f" and unicodedata.category(c) in ("Cc", "Cf") for c in row[2])
    if not _UNWRITABLE.search(value) and not hidden:
        assert row[2] in (value, "'" + value)  # as it was (a formula gets its ')


def test_an_unwritable_character_is_written_as_python_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with Rejects(path) as rejects:
        rejects.add(2, [("Customer ID", "c\x001\ud800\x7f", "control \x01 character")])
    with open(path, newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle))[1] == [
            "2",
            "Customer ID",
            "c\\x001\\ud800\\x7f",
            "control \\x01 character",
        ]


def test_progress_is_off_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with Progress("x", 100, 10 * 2**20) as bar:
        assert not bar.shown
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with Progress("x", 100, 100) as bar:
        assert not bar.shown  # a short file draws nothing
    with Progress("x", 100, 10 * 2**20) as bar:
        assert bar.shown
        bar.update(50)
    with Progress("x", 100, 100, enabled=True) as bar:
        assert bar.shown


def test_importing_io_loads_no_spreadsheet_or_terminal_library() -> None:
    import subprocess

    code = (
        "import sys, identity_graph.io\n"
        "print(','.join(m for m in ('openpyxl', 'rich', 'click') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_a_number_cell_has_at_most_a_thousand_digits() -> None:
    assert parse_decimal("9" * 500 + "." + "9" * 500) == Decimal("9" * 500 + "." + "9" * 500)
    for many in ("1" * 1001, "1" * 5000, "0." + "1" * 1001, "1" * 600 + "," + "1" * 600):
        with pytest.raises(ValueError, match="more than 1,000 digits"):
            parse_decimal(many, decimal_comma=True)
