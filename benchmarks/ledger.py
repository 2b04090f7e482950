"""Ledger benchmark: event ingest and profile queries, in memory.

Workload (one seed):

- 100k identities: 50k customers each with a loyalty card, and 50k cards that
  nobody has claimed yet (anonymous link profiles);
- ``record_many`` of M events (default 1M): half anchored on a customer id,
  half on a card, at random times over a year, each with an amount and one
  item — built before the clock starts, and once more timed *with* building
  the ``Event`` objects, as an importer would;
- a profile with 1,000 events spread over 10 anchors (2 customers merged, each
  owning cards that changed hands), queried with ``events()`` — whole, with
  a one-month window, and with a type filter — timed per call.

- ``record_table`` of the same M purchase rows as columns (plain Python
  lists, and a polars DataFrame whose ``data`` is a Struct column), side by
  side with ``record_many`` of the prebuilt events and with building the
  events + ``record_many``, in memory and into SQLite (``--bulk``, or
  ``--bulk-only`` for that part alone).

Time with ``time.perf_counter``; memory as peak RSS above the RSS before the
ingest (``ru_maxrss`` after resetting the kernel's peak counter where Linux
allows it).  Targets from the issue are printed, never asserted: ingest
>= 200k events/s in memory (``record_many`` of prebuilt events >= 150k/s);
``record_table`` >= 500k events/s in memory with polars; a 1k-event profile
query <= 1 ms.

With ``--memory``, each in a fresh process (``tracemalloc``, so the bytes
are Python's own allocations, exact and unaffected by other processes):

- bytes per event held by a graph after ``record_many`` of M purchase
  events (the ``Event`` objects included, as a caller building them would
  hold them), and the part allocated by ``record_many`` itself;
- bytes per event after opening a SQLite store of M events (plus the
  profile's 21,000) and answering one ``events(profile)``, which loads them.

With ``--store``, each in a fresh process, on a SQLite store of M events
(plus the profile's) written once to ``--dir`` through the ``Store`` API
and reused: the time to open it, to answer the first ``events(profile)``
(which loads every event row), then ``events()`` of the 1,000-event
profile whose rows were never read, and the same call again.

``--src DIR`` runs against another checkout's ``src`` (a before/after
comparison runs both in turn from one driver).

Run: ``python benchmarks/ledger.py [--events 1000000] [--quick] [--memory]
[--store] [--dir /tmp]``.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[1] / "src"
if "--src" in sys.argv:
    _SRC = Path(sys.argv[sys.argv.index("--src") + 1])
sys.path.insert(0, str(_SRC))

from identity_graph import Event, IdentityGraph, Limits, Link  # noqa: E402
from memory import PeakMeter  # noqa: E402

SEED = 20240601
T0 = datetime(2024, 1, 1, tzinfo=UTC)
IDENTITIES = 100_000
TARGET_INGEST = 200_000  # events/s
TARGET_QUERY_MS = 1.0


def build_graph() -> IdentityGraph:
    g = IdentityGraph(limits=Limits(max_customers_per_profile=10**9))
    for i in range(IDENTITIES // 2):
        g.link(f"c{i}", Link("loyalty_card", f"CARD{i:08d}"), at=T0)
    return g


def event_specs(m: int) -> list[tuple[int, datetime, str]]:
    rng = random.Random(SEED)
    minutes = 365 * 24 * 60
    return [
        (rng.randrange(IDENTITIES), T0 + timedelta(minutes=rng.randrange(minutes)), f"E{j}")
        for j in range(m)
    ]


def make_events(specs: list[tuple[int, datetime, str]]) -> list[Event]:
    events = []
    for k, at, event_id in specs:
        data = {
            "amount": Decimal("19.90"),
            "items": [{"sku": f"S{k % 97}", "quantity": 1, "unit_price": Decimal("19.90")}],
        }
        if k % 2 == 0:
            event = Event("purchase", at=at, customer_id=f"c{k // 2}", data=data, id=event_id)
        else:
            card = Link("loyalty_card", f"CARD{k // 2 + IDENTITIES // 2:08d}")
            event = Event("purchase", at=at, links=(card,), data=data, id=event_id)
        events.append(event)
    return events


def ingest(m: int) -> None:
    specs = event_specs(m)
    g = build_graph()
    events = make_events(specs)
    meter = PeakMeter()
    start = time.perf_counter()
    recorded, unchanged = g.record_many(events)
    seconds = time.perf_counter() - start
    peak = meter.delta() / 2**20
    assert recorded == m and unchanged == 0, (recorded, unchanged)
    rate = m / seconds
    print(
        f"record_many of {m:,} prebuilt events: {seconds:.2f} s, {rate:,.0f} events/s, "
        f"peak +{peak:,.0f} MiB ({peak * 2**20 / m:,.0f} B/event)  "
        f"target >= {TARGET_INGEST:,}/s: {'met' if rate >= TARGET_INGEST else 'NOT met'}"
    )
    start = time.perf_counter()
    again = g.record_many(events)
    seconds = time.perf_counter() - start
    print(
        f"record_many of the same {m:,} again (all unchanged {again}): {m / seconds:,.0f} events/s"
    )
    del g, events
    gc.collect()
    g = build_graph()
    start = time.perf_counter()
    g.record_many(make_events(specs))
    seconds = time.perf_counter() - start
    print(f"building the Event objects and record_many: {m / seconds:,.0f} events/s")


TARGET_TABLE = 500_000  # events/s, record_table with polars, in memory
TARGET_MANY = 150_000  # events/s, record_many of prebuilt events


def purchase_columns(specs: list[tuple[int, datetime, str]]) -> dict[str, list[Any]]:
    """The rows of make_events(specs) as columns (what an importer has)."""
    half = IDENTITIES // 2
    columns: dict[str, list[Any]] = {
        "type": ["purchase"] * len(specs),
        "at": [at for _k, at, _id in specs],
        "id": [event_id for _k, _at, event_id in specs],
        "customer_id": [f"c{k // 2}" if k % 2 == 0 else None for k, _at, _id in specs],
        "loyalty_card": [None if k % 2 == 0 else f"CARD{k // 2 + half:08d}" for k, _a, _i in specs],
        "data": [
            {
                "amount": Decimal("19.90"),
                "items": [{"sku": f"S{k % 97}", "quantity": 1, "unit_price": Decimal("19.90")}],
            }
            for k, _at, _id in specs
        ],
    }
    return columns


def bulk_ingest(m: int, sqlite_rows: int) -> None:
    """record_table against record_many, side by side in one run."""
    import tempfile

    import polars as pl

    specs = event_specs(m)
    columns = purchase_columns(specs)
    frame = pl.DataFrame(
        {
            **{k: v for k, v in columns.items() if k not in ("at", "data")},
            "at": pl.Series(columns["at"], dtype=pl.Datetime("us", "UTC")),
            "data": columns["data"],
        }
    )
    print(f"\nBulk events: {m:,} purchase rows (half on a customer id, half on a card)")
    print(f"  polars frame: {dict(frame.schema)}")
    runs: list[tuple[str, Callable[[IdentityGraph], tuple[int, int]], int]] = [
        ("record_many, prebuilt events", lambda g: g.record_many(prebuilt), m),
        ("build events + record_many", lambda g: g.record_many(make_events(specs)), m),
        ("record_table, Python lists", lambda g: g.record_table(columns), m),
        ("record_table, polars DataFrame", lambda g: g.record_table(frame), m),
    ]
    prebuilt = make_events(specs)
    rates: dict[str, float] = {}
    for label, call, rows in runs:
        g = build_graph()
        gc.collect()
        start = time.perf_counter()
        recorded, _ = call(g)
        seconds = time.perf_counter() - start
        assert recorded == rows, (label, recorded)
        rates[label] = rows / seconds
        print(f"  memory  {label:34s} {seconds:6.2f} s  {rows / seconds:>10,.0f} events/s")
        del g
    base = rates["record_many, prebuilt events"]
    for label, rate in rates.items():
        print(f"  memory  {label:34s} {rate / base:5.2f}x record_many of prebuilt events")
    polars_rate = rates["record_table, polars DataFrame"]
    print(
        f"  targets: record_table with polars >= {TARGET_TABLE:,}/s: "
        f"{'met' if polars_rate >= TARGET_TABLE else 'NOT met'} ({polars_rate:,.0f}); "
        f"record_many >= {TARGET_MANY:,}/s: {'met' if base >= TARGET_MANY else 'NOT met'}"
    )
    # Into SQLite: the first rows only, each run into a fresh store.
    n = min(m, sqlite_rows)
    few_specs = specs[:n]
    few_columns = {k: v[:n] for k, v in columns.items()}
    few_frame = frame.head(n)
    few_events = prebuilt[:n]
    stored_runs: list[tuple[str, Callable[[IdentityGraph], tuple[int, int]]]] = [
        ("record_many, prebuilt events", lambda g: g.record_many(few_events)),
        ("build events + record_many", lambda g: g.record_many(make_events(few_specs))),
        ("record_table, Python lists", lambda g: g.record_table(few_columns)),
        ("record_table, polars DataFrame", lambda g: g.record_table(few_frame)),
    ]
    stored: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for k, (label, call) in enumerate(stored_runs):
            path = str(Path(folder) / f"bulk{k}.db")
            with IdentityGraph.open(
                path, limits=Limits(max_customers_per_profile=10**9), batch_size=50_000
            ) as g:
                with g.batch():
                    for i in range(IDENTITIES // 2):
                        g.link(f"c{i}", Link("loyalty_card", f"CARD{i:08d}"), at=T0)
                start = time.perf_counter()
                recorded, _ = call(g)
                seconds = time.perf_counter() - start
                assert recorded == n, (label, recorded)
            stored[label] = n / seconds
            print(f"  SQLite  {label:34s} {seconds:6.2f} s  {n / seconds:>10,.0f} events/s")
    base = stored["record_many, prebuilt events"]
    for label, rate in stored.items():
        print(f"  SQLite  {label:34s} {rate / base:5.2f}x record_many of prebuilt events")


def profile_graph() -> IdentityGraph:
    """A graph with a profile of 2 customers and 8 cards, 4 of which changed
    hands (the query reads only the spans in which the profile owned them),
    1,000 events of the profile and 20,000 of others on the same cards."""
    g = build_graph()
    rng = random.Random(SEED + 1)
    g.register("p1", at=T0)
    g.register("p2", at=T0)
    cards = [Link("loyalty_card", f"PCARD{i}") for i in range(8)]
    for i, card in enumerate(cards):
        g.link("p1" if i % 2 else "p2", card, at=T0)
        if i < 4:
            g.relink(card, to=f"c{i}", at=T0 + timedelta(days=200))
    g.merge("p1", "p2", reason="bench", at=T0)
    anchors: list[tuple[str | None, Link | None]] = [("p1", None), ("p2", None)]
    anchors += [(None, card) for card in cards]
    events = []
    for j in range(1000):
        customer, card = anchors[j % len(anchors)]
        at = T0 + timedelta(minutes=rng.randrange(180 * 24 * 60))  # before any card moved
        kind = "purchase" if j % 3 else "visit"
        links = () if card is None else (card,)
        events.append(Event(kind, at=at, customer_id=customer, links=links, id=f"P{j}"))
    # Noise on the same cards after they moved, and on other customers.
    for j in range(20_000):
        card = cards[j % 4]
        at = T0 + timedelta(days=201, minutes=rng.randrange(100 * 24 * 60))
        events.append(Event("purchase", at=at, links=(card,), id=f"N{j}"))
    g.record_many(events)
    return g


def profile_query(repeats: int) -> None:
    g = profile_graph()
    found = g.events("p1")
    assert len(found) == 1000, len(found)
    month = (T0 + timedelta(days=30), T0 + timedelta(days=60))
    for label, call in (
        ("events(profile) whole", lambda: g.events("p1")),
        ("events(profile, 30-day window)", lambda: g.events("p1", *month)),
        ("events(profile, types=['visit'])", lambda: g.events("p1", types=["visit"])),
    ):
        best = min(_timed(call) for _ in range(repeats))
        verdict = "met" if best * 1000 <= TARGET_QUERY_MS else "NOT met"
        print(
            f"{label:36s} {len(call()):5d} events  {best * 1000:.3f} ms  "
            f"target <= {TARGET_QUERY_MS} ms: {verdict}"
        )


def _purchases(specs: list[tuple[int, datetime, str]]) -> list[tuple[Event, str | tuple[str, str]]]:
    """The benchmark's purchases with the anchor each is filed under."""
    return [(event, event.customer_id or event.links[0].key) for event in make_events(specs)]


