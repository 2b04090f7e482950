"""The errors identity_graph raises.

Every error names the input it refused and the rule that input broke, and
every one also subclasses the builtin a generic handler would catch, so
``except ValueError`` around an import loop keeps working::

    IdentityGraphError
    ├── InvalidLink (ValueError)          a link value that is not a valid identity
    │   ├── BlockedLink                   a placeholder value on the type's blocklist
    │   └── SuppressedLink                a value erased by ``forget``, refused until released
    ├── InvalidCustomerId (ValueError)    an empty or too long id, or one with a hidden character
    ├── UnknownCustomer (KeyError)        a customer id that was never registered
    ├── UnknownMerge (KeyError)           a merge id the graph never issued
    ├── LinkConflict (ValueError)         a link owned by another customer, policy "reject"
    ├── LimitExceeded (ValueError)        a guard (caps, frozen links)
    ├── NotConnected (LookupError)        explain() of references in different profiles
    ├── InvalidEvent (ValueError)         an event with nothing left to identify it
    ├── InvalidTime (ValueError)          a naive time, or one outside the supported range
    ├── DuplicateEvent (ValueError)       an event id reused with other content
    ├── ReadOnlyGraph (TypeError)         a mutating call on an ``as_of`` view
    └── StoreError (OSError)              a store could not be opened, read or written
        └── SchemaVersionError            a store written by a newer library

``identity_graph.io.FileFormatError`` (ValueError) joins them for files that
cannot be read at all.
"""

from __future__ import annotations

__all__ = [
    "BlockedLink",
    "DuplicateEvent",
    "IdentityGraphError",
    "InvalidCustomerId",
    "InvalidEvent",
    "InvalidLink",
    "InvalidTime",
    "LimitExceeded",
    "LinkConflict",
    "NotConnected",
    "ReadOnlyGraph",
    "SchemaVersionError",
    "StoreError",
    "SuppressedLink",
    "UnknownCustomer",
    "UnknownMerge",
]


class IdentityGraphError(Exception):
    """Base of every error raised by identity_graph."""

    def __str__(self) -> str:
        # KeyError's own __str__ wraps the message in quotes; every subclass
        # here prints its message as written.
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidLink(IdentityGraphError, ValueError):
    """A link whose name or value breaks the rules of its type."""


class BlockedLink(InvalidLink):
    """A link value on its type's blocklist: a placeholder, never an identity."""


class SuppressedLink(InvalidLink):
    """A value erased by ``forget`` (a link value, a customer id or an event
    id) coming back: refused until ``release_suppression`` lifts it.

    ``shown`` is what the refusal log records instead of the call's
    arguments: the keyed hashes of the erased values, never the values."""

    def __init__(self, message: str, shown: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.shown: dict[str, object] = dict(shown or {})


class InvalidCustomerId(IdentityGraphError, ValueError):
    """A customer id that is empty, longer than 256 characters, or holds a
    control, invisible or bidirectional format character, a NUL or a lone
    surrogate."""


class UnknownCustomer(IdentityGraphError, KeyError):
    """A customer id that is not registered in the graph."""


class UnknownMerge(IdentityGraphError, KeyError):
    """A merge id that the graph never issued."""


class LinkConflict(IdentityGraphError, ValueError):
    """A link owned by another customer, under the conflict policy ``reject``."""


class LimitExceeded(IdentityGraphError, ValueError):
    """An operation refused by a guard against over-merging (a cap, or a frozen link)."""


class NotConnected(IdentityGraphError, LookupError):
    """``explain`` was asked about references that are not in one profile."""


class InvalidEvent(IdentityGraphError, ValueError):
    """An event that cannot be recorded as given."""


class InvalidTime(IdentityGraphError, ValueError):
    """A time without a time zone, or outside the range the library supports
    (0002-01-01 to 9999-01-01 UTC: see :mod:`identity_graph.times`)."""


class DuplicateEvent(IdentityGraphError, ValueError):
    """An event id recorded before with different content."""


class ReadOnlyGraph(IdentityGraphError, TypeError):
    """A mutating call on a read-only view (``IdentityGraph.as_of``)."""


class StoreError(IdentityGraphError, OSError):
    """A store could not be opened, read or written (full disk, read-only file,
    lost connection…).  A failed write leaves the store as it was before the call."""


class SchemaVersionError(StoreError):
    """A store written by a newer version of the library than this one."""
