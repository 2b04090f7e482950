"""The journal: the append-only record every graph state is derived from (§2).

Each operation that changes the graph appends one entry: a gap-free sequence
number, the operation's name, its arguments *as decided* (the normalised
link, the merge id it issued, which merges a detach removed…), the time it
took effect, and the profile changes it caused.  Replaying the entries into
an empty graph applies the same decisions and so yields an equal graph,
whatever configuration the replaying graph has.

Entries are kept compactly (tuples sharing the graph's link keys) and turned
into :class:`Entry` values when read; a journal of a million entries is then
a few hundred bytes an entry, not a kilobyte.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import attrs

from .ids import Link, LinkKey

__all__ = ["ChangeKind", "Entry", "Journal", "ProfileChange", "ProfileId"]

ProfileId: TypeAlias = "str | Link"
ChangeKind: TypeAlias = Literal["created", "merged", "split", "link_moved", "link_history"]

#: A profile id inside the journal: a customer id, or the key of an anonymous link.
RawProfileId: TypeAlias = "str | LinkKey"
RawChange: TypeAlias = (
    "tuple[str, tuple[RawProfileId, ...], tuple[RawProfileId, ...], LinkKey | None]"
)

_LINK_ARGS = frozenset({"link"})


@attrs.frozen
class ProfileChange:
    """One change to the profiles that the outside world sees (§2).

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
    """

    seq: int
    kind: ChangeKind
    before: tuple[ProfileId, ...]
    after: tuple[ProfileId, ...]
    link: Link | None = None


@attrs.frozen(eq=True, hash=False)
class Entry:
    """One journal entry: ``seq`` (from 1, gap-free), ``op`` (the method's
    name), ``args`` (the decided arguments), ``at`` (when it took effect),
    ``changes`` (the profile changes it caused)."""

    seq: int
    op: str
    args: Mapping[str, Any]
    at: datetime
    changes: tuple[ProfileChange, ...]


def _profile_id(raw: RawProfileId) -> ProfileId:
    return Link(raw[0], raw[1]) if isinstance(raw, tuple) else raw


def _encode_args(args: Mapping[str, Any]) -> tuple[Any, ...]:
    flat: list[Any] = []
    for name, value in args.items():
        flat.append(name)
        flat.append(value.key if isinstance(value, Link) else value)
    return tuple(flat)


def _decode_args(flat: tuple[Any, ...]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for index in range(0, len(flat), 2):
        name, value = flat[index], flat[index + 1]
        args[name] = Link(value[0], value[1]) if name in _LINK_ARGS else value
    return args


class Journal:
    """The entries of one graph, in sequence order.  Append and lookup are O(1)."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: list[tuple[str, tuple[Any, ...], datetime, tuple[RawChange, ...]]] = []

    def __len__(self) -> int:
        return len(self._records)

    def append(
        self,
        op: str,
        args: Mapping[str, Any],
        at: datetime,
        changes: list[RawChange],
    ) -> int:
        """Append one entry; return its sequence number."""
        self._records.append((op, _encode_args(args), at, tuple(changes)))
        return len(self._records)

    def next_seq(self) -> int:
        """The sequence number the next entry will get."""
        return len(self._records) + 1

    def entry(self, seq: int) -> Entry:
        """Entry number ``seq`` (from 1).  O(size of the entry)."""
        op, flat, at, changes = self._records[seq - 1]
        return Entry(
            seq=seq,
            op=op,
            args=MappingProxyType(_decode_args(flat)),
            at=at,
            changes=tuple(
                ProfileChange(
                    seq=seq,
                    kind=kind,  # type: ignore[arg-type]
                    before=tuple(_profile_id(p) for p in before),
                    after=tuple(_profile_id(p) for p in after),
                    link=None if link is None else Link(link[0], link[1]),
                )
                for kind, before, after, link in changes
            ),
        )

    def entries(self, since: int = 0) -> Iterator[Entry]:
        """Entries with ``seq > since``, oldest first.  O(1) to start, O(1) per entry."""
        for seq in range(max(since, 0) + 1, len(self._records) + 1):
            yield self.entry(seq)

    def raw(self, seq: int) -> tuple[str, dict[str, Any], datetime]:
        """(op, decided args with link keys, at) of entry ``seq``, for replay."""
        op, flat, at, _changes = self._records[seq - 1]
        return op, dict(zip(flat[::2], flat[1::2], strict=True)), at