def worker_memory_recorded(m: int) -> dict[str, float]:
    import tracemalloc

    specs = event_specs(m)
    g = build_graph()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    events = make_events(specs)
    built = tracemalloc.get_traced_memory()[0]
    g.record_many(events)
    recorded = tracemalloc.get_traced_memory()[0]
    del events
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(g._ledger) == m + 0 * len(g.events("c0"))
    return {"held": (held - base) / m, "by_record_many": (recorded - built) / m}


def build_store(path: Path, m: int) -> None:
    """Write the identities, the profile and M purchases into an empty SQLite
    store through the Store API, as ``record_many`` would have (one checkpoint)."""
    from identity_graph import checkpoint, codec
    from identity_graph.session import encode_event, encode_record
    from identity_graph.stores import open_store

    g = profile_graph()
    store = open_store(str(path))
    state = g.state
    rows: list[object] = []

    def flush(events: bool) -> None:
        store.begin(True)
        (store.append_events if events else store.append_journal)(rows)  # type: ignore[arg-type]
        store.commit()
        rows.clear()

    for seq, record in state.journal.records(0):
        rows.append((seq, record[0], record[1].isoformat(), encode_record(seq, record)))
    flush(False)
    n = 0
    profile = [(e, e.customer_id or e.links[0].key) for e in g._ledger.by_id().values()]
    chunks = [profile] + [
        _purchases(event_specs(m)[start : start + 100_000]) for start in range(0, m, 100_000)
    ]
    for chunk in chunks:
        for event, anchor in chunk:
            n += 1
            key = codec.dumps_anchor(anchor)
            text = event.at.astimezone(UTC).isoformat()
            body = encode_event(n, key, codec.dumps_event(event, text))
            rows.append((event.id, event.type, text, key, body))
        flush(True)
    store.begin(True)
    store.save_checkpoint((len(state.journal), checkpoint.FORMAT, checkpoint.dumps(state)))
    store.commit()
    store.close()


