"""The rules every text the library takes must keep, checked once at the door.

Every store must be able to keep what memory accepts, so one rule holds for
all text — customer ids, link names and values, attribute names and values,
event types, ids and data (keys and strings), merge reasons:

- **valid Unicode**: no surrogate code point (U+D800–U+DFFF).  A Python
  string may hold one alone (from ``surrogateescape`` decoding or a
  mis-sliced UTF-16 pair), but it has no UTF-8 form, so no store could write
  it;
- **no NUL** (U+0000): PostgreSQL's text type cannot hold it.

An **identifier** — a customer id or a link value, text that decides who
is who — must besides be NFC-normalised by the library and hold no
control character (Unicode category Cc) and no *format* character
(category Cf: the invisible U+200B–U+200F, U+2060–U+2064, U+FEFF, soft
hyphen, and the bidirectional controls U+202A–U+202E, U+2066–U+2069…).
Two identifiers that look the same must be the same, or be refused: the
idea of Unicode's security mechanisms (UTS #39) and of the PRECIS
identifier class (RFC 8264), which also normalise to NFC and disallow such
characters in identifiers.

Event data may nest mappings and lists at most :data:`MAX_DATA_DEPTH`
levels deep (the data mapping itself is level 1).

An **attribute value** that is text may hold at most
:data:`MAX_ATTRIBUTE_LENGTH` characters, and one that is a number (a
``float`` or a ``Decimal``) must be finite (:func:`attribute_problem`): so
that every value a graph holds can be written to a spreadsheet and read
back as it was.

Every check is O(len(text)); ASCII text without NUL (the common case) is
answered by two C calls.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal

__all__ = [
    "MAX_ATTRIBUTE_LENGTH",
    "MAX_DATA_DEPTH",
    "MAX_INT_DIGITS",
    "a_type",
    "ascii_control",
    "attribute_problem",
    "escape_invalid",
    "format_problem",
    "identifier_problem",
    "nfc",
    "text_problem",
]

#: How deep event data may nest mappings and lists (the data mapping is level 1).
MAX_DATA_DEPTH = 32
#: The most characters an attribute's text value may hold.  Any such value
#: fits one spreadsheet cell (Excel's limit is 32,767 characters) even when
#: an XLSX file must write every one of its characters as a seven-character
#: ``_xHHHH_`` escape: 4,096 x 7 = 28,672.  Customer ids (256) and link
#: values (1,024) are shorter still.
MAX_ATTRIBUTE_LENGTH = 4096

_SURROGATE = re.compile("[\ud800-\udfff]")
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INVALID = re.compile("[\x00\ud800-\udfff]")

#: The first ASCII control character (NUL included) of a text, as a match,
#: or None.  ASCII text is valid Unicode, in NFC and without format
#: characters, so for a text whose ``isascii()`` is true this one scan is
#: the whole identifier rule: the callers' fast path.  O(len(text)).
ascii_control = _ASCII_CONTROL.search


def _name(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def text_problem(text: str) -> str | None:
    """What breaks the text rule in ``text`` (a phrase such as "contains NUL
    (U+0000)"), or None.  O(len(text))."""
    if "\x00" in text:
        return f"contains NUL (U+0000) at position {text.index(chr(0))}; text may not hold NUL"
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"contains the surrogate code point U+{ord(found.group()):04X} at position "
        f"{found.start()}, which is not valid Unicode (it has no UTF-8 form)"
    )


#: The most digits a whole number (in event data, an attribute, a file's
#: cell) may have: far beyond any quantity or id, and within what Python,
#: JSON and every store print and read back (Python will not print an int
#: of more than 4,300 digits).
MAX_INT_DIGITS = 1_000
_INT_BOUND = 10**MAX_INT_DIGITS


def attribute_problem(value: object) -> str | None:
    """What keeps ``value`` from being an attribute's value, as a phrase that
    follows the value ("is 40,000 characters long; …", "contains NUL …"), or
    None: text must keep the text rule and hold at most
    :data:`MAX_ATTRIBUTE_LENGTH` characters; a ``float`` or ``Decimal`` must
    be finite (NaN and infinities have no spreadsheet cell: XLSX writes
    them as nothing, CSV as the text ``nan``).  Other types are not looked
    at.  O(len(value)) for text, else O(1).
    """
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTE_LENGTH:
            return (
                f"is {len(value):,} characters long; an attribute's text may hold at most "
                f"{MAX_ATTRIBUTE_LENGTH:,} characters (so that any value fits one "
                "spreadsheet cell)"
            )
        return text_problem(value)
    if (isinstance(value, float) and not math.isfinite(value)) or (
        isinstance(value, Decimal) and not value.is_finite()
    ):
        return "is not a finite number; a number attribute may not be NaN or infinite"
    if (type(value) is int and not -_INT_BOUND < value < _INT_BOUND) or (
        isinstance(value, Decimal) and len(value.as_tuple().digits) > MAX_INT_DIGITS
    ):
        return (
            f"has more than {MAX_INT_DIGITS:,} digits; a number attribute may have at most "
            "that many"
        )
    return None


def identifier_problem(text: str) -> str | None:
    """What breaks the identifier rule in ``text``: the text rule, a control
    character (Cc) or a format character (Cf); or None.  O(len(text))."""
    found = _ASCII_CONTROL.search(text)
    if found is not None:
        return (
            f"contains a control character ({_name(found.group())}) at position "
            f"{found.start()}; identifiers may hold none"
        )
    if text.isascii():
        return None
    problem = text_problem(text)
    if problem is not None:
        return problem
    return format_problem(text)


def format_problem(text: str) -> str | None:
    """A format character (Cf: invisible or bidirectional) in ``text``, as a
    phrase, or None.  O(len(text)); ASCII text has none."""
    if text.isascii():
        return None
    category = unicodedata.category
    for position, char in enumerate(text):
        if char >= "\x80":
            kind = category(char)
            if kind == "Cc":
                return (
                    f"contains a control character ({_name(char)}) at position {position}; "
                    "identifiers may hold none"
                )
            if kind == "Cf":
                return (
                    f"contains the invisible or bidirectional format character {_name(char)} "
                    f"at position {position}; identifiers may hold none, so that two that "
                    "look the same are the same"
                )
    return None


def nfc(text: str) -> str:
    """``text`` in Unicode normalisation form C (composed: one ``é``, not
    ``e`` and a combining accent).  O(len(text)); ASCII text as it is."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def escape_invalid(text: str) -> str:
    """``text`` with NUL and surrogates written as ``\\uXXXX`` escapes: for
    messages and logs about refused text, which must be storable themselves."""
    if "\x00" not in text and text.isascii():
        return text
    return _INVALID.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def a_type(value: object) -> str:
    """The type of ``value`` named with its article, for messages: ``an
    int``, ``a list``, ``an Event``.  O(1)."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
