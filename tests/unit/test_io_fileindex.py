"""What the customers importer remembers of its file (io/fileindex.py)."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import date
from decimal import Decimal

from identity_graph.io.fileindex import FileIndex


def test_the_first_row_keeps_a_link_and_a_customer() -> None:
    with FileIndex() as seen:
        assert seen.claim_links([("email", "a@x.fi"), ("phone", "+358401")], 2) == {}
        assert seen.claim_links([("email", "a@x.fi"), ("email", "b@x.fi")], 5) == {
            ("email", "a@x.fi"): 2
        }
        assert seen.claim_links([("email", "a@x.fi")], 2) == {}  # the same row again
        assert seen.row_of_link("email", "b@x.fi") == 5
        assert seen.row_of_link("phone", "+358402") is None
        assert seen.claim_customer("c1", 2) is None
        assert seen.claim_customer("c1", 2) is None
        assert seen.claim_customer("c1", 7) == 2


def test_generate_cells_are_noted_per_customer_and_name() -> None:
    with FileIndex() as seen:
        assert seen.generate_of("c1", "loyalty_card") is None
        seen.note_generate("c1", "loyalty_card", 3, 2)
        assert seen.generate_of("c1", "loyalty_card") == (3, 2)
        assert seen.generate_of("c1", "other") is None


def test_rows_put_off_come_back_in_file_order() -> None:
    with FileIndex() as seen:
        seen.defer(9, ["c9", Decimal("1.50"), date(2024, 1, 1), None])
        seen.defer(4, ["c4", 12])
        walk = seen.deferred()
        assert next(walk) == (4, ["c4", 12])
        seen.defer(6, ["c6"])  # put off while walking: after 4, so seen
        seen.undefer(9)  # forgotten while walking: skipped
        assert list(walk) == [(6, ["c6"])]
        assert [row for row, _ in seen.deferred()] == [4, 6]


def test_the_keys_are_not_kept_in_python_memory() -> None:
    with FileIndex() as seen:
        gc.collect()
        tracemalloc.start()
        try:
            for row in range(30_000):
                seen.claim_links([("email", f"person{row}@example.com")], row)
                seen.claim_customer(f"customer-{row}", row)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert seen.claim_customer("customer-29999", 1) == 29_999
    # A dict of the same keys would take several MiB.
    assert peak < 512 * 1024, peak


def test_a_row_s_fate_is_applied_until_put_off_or_rejected() -> None:
    with FileIndex() as seen:
        assert seen.fate(2) == "applied"
        seen.defer(3, ["c3"])
        seen.reject(4)
        seen.reject(4)  # a row rejected twice is noted once
        assert (seen.fate(3), seen.fate(4)) == ("deferred", "rejected")
        seen.undefer(3)
        assert seen.fate(3) == "applied"
