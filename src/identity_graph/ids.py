"""Customer ids, links, link types, normalisers and blocklists.

A :class:`Link` is what callers write; inside the graph a link is keyed by the
plain tuple ``(name, normalised value)`` (:data:`LinkKey`), which hashes in C
and costs no more memory than the object.  :class:`LinkTypes` turns a raw
:class:`Link` into that key, checking the blocklist before and after
normalising, so that a placeholder is refused as blocked, not as malformed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Literal, TypeAlias

import attrs
import phonenumbers

from .errors import BlockedLink, InvalidCustomerId, InvalidLink
from .text import a_type, ascii_control, format_problem, identifier_problem, nfc, text_problem

__all__ = [
    "DEFAULT_BLOCKLIST",
    "DEFAULT_PRIORITY",
    "BlocklistEntry",
    "Conflict",
    "CustomerId",
    "Link",
    "LinkKey",
    "LinkType",
    "LinkTypes",
    "check_customer_id",
    "default_blocklist",
]

CustomerId: TypeAlias = str
LinkKey: TypeAlias = tuple[str, str]
Conflict: TypeAlias = Literal["move", "merge", "reject"]
BlocklistEntry: TypeAlias = "str | re.Pattern[str] | Callable[[str], bool]"

MAX_CUSTOMER_ID_LENGTH = 256
MAX_LINK_VALUE_LENGTH = 1024
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SPACE = re.compile(r"\s")
_known_names: set[str] = set()
_RECENT_LINKS = 65536


#: How the keyed hashes that replace erased values start
#: (:mod:`identity_graph.suppression`): no customer id, link value or event
#: id may start so, or a new value could pass for an erased one's hash.
ERASED_PREFIX = "erased:"
#: The rule, for messages.
ERASED_RULE = f"begins with {ERASED_PREFIX!r}, which marks the keyed hashes of erased values"


def check_customer_id(value: object) -> CustomerId:
    """Return ``value`` as a customer id, or raise :class:`InvalidCustomerId`.

    A customer id is a string, stripped of surrounding white space and put
    in Unicode normalisation form C (so ``josé`` typed with a combining
    accent is the same customer as with ``é``), 1 to 256 characters long,
    with no control characters and no invisible or bidirectional format
    characters (U+200B, U+202E, U+FEFF…), and valid Unicode.  O(len(value)).
    """
    if type(value) is str and value.isascii():
        # The common case: ASCII is valid Unicode, in NFC and without format
        # characters, so the length and one scan for control characters (NUL
        # among them) decide.  Any fault is named by the full checks below.
        stripped = value.strip()
        if (
            0 < len(stripped) <= MAX_CUSTOMER_ID_LENGTH
            and ascii_control(stripped) is None
            and not stripped.startswith(ERASED_PREFIX)
        ):
            return stripped
    if not isinstance(value, str):
        raise InvalidCustomerId(
            f"customer id {value!r} is {a_type(value)}; a customer id is a string"
        )
    problem = text_problem(value)  # before NFC, which cannot read a lone surrogate
    if problem is not None:
        raise InvalidCustomerId(f"customer id {value!r} {problem}")
    stripped = nfc(value.strip())
    if not stripped:
        raise InvalidCustomerId(f"customer id {value!r} is empty; a customer id is non-empty")
    if len(stripped) > MAX_CUSTOMER_ID_LENGTH:
        raise InvalidCustomerId(
            f"customer id {stripped[:40]!r}... has {len(stripped)} characters; "
            f"at most {MAX_CUSTOMER_ID_LENGTH} are allowed"
        )
    problem = identifier_problem(stripped)
    if problem is not None:
        raise InvalidCustomerId(f"customer id {stripped!r} {problem}")
    if stripped.startswith(ERASED_PREFIX):
        raise InvalidCustomerId(f"customer id {stripped[:40]!r} {ERASED_RULE}")
    return stripped


def _check_name(name: object) -> None:
    if isinstance(name, str) and name in _known_names:
        return
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidLink(f"link name {name!r} is not allowed; a link name matches [a-z][a-z0-9_]*")
    _known_names.add(name)


@attrs.frozen(order=True)
class Link:
    """A named pointer to a customer: ``Link("email", "Ann@Example.com")``.

    ``name`` matches ``[a-z][a-z0-9_]*``; ``value`` is written as the caller
    has it.  The graph puts the value in NFC and normalises it by the link's
    type before using it as a key (:meth:`IdentityGraph.normalize`), and
    refuses control and invisible or bidirectional format characters; two
    links with the same name and normalised value are the same identity.

    Examples
    --------
    >>> Link("email", "ann@example.com")
    Link(name='email', value='ann@example.com')
    """

    name: str
    value: str

    def __attrs_post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.value, str):
            raise InvalidLink(
                f"{self.name} value {self.value!r} is {a_type(self.value)}; link values are strings"
            )

    @property
    def key(self) -> LinkKey:
        """The ``(name, value)`` tuple, as the graph keys links internally."""
        return (self.name, self.value)

    def __str__(self) -> str:
        return f"{self.name}:{self.value}"


# --- normalisers -----------------------------------------------------------------


def normalize_email(raw: str) -> str:
    """Trim and lower-case; one ``@``, a non-empty local part, a dotted domain."""
    value = raw.strip().lower()
    local, at, domain = value.partition("@")
    if not at or "@" in domain:
        raise InvalidLink(f"email {raw!r} must contain exactly one '@'")
    if not local:
        raise InvalidLink(f"email {raw!r} has an empty local part before '@'")
    if "." not in domain or ".." in domain or domain[0] == "." or domain[-1] == ".":
        raise InvalidLink(f"email {raw!r} needs a domain with a dot, such as example.com")
    if _SPACE.search(value):
        raise InvalidLink(f"email {raw!r} contains white space")
    return raw if value == raw else value  # keep one string, not two equal ones


def make_phone_normalizer(default_region: str | None) -> Callable[[str], str]:
    """A normaliser to E.164 that reads national numbers in ``default_region``."""

    def normalize_phone(raw: str) -> str:
        text = raw.strip()
        try:
            number = phonenumbers.parse(text, default_region)
        except phonenumbers.NumberParseException as exc:
            hint = "" if default_region else " (no default region is set, so write +country)"
            raise InvalidLink(f"phone {raw!r} cannot be parsed: {exc}{hint}") from None
        if not phonenumbers.is_possible_number(number):
            raise InvalidLink(f"phone {raw!r} is not a possible phone number")
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    return normalize_phone


def normalize_loyalty_card(raw: str) -> str:
    """Remove spaces and dashes, upper-case; at least 4 characters remain."""
    value = re.sub(r"[\s\-]+", "", raw).upper()
    if len(value) < 4:
        raise InvalidLink(
            f"loyalty_card {raw!r} has {len(value)} characters after removing spaces and "
            "dashes; at least 4 are needed"
        )
    return value


def normalize_plain(raw: str) -> str:
    """Trim; an empty value is invalid."""
    value = raw.strip()
    if not value:
        raise InvalidLink(f"link value {raw!r} is empty after trimming")
    return value


# --- blocklists -----------------------------------------------------------------

_COMMON_BLOCKLIST: tuple[BlocklistEntry, ...] = (
    "null",
    "none",
    "nil",
    "undefined",
    "unknown",
    "anonymous",
    "n/a",
    "-1",
    re.compile(r"[0-]*"),
)


def _repeated_digit_phone(value: str) -> bool:
    """A phone whose national number is one digit repeated (``+358 111 1111``)."""
    digits = ""
    if value.startswith("+"):
        try:
            digits = str(phonenumbers.parse(value, None).national_number)
        except phonenumbers.NumberParseException:
            digits = ""
    if not digits:
        digits = re.sub(r"\D", "", value)
    return len(digits) > 1 and len(set(digits)) == 1


DEFAULT_BLOCKLIST: Mapping[str, tuple[BlocklistEntry, ...]] = {
    "email": (
        *_COMMON_BLOCKLIST,
        "test@test.com",
        re.compile(
            r"(no[-_.]?e?-?mail|no[-_.]?reply|do[-_.]?not[-_.]?reply|none|null|nil|unknown|"
            r"n/a|anonymous|undefined|noone|no[-_.]?one)@.*"
        ),
        re.compile(r".*@(no[-_.]?e?-?mail|none|null|unknown|invalid)(\..*)?"),
    ),
    "phone": (*_COMMON_BLOCKLIST, _repeated_digit_phone),
}


def default_blocklist(name: str) -> tuple[BlocklistEntry, ...]:
    """The built-in blocklist of link name ``name`` (extend it rather than retype it)."""
    return DEFAULT_BLOCKLIST.get(name, _COMMON_BLOCKLIST)


#: The link names with built-in normalisers.
_BUILTIN_NAMES = ("email", "phone", "loyalty_card")

#: Event anchor priority: lower comes first; names not listed follow by name.
DEFAULT_PRIORITY: Mapping[str, int] = {"loyalty_card": 0, "email": 1, "phone": 2}


@attrs.frozen
class LinkType:
    """How links of one name behave.  A field left ``None`` keeps the
    built-in default of that link name.

    - ``conflict``: what ``link`` does when another customer owns the link at
      that time: ``"move"`` (default), ``"merge"`` or ``"reject"``.
    - ``max_per_customer``: how many links of this name one customer may own
      at once (default: no cap of its own; ``Limits.max_links_per_customer``
      still applies).
    - ``blocklist``: values that are never identities: literal strings
      (compared case-insensitively), compiled regular expressions (full
      match on the case-folded value) and predicates ``str -> bool``.  A given
      blocklist replaces the default; extend it with :func:`default_blocklist`.
    - ``priority``: event anchor priority, lower first.
    - ``normalize``: ``str -> str`` that returns the key value or raises
      ``InvalidLink`` (or ``ValueError``, reported as ``InvalidLink``).
    """

    conflict: Conflict | None = attrs.field(default=None)
    max_per_customer: int | None = attrs.field(default=None)
    blocklist: tuple[BlocklistEntry, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(tuple)
    )
    priority: int | None = attrs.field(default=None)
    normalize: Callable[[str], str] | None = None

    @max_per_customer.validator
    def _check_max(self, _attribute: object, value: object) -> None:
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ValueError(
                f"LinkType max_per_customer {value!r} must be None or a whole number >= 1"
            )

    @priority.validator
    def _check_priority(self, _attribute: object, value: object) -> None:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"LinkType priority {value!r} must be None or a whole number")

    @conflict.validator
    def _check_conflict(self, _attribute: object, value: object) -> None:
        if value not in (None, "move", "merge", "reject"):
            raise ValueError(f"LinkType conflict {value!r} must be 'move', 'merge' or 'reject'")


@attrs.frozen
class _Blocklist:
    literals: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]
    predicates: tuple[Callable[[str], bool], ...]
    # All patterns as one alternation: one regex call per check on the hot
    # path; the individual patterns are consulted only to name the rule.
    combined: re.Pattern[str] | None = None

    @classmethod
    def build(cls, entries: Iterable[BlocklistEntry]) -> _Blocklist:
        literals: set[str] = set()
        patterns: list[re.Pattern[str]] = []
        predicates: list[Callable[[str], bool]] = []
        for entry in entries:
            if isinstance(entry, str):
                literals.add(entry.strip().casefold())
            elif isinstance(entry, re.Pattern):
                patterns.append(entry)
            elif callable(entry):
                predicates.append(entry)
            else:
                raise TypeError(f"blocklist entry {entry!r} is not a string, pattern or predicate")
        combined = None
        if patterns and all(p.flags & ~re.UNICODE == 0 for p in patterns):
            try:
                combined = re.compile("|".join(f"(?:{p.pattern})" for p in patterns))
            except re.error:  # e.g. the same group name in two patterns
                combined = None
        return cls(frozenset(literals), tuple(patterns), tuple(predicates), combined)

    def match(self, value: str) -> str | None:
        """The rule that blocks ``value`` (already case-folded), or None."""
        if value in self.literals:
            return f"the literal {value!r}"
        if self.combined is None or self.combined.fullmatch(value):
            for pattern in self.patterns:
                if pattern.fullmatch(value):
                    return f"the pattern {pattern.pattern!r}"
        for predicate in self.predicates:
            if predicate(value):
                return f"the rule {getattr(predicate, '__name__', repr(predicate))}"
        return None


@attrs.frozen
class ResolvedType:
    """A link name's effective behaviour: the user's LinkType over the defaults."""

    name: str
    conflict: Conflict
    max_per_customer: int | None
    blocklist: _Blocklist
    priority: int | None
    normalize: Callable[[str], str]


class LinkTypes:
    """The link types of one graph: built-in defaults overlaid by configuration.

    Normalising a link is O(len(value)) plus the blocklist's size; the resolved
    type of each name is computed once and cached.
    """

    def __init__(
        self, configured: Mapping[str, LinkType] | None = None, default_region: str | None = None
    ) -> None:
        self._configured = dict(configured or {})
        for name, link_type in self._configured.items():
            _check_name(name)
            if not isinstance(link_type, LinkType):
                raise TypeError(f"link_types[{name!r}] must be a LinkType, not {link_type!r}")
        self.default_region = default_region
        self._phone = make_phone_normalizer(default_region)
        self._resolved: dict[str, ResolvedType] = {}
        # Raw (name, value) -> key of recently normalised links.  Loyalty cards
        # and phones recur across many events; a phone parse costs ~20 µs.
        # Bounded, and only successes are kept: a refusal is logged every time.
        self._recent: dict[tuple[str, str], LinkKey] = {}

    def get(self, name: str) -> ResolvedType:
        """The effective type of link name ``name``.  O(1) after the first call."""
        resolved = self._resolved.get(name)
        if resolved is None:
            resolved = self._resolve(name)
            self._resolved[name] = resolved
        return resolved

    def _resolve(self, name: str) -> ResolvedType:
        user = self._configured.get(name, LinkType())
        builtin_normalize: Callable[[str], str] = {
            "email": normalize_email,
            "phone": self._phone,
            "loyalty_card": normalize_loyalty_card,
        }.get(name, normalize_plain)
        return ResolvedType(
            name=name,
            conflict=user.conflict or "move",
            max_per_customer=user.max_per_customer,
            blocklist=_Blocklist.build(
                default_blocklist(name) if user.blocklist is None else user.blocklist
            ),
            priority=user.priority if user.priority is not None else DEFAULT_PRIORITY.get(name),
            normalize=user.normalize or builtin_normalize,
        )

    def key(self, link: Link) -> LinkKey:
        """Normalise ``link`` to its key, or raise ``BlockedLink`` / ``InvalidLink``.

        The blocklist is checked on the trimmed, case-folded raw value first
        and again on the normalised value.
        """
        if type(link) is not Link and not isinstance(link, Link):
            raise InvalidLink(f"{link!r} is not a Link; write Link(name, value)")
        return self.value_key(link.name, link.value)

    def value_key(self, name: str, raw: str) -> LinkKey:
        """:meth:`key` of ``Link(name, raw)`` without building the Link: ``name``
        must be a valid link name and ``raw`` a string (a table's columns
        are checked once for the first, cell by cell for the second)."""
        recent = self._recent.get((name, raw))
        if recent is not None:
            return recent
        key = self._normalise(name, raw)
        if len(self._recent) >= _RECENT_LINKS:
            self._recent.clear()
        self._recent[(name, raw)] = key
        return key

    def forget_recent(self, link: Link | None = None) -> None:
        """Drop ``link``'s raw spelling from the cache of recently normalised
        links, or the whole cache: an erased value must not stay reachable
        from the graph, nor one refused for having been erased.  O(1), or
        O(cache) for the whole."""
        if link is None:
            self._recent.clear()
        else:
            self._recent.pop((link.name, link.value), None)

    def _normalise(self, name: str, raw: str) -> LinkKey:
        if len(raw) > MAX_LINK_VALUE_LENGTH:
            raise InvalidLink(
                f"{name} value of {len(raw)} characters is too long; "
                f"at most {MAX_LINK_VALUE_LENGTH} are allowed"
            )
        # The raw value is kept in the journal: it must be storable text.
        # Then NFC, so that every spelling of a visible value is one key.
        if raw.isascii() and "\x00" not in raw:
            text = raw  # valid Unicode, in NFC, without format characters
        else:
            # White space around the value is stripped, as around a customer
            # id, before the control and format characters are looked for.
            problem = text_problem(raw) or format_problem(raw.strip())
            if problem is not None:
                raise InvalidLink(f"{name} {raw!r} {problem}")
            text = nfc(raw)
        resolved = self._resolved.get(name) or self.get(name)
        folded = text.strip().casefold()
        if not folded:
            raise InvalidLink(f"{name} {raw!r} is empty; a link value needs a character")
        rule = resolved.blocklist.match(folded)
        if rule is not None:
            raise BlockedLink(f"{name} {raw!r} is on the {name} blocklist ({rule})")
        try:
            value = resolved.normalize(text)
        except InvalidLink:
            raise
        except ValueError as exc:
            raise InvalidLink(f"{name} {raw!r} is not valid: {exc}") from None
        if not isinstance(value, str):
            raise InvalidLink(f"{name} {raw!r} was normalised to {value!r}, which is not text")
        # ASCII (the common case): one scan for control characters decides.
        if value.isascii() and ascii_control(value) is None:
            problem = None
        else:
            problem = identifier_problem(value)
        if problem is not None:
            shown = repr(raw) if value == raw else f"{raw!r} (normalised {value!r})"
            raise InvalidLink(f"{name} {shown} {problem}")
        if value.startswith(ERASED_PREFIX):
            raise InvalidLink(f"{name} {raw[:40]!r} {ERASED_RULE}")
        if value == folded:  # the common case: normalising only trimmed and lower-cased
            return (name, value)
        rule = resolved.blocklist.match(value.casefold())
        if rule is not None:
            raise BlockedLink(
                f"{name} {raw!r} (normalised {value!r}) is on the {name} blocklist ({rule})"
            )
        return (name, value)

    def names(self) -> tuple[str, ...]:
        """The link names this graph knows, sorted: the built-in ones
        (``email``, ``phone``, ``loyalty_card``) and the configured ones.
        What the bulk entry points accept as link columns.  O(names)."""
        return tuple(sorted({*_BUILTIN_NAMES, *self._configured}))

    def priority_key(self, name: str) -> tuple[int, int, str]:
        """Sort key of a link name for event anchoring: configured priority, then name."""
        priority = self.get(name).priority
        return (0, priority, name) if priority is not None else (1, 0, name)
