"""Store benchmark: write throughput and start-up of the memory, SQLite and
PostgreSQL stores.

Workload (a new, empty store for every measurement; every measurement in a
fresh process, so one never warms another):

- single calls, each its own durable transaction: ``link`` (a new customer
  and e-mail per call), ``merge`` (pairs of customers registered before the
  clock starts) and ``record`` (one event per call, all on one customer);
- bulk: ``record_many`` of E events built before the clock starts, in the
  default ``batch_size`` (10,000 events per transaction);
- each with one writer process, and with two writer processes on the same
  store started at the same instant: the rate is all calls (events) over
  the wall time from the first start to the last finish.  The in-memory
  store cannot be shared, so it has no two-writer figures;
- start-up: a store of L links (one customer each) whose journal rows were
  written through the ``Store`` API from an in-memory graph (L single calls
  would take minutes), opened without a checkpoint (full journal replay)
  and after ``checkpoint()``; seconds and peak RSS above the RSS of the
  process before opening.

SQLite runs with ``synchronous=FULL`` (the default: a call that returned
survives a power cut) and ``NORMAL``; PostgreSQL on a local server started
from the ``pgserver`` wheel (or ``$IDENTITY_GRAPH_POSTGRES_URL``), over its
Unix socket.  Files go to ``--dir`` (default: the system temp directory;
put it on the disk you care about: fsync cost is the point).

Targets from the issue, printed, never asserted: SQLite bulk >= 50k
events/s; single calls >= 2k/s with full durability.

Run: ``python benchmarks/stores.py [--calls 500] [--events 20000]
[--links 20000] [--stores memory,sqlite-full,sqlite-normal,postgres]``;
realistic sizes: ``--calls 3000 --events 200000 --links 1000000``.

``--compare DIR`` (the ``src`` directory of another version, e.g. ``git
archive main src | tar -x -C /tmp/main``) measures bulk ``record_many``
and opening a store from its checkpoint (time, peak RSS, bytes per
customer) with both versions, runs interleaved, medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

# A worker of ``--compare`` runs the other version's library: its src
# directory comes in IG_BENCH_SRC.
sys.path.insert(
    0, os.environ.get("IG_BENCH_SRC") or str(Path(__file__).resolve().parents[1] / "src")
)

from identity_graph import Event, IdentityGraph, Limits, Link
from memory import PeakMeter, run_worker

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TARGET_BULK = 100_000  # events/s, SQLite
TARGET_SINGLE = 2_000  # calls/s, synchronous=FULL
STORES = ("memory", "sqlite-full", "sqlite-normal", "postgres")
KINDS = ("link", "merge", "record")
#: No profile cap for the merge workload (pairs only, but say so).
LIMITS = Limits(max_customers_per_profile=10**9, max_links_per_customer=10**9)

# ----------------------------------------------------------------- workers


def open_graph(target: str, synchronous: str, **config: Any) -> IdentityGraph:
    if target.startswith(("sqlite:", "/")) or target.endswith(".db"):
        config["synchronous"] = synchronous
    return IdentityGraph.open(target, limits=LIMITS, **config)


def purchase(event_id: str, i: int, customer: str) -> Event:
    amount = Decimal(f"{i % 97 + 1}.90")
    return Event(
        "purchase",
        at=T0 + timedelta(seconds=i),
        customer_id=customer,
        data={
            "amount": amount,
            "items": [{"sku": f"S{i % 89}", "quantity": 1, "unit_price": amount}],
        },
        id=event_id,
    )


def wait_for_go() -> None:
    print("READY", flush=True)
    sys.stdin.readline()


def worker_calls(kind: str, target: str, synchronous: str, n: int, writer: int) -> dict[str, Any]:
    """``n`` single calls of ``kind``; setup before READY, the clock after go."""
    g = open_graph(target, synchronous)
    prefix = f"w{writer}-"
    if kind == "merge":
        for i in range(2 * n):
            g.register(f"{prefix}{i}", at=T0)
    elif kind == "record":
        g.register(f"{prefix}r", at=T0)
        events = [purchase(f"{prefix}{i}", i, f"{prefix}r") for i in range(n)]
    wait_for_go()
    start = time.time()
    if kind == "link":
        for i in range(n):
            g.link(f"{prefix}{i}", Link("email", f"{prefix}{i}@example.com"), at=T0)
    elif kind == "merge":
        for i in range(n):
            g.merge(f"{prefix}{2 * i}", f"{prefix}{2 * i + 1}", reason="bench", at=T0)
    else:
        for event in events:
            g.record(event)
    end = time.time()
    g.close()
    return {"start": start, "end": end, "n": n}


def worker_bulk(target: str, synchronous: str, m: int, writer: int) -> dict[str, Any]:
    g = open_graph(target, synchronous)
    customers = [f"w{writer}-c{i}" for i in range(100)]
    for customer in customers:
        g.register(customer, at=T0)
    events = [purchase(f"w{writer}-{i}", i, customers[i % 100]) for i in range(m)]
    wait_for_go()
    start = time.time()
    recorded, unchanged = g.record_many(events)
    end = time.time()
    assert (recorded, unchanged) == (m, 0), (recorded, unchanged)
    g.close()
    return {"start": start, "end": end, "n": m}


def worker_build(target: str, links: int) -> dict[str, Any]:
    """Write the journal of ``links`` link calls into an empty store, fast:
    decide them in memory, then append the rows a store session would have
    written, 50,000 per transaction."""
    from identity_graph.session import encode_record
    from identity_graph.stores import open_store

    start = time.perf_counter()
    memory = IdentityGraph(limits=LIMITS)
    for i in range(links):
        memory.link(f"c{i}", Link("loyalty_card", f"CARD{i:08d}"), at=T0 + timedelta(seconds=i))
    decided = time.perf_counter() - start
    store = open_store(target)
    rows = []
    for seq, record in memory.state.journal.records(0):
        rows.append((seq, record[0], record[1].isoformat(), encode_record(seq, record)))
        if len(rows) == 50_000:
            store.begin(True)
            store.append_journal(rows)
            store.commit()
            rows = []
    if rows:
        store.begin(True)
        store.append_journal(rows)
        store.commit()
    store.close()
    return {"decided": decided, "seconds": time.perf_counter() - start}


def worker_open(target: str, synchronous: str, mode: str) -> dict[str, Any]:
    meter = PeakMeter()
    start = time.perf_counter()
    # No automatic checkpoint while measuring: opening must only read.
    g = open_graph(target, synchronous, checkpoint_every=10**12)
    seconds = time.perf_counter() - start
    peak = meter.delta()
    result: dict[str, Any] = {"seconds": seconds, "peak": peak, "entries": len(g.state.journal)}
    if mode == "then-checkpoint":
        start = time.perf_counter()
        g.checkpoint()
        result["checkpoint"] = time.perf_counter() - start
    g.close()
    return result


def worker_memory(target: str) -> dict[str, Any]:
    """What a graph opened from ``target`` holds per customer (tracemalloc:
    Python objects only, after opening), and the traced peak while opening."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    g = open_graph(target, "FULL", checkpoint_every=10**12)
    held, peak = tracemalloc.get_traced_memory()
    customers = len(g.state.order)
    tracemalloc.stop()
    g.close()
    return {"per_customer": held / customers, "peak": peak, "customers": customers}


