"""text.py: the rules every text keeps (valid Unicode, no NUL) and the
stricter rule of identifiers (no control or format characters, NFC)."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity_graph import Event, IdentityGraph, InvalidEvent, Link, codec
from identity_graph.stores import SQLiteStore
from identity_graph.text import (
    MAX_ATTRIBUTE_LENGTH,
    MAX_DATA_DEPTH,
    a_type,
    attribute_problem,
    escape_invalid,
    format_problem,
    identifier_problem,
    nfc,
    text_problem,
)

#: Any code point, surrogates, controls and format characters included.
any_text = st.text(st.characters(exclude_categories=()), max_size=12) | st.text(
    st.sampled_from("a\x00\t\x85\u00ad\u200b\u202e\ufeff\ud800\udfff\U0001f600e\u0301"),
    max_size=6,
)


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@given(any_text)
def test_text_is_accepted_exactly_when_every_store_can_keep_it(text: str) -> None:
    assert (text_problem(text) is None) == _storable(text)


@given(any_text)
def test_an_identifier_holds_no_control_format_or_surrogate_character(text: str) -> None:
    refused = {"Cc", "Cf", "Cs"}
    clean = not any(unicodedata.category(char) in refused for char in text)
    assert (identifier_problem(text) is None) == clean


@given(any_text)
def test_format_problem_finds_format_and_c1_control_characters(text: str) -> None:
    found = any(
        unicodedata.category(char) == "Cf"
        or (unicodedata.category(char) == "Cc" and char >= "\x80")
        for char in text
    )
    assert (format_problem(text) is not None) == found


@given(any_text, st.integers(min_value=0, max_value=8200))
def test_an_attribute_text_keeps_the_text_rule_and_the_length_bound(
    text: str, padding: int
) -> None:
    value = text + "x" * padding
    fits = len(value) <= MAX_ATTRIBUTE_LENGTH
    assert (attribute_problem(value) is None) == (fits and _storable(value))
    if not fits:
        assert f"is {len(value):,} characters long" in (attribute_problem(value) or "")


@given(st.floats() | st.decimals() | st.integers() | st.booleans())
def test_an_attribute_number_must_be_finite(number: float | Decimal | int) -> None:
    # Told by how the number prints: "nan", "-inf", "sNaN12", "-Infinity".
    finite = re.fullmatch(r"[-+]?(s?nan\d*|inf(inity)?)", str(number).lower()) is None
    assert (attribute_problem(number) is None) == finite


@given(any_text.filter(lambda t: text_problem(t) is None))
def test_nfc_is_unicodes_nfc_and_idempotent(text: str) -> None:
    assert nfc(text) == unicodedata.normalize("NFC", text)
    assert nfc(nfc(text)) == nfc(text)


@given(any_text)
def test_escaped_text_is_storable(text: str) -> None:
    escaped = escape_invalid(text)
    assert _storable(escaped)
    if _storable(text):
        assert escaped == text


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("a\x00b", "contains NUL (U+0000) at position 1"),
        ("ab\ud800", "surrogate code point U+D800 at position 2"),
        ("ann\u200b", "U+200B (ZERO WIDTH SPACE) at position 3"),
        ("\u202e1", "U+202E (RIGHT-TO-LEFT OVERRIDE) at position 0"),
        ("a\tb", "control character (U+0009) at position 1"),
    ],
)
def test_a_problem_names_the_character_and_its_position(text: str, phrase: str) -> None:
    problem = text_problem(text) or identifier_problem(text)
    assert problem is not None and phrase in problem


# ------------------------------------------- stores written before the rules

NFC_JOSE = "jos\u00e9@example.com"
NFD_JOSE = "jose\u0301@example.com"
T = datetime(2024, 1, 1, tzinfo=UTC)
LEGACY = "c\u200b1"  # a customer id the rules now refuse


def _legacy_store(path: Path) -> tuple[IdentityGraph, Event]:
    """A SQLite store holding what earlier versions accepted and the rules now
    refuse, written in the stores' row format (unchanged since): a customer
    id with a zero-width space, a link key in NFD, event data with NUL and
    nested 40 levels, on both event paths, and a refusal holding such an event."""
    old = IdentityGraph()  # its journal, decided without the door's checks
    old.state.commit("register", {"customer_id": LEGACY, "attributes": {"n": "a\x00b"}}, T)
    old.state.commit("link", {"customer_id": LEGACY, "link": ("email", NFD_JOSE)}, T)
    old.state.commit("link", {"customer_id": "c2", "link": ("email", NFC_JOSE)}, T)
    deep: object = "bottom"
    for _ in range(39):
        deep = {"k": deep}
    fast = json.dumps(["visit", T.isoformat(), LEGACY, [], {"note": "a\x00b", "deep": deep}, "e1"])
    event = codec.loads_event(fast)
    general = "T" + codec.dumps(attrs.evolve(event, data=event.data, id="e2"))
    store = SQLiteStore(path)
    store.begin(True)
    store.append_journal(
        [
            (seq, rec[0], rec[1].isoformat(), codec.dumps(rec))
            for seq, rec in old.state.journal.records()
        ]
    )
    anchor = codec.dumps_anchor(LEGACY)
    store.append_events(
        [
            ("e1", "visit", T.isoformat(), anchor, fast),
            ("e2", "visit", T.isoformat(), anchor, general),
        ]
    )
    store.append_refusals(
        [(T.isoformat(), "record", "why", codec.dumps({"args": {"event": event}, "error": "X"}))]
    )
    store.commit()
    store.close()
    return old, event


def test_a_store_holding_text_the_rules_now_refuse_opens_as_it_was(tmp_path: Path) -> None:
    # The journal keeps decided values (normalised keys, checked ids) and
    # replay applies them as decided, never through the door: the store
    # opens, and its graph is the one that wrote it.
    old, event = _legacy_store(tmp_path / "g.db")
    with IdentityGraph.open(tmp_path / "g.db") as graph:
        assert graph.state.comparable() == old.state.comparable()
        assert graph.attributes(LEGACY) == {"n": "a\x00b"}
        # The legacy key is kept as stored; new calls name the NFC key.
        assert graph.links(LEGACY) == [Link("email", NFD_JOSE)]
        assert graph.resolve(Link("email", NFD_JOSE)) == "c2"
        # Registered ids stay addressable as stored.
        graph.register(LEGACY, {"city": "Oulu"}, at=T)
        graph.link(LEGACY, Link("crm_id", "7"), at=T)
        stored = graph.events(LEGACY)
        assert [e.id for e in stored] == ["e1", "e2"]
        assert all(e.data == event.data for e in stored)
        assert graph.refusals()[0].args["event"] == event
        # Recording such data again goes through the door, and is refused.
        with pytest.raises(InvalidEvent, match="NUL"):
            graph.record(stored[0])
    with IdentityGraph.open(tmp_path / "g.db") as again:
        assert again.attributes(LEGACY) == {"city": "Oulu", "n": "a\x00b"}


def test_the_codec_reads_data_well_beyond_the_depth_bound() -> None:
    deep: object = 1
    for level in range(8 * MAX_DATA_DEPTH):
        deep = [deep] if level % 2 else {"k": deep}
    text = json.dumps(
        ["visit", T.isoformat(), "c1", [], {"deep": deep}, "e1"], separators=(",", ":")
    )
    event = codec.loads_event(text)
    assert codec.dumps_event(event) == text
    assert codec.loads(codec.dumps(event)) == event
    assert codec.loads_event("T" + codec.dumps(event)) == event
    assert event.content_id().startswith("h-")


def test_a_number_attribute_has_at_most_a_thousand_digits() -> None:
    """Python will not print an int of more than 4,300 digits (so no file or
    store could hold one), and a longer Decimal could not fit a cell."""
    assert attribute_problem(10**1000 - 1) is None
    assert attribute_problem(Decimal("9" * 1000)) is None
    for huge in (10**1000, -(10**5000), Decimal("1" * 1001)):
        problem = attribute_problem(huge)
        assert problem is not None and "more than 1,000 digits" in problem


@pytest.mark.parametrize(
    ("value", "named"),
    [(5, "an int"), ([], "a list"), (1.5, "a float"), (object(), "an object"), (b"", "a bytes")],
)
def test_a_type_names_the_type_with_its_article(value: object, named: str) -> None:
    assert a_type(value) == named
