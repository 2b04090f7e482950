"""Reading and writing single cells: times, numbers, and the formula guard.

Every importer reads its cells through these functions, so one rule holds
across formats: a time stamp is ``YYYY-MM-DD HH:MM:SS`` in a time zone the
caller names (never guessed); money is :class:`~decimal.Decimal`, never
float; a cell that a spreadsheet would evaluate is written with a leading
``'`` and read back without it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InvalidTime
from ..text import MAX_INT_DIGITS
from ..times import RANGE_RULE, utc

__all__ = [
    "FORMULA_TRIGGERS",
    "cell_text",
    "escape_formula",
    "parse_decimal",
    "parse_time",
    "parse_whole",
    "quote_formula",
    "time_zone",
    "unescape_formula",
]

#: First characters that make a spreadsheet treat a cell as a formula (OWASP
#: "CSV injection"): ``=``, ``+``, ``-``, ``@``, tab and carriage return.
FORMULA_TRIGGERS = frozenset("=+-@\t\r")

_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_NUMBER_POINT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_NUMBER_COMMA = re.compile(r"[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)")


#: The most digits a number read from a file may have: the rule of whole
#: numbers everywhere (:data:`identity_graph.text.MAX_INT_DIGITS`).
MAX_WHOLE_DIGITS = MAX_INT_DIGITS

#: Names the zoneinfo database knows that are no time zone of a place.
_NOT_ZONES = frozenset({"localtime", "Factory"})


def time_zone(tz: str | tzinfo) -> tzinfo:
    """``tz`` as a ``tzinfo``: an IANA name (``"Europe/Helsinki"``) or a tzinfo.

    Raises ``ValueError`` for an unknown name; there is no default, because
    the time stamps of these files carry no zone and the library never
    guesses one.
    """
    if isinstance(tz, tzinfo):
        return tz
    if not isinstance(tz, str) or not tz.strip():
        raise ValueError(f"time zone {tz!r}: give a name such as 'Europe/Helsinki' or 'UTC'")
    name = tz.strip()
    if name in _NOT_ZONES:
        # "localtime" is this machine's zone, a guess; "Factory" means "not set".
        raise ValueError(
            f"time zone {tz!r} names no place; give one such as 'Europe/Helsinki' or 'UTC'"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time zone {tz!r} is not a name the zoneinfo database knows "
            "(such as 'Europe/Helsinki' or 'UTC')"
        ) from None


def parse_time(text: str, tz: tzinfo) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` local to ``tz``, as an aware datetime in UTC.

    A time outside the range the library supports (0002-01-01 to
    9999-01-01 UTC) is an :class:`~identity_graph.errors.InvalidTime` (a
    ``ValueError``); a local time that does not exist (the hour skipped when
    clocks go forward) is a ``ValueError``; an ambiguous one (the hour repeated when
    they go back) is read as its first occurrence (``fold=0``), as a till
    that does not record the offset would mean it.  O(1).

    >>> from zoneinfo import ZoneInfo
    >>> parse_time("2024-06-01 12:00:00", ZoneInfo("Europe/Helsinki")).isoformat()
    '2024-06-01T09:00:00+00:00'
    """
    text = text.strip()
    if not _TIME.fullmatch(text):
        raise ValueError(f"time stamp {text!r} is not YYYY-MM-DD HH:MM:SS")
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time stamp {text!r} is not a real date and time") from None
    local = naive.replace(tzinfo=tz)
    try:
        instant = utc(local)
    except InvalidTime:
        raise InvalidTime(f"time stamp {text!r} in {tz}: {RANGE_RULE}") from None
    if tz is not UTC and instant.astimezone(tz).replace(tzinfo=None) != naive:
        raise ValueError(f"time stamp {text!r} does not exist in {tz} (clocks skipped it)")
    return instant


