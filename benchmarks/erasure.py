"""Erasure benchmark: the cost of ``forget`` on a large graph, in memory and
in SQLite, and how it scales.

Workload (one seed): N customers, each linked to an e-mail; customers
``2k`` and ``2k+1`` merged (N/2 merges); E purchases at random times over a
year: a quarter anchored on a customer id alone, a quarter on a customer id
and also naming the customer's e-mail (an event with two identities, which
an erasure must look into), half on an e-mail.  One customer of a merged
pair (with about E/N events) is forgotten.

In memory, ``forget`` is timed whole and in its parts, measured on the
same graph just before: the plan (what goes: the person's links, spans,
merges and events, a scan of the claimants and of the events with more
than one identity), the journal pass (every record offered to the
rewriter; only the person's are changed), and the rest (the ledger and the
purchase columns rebuilt, the state changed).

In SQLite the store is written through the ``Store`` API from the
in-memory graph (journal rows, event rows and a checkpoint: calling the
API N + E times would take an hour), then opened in a fresh process, which
forgets at once, as ``identity-graph forget`` does: it loads the state from
the checkpoint but not the events, and finds the person's rows with SQL
text searches.  The parts: opening, the erasure's transaction (the journal
and event rows found, rewritten or replaced, a new checkpoint) and the
clearing after the commit (``VACUUM`` and the WAL truncated), whose cost is
the size of the file.

Run: ``python benchmarks/erasure.py [--customers 100000] [--events 1000000]
[--stores memory,sqlite] [--dir DIR]``; the issue's size:
``--customers 1000000 --events 10000000`` (about 15 GB of memory and
20 minutes on 2 cores, most of it building the input).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from identity_graph import Event, IdentityGraph, Limits, Link
from memory import PeakMeter, run_worker

SEED = 20241203
T0 = datetime(2024, 1, 1, tzinfo=UTC)
LIMITS = Limits(max_customers_per_profile=10**9)


def build(customers: int, events: int) -> tuple[IdentityGraph, float]:
    """The workload graph, in memory; and the seconds it took."""
    start = time.perf_counter()
    g = IdentityGraph(limits=LIMITS)
    for i in range(customers):
        g.link(f"c{i}", Link("email", f"person{i}@example.com"), at=T0)
    for i in range(0, customers - 1, 2):
        g.merge(f"c{i}", f"c{i + 1}", reason="same person", at=T0 + timedelta(days=1))
    rng = random.Random(SEED)
    minutes = 365 * 24 * 60
    batch: list[Event] = []
    amount = Decimal("19.90")
    for j in range(events):
        k = rng.randrange(customers)
        at = T0 + timedelta(minutes=rng.randrange(minutes))
        data = {"amount": amount, "items": [{"sku": f"S{k % 97}", "quantity": 1}]}
        email = Link("email", f"person{k}@example.com")
        if j % 4 == 1:
            batch.append(Event("purchase", at=at, customer_id=f"c{k}", data=data, id=f"E{j}"))
        elif j % 4 == 3:
            event = Event(
                "purchase", at=at, customer_id=f"c{k}", links=(email,), data=data, id=f"E{j}"
            )
            batch.append(event)
        else:
            batch.append(Event("purchase", at=at, links=(email,), data=data, id=f"E{j}"))
        if len(batch) == 100_000:
            g.record_many(batch)
            batch = []
    g.record_many(batch)
    return g, time.perf_counter() - start


def victim(customers: int) -> str:
    """The customer forgotten: one of a merged pair, in the middle."""
    return f"c{(customers // 2) & ~1}"


def in_memory(customers: int, events: int) -> dict[str, Any]:
    from identity_graph import erasure

    g, built = build(customers, events)
    who = victim(customers)
    state = g.state
    start = time.perf_counter()
    plan = erasure.plan(state, g._ledger, who, g.link_types)
    planned = time.perf_counter() - start
    start = time.perf_counter()
    changed = sum(1 for _seq, record in state.journal.records() if plan.record(record))
    journal_pass = time.perf_counter() - start
    meter = PeakMeter()
    start = time.perf_counter()
    entry = g.forget(who, reason="benchmark", at=T0 + timedelta(days=400))
    seconds = time.perf_counter() - start
    assert entry is not None
    # Side by side: the alternative that needs no erasure code at all,
    # rebuilding the graph by replaying its (rewritten) journal.
    start = time.perf_counter()
    rebuilt = IdentityGraph.from_journal(g.journal(), limits=LIMITS)
    replay = time.perf_counter() - start
    del rebuilt
    return {
        "store": "memory",
        "replay": replay,
        "built": built,
        "entries": len(state.journal),
        "events_erased": len(entry.args["events"]),
        "rows_rewritten": changed,
        "plan": planned,
        "journal_pass": journal_pass,
        "forget": seconds,
        "peak": meter.delta(),
    }


def worker_build_sqlite(path: str, customers: int, events: int) -> dict[str, Any]:
    """Write the workload into an empty SQLite store through the Store API."""
    from identity_graph import checkpoint, codec
    from identity_graph.session import encode_event, encode_record
    from identity_graph.stores import open_store

    g, built = build(customers, events)
    start = time.perf_counter()
    store = open_store(path)
    state = g.state
    rows: list[Any] = []

    def flush_journal() -> None:
        store.begin(True)
        store.append_journal(rows)
        store.commit()
        rows.clear()

    for seq, record in state.journal.records(0):
        rows.append((seq, record[0], record[1].isoformat(), encode_record(seq, record)))
        if len(rows) == 50_000:
            flush_journal()
    if rows:
        flush_journal()
    anchors = {event_id: anchor for anchor, _times, ids in g._ledger.anchored() for event_id in ids}
    for n, event in enumerate(g._ledger.by_id().values(), start=1):
        key = codec.dumps_anchor(anchors[event.id])  # type: ignore[index]
        text = event.at.astimezone(UTC).isoformat()
        body = encode_event(n, key, codec.dumps_event(event, text))
        rows.append((event.id, event.type, text, key, body))
        if len(rows) == 50_000:
            store.begin(True)
            store.append_events(rows)
            store.commit()
            rows.clear()
    if rows:
        store.begin(True)
        store.append_events(rows)
        store.commit()
        rows.clear()
    store.begin(True)
    store.save_checkpoint((len(state.journal), checkpoint.FORMAT, checkpoint.dumps(state)))
    store.commit()
    store.close()
    return {"built": built, "written": time.perf_counter() - start}


def worker_forget_sqlite(path: str, customers: int) -> dict[str, Any]:
    """Open the store, forget one customer at once; time each part."""
    from identity_graph.stores import SQLiteStore

    timings: dict[str, float] = {}
    original = SQLiteStore.scrub

    def timed_scrub(self: SQLiteStore) -> None:
        start = time.perf_counter()
        original(self)
        timings["scrub"] = time.perf_counter() - start

    SQLiteStore.scrub = timed_scrub  # type: ignore[method-assign]
    size = Path(path).stat().st_size
    meter = PeakMeter()
    start = time.perf_counter()
    g = IdentityGraph.open(path, limits=LIMITS, checkpoint_every=10**12)
    opened = time.perf_counter() - start
    start = time.perf_counter()
    entry = g.forget(victim(customers), reason="benchmark", at=T0 + timedelta(days=400))
    seconds = time.perf_counter() - start
    assert entry is not None
    g.close()
    return {
        "store": "sqlite",
        "file_bytes": size,
        "open": opened,
        "forget": seconds,
        "scrub": timings.get("scrub", 0.0),
        "events_erased": len(entry.args["events"]),
        "peak": meter.delta(),
    }


def worker_main(args: list[str]) -> None:
    kind, *rest = args
    if kind == "memory":
        result = in_memory(int(rest[0]), int(rest[1]))
    elif kind == "build-sqlite":
        result = worker_build_sqlite(rest[0], int(rest[1]), int(rest[2]))
    elif kind == "forget-sqlite":
        result = worker_forget_sqlite(rest[0], int(rest[1]))
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--stores", default="memory,sqlite")
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    n, e = args.customers, args.events
    print(f"forget: {n:,} customers, {n // 2:,} merges, {e:,} purchases\n")
    script = __file__
    for store in args.stores.split(","):
        if store == "memory":
            row = run_worker(script, ["--worker", "memory", str(n), str(e)])
            rest = row["forget"] - row["plan"] - row["journal_pass"]
            print(
                f"memory   forget {row['forget']:7.2f} s  (plan {row['plan']:.2f} s, journal"
                f" pass over {row['entries']:,} entries {row['journal_pass']:.2f} s, the rest"
                f" {rest:.2f} s); {row['rows_rewritten']} entries rewritten,"
                f" {row['events_erased']} events erased; peak +{row['peak'] / 2**20:.0f} MiB"
                f"  [input built in {row['built']:.0f} s]\n"
                f"         beside it: replaying the journal into a new graph (the state only,"
                f" no events) {row['replay']:.2f} s; forget / replay"
                f" {row['forget'] / row['replay']:.2f}"
            )
        elif store == "sqlite":
            with tempfile.TemporaryDirectory(dir=args.dir) as directory:
                path = str(Path(directory) / "erasure.db")
                built = run_worker(script, ["--worker", "build-sqlite", path, str(n), str(e)])
                row = run_worker(script, ["--worker", "forget-sqlite", path, str(n)])
            tx = row["forget"] - row["scrub"]
            print(
                f"sqlite   forget {row['forget']:7.2f} s  (transaction {tx:.2f} s, VACUUM and"
                f" WAL truncation {row['scrub']:.2f} s for a {row['file_bytes'] / 2**20:.0f} MiB"
                f" file); open {row['open']:.1f} s; {row['events_erased']} events"
                f" erased; peak +{row['peak'] / 2**20:.0f} MiB  [input built in"
                f" {built['built']:.0f} s, written in {built['written']:.0f} s]"
            )
        else:
            raise SystemExit(f"unknown store {store!r}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()