def store_path(directory: str, m: int) -> Path:
    path = Path(directory) / f"ledger-bench-{m}.db"
    if not path.exists():
        path.with_suffix(".tmp").unlink(missing_ok=True)
        start = time.perf_counter()
        build_store(path.with_suffix(".tmp"), m)
        path.with_suffix(".tmp").rename(path)
        print(f"(wrote {path} in {time.perf_counter() - start:.0f} s)")
    return path


def worker_open(path: str, traced: bool) -> dict[str, float]:
    import tracemalloc

    gc.collect()
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    g = IdentityGraph.open(path, limits=Limits(max_customers_per_profile=10**9))
    opened = time.perf_counter() - start
    before = tracemalloc.get_traced_memory()[0] if traced else 0
    start = time.perf_counter()
    found = g.events("c1") + g.events("p1", types=["none"])  # loads every event row
    loaded = time.perf_counter() - start
    result = {"open": opened, "first_events": loaded, "rows": len(g._ledger)}
    if traced:
        result["bytes"] = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    assert found is not None
    start = time.perf_counter()
    assert len(g.events("p1")) == 1000
    result["never_read"] = time.perf_counter() - start
    result["again"] = min(_timed(lambda: g.events("p1")) for _ in range(20))
    g.close()
    return result


def _worker(name: str, *args: str) -> dict[str, float]:
    from memory import run_worker

    extra = ["--src", str(_SRC)]
    return run_worker(__file__, ["--worker", name, *args, *extra])