def parse_decimal(text: str, decimal_comma: bool = False) -> Decimal:
    """A number written in plain digits as ``Decimal``; ``ValueError`` otherwise.

    With ``decimal_comma`` a ``,`` may be the decimal separator (``12,50``),
    as in files saved with ``;`` or tab between columns.  Thousands
    separators and exponents are refused rather than guessed at.

    >>> parse_decimal("12,50", decimal_comma=True)
    Decimal('12.50')
    """
    stripped = text.strip()
    if len(stripped) > MAX_WHOLE_DIGITS and sum(c.isdigit() for c in stripped) > MAX_WHOLE_DIGITS:
        raise ValueError(f"{text[:20]!r}… has more than {MAX_WHOLE_DIGITS:,} digits")
    pattern = _NUMBER_COMMA if decimal_comma else _NUMBER_POINT
    if not pattern.fullmatch(stripped):
        raise ValueError(f"{text!r} is not a number{_number_hint(stripped, decimal_comma)}")
    return Decimal(stripped.replace(",", ".") if decimal_comma else stripped)


def _number_hint(text: str, decimal_comma: bool) -> str:
    """Why a number's text was not read, when a common habit explains it."""
    if "e" in text.lower() and any(c.isdigit() for c in text):
        return " (exponents are not read: write the digits)"
    separators = sum(text.count(c) for c in ".,")
    if separators > 1 or (not decimal_comma and "," in text and "." in text):
        return " (thousands separators are not read: write 1000.50, not 1,000.50 or 1.000,50)"
    if "," in text and not decimal_comma:
        return " (with ',' between columns, use '.' as the decimal separator)"
    return ""


def parse_whole(text: str, minimum: int | None = None, decimal_comma: bool = False) -> int:
    """A whole number (``3`` or ``3.0``), at least ``minimum``; ``ValueError`` otherwise."""
    stripped = text.strip()
    # The common case, without a Decimal; a longer text goes to parse_decimal,
    # whose digit bound refuses it before Python's int() would.
    if stripped.isdigit() and stripped.isascii() and len(stripped) <= MAX_WHOLE_DIGITS:
        whole = int(stripped)
    else:
        number = parse_decimal(stripped, decimal_comma)
        if number != number.to_integral_value():
            raise ValueError(f"{text!r} is not a whole number")
        whole = int(number)
    if minimum is not None and whole < minimum:
        raise ValueError(f"{text!r} is less than {minimum}")
    return whole


def escape_formula(text: str, keep_numbers: bool = False) -> str:
    """``text`` made safe for a CSV cell that a spreadsheet will open.

    A value starting with a formula trigger (``= + - @``, tab, CR) gets a
    leading ``'`` (OWASP's advice), and so does a value that already starts
    with ``'``, so that :func:`unescape_formula` gives back exactly the
    original.  With ``keep_numbers`` a plain number (``-5``, ``-12.50``) is
    left as it is, so that a spreadsheet still reads it as a number; that is
    reversible too, since :func:`unescape_formula` only removes a ``'``.

    >>> escape_formula("=1+2"), escape_formula("+358401234567"), escape_formula("Ann")
    ("'=1+2", "'+358401234567", 'Ann')
    >>> escape_formula("-5"), escape_formula("-5", keep_numbers=True)
    ("'-5", '-5')
    """
    if text[:1] in FORMULA_TRIGGERS or text[:1] == "'":
        if keep_numbers and _PLAIN_NUMBER.fullmatch(text):
            return text
        return "'" + text
    return text


def quote_formula(text: str) -> str:
    """``text`` with a ``'`` before a formula trigger, for files that are only
    read by people (rejects): unlike :func:`escape_formula` a leading ``'`` is
    left alone, since nothing reads the file back, and so is a plain number
    such as ``-1`` (as in ``kpis.write_csv``).

    >>> quote_formula("=cmd|' /C calc'!A0"), quote_formula("-1"), quote_formula("'1.5'")
    ("'=cmd|' /C calc'!A0", '-1', "'1.5'")
    """
    if text[:1] in FORMULA_TRIGGERS and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def unescape_formula(text: str) -> str:
    """The inverse of :func:`escape_formula`: drop a ``'`` before a trigger or ``'``.

    A ``'`` before anything else is part of the value (``'t Hooft``).

    >>> unescape_formula("'=1+2"), unescape_formula("'t Hooft")
    ('=1+2', "'t Hooft")
    """
    if text[:1] == "'" and (text[1:2] in FORMULA_TRIGGERS or text[1:2] == "'"):
        return text[1:]
    return text


def cell_text(value: Any) -> str:
    """How a value is written in a CSV cell (before the formula guard).

    ``None`` is empty; dates and times ISO 8601; everything else ``str``.
    The customers importer compares a CSV cell with a stored value through
    this, so a value that went out through export comes back unchanged.
    """
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)
