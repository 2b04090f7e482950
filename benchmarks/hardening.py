"""Side-by-side benchmark: the same workloads on two or more source trees.

Made to measure what a change cost (the hardening of issue 14 first): every
measurement runs in a fresh process per tree, with ``PYTHONPATH`` pointing
at that tree's ``src`` and the same interpreter, and the trees take turns
(round 1 old, new; round 2 new, old; ...), so a slow minute of a shared
machine falls on both.  The best of the rounds is kept per tree.

The workloads are the other scripts' own, called as functions:

- ``ledger``: ``ledger.build_graph`` (50k ``link`` calls), building 100k
  purchase ``Event`` objects (``ledger.make_events``), ``record_many`` of
  them, and the same batch again (all unchanged);
- ``calls``: ``resolution.micro``: ``link`` of a new email (``Link``
  prebuilt, and built per call), ``merge``, ``resolve(customer id)`` and
  ``resolve(Link)``; plus ``register`` with three attributes and
  ``owner(Link)`` on the same graph;
- ``events``: ``events(profile)`` of a 1,000-event profile over 10 anchors
  (``ledger.profile_query``'s graph);
- ``offline``: ``import.worker_offline`` into memory and into SQLite;
- ``customers``: ``import.worker_customers`` of an XLSX workbook, and the
  same rows as a CSV file, into memory;
- ``sqlite``: ``record_many`` into SQLite (``stores.worker_bulk``), single
  ``link`` calls with ``synchronous=NORMAL``, and opening a store of L links
  by full replay and from its checkpoint (``stores.worker_open``).

Run::

    python benchmarks/hardening.py --tree old=../old/src --tree new=src
    python benchmarks/hardening.py --tree old=../old/src --tree new=src --only ledger,calls
    python benchmarks/hardening.py ... --rounds 5 --scale 2

Every other tree is compared with the first (ratio = tree / first, in the
"better is higher" direction: a ratio under 1 is a slowdown).  Nothing is
asserted; the workers check their own results (every row imported, every
event recorded) as the scripts they borrow from do.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: (workload, metric, unit, higher is better)
METRICS: list[tuple[str, str, str, bool]] = [
    ("ledger", "link, 50k customers with a card", "calls/s", True),
    ("ledger", "building 100k purchase Events", "events/s", True),
    ("ledger", "record_many, 100k prebuilt purchases", "events/s", True),
    ("ledger", "record_many, the same again (unchanged)", "events/s", True),
    ("calls", "link of a new email, Link prebuilt", "calls/s", True),
    ("calls", "link of a new email, Link built per call", "calls/s", True),
    ("calls", "register with 3 attributes", "calls/s", True),
    ("calls", "merge", "µs", False),
    ("calls", "resolve(customer id)", "µs", False),
    ("calls", "resolve(Link)", "µs", False),
    ("calls", "owner(Link)", "µs", False),
    ("events", "events(profile), 1,000 events", "ms", False),
    ("events", "events(profile), 30-day window", "ms", False),
    ("offline", "offline data -> memory", "rows/s", True),
    ("offline", "offline data -> memory, again", "rows/s", True),
    ("offline", "offline data -> SQLite", "rows/s", True),
    ("offline", "offline data -> SQLite, again", "rows/s", True),
    ("customers", "customers XLSX -> memory", "rows/s", True),
    ("customers", "customers XLSX -> memory, again", "rows/s", True),
    ("customers", "customers CSV -> memory", "rows/s", True),
    ("customers", "customers CSV -> memory, again", "rows/s", True),
    ("sqlite", "SQLite record_many", "events/s", True),
    ("sqlite", "SQLite link, synchronous=NORMAL", "calls/s", True),
    ("sqlite", "SQLite open, full replay", "s", False),
    ("sqlite", "SQLite open, from checkpoint", "s", False),
]
WORKLOADS = tuple(dict.fromkeys(w for w, *_ in METRICS))
#: The sqlite workload's workers, in order (build writes the store the two
#: opening workers read).
SQLITE_STEPS = ("bulk", "link", "build", "replay", "ckpt")


# ------------------------------------------------------------------ workers


def _import_tree(src: str) -> None:
    """Import identity_graph from ``src`` before the borrowed scripts put
    their own tree first on ``sys.path`` (their later imports then find the
    package already loaded, and its submodules through its ``__path__``)."""
    import identity_graph

    found = Path(identity_graph.__file__).resolve()
    if not found.is_relative_to(Path(src).resolve()):
        raise SystemExit(f"identity_graph came from {found}, not from {src}")


def _best(statement: str, namespace: dict[str, Any], repeat: int = 5) -> float:
    return min(timeit.repeat(statement, globals=namespace, number=1, repeat=repeat))


def work_ledger(scale: float) -> dict[str, float]:
    import ledger

    m = int(100_000 * scale)
    specs = ledger.event_specs(m)
    start = time.perf_counter()
    g = ledger.build_graph()
    links = time.perf_counter() - start
    start = time.perf_counter()
    events = ledger.make_events(specs)
    build = time.perf_counter() - start
    start = time.perf_counter()
    recorded, unchanged = g.record_many(events)
    first = time.perf_counter() - start
    assert (recorded, unchanged) == (m, 0), (recorded, unchanged)
    start = time.perf_counter()
    again = g.record_many(events)
    second = time.perf_counter() - start
    assert again == (0, m), again
    return {
        "link, 50k customers with a card": ledger.IDENTITIES // 2 / links,
        "building 100k purchase Events": m / build,
        "record_many, 100k prebuilt purchases": m / first,
        "record_many, the same again (unchanged)": m / second,
    }


def work_calls(scale: float) -> dict[str, float]:
    import resolution
    from identity_graph import IdentityGraph, Link

    n = int(50_000 * scale)
    micro = resolution.micro(n)
    cust = resolution.customer_ids(n)
    links = [Link("email", e) for e in resolution.emails(n)]
    at = resolution.T
    best = float("inf")
    for _ in range(3):
        g = IdentityGraph()
        register = g.register
        start = time.perf_counter()
        for i, c in enumerate(cust):
            register(c, {"first_name": "Ann", "city": "Helsinki", "tier": i % 5}, at=at)
        best = min(best, time.perf_counter() - start)
    for c, link in zip(cust, links, strict=True):
        g.link(c, link, at=at)
    owner = _best("for lk in links: owner(lk)", {"owner": g.owner, "links": links})
    return {
        "link of a new email, Link prebuilt": micro["link_per_s"],
        "link of a new email, Link built per call": micro["link_with_Link_per_s"],
        "register with 3 attributes": n / best,
        "merge": micro["merge_us"],
        "resolve(customer id)": micro["resolve_us"],
        "resolve(Link)": micro["resolve_link_us"],
        "owner(Link)": owner / n * 1e6,
    }


def work_events(scale: float) -> dict[str, float]:
    from datetime import timedelta

    import ledger

    g = ledger.profile_graph()
    t0 = ledger.T0
    assert len(g.events("p1")) == 1000
    month = (t0 + timedelta(days=30), t0 + timedelta(days=60))
    space = {"g": g, "month": month}
    whole = _best("g.events('p1')", space, 50)
    window = _best("g.events('p1', *month)", space, 50)
    return {
        "events(profile), 1,000 events": whole * 1e3,
        "events(profile), 30-day window": window * 1e3,
    }


def work_offline(scale: float, data: str, scratch: str) -> dict[str, float]:
    bench = importlib.import_module("import")
    out: dict[str, float] = {}
    for label, target in (("memory", "memory"), ("SQLite", f"{scratch}/offline.db")):
        result = bench.worker_offline(data, target)
        out[f"offline data -> {label}"] = result["rows"] / result["seconds"]
        out[f"offline data -> {label}, again"] = result["rows"] / result["again"]
    return out


def work_customers(scale: float, book: str, table: str) -> dict[str, float]:
    bench = importlib.import_module("import")
    out: dict[str, float] = {}
    for label, path in (("XLSX", book), ("CSV", table)):
        result = bench.worker_customers(path, "memory", 0)
        out[f"customers {label} -> memory"] = result["rows"] / result["seconds"]
        out[f"customers {label} -> memory, again"] = result["rows"] / result["again"]
    return out


def _build_store(target: str, links: int) -> None:
    """``stores.worker_build`` for any tree: the journal rows of ``links``
    link calls, in the row format of the tree being measured."""
    from datetime import timedelta

    import stores
    from identity_graph import IdentityGraph, Link
    from identity_graph.stores import open_store

    try:
        from identity_graph.session import encode_record
    except ImportError:  # before journal rows carried their seq and checksum
        from identity_graph import codec

        def encode_record(seq: int, record: Any) -> str:
            return codec.dumps(record)

    memory = IdentityGraph(limits=stores.LIMITS)
    for i in range(links):
        memory.link(
            f"c{i}", Link("loyalty_card", f"CARD{i:08d}"), at=stores.T0 + timedelta(seconds=i)
        )
    store = open_store(target)
    records = list(memory.state.journal.records(0))
    for begin in range(0, len(records), 50_000):
        store.begin(True)
        store.append_journal(
            [
                (seq, rec[0], rec[1].isoformat(), encode_record(seq, rec))
                for seq, rec in records[begin : begin + 50_000]
            ]
        )
        store.commit()
    store.close()


def work_sqlite(scale: float, scratch: str, step: str) -> dict[str, float]:
    import stores

    if step == "bulk":
        m = int(20_000 * scale)
        result = stores.worker_bulk(f"{scratch}/bulk.db", "FULL", m, 0)
        return {"SQLite record_many": m / (result["end"] - result["start"])}
    if step == "link":
        n = int(2_000 * scale)
        result = stores.worker_calls("link", f"{scratch}/link.db", "NORMAL", n, 0)
        return {"SQLite link, synchronous=NORMAL": n / (result["end"] - result["start"])}
    if step == "build":
        _build_store(f"{scratch}/start.db", int(50_000 * scale))
        return {}
    mode = "then-checkpoint" if step == "replay" else "only"
    result = stores.worker_open(f"{scratch}/start.db", "FULL", mode)
    key = "SQLite open, full replay" if step == "replay" else "SQLite open, from checkpoint"
    return {key: result["seconds"]}


def worker(src: str, name: str, scale: float, args: list[str]) -> dict[str, float]:
    _import_tree(src)
    sys.path.insert(1, str(HERE))
    functions: dict[str, Any] = {
        "ledger": work_ledger,
        "calls": work_calls,
        "events": work_events,
        "offline": work_offline,
        "customers": work_customers,
        "sqlite": work_sqlite,
    }
    result: dict[str, float] = functions[name](scale, *args)
    return result


# ------------------------------------------------------------------ driver


def run(src: str, name: str, scale: float, args: list[str]) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", src, name, str(scale), *args],
        capture_output=True,
        text=True,
        input="go\n",  # the stores workers wait for a go on stdin
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker {name} {args} on {src} failed ({proc.returncode})")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def write_inputs(scratch: Path, scale: float) -> dict[str, str]:
    bench = importlib.import_module("import")
    data, book, table = scratch / "offline.csv", scratch / "customers.xlsx", scratch / "cust.csv"
    bench.write_offline_data(data, int(50_000 * scale))
    bench.write_customers(book, int(5_000 * scale))
    from openpyxl import load_workbook

    workbook = load_workbook(book, read_only=True)
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for row in workbook.worksheets[0].iter_rows(values_only=True):
            writer.writerow(row)
    workbook.close()
    return {"data": str(data), "book": str(book), "table": str(table)}


def measure(
    trees: list[tuple[str, str]], only: list[str], rounds: int, scale: float
) -> dict[str, dict[str, list[float]]]:
    """``{tree: {metric: [one value per round]}}``."""
    found: dict[str, dict[str, list[float]]] = {label: {} for label, _src in trees}
    with tempfile.TemporaryDirectory(prefix="ig-hardening-") as scratch:
        sys.path.insert(0, str(HERE))
        inputs = write_inputs(Path(scratch), scale)
        for number in range(rounds):
            order = trees if number % 2 == 0 else trees[::-1]
            for name in only:
                for label, src in order:
                    where = Path(scratch) / f"{label}-{number}-{name}"
                    where.mkdir()
                    if name == "offline":
                        steps = [[inputs["data"], str(where)]]
                    elif name == "customers":
                        steps = [[inputs["book"], inputs["table"]]]
                    elif name == "sqlite":
                        steps = [
                            [str(where), s] for s in ("bulk", "link", "build", "replay", "ckpt")
                        ]
                    else:
                        steps = [[]]
                    start = time.perf_counter()
                    for args in steps:
                        for metric, value in run(src, name, scale, args).items():
                            found[label].setdefault(metric, []).append(value)
                    print(
                        f"round {number + 1}/{rounds} {name:9s} {label:6s}"
                        f" {time.perf_counter() - start:6.1f} s",
                        flush=True,
                    )
    return found


def report(found: dict[str, dict[str, list[float]]], labels: list[str]) -> None:
    first, others = labels[0], labels[1:]
    print()
    print(
        "| measure | unit | "
        + " | ".join(labels)
        + "".join(f" | {label} / {first}" for label in others)
        + " |"
    )
    print("|" + "---|" * (2 + len(labels) + len(others)))
    for _workload, metric, unit, higher in METRICS:
        if metric not in found[first]:
            continue
        best = {label: (max if higher else min)(found[label][metric]) for label in labels}
        # Ratios in the better-is-higher sense: under 1 is a slowdown.
        ratios = [
            best[label] / best[first] if higher else best[first] / best[label] for label in others
        ]
        cells = " | ".join(_fmt(best[label], unit) for label in labels)
        print(f"| {metric} | {unit} | {cells} | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
    print()
    print("all rounds:")
    for _workload, metric, _unit, _higher in METRICS:
        if metric in found[first]:
            rounds = "; ".join(
                f"{label} " + ", ".join(f"{v:.4g}" for v in found[label][metric])
                for label in labels
            )
            print(f"  {metric}: {rounds}")


def _fmt(value: float, unit: str) -> str:
    if unit.endswith("/s"):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        src, name, scale, *args = sys.argv[2:]
        print(json.dumps(worker(src, name, float(scale), args)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tree",
        action="append",
        required=True,
        metavar="LABEL=SRC",
        help="a label and a source tree (the directory holding identity_graph/); twice or more",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every input size")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    options = parser.parse_args()
    trees = [tuple(t.split("=", 1)) for t in options.tree]
    if len(trees) < 2 or any(len(t) != 2 for t in trees):
        raise SystemExit("give at least two --tree LABEL=SRC")
    only = [w for w in options.only.split(",") if w]
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads {sorted(unknown)}; choose from {WORKLOADS}")
    pairs = [(label, str(Path(src).resolve())) for label, src in trees]
    print(
        f"Python {sys.version.split()[0]}; {options.rounds} rounds, scale {options.scale}; "
        + ", ".join(f"{label}={src}" for label, src in pairs)
    )
    found = measure(pairs, only, options.rounds, options.scale)
    report(found, [label for label, _src in pairs])


if __name__ == "__main__":
    main()
