"""The journal: the append-only record every graph state is derived from.

Each operation that changes the graph appends one entry: a gap-free sequence
number, the operation's name, its arguments *as decided* (the normalised
link, the merge id it issued, which merges a detach removed…), the time it
took effect, and the profile changes it caused.  Replaying the entries into
an empty graph applies the same decisions and so yields an equal graph,
whatever configuration the replaying graph has.

Memory matters here: the journal is the one structure that grows with every
call.  An entry is therefore stored as **one flat tuple**::

    (op, at, n_args, name_1, value_1, ..., name_n, value_n, *changes)

where links appear as the graph's own ``(name, value)`` key tuples (shared,
not copied) and each profile change is a run of items of fixed length::

    "created", profile              "merged", a, b, survivor
    "split", old, parts             "link_moved", from, to, link
    "link_history", profiles, link  "erased", profile

An anonymous profile is its link key.  :class:`Entry` values are decoded
from that tuple only when their ``args`` or ``changes`` are read, so a
mutating call that returns its entry pays for one small object.

The in-memory :class:`Journal` keeps the two commonest entries of a bulk
load shorter still, as records that begin with their time rather than an
operation name (:func:`expand` gives the flat record back; the code that
commits such an entry hands its short record over)::

    (at, customer, link)             link of a new customer's first claim
    (at, customer, link, profile)    first claim of a link by a known customer
    (at, a, b, reason, merge_id, profile a, profile b, survivor)    merge

Everything the journal hands out (``records``, ``entry``, ``raw``, the
records ``rewrite`` sees) is the flat record: the short forms are how
memory holds them, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import attrs

from .ids import Link, LinkKey

__all__ = [
    "ARITY",
    "ChangeKind",
    "Entry",
    "Journal",
    "ProfileChange",
    "ProfileId",
    "Record",
    "expand",
    "flatten",
    "raw",
]

ProfileId: TypeAlias = "str | Link"
ChangeKind: TypeAlias = Literal[
    "created", "merged", "split", "link_moved", "link_history", "erased"
]

#: A profile id inside the journal: a customer id, or the key of an anonymous link.
RawProfileId: TypeAlias = "str | LinkKey"
Record: TypeAlias = tuple[Any, ...]

_LINK_ARGS = frozenset({"link"})
_IMMUTABLE = frozenset({str, tuple, int, bool, type(None)})
#: How many items follow each change kind in a record.
ARITY = {
    "created": 1,
    "merged": 3,
    "split": 2,
    "link_moved": 3,
    "link_history": 2,
    "erased": 1,
}


@attrs.frozen
class ProfileChange:
    """One change to the profiles that the outside world sees.

    ``kind`` and what ``before`` / ``after`` hold:

    - ``created``: a customer was registered; ``after`` = its new profile.
    - ``merged``: two profiles became one; ``before`` = both ids,
      ``after`` = the surviving (older) id.
    - ``split``: one profile fell apart; ``before`` = its id, ``after`` =
      the ids of the parts, oldest first.
    - ``link_moved``: ``link``'s current owner moved from the profile in
      ``before`` to the one in ``after`` (an anonymous profile is the link).
    - ``link_history``: ``link``'s past ownership changed (a late-arriving
      change point) but not its current profile; ``after`` lists the
      profiles whose past events may be re-attributed.
    - ``erased``: a customer was erased by ``forget``; ``before`` = its
      keyed hash (the id it had is gone from the journal too).
    """

    seq: int
    kind: ChangeKind
    before: tuple[ProfileId, ...]
    after: tuple[ProfileId, ...]
    link: Link | None = None


class Entry:
    """One journal entry: ``seq`` (from 1, gap-free), ``op`` (the method's
    name), ``args`` (the decided arguments, read-only), ``at`` (when it took
    effect), ``changes`` (the :class:`ProfileChange` values it caused).

    An immutable value, compared by all five fields.  Entries read from a
    graph decode ``args`` and ``changes`` from the stored record on first
    use; entries built by hand (a store loading its rows, say) take them
    as given.
    """

    __slots__ = ("_args", "_changes", "_record", "at", "op", "seq")
    seq: int
    op: str
    at: datetime
    _args: Mapping[str, Any] | None
    _changes: tuple[ProfileChange, ...] | None
    _record: Record | None

    def __init__(
        self,
        seq: int,
        op: str,
        args: Mapping[str, Any],
        at: datetime,
        changes: tuple[ProfileChange, ...] = (),
    ) -> None:
        _set = object.__setattr__
        _set(self, "seq", seq)
        _set(self, "op", op)
        _set(self, "at", at)
        _set(self, "_args", MappingProxyType(dict(args)))
        _set(self, "_changes", tuple(changes))
        _set(self, "_record", None)

    @classmethod
    def from_record(cls, seq: int, record: Record) -> Entry:
        if type(record[0]) is not str:
            record = expand(record)
        entry = object.__new__(cls)
        _set = object.__setattr__
        _set(entry, "seq", seq)
        _set(entry, "op", record[0])
        _set(entry, "at", record[1])
        _set(entry, "_args", None)
        _set(entry, "_changes", None)
        _set(entry, "_record", record)
        return entry

    @property
    def args(self) -> Mapping[str, Any]:
        if self._args is None:
            assert self._record is not None
            object.__setattr__(self, "_args", MappingProxyType(_decode_args(self._record)))
        assert self._args is not None
        return self._args

    @property
    def changes(self) -> tuple[ProfileChange, ...]:
        if self._changes is None:
            assert self._record is not None
            object.__setattr__(self, "_changes", _decode_changes(self.seq, self._record))
        assert self._changes is not None
        return self._changes

    def __setattr__(self, name: str, value: object) -> None:
        raise attrs.exceptions.FrozenInstanceError()

    def __delattr__(self, name: str) -> None:
        raise attrs.exceptions.FrozenInstanceError()

    def _key(self) -> tuple[Any, ...]:
        return (self.seq, self.op, self.at, dict(self.args), self.changes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Entry(seq={self.seq!r}, op={self.op!r}, args={dict(self.args)!r}, "
            f"at={self.at!r}, changes={self.changes!r})"
        )


def _frozen(value: Any) -> Any:
    """An immutable copy of an argument, so no caller can rewrite the journal."""
    if isinstance(value, Link):
        return value.key
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | set | frozenset):  # tuples (link keys) are shared as is
        return tuple(_frozen(v) for v in value)
    return value


def _link(key: LinkKey, cache: dict[LinkKey, Link]) -> Link:
    # One Link per key within an entry: a link entry names the same link in
    # its args and in up to three places of its changes.
    found = cache.get(key)
    if found is None:
        found = cache[key] = Link(key[0], key[1])
    return found


def _decode_args(record: Record) -> dict[str, Any]:
    end = 3 + 2 * record[2]
    args = dict(zip(record[3:end:2], record[4:end:2], strict=True))
    for name in _LINK_ARGS.intersection(args):
        args[name] = Link(*args[name])
    if "links" in args:  # forget: the erased links, by their keyed hashes
        args["links"] = tuple(Link(*key) for key in args["links"])
    return args


def _decode_changes(seq: int, record: Record) -> tuple[ProfileChange, ...]:
    cache: dict[LinkKey, Link] = {}

    def pid(raw: RawProfileId) -> ProfileId:
        return _link(raw, cache) if isinstance(raw, tuple) else raw

    changes: list[ProfileChange] = []
    index = 3 + 2 * record[2]
    while index < len(record):
        kind = record[index]
        item = record[index + 1 : index + 1 + ARITY[kind]]
        index += 1 + ARITY[kind]
        if kind == "created":
            change = ProfileChange(seq, kind, (), (pid(item[0]),))
        elif kind == "merged":
            change = ProfileChange(seq, kind, (item[0], item[1]), (item[2],))
        elif kind == "split":
            change = ProfileChange(seq, kind, (item[0],), tuple(item[1]))
        elif kind == "link_moved":
            link = _link(item[2], cache)
            change = ProfileChange(seq, kind, (pid(item[0]),), (pid(item[1]),), link)
        elif kind == "erased":
            change = ProfileChange(seq, kind, (pid(item[0]),), ())
        else:  # link_history
            link = _link(item[1], cache)
            change = ProfileChange(seq, kind, (), tuple(pid(p) for p in item[0]), link)
        changes.append(change)
    return tuple(changes)


class Journal:
    """The entries of one graph, in sequence order.  Append and lookup are O(1)."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: list[Record] = []

    def __len__(self) -> int:
        return len(self._records)

    def append(
        self,
        op: str,
        args: Mapping[str, Any],
        at: datetime,
        changes: list[Any],
        short: Record | None = None,
    ) -> int:
        """Append one entry (``changes`` in the flat form above); return its seq.

        ``short`` is the entry's short record (see the module notes) when
        the caller knows it has one of those shapes: memory keeps that
        instead (a journal kept elsewhere ignores it).  O(size)."""
        self._records.append(flatten(op, args, at, changes) if short is None else short)
        return len(self._records)

    def next_seq(self) -> int:
        """The sequence number the next entry will get."""
        return len(self._records) + 1

    def entry(self, seq: int) -> Entry:
        """Entry number ``seq`` (from 1).  O(1); its args and changes decode when read."""
        return Entry.from_record(seq, self._records[seq - 1])

    def entries(self, since: int = 0) -> Iterator[Entry]:
        """Entries with ``seq > since``, oldest first.  O(1) to start, O(1) per entry."""
        for seq, record in self.records(since):
            yield Entry.from_record(seq, record)

    def records(self, since: int = 0, upto: int | None = None) -> Iterator[tuple[int, Record]]:
        """``(seq, record)`` for ``since < seq <= upto`` (default: to the end), in order."""
        end = len(self._records) if upto is None else min(upto, len(self._records))
        for seq in range(max(since, 0) + 1, end + 1):
            record = self._records[seq - 1]
            yield seq, record if type(record[0]) is str else expand(record)

    def raw(self, seq: int) -> tuple[str, dict[str, Any], datetime]:
        """(op, decided args with link keys, at) of entry ``seq``, for replay."""
        return raw(expand(self._records[seq - 1]))

    def rewrite(self, change: Callable[[Record], Record | None]) -> int:
        """Replace each record ``change`` returns a new one for (an erasure);
        return how many changed.  O(entries)."""
        records = self._records
        changed = 0
        for index, record in enumerate(records):
            new = change(expand(record))
            if new is not None:
                records[index] = new
                changed += 1
        return changed