def memory_section(m: int, directory: str) -> None:
    got = _worker("memory_recorded", str(m))
    print(
        f"record_many of {m:,} purchases: {got['held']:,.0f} B/event held (Event objects"
        f" included), {got['by_record_many']:,.0f} B/event allocated by record_many"
    )
    path = store_path(directory, m)
    traced = _worker("open", str(path), "1")
    print(
        f"open + first events() of a {traced['rows']:,.0f}-event SQLite store:"
        f" {traced['bytes'] / traced['rows']:,.0f} B/event loaded (tracemalloc, after the open)"
    )


def store_section(m: int, directory: str) -> None:
    path = store_path(directory, m)
    got = _worker("open", str(path), "0")
    print(
        f"SQLite store of {got['rows']:,.0f} events: open {got['open']:.2f} s;"
        f" first events() (loads the rows) {got['first_events']:.2f} s;"
        f" events(1k-event profile) never read {got['never_read'] * 1000:.3f} ms,"
        f" again {got['again'] * 1000:.3f} ms"
    )


def _timed(call: object) -> float:
    start = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100k events")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--bulk", action="store_true", help="also record_table vs record_many")
    parser.add_argument("--bulk-only", action="store_true", help="only record_table vs record_many")
    parser.add_argument("--sqlite-rows", type=int, default=1_000_000)
    parser.add_argument("--memory", action="store_true", help="tracemalloc bytes per event")
    parser.add_argument("--store", action="store_true", help="open a SQLite store of M events")
    parser.add_argument("--only", action="store_true", help="only the --memory/--store parts")
    parser.add_argument("--dir", default="/tmp", help="where the SQLite stores are kept")
    parser.add_argument("--src", default=str(_SRC), help="the src directory to measure")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        import json

        name, *args = options.worker
        if name == "memory_recorded":
            print(json.dumps(worker_memory_recorded(int(args[0]))))
        else:
            print(json.dumps(worker_open(args[0], args[1] == "1")))
        return
    m = 100_000 if options.quick else options.events
    print(f"Python {sys.version.split()[0]}; {IDENTITIES:,} identities; seed {SEED}; {_SRC}")
    if not (options.only or options.bulk_only):
        ingest(m)
        profile_query(options.repeats)
    if options.bulk or options.bulk_only:
        bulk_ingest(m, options.sqlite_rows)
    if options.memory:
        memory_section(m, options.dir)
    if options.store:
        store_section(m, options.dir)


if __name__ == "__main__":
    main()