def worker_main(args: list[str]) -> None:
    kind, *rest = args
    if kind == "calls":
        result = worker_calls(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]))
    elif kind == "bulk":
        result = worker_bulk(rest[0], rest[1], int(rest[2]), int(rest[3]))
    elif kind == "build":
        result = worker_build(rest[0], int(rest[1]))
    elif kind == "open":
        result = worker_open(rest[0], rest[1], rest[2])
    elif kind == "memory":
        result = worker_memory(rest[0])
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------ orchestration


class Targets:
    """New, empty stores: SQLite files in a directory, PostgreSQL schemas."""

    def __init__(self, directory: Path, postgres: str | None) -> None:
        self.directory = directory
        self.postgres = postgres
        self.count = 0

    def new(self, store: str) -> tuple[str, str]:
        """``(target, synchronous)`` of a new, empty store of kind ``store``."""
        self.count += 1
        if store == "memory":
            return "memory:", "FULL"
        if store.startswith("sqlite"):
            return str(self.directory / f"bench-{self.count}.db"), store.split("-")[1].upper()
        assert self.postgres is not None
        import psycopg

        schema = f"bench_{os.getpid()}_{self.count}"
        with psycopg.connect(self.postgres, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in self.postgres else "?"
        return f"{self.postgres}{separator}options={quote(f'-csearch_path={schema}')}", "FULL"


def together(worker_args: list[list[str]]) -> float:
    """Start the workers, wait until all are READY, start them at once;
    return all calls over the wall time from the first start to the last end."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for args in worker_args
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "READY":
            proc.wait()
            raise SystemExit(f"worker {proc.args} failed before READY: {line!r}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"worker {proc.args} failed with exit code {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sum(r["n"] for r in results) / wall


def start_postgres(keep: list[Any]) -> str | None:
    url = os.environ.get("IDENTITY_GRAPH_POSTGRES_URL")
    if url:
        return url
    try:
        import pgserver
    except ImportError:
        return None
    directory = tempfile.mkdtemp(prefix="ig-bench-pg-")
    server = pgserver.get_server(directory, cleanup_mode="delete")
    keep.append(server)
    return str(server.get_uri())


def fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="single calls per writer")
    parser.add_argument("--events", type=int, default=20_000, help="record_many events per writer")
    parser.add_argument("--links", type=int, default=20_000, help="links in the start-up store")
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="the src directory of another version (say, main's, from git archive): measure"
        " bulk record_many and opening from a checkpoint with both, side by side",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (--compare)")
    parser.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker_main(options.worker)
        return
    if options.compare:
        compare(options)
        return

    stores = [s for s in options.stores.split(",") if s]
    unknown = set(stores) - set(STORES)
    if unknown:
        raise SystemExit(f"unknown stores {sorted(unknown)}; choose from {STORES}")
    directory = Path(tempfile.mkdtemp(prefix="ig-bench-", dir=options.dir))
    servers: list[Any] = []
    postgres = start_postgres(servers) if "postgres" in stores else None
    if "postgres" in stores and postgres is None:
        print("PostgreSQL: no pgserver and no $IDENTITY_GRAPH_POSTGRES_URL; skipped")
        stores.remove("postgres")
    targets = Targets(directory, postgres)
    print(
        f"Python {sys.version.split()[0]}; {options.calls:,} calls and {options.events:,} events "
        f"per writer; start-up store of {options.links:,} links; files in {directory}"
    )
    try:
        rows = []
        for store in stores:
            row: dict[str, Any] = {"store": store}
            for writers in (1, 2):
                if writers == 2 and store == "memory":
                    for kind in (*KINDS, "bulk"):
                        row[f"{kind}/{writers}"] = None
                    continue
                for kind in KINDS:
                    target, sync = targets.new(store)
                    row[f"{kind}/{writers}"] = together(
                        [
                            ["calls", kind, target, sync, str(options.calls), str(w)]
                            for w in range(writers)
                        ]
                    )
                target, sync = targets.new(store)
                row[f"bulk/{writers}"] = together(
                    [["bulk", target, sync, str(options.events), str(w)] for w in range(writers)]
                )
            if store != "memory":
                target, sync = targets.new(store)
                built = run_worker(__file__, ["--worker", "build", target, str(options.links)])
                row["build"] = built["seconds"]
                # No checkpoint yet: a full replay; that worker then checkpoints.
                replay = run_worker(__file__, ["--worker", "open", target, sync, "then-checkpoint"])
                again = run_worker(__file__, ["--worker", "open", target, sync, "only"])
                row["replay"], row["replay_peak"] = replay["seconds"], replay["peak"]
                row["write_checkpoint"] = replay["checkpoint"]
                row["ckpt"], row["ckpt_peak"] = again["seconds"], again["peak"]
                assert replay["entries"] == again["entries"] == options.links
            rows.append(row)
            print_row(row)
        print_verdicts(rows)
    finally:
        for server in servers:
            server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


def compare(options: argparse.Namespace) -> None:
    """Bulk ``record_many`` and opening a store from its checkpoint, with the
    version in ``--compare`` ("before") and this one ("after"), runs
    interleaved so that both see the same machine; medians and ratios."""
    import statistics

    before_src = str(options.compare.resolve())
    if not (Path(before_src) / "identity_graph").is_dir():
        raise SystemExit(f"--compare {before_src}: no identity_graph package in it")
    sides = {"before": before_src, "after": ""}

    def side(name: str) -> None:
        os.environ["IG_BENCH_SRC"] = sides[name]

    stores = [s for s in options.stores.split(",") if s and s != "memory"]
    directory = Path(tempfile.mkdtemp(prefix="ig-bench-", dir=options.dir))
    servers: list[Any] = []
    postgres = start_postgres(servers) if "postgres" in stores else None
    if "postgres" in stores and postgres is None:
        print("PostgreSQL: no pgserver and no $IDENTITY_GRAPH_POSTGRES_URL; skipped")
        stores.remove("postgres")
    targets = Targets(directory, postgres)
    print(f"bulk record_many of {options.events:,} events, median of {options.repeat} runs:")
    try:
        for store in stores:
            rates: dict[str, list[float]] = {"before": [], "after": []}
            for _run in range(options.repeat):
                for name in sides:
                    side(name)
                    target, sync = targets.new(store)
                    rates[name].append(together([["bulk", target, sync, str(options.events), "0"]]))
            b, a = (statistics.median(rates[n]) for n in sides)
            print(f"  {store:14s} {b:9,.0f} -> {a:9,.0f} events/s  ({a / b:.2f}x)")
        if "sqlite-full" not in stores:
            return
        # One store, built and checkpointed by "before"; a copy checkpointed
        # again by "after" (which reads the older format and writes its own).
        side("before")
        old = str(directory / "open-before.db")
        run_worker(__file__, ["--worker", "build", old, str(options.links)])
        run_worker(__file__, ["--worker", "open", old, "FULL", "then-checkpoint"])
        new = str(directory / "open-after.db")
        shutil.copy(old, new)
        side("after")
        reread = run_worker(__file__, ["--worker", "open", new, "FULL", "then-checkpoint"])
        opened: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        for _run in range(options.repeat):
            for name, path in (("before", old), ("after", new)):
                side(name)
                opened[name].append(
                    run_worker(__file__, ["--worker", "open", path, "FULL", "only"])
                )
        print(f"open of a {options.links:,}-link SQLite store from its checkpoint:")
        for name in sides:
            seconds = statistics.median(r["seconds"] for r in opened[name])
            peak = statistics.median(r["peak"] for r in opened[name]) / 2**20
            print(f"  {name:7s} {seconds:6.2f} s, peak RSS +{peak:,.0f} MiB")
        print(
            f"  (after, reading the before's checkpoint: {reread['seconds']:.2f} s;"
            f" writing its own: {reread['checkpoint']:.2f} s)"
        )
        print("held by the opened graph (tracemalloc):")
        for name, path in (("before", old), ("after", new)):
            side(name)
            memory = run_worker(__file__, ["--worker", "memory", path])
            print(
                f"  {name:7s} {memory['per_customer']:5.0f} B per customer,"
                f" traced peak while opening {memory['peak'] / 2**20:,.0f} MiB"
            )
    finally:
        os.environ.pop("IG_BENCH_SRC", None)
        for server in servers:
            server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


HEADER = (
    f"{'store':14s} {'writers':>7s} {'link/s':>9s} {'merge/s':>9s} {'record/s':>9s}"
    f" {'bulk ev/s':>10s}"
)


def print_row(row: dict[str, Any]) -> None:
    if not getattr(print_row, "header", False):
        print(HEADER)
        print_row.header = True  # type: ignore[attr-defined]
    for writers in (1, 2):
        print(
            f"{row['store']:14s} {writers:7d}"
            + "".join(f" {fmt_rate(row[f'{kind}/{writers}']):>9s}" for kind in KINDS)
            + f" {fmt_rate(row[f'bulk/{writers}']):>10s}"
        )
    if "replay" in row:
        mib = 2**20
        replay_peak, ckpt_peak = row["replay_peak"] / mib, row["ckpt_peak"] / mib
        print(
            f"{'':14s} open: full replay {row['replay']:.2f} s (peak +{replay_peak:,.0f}"
            f" MiB), after checkpoint {row['ckpt']:.2f} s (peak +{ckpt_peak:,.0f}"
            f" MiB); writing the checkpoint {row['write_checkpoint']:.2f} s;"
            f" building the store {row['build']:.1f} s"
        )


def print_verdicts(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row["store"].startswith("sqlite"):
            bulk = row["bulk/1"]
            print(
                f"{row['store']}: bulk {bulk:,.0f} events/s, target >= {TARGET_BULK:,}: "
                f"{'met' if bulk >= TARGET_BULK else 'NOT met'}"
            )
        if row["store"] in ("sqlite-full", "postgres"):
            slowest = min(row[f"{kind}/1"] for kind in KINDS)
            print(
                f"{row['store']}: slowest single call {slowest:,.0f}/s, target >= "
                f"{TARGET_SINGLE:,}/s: {'met' if slowest >= TARGET_SINGLE else 'NOT met'}"
            )


if __name__ == "__main__":
    main()
