"""IdentityGraph: register, link/relink/unlink, merge/split/detach, resolve, profiles,
as_of, from_journal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from identity_graph import (
    IdentityGraph,
    InvalidCustomerId,
    LimitExceeded,
    Limits,
    Link,
    LinkConflict,
    LinkType,
    Profile,
    ReadOnlyGraph,
    UnknownCustomer,
    UnknownMerge,
)


def d(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


EMAIL = Link("email", "Ann@Example.com")
EMAIL_N = Link("email", "ann@example.com")
PHONE = Link("phone", "+358 40 123 4567")
PHONE_N = Link("phone", "+358401234567")
CARD = Link("loyalty_card", "7001 2345")
CARD_N = Link("loyalty_card", "70012345")
NAIVE = datetime(2024, 1, 1)


# --- register and attributes ------------------------------------------------------


def test_register_new_customer() -> None:
    g = IdentityGraph()
    entry = g.register("c1", {"first_name": "Ann"}, at=d(1))
    assert entry is not None and entry.op == "register"
    assert g.customers() == ["c1"]
    assert g.profile("c1").attributes == {"first_name": "Ann"}


def test_register_existing_without_change_is_none() -> None:
    g = IdentityGraph()
    g.register("c1", at=d(1))
    assert g.register("c1", at=d(2)) is None
    assert g.register(" c1 ", {}, at=d(2)) is None
    assert len(list(g.journal())) == 1


def test_attribute_latest_wins() -> None:
    g = IdentityGraph()
    g.register("c1", {"city": "Espoo"}, at=d(1))
    assert g.register("c1", {"city": "Turku"}, at=d(3)) is not None
    assert g.profile("c1").attributes == {"city": "Turku"}


def test_attribute_set_at_earlier_time_ignored() -> None:
    g = IdentityGraph()
    g.register("c1", {"city": "Turku"}, at=d(3))
    assert g.register("c1", {"city": "Espoo"}, at=d(1)) is None
    assert g.profile("c1").attributes == {"city": "Turku"}


def test_attribute_same_instant_later_call_replaces() -> None:
    g = IdentityGraph()
    g.register("c1", {"city": "Espoo"}, at=d(2))
    assert g.register("c1", {"city": "Turku"}, at=d(2)) is not None
    assert g.profile("c1").attributes == {"city": "Turku"}


def test_attribute_only_changed_names_recorded() -> None:
    g = IdentityGraph()
    g.register("c1", {"first_name": "Ann", "city": "Espoo"}, at=d(1))
    entry = g.register("c1", {"first_name": "Ann", "city": "Turku"}, at=d(1))
    assert entry is not None
    assert dict(entry.args) == {"customer_id": "c1", "attributes": {"city": "Turku"}}
    assert g.profile("c1").attributes == {"city": "Turku", "first_name": "Ann"}


def test_attribute_value_types() -> None:
    g = IdentityGraph()
    values = {
        "s": "x",
        "i": 1,
        "f": 1.5,
        "b": True,
        "n": None,
        "day": date(1990, 5, 1),
        "ts": d(1),
        "money": Decimal("1.10"),
    }
    g.register("c1", values, at=d(1))
    assert g.profile("c1").attributes == values


def test_attribute_name_refused() -> None:
    g = IdentityGraph()
    with pytest.raises(ValueError, match=r"attribute name 'First Name' of customer 'c1'"):
        g.register("c1", {"First Name": "Ann"}, at=d(1))
    assert g.customers() == []


def test_attribute_value_type_refused() -> None:
    g = IdentityGraph()
    with pytest.raises(TypeError, match=r"attribute 'tags' of customer 'c1' is a list"):
        g.register("c1", {"tags": ["a"]}, at=d(1))
    assert g.customers() == []


@pytest.mark.parametrize("length", [4095, 4096, 4097, 40_000])
def test_an_attribute_text_holds_at_most_4096_characters(length: int) -> None:
    """The bound that lets any value, even with every character escaped as
    ``_xHHHH_``, fit one spreadsheet cell (4,096 x 7 < 32,767)."""
    g = IdentityGraph()
    note = "\U0001f600" + "x" * (length - 1)  # an astral character counts as one
    if length <= 4096:
        g.register("c1", {"note": note}, at=d(1))
        assert g.attributes("c1") == {"note": note}
        return
    with pytest.raises(ValueError) as caught:
        g.register("c1", {"note": note}, at=d(1))
    message = str(caught.value)
    assert "attribute 'note' of customer 'c1'" in message
    assert f"{length:,} characters" in message and "at most 4,096" in message
    assert note not in message  # the message stays short: not the whole value
    assert g.customers() == []


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), float("-inf"), Decimal("NaN"), Decimal("-Infinity")],
    ids=["nan", "inf", "-inf", "decimal-nan", "decimal-inf"],
)
def test_an_attribute_number_must_be_finite(value: float | Decimal) -> None:
    """NaN and the infinities have no spreadsheet cell (XLSX wrote them as
    nothing, CSV as the text ``nan``), and NaN is not even equal to itself."""
    g = IdentityGraph()
    with pytest.raises(ValueError) as caught:
        g.register("c1", {"score": value}, at=d(1))
    assert str(caught.value) == (
        f"attribute 'score' of customer 'c1': {value!r} is not a finite number; "
        "a number attribute may not be NaN or infinite"
    )
    assert g.customers() == []
    g.register("c1", {"score": 1e308, "tiny": -5e-324}, at=d(1))  # finite, however large
    assert g.attributes("c1") == {"score": 1e308, "tiny": -5e-324}


def test_register_invalid_id() -> None:
    g = IdentityGraph()
    with pytest.raises(InvalidCustomerId, match=r"customer id '' is empty"):
        g.register("", at=d(1))


def test_profile_merged_attributes_latest_set_wins() -> None:
    g = IdentityGraph()
    g.register("c1", {"first_name": "Ann", "city": "Espoo"}, at=d(1))
    g.register("c2", {"first_name": "Anna", "birthday": "1990-05-01"}, at=d(2))
    g.register("c1", {"city": "Turku"}, at=d(3))
    g.merge("c1", "c2", at=d(4))
    assert g.profile("c2").attributes == {
        "birthday": "1990-05-01",
        "city": "Turku",
        "first_name": "Anna",
    }


def test_profile_reasserted_attribute_is_latest() -> None:
    g = IdentityGraph()
    g.register("c1", {"first_name": "Ann"}, at=d(1))
    g.register("c2", {"first_name": "Anna"}, at=d(2))
    g.register("c1", {"first_name": "Ann"}, at=d(3))  # set again, latest
    g.merge("c1", "c2", at=d(4))
    assert g.profile("c1").attributes["first_name"] == "Ann"


def test_register_uses_clock() -> None:
    g = IdentityGraph(clock=lambda: d(9))
    entry = g.register("c1")
    assert entry is not None and entry.at == d(9)


def test_clock_returning_naive_time_refused() -> None:
    g = IdentityGraph(clock=lambda: NAIVE)
    with pytest.raises(ValueError, match=r"naive datetime"):
        g.register("c1")


def test_default_clock_is_aware_utc_now() -> None:
    g = IdentityGraph()
    before = datetime.now(UTC)
    entry = g.register("c1")
    assert entry is not None
    assert entry.at.utcoffset() == timedelta(0)
    assert before <= entry.at <= datetime.now(UTC)


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.register("c9", at=NAIVE),
        lambda g: g.link("c1", PHONE, at=NAIVE),
        lambda g: g.relink(EMAIL, to="c1", at=NAIVE),
        lambda g: g.unlink(EMAIL, at=NAIVE),
        lambda g: g.merge("c1", "c2", at=NAIVE),
        lambda g: g.owner(EMAIL, at=NAIVE),
        lambda g: g.resolve(EMAIL, at=NAIVE),
    ],
)
def test_naive_datetime_refused(call) -> None:  # type: ignore[no-untyped-def]
    g = IdentityGraph()
    g.link("c1", EMAIL, at=d(1))
    g.register("c2", at=d(1))
    before = g._state()
    with pytest.raises(ValueError, match=r"at=2024-01-01T00:00:00 is a naive datetime"):
        call(g)
    assert g._state() == before


def test_naive_datetime_refused_when_resolving_a_customer() -> None:
    g = IdentityGraph()
    g.register("c1", at=d(1))
    with pytest.raises(ValueError, match=r"naive datetime"):
        g.resolve("c1", at=NAIVE)


def test_at_not_a_datetime() -> None:
    g = IdentityGraph()
    with pytest.raises(TypeError, match=r"at='2024-01-01' is not a datetime"):
        g.register("c1", at="2024-01-01")  # type: ignore[arg-type]


# --- resolve / profile ------------------------------------------------------------


def test_resolve_customer() -> None:
    g = IdentityGraph()
    g.register("c1", at=d(1))
    assert g.resolve("c1") == "c1"
    assert g.resolve("  c1 ") == "c1"


def test_resolve_unknown_customer() -> None:
    g = IdentityGraph()
    with pytest.raises(UnknownCustomer, match=r"^customer 'nobody' is not registered$") as info:
        g.resolve("nobody")
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownCustomer):
        g.profile("nobody")


def test_resolve_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"reference 5 is neither"):
        IdentityGraph().resolve(5)  # type: ignore[arg-type]


def test_resolve_link_now_and_at_time() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=d(1))
    g.relink(CARD, to="c2", at=d(10))
    assert g.resolve(CARD) == "c2"
    assert g.resolve(CARD, at=d(5)) == "c1"
    assert g.resolve(CARD, at=d(10)) == "c2"


def test_resolve_link_through_merge() -> None:
    g = IdentityGraph()
    g.register("c1", at=d(1))
    g.link("c2", PHONE, at=d(1))
    g.merge("c2", "c1", at=d(2))
    assert g.resolve(PHONE) == "c1"
    assert g.resolve(Link("phone", "+358401234567")) == "c1"


def test_resolve_anonymous_link_returns_normalised_link() -> None:
    g = IdentityGraph()
    result = g.resolve(EMAIL)
    assert result == EMAIL_N
    assert isinstance(result, Link)


def test_resolve_unlinked_link_is_anonymous() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=d(1))
    g.unlink(EMAIL, at=d(5))
    assert g.resolve(EMAIL) == EMAIL_N
    assert g.resolve(EMAIL, at=d(7)) == EMAIL_N
    assert g.resolve(EMAIL, at=d(3)) == "c1"


def test_resolve_anonymous_span_belongs_to_next_claimant() -> None:
    g = IdentityGraph()
    g.link("c1", PHONE, at=d(10))
    assert g.resolve(PHONE, at=d(1)) == "c1"


def test_profile_of_customer() -> None:
    g = IdentityGraph()
    g.register("c2", {"city": "Espoo"}, at=d(1))
    g.link("c1", PHONE, at=d(1))
    g.link("c1", EMAIL, at=d(1))
    m = g.merge("c1", "c2", at=d(2))
    profile = g.profile(EMAIL)
    assert profile == Profile(
        id="c2",
        customer_ids=("c2", "c1"),
        links=(EMAIL_N, PHONE_N),
        attributes={"city": "Espoo"},
        merge_ids=(m,),
    )
    with pytest.raises(AttributeError):
        profile.id = "x"  # type: ignore[misc]


def test_profile_of_anonymous_link() -> None:
    g = IdentityGraph()
    assert g.profile(CARD) == Profile(CARD_N, (), (CARD_N,), {}, ())


def test_profiles_ordered_by_id() -> None:
    g = IdentityGraph()
    for c in ("zed", "amy", "bob", "cat"):
        g.register(c, at=d(1))
    g.merge("bob", "amy", at=d(2))  # profile "amy"
    g.link("x", Link("crm_id", "anon-1"), at=d(1))
    g.unlink(Link("crm_id", "anon-1"), at=d(2))  # anonymous link is not listed
    profiles = list(g.profiles())
    assert [p.id for p in profiles] == ["amy", "cat", "x", "zed"]
    assert profiles[0].customer_ids == ("amy", "bob")


# --- link / relink / unlink -------------------------------------------------------


def test_link_registers_unknown_customer() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=d(1))
    assert g.customers() == ["c1"]
    assert g.owner(EMAIL) == "c1"
    assert g.profile("c1").links == (EMAIL_N,)


def test_link_is_idempotent() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=d(1))
    assert g.link("c1", Link("email", "ANN@example.com"), at=d(5)) is None
    assert g.link(" c1 ", EMAIL, at=d(1)) is None
    assert len(list(g.journal())) == 1
    assert g.history(EMAIL) == [(d(1), "c1")]


def test_link_invalid_customer_id() -> None:
    g = IdentityGraph()
    with pytest.raises(InvalidCustomerId):
        g.link("", EMAIL, at=d(1))
    assert list(g.journal()) == []


def test_conflict_move_is_default() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=d(1))
    entry = g.link("c2", CARD, at=d(10))
    assert entry is not None and entry.op == "link"
    assert g.history(CARD) == [(d(1), "c1"), (d(10), "c2")]
    assert g.profile("c1").links == ()
    assert g.profile("c2").links == (CARD_N,)
    assert g.resolve(CARD, at=d(5)) == "c1"
    g._check()


def test_conflict_merge() -> None:
    g = IdentityGraph(link_types={"email": LinkType(conflict="merge")})
    g.link("c1", EMAIL, at=d(1))
    entry = g.link("c2", EMAIL, at=d(2))
    assert entry is not None
    assert g.resolve("c2") == "c1"
    assert g.owner(EMAIL) == "c1"  # ownership unchanged
    profile = g.profile("c2")
    assert profile.customer_ids == ("c1", "c2")
    assert profile.merge_ids == ("m2",)
    assert g._partition.merges["m2"].reason == "shared link"
    # already one profile: nothing more
    assert g.link("c2", EMAIL, at=d(3)) is None
    g._check()


def test_conflict_reject() -> None:
    g = IdentityGraph(link_types={"email": LinkType(conflict="reject")})
    g.link("c1", EMAIL, at=d(1))
    before = g._state()
    with pytest.raises(LinkConflict, match=r"email 'ann@example.com' is owned by customer 'c1'"):
        g.link("c2", EMAIL, at=d(2))
    assert g._state() == before


def test_conflict_policy_ignores_next_claimant() -> None:
    # the link is owned from d10 only; a claim at d2 is no conflict, even under 'reject'
    g = IdentityGraph(link_types={"email": LinkType(conflict="reject")})
    g.link("c1", EMAIL, at=d(10))
    assert g.link("c2", EMAIL, at=d(2)) is not None
    assert g.history(EMAIL) == [(d(2), "c2"), (d(10), "c1")]


def test_relink_moves_whatever_the_policy() -> None:
    g = IdentityGraph(link_types={"email": LinkType(conflict="reject")})
    g.link("c1", EMAIL, at=d(1))
    entry = g.relink(EMAIL, to="c2", at=d(2))
    assert entry is not None and entry.op == "relink"
    assert g.owner(EMAIL) == "c2"
    assert g.relink(EMAIL, to="c2", at=d(3)) is None


def test_unlink() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=d(1))
    entry = g.unlink(EMAIL, at=d(5))
    assert entry is not None and entry.op == "unlink"
    assert g.owner(EMAIL) is None
    assert g.profile("c1").links == ()
    assert g.unlink(EMAIL, at=d(6)) is None
    assert g.unlink(Link("email", "other@example.com"), at=d(6)) is None
    g._check()


# --- merge / split / detach -------------------------------------------------------


def test_merge_requires_registered_customers() -> None:
    g = IdentityGraph()
    g.register("c1", at=d(1))
    with pytest.raises(UnknownCustomer, match=r"customer 'ghost' is not registered"):
        g.merge("c1", "ghost", at=d(2))
    with pytest.raises(UnknownCustomer, match=r"customer 'ghost' is not registered"):
        g.merge("ghost", "c1", at=d(2))


def test_merge_in_one_profile_records_nothing() -> None:
    g = IdentityGraph()
    for c in ("a", "b"):
        g.register(c, at=d(1))
    assert g.merge("a", "b", at=d(2)) == "m3"
    assert g.merge("b", "a", at=d(3)) is None
    assert g.merge("a", "a", at=d(3)) is None
    assert len(list(g.journal())) == 3


def test_merge_reason_must_be_string() -> None:
    g = IdentityGraph()
    g.register("a", at=d(1))
    g.register("b", at=d(1))
    with pytest.raises(TypeError, match=r"merge reason 5 must be a string"):
        g.merge("a", "b", reason=5, at=d(2))  # type: ignore[arg-type]


def test_merge_older_id_survives() -> None:
    g = IdentityGraph()
    g.register("b", at=d(1))
    g.register("a", at=d(1))
    g.merge("a", "b", at=d(2))
    assert g.resolve("a") == "b"


def snapshot(g: IdentityGraph, refs: list[str]) -> dict[str, Profile]:
    return {ref: g.profile(ref) for ref in refs}


def test_merge_then_split_restores_exactly() -> None:
    g = IdentityGraph()
    g.register("c1", {"first_name": "Ann", "city": "Espoo"}, at=d(1))
    g.link("c1", EMAIL, at=d(1))
    g.register("c2", {"first_name": "Anna"}, at=d(2))
    g.link("c2", PHONE, at=d(2))
    g.link("c2", CARD, at=d(2))
    before = snapshot(g, ["c1", "c2"])
    m = g.merge("c1", "c2", reason="same person", at=d(3))
    assert m is not None
    merged = g.profile("c2")
    assert merged.id == "c1"
    assert merged.links == (EMAIL_N, CARD_N, PHONE_N)
    assert merged.attributes == {"city": "Espoo", "first_name": "Anna"}
    entry = g.split(m, at=d(4))
    assert entry is not None and entry.op == "split"
    assert snapshot(g, ["c1", "c2"]) == before
    g._check()


def test_split_restores_each_part_of_a_chain() -> None:
    g = IdentityGraph()
    for i, c in enumerate(("a", "b", "c", "d"), start=1):
        g.register(c, {"n": i}, at=d(i))
        g.link(c, Link("crm_id", f"id-{c}"), at=d(i))
    g.merge("a", "b", at=d(5))
    before = snapshot(g, ["a", "b", "c", "d"])
    g.merge("c", "d", at=d(5))
    before_cd = g.profile("c")
    m = g.merge("b", "c", at=d(6))
    assert m is not None
    assert g.profile("d").customer_ids == ("a", "b", "c", "d")
    g.split(m, at=d(7))
    assert g.profile("a") == before["a"]
    assert g.profile("b") == before["b"]
    assert g.profile("c") == before_cd
    assert g.profile("d") == before_cd


def test_split_unknown_merge() -> None:
    g = IdentityGraph()
    with pytest.raises(UnknownMerge, match=r"^merge 'm42' was never issued by this graph$") as info:
        g.split("m42")
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownMerge):
        g.split(42)  # type: ignore[arg-type]


def test_split_inactive_merge_is_none() -> None:
    g = IdentityGraph()
    g.register("a", at=d(1))
    g.register("b", at=d(1))
    m = g.merge("a", "b", at=d(2))
    assert m is not None
    assert g.split(m, at=d(3)) is not None
    assert g.split(m, at=d(4)) is None


def test_detach_hub() -> None:
    g = IdentityGraph()
    for c in ("s1", "hub", "s2", "s3"):
        g.register(c, {"name": c}, at=d(1))
    alone = snapshot(g, ["s1", "hub", "s2", "s3"])
    g.merge("hub", "s1", at=d(2))
    g.merge("hub", "s2", at=d(2))
    g.merge("s3", "hub", at=d(2))
    assert g.resolve("s3") == "s1"
    entry = g.detach("hub", at=d(3))
    assert entry is not None
    assert entry.args["merge_ids"] == ("m5", "m6", "m7")
    assert snapshot(g, ["s1", "hub", "s2", "s3"]) == alone
    assert g.detach("hub", at=d(4)) is None
    g._check()


def test_detach_unknown_customer() -> None:
    with pytest.raises(UnknownCustomer, match="customer 'x' is not registered"):
        IdentityGraph().detach("x")


# --- as_of, from_journal, equality ------------------------------------------------


def history_ops(g: IdentityGraph, upto: int) -> None:
    ops = [
        lambda: g.register("c1", {"first_name": "Ann"}, at=d(1)),
        lambda: g.link("c1", EMAIL, at=d(2)),
        lambda: g.link("c2", PHONE, at=d(3)),
        lambda: g.merge("c1", "c2", reason="same", at=d(4)),
        lambda: g.relink(EMAIL, to="c3", at=d(5)),
        lambda: g.split("m4", at=d(6)),
        lambda: g.unlink(PHONE, at=d(7)),
    ]
    for op in ops[:upto]:
        op()


@pytest.mark.parametrize("seq", range(0, 8))
def test_as_of_equals_the_past(seq: int) -> None:
    g = IdentityGraph()
    history_ops(g, 7)
    past = IdentityGraph()
    history_ops(past, seq)
    view = g.as_of(seq)
    assert view == past
    assert len(list(view.journal())) == seq


def test_as_of_view_answers_queries() -> None:
    g = IdentityGraph()
    history_ops(g, 7)
    view = g.as_of(4)
    assert view.resolve(PHONE) == "c1"
    assert view.profile("c2").customer_ids == ("c1", "c2")
    assert g.resolve(PHONE) == PHONE_N


@pytest.mark.parametrize(
    ("op", "call"),
    [
        ("register", lambda v: v.register("c9", at=d(9))),
        ("link", lambda v: v.link("c1", CARD, at=d(9))),
        ("relink", lambda v: v.relink(EMAIL, to="c1", at=d(9))),
        ("unlink", lambda v: v.unlink(EMAIL, at=d(9))),
        ("merge", lambda v: v.merge("c1", "c2", at=d(9))),
        ("split", lambda v: v.split("m4", at=d(9))),
        ("detach", lambda v: v.detach("c1", at=d(9))),
        ("release", lambda v: v.release(EMAIL, at=d(9))),
    ],
)
def test_as_of_is_read_only(op: str, call) -> None:  # type: ignore[no-untyped-def]
    g = IdentityGraph()
    history_ops(g, 4)
    view = g.as_of(4)
    before = view._state()
    with pytest.raises(ReadOnlyGraph, match=rf"{op}\(\) on a read-only view") as info:
        call(view)
    assert isinstance(info.value, TypeError)
    assert view._state() == before


def test_as_of_does_not_change_the_graph() -> None:
    g = IdentityGraph()
    history_ops(g, 7)
    before = g._state()
    g.as_of(3)
    assert g._state() == before
    assert g.register("c4", at=d(9)) is not None  # the graph itself stays writable


@pytest.mark.parametrize("seq", [-1, 8])
def test_as_of_out_of_range(seq: int) -> None:
    g = IdentityGraph()
    history_ops(g, 7)
    with pytest.raises(ValueError, match=r"as_of\(.*\): seq must be between 0 and 7"):
        g.as_of(seq)


@pytest.mark.parametrize("seq", ["3", 2.0, True, datetime(2024, 1, 1, tzinfo=UTC)])
def test_as_of_takes_a_journal_entry_number(seq: object) -> None:
    """A time given to as_of was told "seq must be between 0 and 7"."""
    g = IdentityGraph()
    history_ops(g, 7)
    with pytest.raises(TypeError, match=r"as_of\(.*\): seq must be a journal entry number"):
        g.as_of(seq)  # type: ignore[arg-type]


def test_from_journal_equal() -> None:
    g = IdentityGraph(default_region="FI")
    history_ops(g, 7)
    g.link("c4", Link("phone", "040 765 4321"), at=d(8))
    g.register("c4", {"city": "Espoo"}, at=d(8))
    copy = IdentityGraph.from_journal(g.journal())
    assert copy == g
    assert copy.resolve(Link("phone", "+358407654321")) == "c4"
    assert list(copy.journal()) == list(g.journal())


def test_from_journal_whatever_the_config() -> None:
    g = IdentityGraph(link_types={"email": LinkType(conflict="merge")})
    g.link("c1", EMAIL, at=d(1))
    g.link("c2", EMAIL, at=d(2))
    copy = IdentityGraph.from_journal(
        g.journal(), link_types={"email": LinkType(conflict="reject")}
    )
    assert copy == g
    assert copy.resolve("c2") == "c1"


def test_from_journal_out_of_order() -> None:
    g = IdentityGraph()
    history_ops(g, 3)
    entries = list(g.journal())
    with pytest.raises(ValueError, match=r"journal entry 2 out of order; expected 1"):
        IdentityGraph.from_journal(entries[1:])


def test_graphs_differ_when_state_differs() -> None:
    a, b = IdentityGraph(), IdentityGraph()
    history_ops(a, 3)
    history_ops(b, 3)
    assert a == b
    b.register("c9", at=d(9))
    assert a != b
    assert a.__eq__("not a graph") is NotImplemented


def test_graph_is_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(IdentityGraph())


def test_from_journal_equal_with_frozen_link_under_custom_limits() -> None:
    g = IdentityGraph(limits=Limits(max_moves=2))
    g.link("a", CARD, at=d(1))
    g.relink(CARD, to="b", at=d(2))
    g.relink(CARD, to="a", at=d(3))
    assert g.frozen_links() == [CARD_N]
    assert IdentityGraph.from_journal(g.journal()) == g


def test_from_journal_with_same_limits_keeps_frozen_link() -> None:
    limits = Limits(max_moves=2)
    g = IdentityGraph(limits=limits)
    g.link("a", CARD, at=d(1))
    g.relink(CARD, to="b", at=d(2))
    g.relink(CARD, to="a", at=d(3))
    copy = IdentityGraph.from_journal(g.journal(), limits=limits)
    assert copy == g
    assert copy.frozen_links() == [CARD_N]


def test_context_manager() -> None:
    with IdentityGraph() as g:
        assert isinstance(g, IdentityGraph)
        g.register("c1", at=d(1))
    assert g.resolve("c1") == "c1"  # close() of an in-memory graph loses nothing


def test_invariants_after_mixed_operations() -> None:
    g = IdentityGraph(default_region="FI")
    history_ops(g, 7)
    g.link("c5", Link("phone", "040 123 4567"), at=d(1))  # late claim of an unlinked phone
    g.detach("c1", at=d(9))
    g._check()
    assert g.owner(PHONE, at=d(2)) == "c5"


def test_limits_set_after_construction_govern_every_guard() -> None:
    """``g.limits = ...`` changes the caps *and* when a flapping link freezes
    (it used to leave freezing on the constructor's limits); a value that is
    not a ``Limits`` is refused."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    g = IdentityGraph()
    g.limits = Limits(max_moves=2)
    card = Link("loyalty_card", "7001 2345")
    g.link("a", card, at=t0)
    g.relink(card, to="b", at=t0 + timedelta(days=1))
    g.relink(card, to="a", at=t0 + timedelta(days=2))  # the second move freezes it
    assert g.frozen_links() == [g.normalize(card)]
    with pytest.raises(LimitExceeded, match="frozen"):
        g.relink(card, to="b", at=t0 + timedelta(days=3))
    with pytest.raises(TypeError, match="limits must be a Limits"):
        g.limits = {"max_moves": 2}  # type: ignore[assignment]
    assert g.limits == Limits(max_moves=2)
