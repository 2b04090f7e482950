"""Oracle on the FEBRL ``dataset1`` sample (1000 records, 500 originals and 500
duplicates): records sharing a social-security id must end up in one profile
when ``ssn`` links merge on conflict.

Each record is a customer (id = ``rec_id``) linked to ``Link("ssn", soc_sec_id)``
at increasing times.  The expected profiles are the connected components of the
bipartite record–ssn graph, computed independently with ``networkx``.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import networkx as nx
import pytest

from identity_graph import IdentityGraph, Link, LinkType

DATA = Path(__file__).resolve().parents[1] / "data" / "febrl_dataset1.csv"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
REC_ID = re.compile(r"rec-(\d+)-(org|dup-\d+)")


def _records() -> list[dict[str, str]]:
    # Header and values carry a space after each comma.
    with DATA.open(newline="") as handle:
        rows = list(csv.DictReader(handle, skipinitialspace=True))
    return [{k.strip(): (v or "").strip() for k, v in row.items()} for row in rows]


@pytest.fixture(scope="module")
def febrl() -> tuple[IdentityGraph, list[dict[str, str]], int]:
    rows = _records()
    usable = [row for row in rows if row["soc_sec_id"]]
    skipped = len(rows) - len(usable)  # records without an ssn: 0 in this file
    g = IdentityGraph(link_types={"ssn": LinkType(conflict="merge")})
    for i, row in enumerate(usable):
        at = T0 + timedelta(minutes=i)
        attributes = {k: row[k] for k in ("given_name", "surname") if row[k]}
        g.register(row["rec_id"], attributes=attributes, at=at)
        g.link(row["rec_id"], Link("ssn", row["soc_sec_id"]), at=at)
    return g, usable, skipped


def test_profiles_are_components_of_the_record_ssn_graph(
    febrl: tuple[IdentityGraph, list[dict[str, str]], int],
) -> None:
    g, rows, skipped = febrl
    assert len(rows) + skipped == 1000
    bipartite = nx.Graph()
    records = [row["rec_id"] for row in rows]
    bipartite.add_nodes_from(records)
    bipartite.add_edges_from((row["rec_id"], ("ssn", row["soc_sec_id"])) for row in rows)
    expected = {
        frozenset(n for n in component if isinstance(n, str))
        for component in nx.connected_components(bipartite)
    }

    groups: dict[str, set[str]] = defaultdict(set)
    for record in records:
        groups[g.resolve(record)].add(record)
    actual = {frozenset(members) for members in groups.values()}
    assert actual == expected
    # Some ssns are shared, so there are real merges to check.
    assert len(actual) < len(records)

    order = {record: i for i, record in enumerate(records)}
    for profile_id, members in groups.items():
        assert profile_id == min(members, key=order.__getitem__)
    # Every ssn resolves to the profile of the record that claimed it first.
    for row in rows:
        assert g.resolve(Link("ssn", row["soc_sec_id"])) == g.resolve(row["rec_id"])
    g._check()


def test_febrl_truth_where_it_applies(
    febrl: tuple[IdentityGraph, list[dict[str, str]], int],
) -> None:
    """Original and duplicate records of one entity (equal N in ``rec-N-...``)
    share a profile whenever they share an ssn.  Other numbers are reported only:
    a typo in a duplicate's ssn keeps it apart, which the graph cannot know."""
    g, rows, _skipped = febrl
    ssn = {row["rec_id"]: row["soc_sec_id"] for row in rows}
    entities: dict[str, list[str]] = defaultdict(list)
    for record in ssn:
        match = REC_ID.fullmatch(record)
        assert match, record
        entities[match.group(1)].append(record)

    true_pairs = same_ssn = same_profile = 0
    for members in entities.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                true_pairs += 1
                together = g.resolve(a) == g.resolve(b)
                same_profile += together
                if ssn[a] == ssn[b]:
                    same_ssn += 1
                    assert together, (a, b, ssn[a])

    profiles: dict[str, set[str]] = defaultdict(set)
    for record in ssn:
        profiles[g.resolve(record)].add(REC_ID.fullmatch(record).group(1))  # type: ignore[union-attr]
    mixed = sum(1 for entities_in in profiles.values() if len(entities_in) > 1)
    print(
        f"\nFEBRL dataset1: {len(ssn)} records, {len(entities)} entities, "
        f"{true_pairs} true pairs; {same_ssn} share an ssn; {same_profile} share a profile "
        f"(recall {same_profile / true_pairs:.1%}); {len(profiles)} profiles, "
        f"{mixed} of them join records of different entities"
    )
    assert same_profile >= same_ssn
