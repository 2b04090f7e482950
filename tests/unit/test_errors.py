"""The error hierarchy of identity_graph.errors."""

from __future__ import annotations

import pytest

import identity_graph
from identity_graph import errors
from identity_graph.errors import (
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

# (error, its direct parent in the drawn tree, the builtin it also subclasses)
HIERARCHY = [
    (InvalidLink, IdentityGraphError, ValueError),
    (BlockedLink, InvalidLink, ValueError),
    (SuppressedLink, InvalidLink, ValueError),
    (InvalidCustomerId, IdentityGraphError, ValueError),
    (UnknownCustomer, IdentityGraphError, KeyError),
    (UnknownMerge, IdentityGraphError, KeyError),
    (LinkConflict, IdentityGraphError, ValueError),
    (LimitExceeded, IdentityGraphError, ValueError),
    (NotConnected, IdentityGraphError, LookupError),
    (InvalidEvent, IdentityGraphError, ValueError),
    (InvalidTime, IdentityGraphError, ValueError),
    (DuplicateEvent, IdentityGraphError, ValueError),
    (ReadOnlyGraph, IdentityGraphError, TypeError),
    (StoreError, IdentityGraphError, OSError),
    (SchemaVersionError, StoreError, OSError),
]


@pytest.mark.parametrize(("error", "parent", "builtin"), HIERARCHY)
def test_hierarchy_as_drawn(error: type, parent: type, builtin: type) -> None:
    assert issubclass(error, parent)
    assert issubclass(error, IdentityGraphError)
    assert issubclass(error, builtin)
    assert issubclass(error, Exception)


@pytest.mark.parametrize(("error", "parent", "builtin"), HIERARCHY)
def test_generic_handler_catches(error: type, parent: type, builtin: type) -> None:
    with pytest.raises(builtin):
        raise error("boom")
    with pytest.raises(IdentityGraphError):
        raise error("boom")


def test_every_listed_error_is_in_the_table() -> None:
    listed = {getattr(errors, name) for name in errors.__all__} - {IdentityGraphError}
    assert listed == {row[0] for row in HIERARCHY}


def test_no_cross_branch_subclassing() -> None:
    assert not issubclass(InvalidLink, BlockedLink)
    assert not issubclass(UnknownCustomer, ValueError)
    assert not issubclass(InvalidLink, KeyError)
    assert not issubclass(NotConnected, KeyError)
    assert not issubclass(ReadOnlyGraph, ValueError)
    assert not issubclass(IdentityGraphError, ValueError)


@pytest.mark.parametrize("error", [UnknownCustomer, UnknownMerge])
def test_key_error_subclasses_print_without_quotes(error: type) -> None:
    message = "customer 'c1' is not registered"
    assert str(error(message)) == message
    # the builtin would have added quotes
    assert str(KeyError(message)) != message


@pytest.mark.parametrize("error", [row[0] for row in HIERARCHY])
def test_str_is_the_message(error: type) -> None:
    assert str(error("what went wrong")) == "what went wrong"


def test_str_without_args_is_the_class_name() -> None:
    assert str(UnknownCustomer()) == "UnknownCustomer"
    assert str(IdentityGraphError()) == "IdentityGraphError"


def test_errors_reexported_at_top_level() -> None:
    assert identity_graph.errors is errors
    for name in errors.__all__:
        assert getattr(identity_graph, name) is getattr(errors, name)
