"""The decisions a mutating call takes before anything changes: conflict
policies and guard checks, as functions over a :class:`~identity_graph.state.GraphState`.

Each check either returns what the journal must record (a claim that
freezes its link, the outcome of a conflict) or logs a refusal in the
guards and raises it.  None of them changes the state: the facade journals
and applies what they decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from . import history as hist
from .errors import LimitExceeded, LinkConflict
from .ids import CustomerId, LinkKey, LinkTypes
from .state import GraphState
from .text import a_type, attribute_problem

__all__ = [
    "attribute_changes",
    "check_ownership",
    "check_profile_size",
    "conflict",
    "same_profile",
]

_ATTRIBUTE_TYPES = (str, int, float, bool, type(None), date, datetime, Decimal)
_ATTRIBUTE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _span(delta: timedelta) -> str:
    """``timedelta(days=30)`` as "30 days" rather than "30 days, 0:00:00"."""
    if delta.seconds == 0 and delta.microseconds == 0:
        return f"{delta.days} day" + ("" if delta.days == 1 else "s")
    return str(delta)


def _shown(value: Any) -> str:
    """``value`` as a message shows it: its repr, cut short when long."""
    text = repr(value)
    if len(text) <= 80:
        return text
    return f"{value[:40]!r}…" if isinstance(value, str) else f"{text[:60]}…"


def attribute_changes(
    state: GraphState, customer: CustomerId, attributes: Mapping[str, Any], at: datetime
) -> dict[str, Any]:
    """The attributes a ``register`` at ``at`` changes: each keeps the time it
    was set, and the latest value wins.  ``ValueError`` for a name that is not
    ``[a-z0-9_]+``, text that breaks the text rule or is longer than
    ``MAX_ATTRIBUTE_LENGTH``, or a number that is not finite
    (:func:`identity_graph.text.attribute_problem`), ``TypeError`` for a
    value of another type.  O(attributes + their text).
    """
    changed: dict[str, Any] = {}
    known = state.attributes_of(customer)
    for name, value in attributes.items():
        if not isinstance(name, str) or not name or not set(name) <= _ATTRIBUTE_NAME_CHARS:
            raise ValueError(
                f"attribute name {name!r} of customer {customer!r} must match [a-z0-9_]+"
            )
        if not isinstance(value, _ATTRIBUTE_TYPES):
            raise TypeError(
                f"attribute {name!r} of customer {customer!r} is {a_type(value)}; "
                "values are str, int, float, bool, None, date, datetime or Decimal"
            )
        problem = attribute_problem(value)
        if problem is not None:
            raise ValueError(
                f"attribute {name!r} of customer {customer!r}: {_shown(value)} {problem}"
            )
        old = known.get(name)
        if (
            # Set later (even to an equal value: its set time moves on, so a
            # late-arriving older value cannot win), or at the same
            # instant with another value (the later call replaces it).
            old is None or at > old[1] or (at == old[1] and value != old[0])
        ):
            changed[name] = value
    return changed


def same_profile(state: GraphState, a: CustomerId, b: CustomerId) -> bool:
    """Whether two registered customers share a profile.  Amortised O(α(n))."""
    return state.partition.find(a) == state.partition.find(b)


def conflict(
    state: GraphState,
    types: LinkTypes,
    key: LinkKey,
    customer: CustomerId,
    explicit: CustomerId,
    call: Mapping[str, Any],
    at: datetime,
) -> Literal["move", "merge", "same"]:
    """What a ``link()`` of ``key`` to ``customer`` does when ``explicit``, another
    customer, owns it at ``at``: the link type's policy decides.

    ``"move"`` (the old owner keeps it before ``at``), ``"merge"`` (the two
    profiles merge) or ``"same"`` (policy ``merge`` and one profile
    already: nothing to do); policy ``reject`` raises ``LinkConflict``.
    """
    policy = types.get(key[0]).conflict
    if policy == "reject":
        raise state.guards.refuse(
            at,
            "link",
            call,
            LinkConflict(
                f"{key[0]} {key[1]!r} is owned by customer {explicit!r} at "
                f"{at.isoformat()}; the {key[0]} conflict policy is 'reject'"
            ),
        )
    if policy == "merge":
        if customer in state.order and same_profile(state, customer, explicit):
            return "same"
        return "merge"
    return "move"


def check_profile_size(
    state: GraphState, a: CustomerId, b: CustomerId, op: str, call: Mapping[str, Any], at: datetime
) -> None:
    """Refuse a merge that would make a profile larger than the cap.  Amortised O(α(n))."""
    partition = state.partition
    size_a = partition.size(a) if a in state.order else 1
    size_b = partition.size(b)
    cap = state.guards.limits.max_customers_per_profile
    if size_a + size_b > cap:
        raise state.guards.refuse(
            at,
            op,
            call,
            LimitExceeded(
                f"merging customers {a!r} ({size_a} in profile) and {b!r} ({size_b} in "
                f"profile) would make a profile of {size_a + size_b} customers; "
                f"max_customers_per_profile is {cap}"
            ),
        )


def check_ownership(
    state: GraphState,
    types: LinkTypes,
    key: LinkKey,
    customer: CustomerId,
    before: hist.History | None,
    op: str,
    call: Mapping[str, Any],
    at: datetime,
) -> bool:
    """Refuse a move of a frozen link, or a claim past a customer's caps.

    Returns whether the claim is a move that freezes the link (the
    decision the journal records as ``freezes``).  O(log m + links of the customer).
    """
    guards = state.guards
    limits = guards.limits
    name, value = key
    mover = None if before is None else hist.previous_customer(before, at)
    moving = mover is not None and mover != customer
    if moving and key in guards.frozen:
        raise guards.refuse(
            at,
            op,
            call,
            LimitExceeded(
                f"{name} {value!r} is frozen: it moved between owners "
                f"{limits.max_moves} times within {_span(limits.move_window)}; "
                "release() it to allow moves again"
            ),
        )
    freezes = moving and guards.would_freeze(key, at)
    becomes_current = before is None or at >= hist.last_point(before)[0]
    if not becomes_current or hist.current_owner(before) == customer:
        return freezes
    owned = state.ownership.links_of(customer)
    cap = types.get(name).max_per_customer
    if cap is not None:
        same_name = sum(1 for owned_name, _ in owned if owned_name == name)
        if same_name >= cap:
            raise guards.refuse(
                at,
                op,
                call,
                LimitExceeded(
                    f"customer {customer!r} already owns {same_name} {name} links; "
                    f"max_per_customer for {name} is {cap}"
                ),
            )
    if len(owned) >= limits.max_links_per_customer:
        raise guards.refuse(
            at,
            op,
            call,
            LimitExceeded(
                f"customer {customer!r} already owns {len(owned)} links; "
                f"max_links_per_customer is {limits.max_links_per_customer}"
            ),
        )
    return freezes
