"""Union-find over active merges: resolution.Partition."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from identity_graph.resolution import Merge, Partition

T = datetime(2024, 1, 1, tzinfo=UTC)


def make(*customers: str) -> Partition:
    return Partition({c: i for i, c in enumerate(customers)})


def merge(partition: Partition, merge_id: str, a: str, b: str, seq: int = 1) -> tuple:
    return partition.union(Merge(merge_id, a, b, "test", T, seq))


def test_unmerged_customer_is_its_own_profile() -> None:
    p = make("a", "b")
    assert p.find("a") == "a"
    assert p.profile_id("b") == "b"
    assert p.members("a") == ["a"]
    assert p.active_merges("a") == set()
    assert p.merges_of_profile("a") == []
    assert list(p.groups()) == []
    p.check()


def test_union_returns_ids_and_survivor() -> None:
    p = make("a", "b")
    assert merge(p, "m1", "b", "a") == ("b", "a", "a")
    assert p.profile_id("a") == "a"
    assert p.profile_id("b") == "a"
    assert sorted(p.members("b")) == ["a", "b"]
    p.check()


def test_oldest_by_registration_order_survives_not_by_name() -> None:
    p = Partition({"zed": 0, "amy": 1, "bob": 2})
    merge(p, "m1", "amy", "bob")
    assert p.profile_id("bob") == "amy"
    merge(p, "m2", "bob", "zed")
    assert p.profile_id("amy") == "zed"
    assert p.profile_id("bob") == "zed"
    p.check()


def test_survivor_independent_of_tree_shape() -> None:
    # the larger tree's root becomes the root, but the id is still the oldest
    p = make("old", "x1", "x2", "x3")
    merge(p, "m1", "x1", "x2", 1)
    merge(p, "m2", "x2", "x3", 2)
    assert merge(p, "m3", "old", "x3", 3) == ("old", "x1", "old")
    assert {p.profile_id(c) for c in ("old", "x1", "x2", "x3")} == {"old"}
    p.check()


def test_union_inside_one_profile_is_refused() -> None:
    p = make("a", "b")
    merge(p, "m1", "a", "b")
    with pytest.raises(AssertionError, match=r"merge m2: b and a share a profile"):
        merge(p, "m2", "b", "a")


def test_merges_of_profile_sorted_by_seq() -> None:
    p = make("a", "b", "c")
    merge(p, "m9", "a", "b", seq=9)
    merge(p, "m3", "c", "b", seq=3)
    assert p.merges_of_profile("c") == ["m3", "m9"]
    assert p.active_merges("b") == {"m3", "m9"}
    assert p.active_merges("a") == {"m9"}


def test_deactivate_splits_a_chain_into_the_right_parts() -> None:
    # a - b - c - d ; removing b-c gives {a, b} and {c, d}
    p = make("a", "b", "c", "d")
    merge(p, "ab", "a", "b", 1)
    merge(p, "bc", "b", "c", 2)
    merge(p, "cd", "c", "d", 3)
    old, parts = p.deactivate(["bc"])
    assert (old, parts) == ("a", ["a", "c"])
    assert sorted(p.members("a")) == ["a", "b"]
    assert sorted(p.members("d")) == ["c", "d"]
    assert p.profile_id("b") == "a"
    assert p.profile_id("d") == "c"
    assert p.merges["bc"].active is False
    assert p.merges["ab"].active is True
    p.check()


def test_deactivate_part_id_is_its_oldest_customer() -> None:
    p = Partition({"z": 0, "y": 1, "x": 2, "w": 3})
    merge(p, "m1", "x", "w", 1)  # x older than w
    merge(p, "m2", "w", "z", 2)
    merge(p, "m3", "y", "x", 3)
    # profile z: z - w - x - y ; cut w-z -> {z} and {w, x, y} with id y
    old, parts = p.deactivate(["m2"])
    assert old == "z"
    assert parts == ["z", "y"]
    assert p.profile_id("w") == "y"
    assert p.profile_id("x") == "y"
    assert p.members("z") == ["z"]
    p.check()


def test_deactivate_leaf_leaves_singleton() -> None:
    p = make("a", "b", "c")
    merge(p, "m1", "a", "b", 1)
    merge(p, "m2", "a", "c", 2)
    old, parts = p.deactivate(["m2"])
    assert (old, parts) == ("a", ["a", "c"])
    assert p.profile_id("c") == "c"
    assert p.active_merges("c") == set()
    assert sorted(p.members("b")) == ["a", "b"]
    p.check()


def test_detach_of_a_hub() -> None:
    # star: hub merged with s1, s2, s3; s3 also has a leaf s4
    p = make("s1", "hub", "s2", "s3", "s4")
    merge(p, "m1", "hub", "s1", 1)
    merge(p, "m2", "hub", "s2", 2)
    merge(p, "m3", "hub", "s3", 3)
    merge(p, "m4", "s3", "s4", 4)
    assert p.profile_id("s4") == "s1"
    old, parts = p.deactivate(sorted(p.active_merges("hub")))
    assert old == "s1"
    assert parts == ["s1", "hub", "s2", "s3"]
    assert p.members("hub") == ["hub"]
    assert p.active_merges("hub") == set()
    assert sorted(p.members("s4")) == ["s3", "s4"]
    assert p.profile_id("s4") == "s3"
    p.check()


def test_remerge_after_split() -> None:
    p = make("a", "b")
    merge(p, "m1", "a", "b", 1)
    p.deactivate(["m1"])
    assert p.profile_id("b") == "b"
    merge(p, "m2", "b", "a", 2)
    assert p.profile_id("b") == "a"
    assert p.merges_of_profile("a") == ["m2"]
    p.check()


def test_many_merges_stay_consistent() -> None:
    rng = random.Random(7)
    names = [f"c{i:03d}" for i in range(200)]
    p = make(*names)
    for i in range(1, 200):
        merge(p, f"m{i}", names[i], names[rng.randrange(i)], seq=i)
    assert {p.profile_id(c) for c in names} == {"c000"}
    assert len(p.members("c150")) == 200
    p.check()
    old, parts = p.deactivate(["m100"])
    assert old == "c000"
    assert len(parts) == 2
    assert sum(len(p.members(part)) for part in parts) == 200
    p.check()


def test_merge_other() -> None:
    m = Merge("m1", "a", "b", "why", T, 1)
    assert m.other("a") == "b"
    assert m.other("b") == "a"
    assert m.active is True


def test_check_detects_wrong_oldest() -> None:
    p = make("a", "b")
    merge(p, "m1", "a", "b")
    root = p.find("a")
    p._oldest[root] = "b"
    with pytest.raises(AssertionError):
        p.check()


def test_check_detects_stale_adjacency() -> None:
    p = make("a", "b", "c")
    merge(p, "m1", "a", "b")
    p._adjacent["c"] = {"m1"}
    with pytest.raises(AssertionError):
        p.check()


def test_check_detects_broken_forest() -> None:
    p = make("a", "b")
    merge(p, "m1", "a", "b")
    p.merges["m1"].active = False
    p._adjacent.clear()
    with pytest.raises(AssertionError, match="spanning forest"):
        p.check()
