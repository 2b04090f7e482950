"""Customer ids, links, link types, normalisers and blocklists."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity_graph import (
    DEFAULT_BLOCKLIST,
    BlockedLink,
    IdentityGraph,
    InvalidCustomerId,
    InvalidLink,
    Link,
    LinkType,
    default_blocklist,
)
from identity_graph.ids import LinkTypes, check_customer_id

T = datetime(2024, 1, 1, tzinfo=UTC)


def norm(name: str, value: str, **config: object) -> str:
    return IdentityGraph(**config).normalize(Link(name, value)).value  # type: ignore[arg-type]


# --- customer ids -----------------------------------------------------------------


def test_customer_id_is_stripped() -> None:
    assert check_customer_id("  c1 \t") == "c1"


def test_customer_id_inner_space_kept() -> None:
    assert check_customer_id(" ann smith ") == "ann smith"


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_customer_id_empty(value: str) -> None:
    with pytest.raises(InvalidCustomerId, match=r"customer id .* is empty"):
        check_customer_id(value)


def test_customer_id_256_chars_ok_257_refused() -> None:
    assert check_customer_id("x" * 256) == "x" * 256
    with pytest.raises(InvalidCustomerId, match=r"customer id 'xxx.*257 characters.*at most 256"):
        check_customer_id("x" * 257)


def test_customer_id_length_counted_after_strip() -> None:
    assert check_customer_id(" " + "x" * 256 + " ") == "x" * 256


@pytest.mark.parametrize("value", ["c\x001", "c\n1", "c\x7f1", "c\x851"])
def test_customer_id_control_character(value: str) -> None:
    with pytest.raises(InvalidCustomerId, match=r"customer id .* (control character|NUL)"):
        check_customer_id(value)


@pytest.mark.parametrize("value", [5, None, b"c1", ("c1",)])
def test_customer_id_not_a_string(value: object) -> None:
    with pytest.raises(InvalidCustomerId, match=rf"customer id {re.escape(repr(value))}.*string"):
        check_customer_id(value)


def test_invalid_customer_id_is_value_error() -> None:
    with pytest.raises(ValueError):
        check_customer_id("")


def test_graph_stores_stripped_customer_id() -> None:
    g = IdentityGraph()
    g.register("  c1  ", at=T)
    assert g.customers() == ["c1"]
    assert g.resolve(" c1 ") == "c1"


# --- Link -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["email", "phone", "crm_id", "x", "a1_b2"])
def test_link_name_allowed(name: str) -> None:
    assert Link(name, "v").name == name


@pytest.mark.parametrize("name", ["Email", "1abc", "_x", "e-mail", "", "crm id", "é"])
def test_link_name_refused(name: str) -> None:
    with pytest.raises(InvalidLink, match=rf"link name {re.escape(repr(name))}.*\[a-z\]"):
        Link(name, "v")


def test_link_name_not_a_string() -> None:
    with pytest.raises(InvalidLink, match=r"link name 5 is not allowed"):
        Link(5, "v")  # type: ignore[arg-type]


def test_link_value_not_a_string() -> None:
    with pytest.raises(InvalidLink, match=r"crm_id value 5 is an int.*strings"):
        Link("crm_id", 5)  # type: ignore[arg-type]


def test_link_key_str_and_equality() -> None:
    link = Link("email", "a@b.fi")
    assert link.key == ("email", "a@b.fi")
    assert str(link) == "email:a@b.fi"
    assert link == Link("email", "a@b.fi")
    assert link != Link("email", "A@b.fi")
    assert hash(link) == hash(Link("email", "a@b.fi"))
    assert sorted([Link("phone", "1"), Link("email", "z")])[0].name == "email"


def test_link_is_frozen() -> None:
    link = Link("email", "a@b.fi")
    with pytest.raises(AttributeError):
        link.value = "x"  # type: ignore[misc]


# --- email ------------------------------------------------------------------------


def test_email_trimmed_and_lower_cased() -> None:
    assert norm("email", "  Ann.Smith@Example.COM ") == "ann.smith@example.com"


def test_normalize_returns_link_with_same_name() -> None:
    assert IdentityGraph().normalize(Link("email", "A@B.fi")) == Link("email", "a@b.fi")


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("ann.example.com", "exactly one '@'"),
        ("ann@b@example.com", "exactly one '@'"),
        ("@example.com", "empty local part"),
        ("ann@example", "domain with a dot"),
        ("ann@example.", "domain with a dot"),
        ("ann@.com", "domain with a dot"),
        ("ann@example..com", "domain with a dot"),
        ("an n@example.com", "white space"),
    ],
)
def test_email_invalid_forms(value: str, rule: str) -> None:
    with pytest.raises(InvalidLink, match=rf"email {re.escape(repr(value))}.*{re.escape(rule)}"):
        norm("email", value)


def test_invalid_email_is_not_blocked() -> None:
    with pytest.raises(InvalidLink) as info:
        norm("email", "ann.example.com")
    assert not isinstance(info.value, BlockedLink)


# --- phone ------------------------------------------------------------------------


def test_phone_international_to_e164() -> None:
    assert norm("phone", "+358 40 123 4567") == "+358401234567"


def test_phone_national_with_default_region() -> None:
    assert norm("phone", "040 123 4567", default_region="FI") == "+358401234567"


def test_phone_international_ignores_default_region() -> None:
    assert norm("phone", "+44 7777 777778", default_region="FI") == "+447777777778"


def test_phone_national_without_region_is_invalid() -> None:
    with pytest.raises(
        InvalidLink, match=r"phone '040 123 4567' cannot be parsed.*no default region"
    ):
        norm("phone", "040 123 4567")


@pytest.mark.parametrize("value", ["hello", "+358 1"])
def test_phone_unparseable(value: str) -> None:
    with pytest.raises(InvalidLink, match=rf"phone {re.escape(repr(value))} cannot be parsed"):
        norm("phone", value)


@pytest.mark.parametrize("value", ["+1 234", "+1 234 567 890 123 45"])
def test_phone_impossible_number(value: str) -> None:
    with pytest.raises(InvalidLink, match=rf"phone {re.escape(repr(value))} is not a possible"):
        norm("phone", value)


# --- loyalty card and other names -------------------------------------------------


def test_loyalty_card_spaces_dashes_removed_upper_cased() -> None:
    assert norm("loyalty_card", " ab-12 34-cd ") == "AB1234CD"


def test_loyalty_card_four_characters_is_enough() -> None:
    assert norm("loyalty_card", "a-b c-d") == "ABCD"


def test_loyalty_card_too_short() -> None:
    with pytest.raises(InvalidLink, match=r"loyalty_card 'a-b c' has 3 characters.*at least 4"):
        norm("loyalty_card", "a-b c")


def test_other_name_trimmed_case_kept() -> None:
    assert norm("crm_id", "  AbC 12 ") == "AbC 12"


def test_other_name_empty_is_invalid() -> None:
    # An empty value is refused; whether as blocked (it fully matches ^[0-]*$)
    # or merely invalid, it is an InvalidLink naming the link.
    with pytest.raises(InvalidLink, match=r"crm_id '\s*'"):
        norm("crm_id", "   ")


def test_value_too_long() -> None:
    with pytest.raises(InvalidLink, match=r"crm_id value of 1025 characters.*at most 1024"):
        norm("crm_id", "x" * 1025)
    assert norm("crm_id", "x" * 1024) == "x" * 1024


def test_normalised_value_with_control_character() -> None:
    with pytest.raises(InvalidLink, match=r"crm_id 'a\\x01b' contains a control character"):
        norm("crm_id", "a\x01b")
    with pytest.raises(InvalidLink, match=r"crm_id 'a\\x00b' contains NUL"):
        norm("crm_id", "a\x00b")


# --- default blocklists -----------------------------------------------------------

COMMON_PLACEHOLDERS = ["null", "NULL", " None ", "nil", "undefined", "Unknown", "anonymous"]
COMMON_PLACEHOLDERS += ["N/A", "-1", "0", "0000", "00-00", "---"]


@pytest.mark.parametrize("value", COMMON_PLACEHOLDERS)
@pytest.mark.parametrize("name", ["email", "phone", "loyalty_card", "crm_id"])
def test_common_placeholders_blocked(name: str, value: str) -> None:
    with pytest.raises(BlockedLink, match=rf"{name} {re.escape(repr(value))} .*blocklist"):
        norm(name, value)


@pytest.mark.parametrize(
    "value",
    [
        "test@test.com",
        "TEST@Test.com",
        "noemail@example.com",
        "no-email@shop.fi",
        "no_mail@shop.fi",
        "noreply@shop.fi",
        "no-reply@shop.fi",
        "donotreply@shop.fi",
        "ann@noemail.com",
        "ann@invalid",
        "unknown@shop.fi",
    ],
)
def test_email_placeholders_blocked(value: str) -> None:
    with pytest.raises(BlockedLink, match=rf"email {re.escape(repr(value))}.*email blocklist"):
        norm("email", value)


@pytest.mark.parametrize("value", ["ann@example.com", "noel@example.com", "nora@shop.fi"])
def test_real_emails_not_blocked(value: str) -> None:
    assert norm("email", value) == value


@pytest.mark.parametrize("value", ["+358 111 111 111", "+44 7777 777777", "+1 222 222 2222"])
def test_phone_repeated_national_digit_blocked(value: str) -> None:
    with pytest.raises(BlockedLink, match=rf"phone {re.escape(repr(value))}.*_repeated_digit"):
        norm("phone", value)


def test_phone_repeated_digit_blocked_after_normalising() -> None:
    # "0111111111" is not one repeated digit, but its national number 111111111 is.
    with pytest.raises(BlockedLink, match=r"phone '0111111111' \(normalised '\+358111111111'\)"):
        norm("phone", "0111111111", default_region="FI")


def test_phone_with_varied_digits_not_blocked() -> None:
    assert norm("phone", "+358 40 111 1111") == "+358401111111"


def test_blocklist_checked_before_normalising() -> None:
    # "NULL" is not a valid email, but it is blocked first.
    with pytest.raises(BlockedLink, match=r"email 'NULL'.*blocklist"):
        norm("email", "NULL")
    with pytest.raises(BlockedLink, match=r"loyalty_card '-1'.*blocklist"):
        norm("loyalty_card", "-1")  # would otherwise be too short


def test_blocklist_checked_again_after_normalising() -> None:
    # spaces keep the raw value out of ^[0-]*$; the normalised "0000" is blocked
    with pytest.raises(BlockedLink, match=r"loyalty_card '0 0 0 0' \(normalised '0000'\)"):
        norm("loyalty_card", "0 0 0 0")


def test_blocked_link_is_invalid_link_and_value_error() -> None:
    with pytest.raises(InvalidLink):
        norm("email", "null")
    with pytest.raises(ValueError):
        norm("email", "null")


def test_default_blocklist_function() -> None:
    assert default_blocklist("email") == DEFAULT_BLOCKLIST["email"]
    assert default_blocklist("phone") == DEFAULT_BLOCKLIST["phone"]
    assert "null" in default_blocklist("crm_id")
    assert "test@test.com" not in default_blocklist("crm_id")
    assert "test@test.com" in default_blocklist("email")


# --- configured blocklists --------------------------------------------------------


def test_configured_literal_case_insensitive() -> None:
    config = {"link_types": {"crm_id": LinkType(blocklist=("Walk-In",))}}
    with pytest.raises(BlockedLink, match=r"crm_id 'WALK-IN'.*the literal 'walk-in'"):
        norm("crm_id", "WALK-IN", **config)


def test_configured_blocklist_replaces_default() -> None:
    config = {"link_types": {"crm_id": LinkType(blocklist=("walk-in",))}}
    assert norm("crm_id", "null", **config) == "null"


def test_configured_blocklist_extends_default() -> None:
    entries = (*default_blocklist("email"), "ann@example.com")
    config = {"link_types": {"email": LinkType(blocklist=entries)}}
    with pytest.raises(BlockedLink, match=r"email 'Ann@Example.com'.*the literal"):
        norm("email", "Ann@Example.com", **config)
    with pytest.raises(BlockedLink, match=r"email 'null'"):
        norm("email", "null", **config)
    assert norm("email", "bob@example.com", **config) == "bob@example.com"


def test_empty_blocklist_allows_everything() -> None:
    config = {"link_types": {"crm_id": LinkType(blocklist=())}}
    assert norm("crm_id", "null", **config) == "null"


def test_configured_pattern_full_match_on_case_folded_value() -> None:
    config = {"link_types": {"crm_id": LinkType(blocklist=(re.compile(r"tmp-\d+"),))}}
    with pytest.raises(BlockedLink, match=r"crm_id 'TMP-42'.*the pattern 'tmp-\\\\d\+'"):
        norm("crm_id", "TMP-42", **config)
    # full match, not search
    assert norm("crm_id", "xtmp-42", **config) == "xtmp-42"


def test_configured_predicate() -> None:
    def is_shop_test_card(value: str) -> bool:
        return value.startswith("99")

    config = {"link_types": {"loyalty_card": LinkType(blocklist=(is_shop_test_card,))}}
    with pytest.raises(BlockedLink, match=r"loyalty_card '9912 3456'.*is_shop_test_card"):
        norm("loyalty_card", "9912 3456", **config)
    assert norm("loyalty_card", "1299 3456", **config) == "12993456"


def test_blocklist_entry_of_wrong_type() -> None:
    g = IdentityGraph(link_types={"crm_id": LinkType(blocklist=(5,))})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"blocklist entry 5 is not a string, pattern or predicate"):
        g.normalize(Link("crm_id", "x"))


def test_link_type_blocklist_converted_to_tuple() -> None:
    assert LinkType(blocklist=["a", "b"]).blocklist == ("a", "b")  # type: ignore[arg-type]
    assert LinkType().blocklist is None


# --- custom normalise, LinkType validation ----------------------------------------


def test_custom_normalize() -> None:
    config = {"link_types": {"crm_id": LinkType(normalize=lambda v: v.strip().upper())}}
    assert norm("crm_id", " ab12 ", **config) == "AB12"


def test_custom_normalize_replaces_builtin() -> None:
    config = {"link_types": {"email": LinkType(normalize=str.strip)}}
    assert norm("email", " Not An Email ", **config) == "Not An Email"


def test_custom_normalize_value_error_reported_as_invalid_link() -> None:
    def digits_only(value: str) -> str:
        if not value.isdigit():
            raise ValueError("digits only")
        return value

    config = {"link_types": {"crm_id": LinkType(normalize=digits_only)}}
    with pytest.raises(InvalidLink, match=r"crm_id 'ab' is not valid: digits only"):
        norm("crm_id", "ab", **config)


def test_custom_normalize_result_is_checked_against_blocklist() -> None:
    config = {"link_types": {"crm_id": LinkType(normalize=lambda v: "unknown")}}
    with pytest.raises(BlockedLink, match=r"crm_id 'abc' \(normalised 'unknown'\)"):
        norm("crm_id", "abc", **config)


@pytest.mark.parametrize("conflict", ["move", "merge", "reject", None])
def test_link_type_conflict_allowed(conflict: str | None) -> None:
    assert LinkType(conflict=conflict).conflict == conflict  # type: ignore[arg-type]


@pytest.mark.parametrize("conflict", ["Move", "fail", "", 1])
def test_link_type_conflict_refused(conflict: object) -> None:
    with pytest.raises(
        ValueError, match=rf"LinkType conflict {re.escape(repr(conflict))} must be 'move'"
    ):
        LinkType(conflict=conflict)  # type: ignore[arg-type]


def test_link_type_defaults_resolved() -> None:
    types = LinkTypes()
    email = types.get("email")
    assert email.conflict == "move"
    assert email.max_per_customer is None
    assert email.priority == 1
    assert types.get("loyalty_card").priority == 0
    assert types.get("phone").priority == 2
    assert types.get("crm_id").priority is None


def test_link_type_none_fields_keep_defaults() -> None:
    types = LinkTypes({"email": LinkType(max_per_customer=1)})
    email = types.get("email")
    assert email.max_per_customer == 1
    assert email.conflict == "move"
    assert email.priority == 1
    assert email.normalize("A@B.fi") == "a@b.fi"
    assert email.blocklist.match("test@test.com") is not None


def test_link_types_name_validated() -> None:
    with pytest.raises(InvalidLink, match=r"link name 'Email'"):
        IdentityGraph(link_types={"Email": LinkType()})


def test_link_types_value_validated() -> None:
    with pytest.raises(TypeError, match=r"link_types\['email'\] must be a LinkType"):
        IdentityGraph(link_types={"email": "merge"})  # type: ignore[dict-item]


def test_priority_key_orders_configured_before_rest() -> None:
    types = LinkTypes({"crm_id": LinkType(priority=5)})
    names = ["phone", "zeta", "crm_id", "email", "alpha", "loyalty_card"]
    ordered = sorted(names, key=types.priority_key)
    assert ordered == ["loyalty_card", "email", "phone", "crm_id", "alpha", "zeta"]


def test_normalize_of_non_link() -> None:
    with pytest.raises(InvalidLink, match=r"'email:a@b.fi' is not a Link"):
        IdentityGraph().normalize("email:a@b.fi")  # type: ignore[arg-type]


# --- Unicode: one spelling per visible identity -----------------------------------

NFC_JOSE = "jos\u00e9@example.com"
NFD_JOSE = "jose\u0301@example.com"


def test_link_values_are_nfc_before_their_type_normalises_them() -> None:
    # The two spellings of josé@… were two identities.
    assert NFC_JOSE != NFD_JOSE
    assert norm("email", NFD_JOSE) == norm("email", NFC_JOSE) == NFC_JOSE
    g = IdentityGraph()
    g.link("c1", Link("email", NFD_JOSE), at=T)
    assert g.resolve(Link("email", NFC_JOSE)) == "c1"
    assert g.links("c1") == [Link("email", NFC_JOSE)]


@given(st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zs", "Zl", "Zp")), min_size=4))
def test_every_normalisation_form_of_a_value_is_one_key(text: str) -> None:
    types = LinkTypes(None, None)
    keys = set()
    for form in ("NFC", "NFD"):
        try:
            keys.add(types.key(Link("crm_id", unicodedata.normalize(form, text))))
        except InvalidLink:  # blocked or empty: then so are the other forms
            keys.add(None)  # type: ignore[arg-type]
    assert len(keys) == 1


def test_a_custom_normaliser_is_given_nfc_text() -> None:
    seen: list[str] = []

    def keep(value: str) -> str:
        seen.append(value)
        return value

    norm("crm_id", "e\u0301x", link_types={"crm_id": LinkType(normalize=keep)})
    assert seen == ["\u00e9x"]


@pytest.mark.parametrize(
    ("name", "value", "character"),
    [
        ("email", "ann\u200b@example.com", "U+200B"),  # zero-width space
        ("email", "ann@example.com\ufeff", "U+FEFF"),  # byte order mark
        ("email", "\u202eann@example.com", "U+202E"),  # right-to-left override
        ("crm_id", "ab\u00adcd", "U+00AD"),  # soft hyphen
        ("crm_id", "ab\u2066cd\u2069", "U+2066"),  # bidi isolate
        ("loyalty_card", "7001\u200d2345", "U+200D"),  # zero-width joiner
        ("phone", "+358 40\u200b123 4567", "U+200B"),  # even where parsing would drop it
    ],
)
def test_invisible_and_bidi_format_characters_are_refused_in_links(
    name: str, value: str, character: str
) -> None:
    with pytest.raises(InvalidLink, match=rf"{name} .*{re.escape(character)}.*look the same"):
        norm(name, value, default_region="FI")


@pytest.mark.parametrize("value", ["c\u200b1", "\u202ec1", "c1\u2060", "\ufeffc1", "c\x851"])
def test_invisible_bidi_and_c1_characters_are_refused_in_customer_ids(value: str) -> None:
    with pytest.raises(InvalidCustomerId, match=r"customer id .*(format|control) character"):
        check_customer_id(value)


def test_customer_ids_are_nfc() -> None:
    assert check_customer_id(" jose\u0301 ") == "jos\u00e9"
    g = IdentityGraph()
    g.register("jose\u0301", at=T)
    assert g.customers() == ["jos\u00e9"]
    assert g.resolve("jose\u0301") == "jos\u00e9"
    g.link("jose\u0301", Link("email", "a@example.com"), at=T)
    assert g.customers() == ["jos\u00e9"]


def test_surrogates_and_nul_are_refused_in_links_and_customer_ids() -> None:
    with pytest.raises(InvalidLink, match=r"surrogate code point U\+D800"):
        norm("email", "ann\ud800@example.com")
    with pytest.raises(InvalidCustomerId, match=r"surrogate code point U\+DC80"):
        check_customer_id("c\udc80")
    with pytest.raises(InvalidLink, match=r"contains NUL"):
        norm("crm_id", "ab\x00")  # even at the end, where trimming would not remove it


#: Mostly ASCII (the fast path) with its control characters and white
#: space at either end, and any character at all.
_ID_TEXT = st.text(
    st.sampled_from(["a", "7", "-", " ", "\t", "\x00", "\x1f", "\x7f", "\x85", "\u00e9"]),
    max_size=6,
) | st.text(st.characters(exclude_categories=()), max_size=6)


def _id_oracle(value: str) -> str | None:
    """The customer id rule, written out: the NFC form of the stripped
    text, if it is 1-256 characters without NUL, surrogates, control or
    format characters; else None."""
    if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value):
        return None
    stripped = unicodedata.normalize("NFC", value.strip())
    if not 0 < len(stripped) <= 256:
        return None
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in stripped):
        return None
    return stripped


@given(_ID_TEXT)
def test_a_customer_id_is_taken_exactly_as_the_rule_says(value: str) -> None:
    expected = _id_oracle(value)
    if expected is None:
        with pytest.raises(InvalidCustomerId):
            check_customer_id(value)
    else:
        assert check_customer_id(value) == expected


@given(_ID_TEXT)
def test_a_link_value_is_refused_exactly_when_it_breaks_the_text_rule(value: str) -> None:
    """crm_id values are only trimmed (no blocklist here): a value is refused
    when its raw text holds NUL or a surrogate, or, inside the white space
    around it, a format character or a control character beyond ASCII, or
    its key (the NFC form, trimmed) is empty or holds a control character."""
    raw_bad = any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value) or any(
        unicodedata.category(c) == "Cf" or (c >= "\x80" and unicodedata.category(c) == "Cc")
        for c in value.strip()  # white space around it is stripped first, as for ids
    )
    key = None if raw_bad else unicodedata.normalize("NFC", value).strip()
    types = LinkTypes({"crm_id": LinkType(blocklist=())}, None)  # the text rule alone
    if key is None or not key or any(unicodedata.category(c) == "Cc" for c in key):
        with pytest.raises(InvalidLink):
            types.key(Link("crm_id", value))
    else:
        assert types.key(Link("crm_id", value)) == ("crm_id", key)


@pytest.mark.parametrize("edge", ["\x85", "\u2028", "\x1f", " \x85 "])
def test_white_space_around_ids_and_link_values_is_stripped_alike(edge: str) -> None:
    """A customer id and a link value strip what str.strip() strips before
    looking for control characters (U+0085 was stripped from one, refused
    in the other)."""
    assert check_customer_id(f"abc{edge}") == "abc"
    assert LinkTypes().key(Link("email", f"ann@example.com{edge}")) == ("email", "ann@example.com")
    with pytest.raises(InvalidCustomerId):
        check_customer_id("a\x85bc")
    with pytest.raises(InvalidLink):
        LinkTypes().key(Link("email", "ann\x85@example.com"))
