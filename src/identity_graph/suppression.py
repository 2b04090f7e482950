"""The suppression list: erased values a graph refuses to take back.

``IdentityGraph.forget`` replaces each erased value by a **keyed hash**:
``erased:`` and 32 hex digits of HMAC-SHA-256 over the value, keyed with
the graph's secret (kept in the store, never in the journal).  Without the
secret nobody can confirm a guessed email against the journal; with it,
the graph recognises an erased value when it comes back.  Each kind of
value is hashed in its own domain (a customer id, a link of one name, an
event id, any other text), so equal texts of two kinds get different
hashes.  128 bits of the digest are kept: collisions among a graph's
erased values are beyond reach.

:class:`Suppression` holds the hashes of the erased customer ids, link
values and event ids; the door checks every new customer id, link and
event against it (:class:`~identity_graph.errors.SuppressedLink`), and the
refusal log records the hash, not the value.  What ``forget`` erases is
decided in :mod:`identity_graph.erasure`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Collection
from typing import Any

from .errors import SuppressedLink
from .ids import ERASED_PREFIX, Link, LinkKey

__all__ = [
    "DIGITS",
    "PREFIX",
    "Suppression",
    "ascii_lower",
    "names_in",
    "new_secret",
    "pseudonym",
    "token_in",
]

#: How every keyed hash starts.
PREFIX = ERASED_PREFIX
#: Hex digits of the HMAC kept (128 bits).
DIGITS = 32


def new_secret() -> bytes:
    """A fresh per-graph secret (32 random bytes)."""
    return secrets.token_bytes(32)


def pseudonym(secret: bytes, kind: str, text: str) -> str:
    """The keyed hash of ``text`` in domain ``kind``: ``erased:`` and 32 hex
    digits of HMAC-SHA-256.  O(len(text))."""
    message = f"{kind}\x00{text}".encode("utf-8", "surrogatepass")
    return PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()[:DIGITS]


def _value_text(value: Any) -> str:
    # Any attribute value, reason or raw text, hashed by its repr: the
    # hash must only be stable for one value within one graph.
    return value if isinstance(value, str) else repr(value)


#: What may stand right before a token: a space, a quote, an opening
#: bracket, or a separator of ``key=value`` and list texts.
_BEFORE = r"(?<![^\s'\"(\[{<,;:=/|])"
#: What may stand right after one: the same, a closing bracket, punctuation.
_AFTER = r"(?![^\s'\")\]}>,;:=/|.!?])"


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """``text`` with its ASCII letters lower-cased, others kept: what
    SQLite's ``lower()`` does, so a search in Python and in SQL agree."""
    return text.translate(_ASCII_LOWER)


def token_in(text: str, within: str) -> bool:
    """Whether ``text`` shows in ``within`` as a token of its own: after the
    start, a space, a quote, an opening bracket or one of ``,;:=/|``, and
    before the end, a space, a quote, a closing bracket, one of those or
    ``.!?``.  An email ``mary@x.org`` is in "mailto:mary@x.org" and
    "refused mary@x.org, ..." but not in "noemail@mary@x.org": ``-``, ``.``
    and ``@`` inside a token never end it.  O(len(within))."""
    if text not in within:
        return False
    return re.search(_BEFORE + re.escape(text) + _AFTER, within) is not None


def names_in(customer: str, values: Collection[str]) -> Callable[[str], bool]:
    """A test of free text (another customer's attribute, a merge reason):
    whether it names an erased person.  It does when it *is* their customer
    id, quotes it (``'ann-1'`` or ``"ann-1"``), or holds one of their erased
    link values (as the graph stored it: the normalised value, in any
    letter case) whole, quoted or, for a value of four characters or more,
    as a token of its own.  The customer id counts only whole or quoted:
    ``c1`` is inside too many texts.  Each test is O(len(text) x values)."""
    folded = [value.casefold() for value in values]
    whole = {customer, *folded}
    quoted = [repr(customer), f'"{customer}"']
    quoted_values = [*(repr(value) for value in folded), *(f'"{value}"' for value in folded)]
    long = [value for value in folded if len(value) >= 4]

    def names(text: str) -> bool:
        if text == customer or any(quote in text for quote in quoted):
            return True
        lowered = text.casefold()
        if lowered in whole or any(quote in lowered for quote in quoted_values):
            return True
        return any(token_in(value, lowered) for value in long)

    return names


class Suppression:
    """The erased values a graph refuses to take back, as keyed hashes.

    ``customers`` holds hashed customer ids, ``links`` hashed link keys
    (``(name, hash)``), ``events`` hashed event ids.  The sets are part of
    the graph's state (journaled by ``forget`` and ``release_suppression``);
    ``secret`` is the store's, or a fresh one for a graph in memory.
    Each check is O(1) and costs nothing while the list is empty.
    """

    __slots__ = ("customers", "events", "links", "secret")

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret if secret is not None else new_secret()
        self.customers: set[str] = set()
        self.links: set[LinkKey] = set()
        self.events: set[str] = set()

    def clear(self) -> None:
        """Empty the list (the secret stays)."""
        self.customers.clear()
        self.links.clear()
        self.events.clear()

    def __bool__(self) -> bool:
        return bool(self.customers or self.links or self.events)

    def customer_hash(self, customer: str) -> str:
        return pseudonym(self.secret, "customer", customer)

    def link_hash(self, key: LinkKey) -> LinkKey:
        return (key[0], pseudonym(self.secret, "link:" + key[0], key[1]))

    def event_hash(self, event_id: str) -> str:
        return pseudonym(self.secret, "event", event_id)

    def value_hash(self, value: Any) -> str:
        return pseudonym(self.secret, "value", _value_text(value))

    # --- the checks made at the door --------------------------------------

    def customer(self, customer: str) -> SuppressedLink | None:
        """The error for a suppressed customer id, or None."""
        if not self.customers:
            return None
        hashed = self.customer_hash(customer)
        if hashed not in self.customers:
            return None
        return SuppressedLink(
            f"customer id {hashed} was erased at the person's request and is suppressed;"
            " release_suppression() with that id lifts it",
            {"customer_id": hashed},
        )

    def link(self, key: LinkKey) -> SuppressedLink | None:
        """The error for a suppressed link value, or None."""
        if not self.links:
            return None
        hashed = self.link_hash(key)
        if hashed not in self.links:
            return None
        return SuppressedLink(
            f"{key[0]} {hashed[1]} was erased at the person's request and is suppressed;"
            " release_suppression() with that link lifts it",
            {"link": Link(*hashed)},
        )

    def event(self, event_id: str) -> SuppressedLink | None:
        """The error for an event id erased before, or None."""
        if not self.events:
            return None
        hashed = self.event_hash(event_id)
        if hashed not in self.events:
            return None
        return SuppressedLink(
            f"event {hashed} was erased at the person's request and is suppressed",
            {"event": hashed},
        )

    def state(self) -> tuple[list[str], list[LinkKey], list[str]]:
        """Comparable state (for graph equality)."""
        return sorted(self.customers), sorted(self.links), sorted(self.events)
