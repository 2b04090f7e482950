"""identity_graph: which of a business's records are the same person.

Customers are stable ids; links (email, phone, loyalty card, any external id)
point to at most one customer at a time and may move; merges group customers
into profiles and can be split again exactly; a journal records every change.

>>> from datetime import datetime, timezone
>>> from identity_graph import IdentityGraph, Link
>>> g = IdentityGraph()
>>> _ = g.link("c1", Link("email", "Ann@Example.com"), at=datetime(2024, 1, 1, tzinfo=timezone.utc))
>>> g.resolve(Link("email", "ann@example.com"))
'c1'
"""

from __future__ import annotations

from . import errors
from .errors import (
    BlockedLink,
    DuplicateEvent,
    IdentityGraphError,
    InvalidCustomerId,
    InvalidEvent,
    InvalidLink,
    InvalidTime,
    LimitExceeded,
    LinkConflict,
    NotConnected,
    ReadOnlyGraph,
    SchemaVersionError,
    StoreError,
    SuppressedLink,
    UnknownCustomer,
    UnknownMerge,
)
from .explain import Step
from .graph import IdentityGraph, Profile
from .guards import Limits, Refusal
from .ids import DEFAULT_BLOCKLIST, CustomerId, Link, LinkType, default_blocklist
from .journal import Entry, ProfileChange, ProfileId
from .ledger import Event

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_BLOCKLIST",
    "BlockedLink",
    "CustomerId",
    "DuplicateEvent",
    "Entry",
    "Event",
    "IdentityGraph",
    "IdentityGraphError",
    "InvalidCustomerId",
    "InvalidEvent",
    "InvalidLink",
    "InvalidTime",
    "LimitExceeded",
    "Limits",
    "Link",
    "LinkConflict",
    "LinkType",
    "NotConnected",
    "Profile",
    "ProfileChange",
    "ProfileId",
    "ReadOnlyGraph",
    "Refusal",
    "SchemaVersionError",
    "Step",
    "StoreError",
    "SuppressedLink",
    "UnknownCustomer",
    "UnknownMerge",
    "__version__",
    "default_blocklist",
    "errors",
]