def raw(record: Record) -> tuple[str, dict[str, Any], datetime]:
    """(op, decided args with link keys, at) of one record, for replay."""
    end = 3 + 2 * record[2]
    return record[0], dict(zip(record[3:end:2], record[4:end:2], strict=True)), record[1]


def flatten(op: str, args: Mapping[str, Any], at: datetime, changes: list[Any]) -> Record:
    """One entry as its flat record (see the module notes).  O(size)."""
    flat: list[Any] = [op, at, len(args)]
    for name, value in args.items():
        flat.append(name)
        # Strings and link keys (most arguments) are immutable already.
        flat.append(value if type(value) in _IMMUTABLE else _frozen(value))
    flat.extend(changes)
    return tuple(flat)


def expand(record: Record) -> Record:
    """The flat record of a short one (a flat record is returned as it is).  O(size)."""
    if type(record[0]) is str:
        return record
    if len(record) == 3:
        at, customer, key = record
        return (
            "link", at, 2, "customer_id", customer, "link", key,
            "created", customer, "link_moved", key, customer, key,
        )  # fmt: skip
    if len(record) == 4:
        at, customer, key, profile = record
        return (
            "link",
            at,
            2,
            "customer_id",
            customer,
            "link",
            key,
            "link_moved",
            key,
            profile,
            key,
        )
    at, a, b, reason, merge_id, id_a, id_b, survivor = record
    return (
        "merge", at, 4, "a", a, "b", b, "reason", reason, "merge_id", merge_id,
        "merged", id_a, id_b, survivor,
    )  # fmt: skip
