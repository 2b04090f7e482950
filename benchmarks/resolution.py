"""Resolution benchmark: identity_graph's public API against networkx and scipy.

The workload (the same for every library, generated from one seed):

1. N customers ``c0 .. c{N-1}``, each linked to its own email ``user{i}@example.com``;
2. N/2 merges of random customer pairs (``random.Random(seed)``);
3. the profile / component of every customer.

Every (library, N) runs in a fresh subprocess, twice: once for time and once
for memory (peak RSS above the RSS measured just before the workload, with the
kernel's peak counter reset where Linux allows it).  Each worker also returns a
digest of the partition it found, so the three libraries are checked against
each other at every size; up to ``--check-max`` customers the partitions of
identity_graph and networkx are also compared directly, as sets of frozensets.

Run ``python benchmarks/resolution.py --help`` for the options; see README.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import sys
import time
import timeit
from array import array
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from memory import current_rss, peak_rss, reset_peak, run_worker

SEED = 20240601
T = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
LIBRARIES = ("ours", "bulk", "bulk-polars", "networkx", "scipy")
#: Our three ways in: the per-call API, and the bulk path from lists and from polars.
OURS = ("ours", "bulk", "bulk-polars")
PHASES = ("link", "merge", "resolve")
# What each phase is for each library.
PHASE_NAMES = {
    "ours": ("g.link x N", "g.merge x N/2", "g.resolve x N"),
    "bulk": ("g.link_table(lists)", "g.merge_table(lists)", "g.resolve x N"),
    "bulk-polars": ("g.link_table(DataFrame)", "g.merge_table(DataFrame)", "g.resolve x N"),
    "networkx": ("add_edge c-email", "add_edge merges", "components + map"),
    "scipy": ("email edge arrays", "merge arrays + CSR", "cc + labels[:N]"),
}

# Targets from the issue: printed next to the measurements, never asserted.
TARGET_TIME_VS_NX = 1.0  # whole public-API run <= 1.0x networkx's time (100k, 1M)
TARGET_BULK_VS_NX = 0.5  # whole bulk-path run <= 0.5x networkx's time
TARGET_MEM_VS_NX = 0.5  # ... with <= 0.5x its memory
TARGET_RESOLVE_US = 2.0  # resolve <= 2 us per call
TARGET_LINK_PER_S = 100_000  # link >= 100k calls/s


# ----------------------------------------------------------------------------- input


def merge_pairs(n: int, seed: int = SEED) -> list[tuple[int, int]]:
    """N/2 random customer pairs (may repeat, may pair a customer with itself)."""
    rng = random.Random(seed)
    return [(rng.randrange(n), rng.randrange(n)) for _ in range(n // 2)]


def customer_ids(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def emails(n: int) -> list[str]:
    return [f"user{i}@example.com" for i in range(n)]


# ----------------------------------------------------------------------------- memory


# ----------------------------------------------------------------------------- partitions


def canonical_digest(labels: Sequence[Any]) -> str:
    """Digest of a partition of customers 0..N-1 given one label per customer.

    Each part is renamed to the smallest customer index in it, so two
    labellings of the same partition give the same digest.
    """
    first: dict[Any, int] = {}
    canon = array("q", (first.setdefault(label, i) for i, label in enumerate(labels)))
    return hashlib.sha256(canon.tobytes()).hexdigest()[:16]


def _parts(labels: Sequence[Any]) -> int:
    return len(set(labels))


# ----------------------------------------------------------------------------- workloads
# Each returns (phase seconds, labels per customer); ``timer`` is called between phases.


def run_ours(n: int, timer: Callable[[], float]) -> tuple[list[float], Sequence[Any]]:
    from identity_graph import IdentityGraph, Limits, Link

    cust, mail, pairs = customer_ids(n), emails(n), merge_pairs(n)
    ready()
    t0 = timer()
    g = IdentityGraph(limits=Limits(max_customers_per_profile=10**9))
    link = g.link
    for c, e in zip(cust, mail, strict=True):
        link(c, Link("email", e), at=T)
    t1 = timer()
    merge = g.merge
    for a, b in pairs:
        merge(cust[a], cust[b], reason="bench", at=T)
    t2 = timer()
    resolve = g.resolve
    labels = [resolve(c) for c in cust]
    t3 = timer()
    return [t1 - t0, t2 - t1, t3 - t2], labels


def _run_bulk(
    n: int, timer: Callable[[], float], polars: bool
) -> tuple[list[float], Sequence[Any]]:
    from identity_graph import IdentityGraph, Limits

    cust, mail, pairs = customer_ids(n), emails(n), merge_pairs(n)
    links: Any = {"customer_id": cust, "email": mail}
    merges: Any = {
        "a": [cust[a] for a, _ in pairs],
        "b": [cust[b] for _, b in pairs],
        "reason": ["bench"] * len(pairs),
    }
    if polars:
        import polars as pl

        links, merges = pl.DataFrame(links), pl.DataFrame(merges)
    ready()
    t0 = timer()
    g = IdentityGraph(limits=Limits(max_customers_per_profile=10**9))
    g.link_table(links, at=T)
    t1 = timer()
    g.merge_table(merges, at=T)
    t2 = timer()
    resolve = g.resolve
    labels = [resolve(c) for c in cust]
    t3 = timer()
    return [t1 - t0, t2 - t1, t3 - t2], labels


def run_bulk(n: int, timer: Callable[[], float]) -> tuple[list[float], Sequence[Any]]:
    return _run_bulk(n, timer, polars=False)


def run_bulk_polars(n: int, timer: Callable[[], float]) -> tuple[list[float], Sequence[Any]]:
    return _run_bulk(n, timer, polars=True)


def run_networkx(n: int, timer: Callable[[], float]) -> tuple[list[float], Sequence[Any]]:
    import networkx as nx

    cust, mail, pairs = customer_ids(n), emails(n), merge_pairs(n)
    ready()
    t0 = timer()
    graph = nx.Graph()
    add_edge = graph.add_edge
    for c, e in zip(cust, mail, strict=True):
        add_edge(c, e)
    t1 = timer()
    for a, b in pairs:
        add_edge(cust[a], cust[b])
    t2 = timer()
    component_of: dict[str, int] = {}
    for index, component in enumerate(nx.connected_components(graph)):
        for node in component:
            component_of[node] = index
    labels = [component_of[c] for c in cust]
    t3 = timer()
    return [t1 - t0, t2 - t1, t3 - t2], labels


def run_scipy(n: int, timer: Callable[[], float]) -> tuple[list[float], Sequence[Any]]:
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = np.array(merge_pairs(n), dtype=np.int64).reshape(-1, 2)
    ready()
    t0 = timer()
    # customers 0..N-1, emails N..2N-1
    email_rows = np.arange(n, dtype=np.int64)
    email_cols = email_rows + n
    t1 = timer()
    rows = np.concatenate([email_rows, pairs[:, 0]])
    cols = np.concatenate([email_cols, pairs[:, 1]])
    data = np.ones(len(rows), dtype=np.int8)
    matrix = coo_matrix((data, (rows, cols)), shape=(2 * n, 2 * n)).tocsr()
    t2 = timer()
    _count, all_labels = connected_components(matrix, directed=False)
    labels = all_labels[:n]
    t3 = timer()
    return [t1 - t0, t2 - t1, t3 - t2], labels.tolist()


WORKLOADS = {
    "ours": run_ours,
    "bulk": run_bulk,
    "bulk-polars": run_bulk_polars,
    "networkx": run_networkx,
    "scipy": run_scipy,
}

_state: dict[str, Any] = {}


def ready() -> None:
    """Called by a workload once its input exists: the memory baseline is taken here."""
    if _state.get("mode") == "mem":
        gc.collect()
        _state["rss0"] = current_rss()
        _state["reset"] = reset_peak()
        _state["peak0"] = peak_rss()


def _rss_timer() -> float:
    """The memory run's phase clock: records RSS instead of time."""
    _state["rss_end"] = current_rss()
    return 0.0


def worker(lib: str, n: int, mode: str) -> dict[str, Any]:
    _state["mode"] = mode
    result: dict[str, Any] = {"lib": lib, "n": n, "mode": mode}
    if mode in ("time", "cpu"):
        # cpu: the process's own CPU time, which a machine shared with other
        # work does not inflate (every workload here runs on one thread).
        clock = time.perf_counter if mode == "time" else time.process_time
        phases, labels = WORKLOADS[lib](n, clock)
        result["phases"] = phases
        result["digest"] = canonical_digest(labels)
        result["parts"] = _parts(labels)
    else:
        _phases, labels = WORKLOADS[lib](n, _rss_timer)
        peak = peak_rss()
        result["peak_delta"] = peak - _state["rss0"]
        # RSS at the end of the last phase, while the structure is still alive
        result["retained_delta"] = _state["rss_end"] - _state["rss0"]
        result["peak_reset"] = _state["reset"]
        del labels
    return result


def check_frozensets(n: int) -> dict[str, Any]:
    """Our resolve partition against networkx's components, as sets of frozensets."""
    import networkx as nx

    from identity_graph import IdentityGraph, Limits, Link

    cust, mail, pairs = customer_ids(n), emails(n), merge_pairs(n)
    g = IdentityGraph(limits=Limits(max_customers_per_profile=10**9))
    graph = nx.Graph()
    for c, e in zip(cust, mail, strict=True):
        g.link(c, Link("email", e), at=T)
        graph.add_edge(c, e)
    for a, b in pairs:
        g.merge(cust[a], cust[b], reason="bench", at=T)
        graph.add_edge(cust[a], cust[b])
    ours: dict[str, set[str]] = {}
    for c in cust:
        ours.setdefault(g.resolve(c), set()).add(c)
    mine = {frozenset(part) for part in ours.values()}
    customers = set(cust)
    theirs = {frozenset(comp & customers) for comp in nx.connected_components(graph)}
    # profile ids must be the oldest customer of the profile
    ids_ok = all(pid == min(part, key=lambda c: int(c[1:])) for pid, part in ours.items())
    return {"n": n, "equal": mine == theirs, "parts": len(mine), "ids_ok": ids_ok}


def micro(n: int) -> dict[str, Any]:
    """resolve per call (built graph, all customers) and link calls/s."""
    from identity_graph import IdentityGraph, Limits, Link

    cust, mail, pairs = customer_ids(n), emails(n), merge_pairs(n)
    links = [Link("email", e) for e in mail]
    out: dict[str, Any] = {"n": n}

    # link: best of 3 fresh graphs, Link objects built beforehand, and built per call
    best_pre = best_build = float("inf")
    for _ in range(3):
        g = IdentityGraph(limits=Limits(max_customers_per_profile=10**9))
        link = g.link
        start = time.perf_counter()
        for c, lk in zip(cust, links, strict=True):
            link(c, lk, at=T)
        best_pre = min(best_pre, time.perf_counter() - start)
        del g
        g = IdentityGraph(limits=Limits(max_customers_per_profile=10**9))
        link = g.link
        start = time.perf_counter()
        for c, e in zip(cust, mail, strict=True):
            link(c, Link("email", e), at=T)
        best_build = min(best_build, time.perf_counter() - start)
    out["link_per_s"] = n / best_pre
    out["link_with_Link_per_s"] = n / best_build

    # merge: per call on the graph just built (N/2 calls, including no-op ones)
    merge = g.merge
    start = time.perf_counter()
    for a, b in pairs:
        merge(cust[a], cust[b], reason="bench", at=T)
    out["merge_us"] = (time.perf_counter() - start) / len(pairs) * 1e6

    # resolve: timeit over every customer, best of 5; loop overhead measured apart
    resolve = g.resolve
    namespace = {"resolve": resolve, "cust": cust}
    loop = min(timeit.repeat("for c in cust: resolve(c)", globals=namespace, number=1, repeat=5))
    empty = min(timeit.repeat("for c in cust: pass", globals=namespace, number=1, repeat=5))
    out["resolve_us"] = loop / n * 1e6
    out["loop_us"] = empty / n * 1e6
    links_resolve = min(
        timeit.repeat(
            "for lk in links: resolve(lk)",
            globals={"resolve": resolve, "links": links},
            number=1,
            repeat=3,
        )
    )
    out["resolve_link_us"] = links_resolve / n * 1e6
    return out


# ----------------------------------------------------------------------------- profile


def profile(n: int, top: int) -> None:
    """cProfile each phase of the public-API run, then tracemalloc by line."""
    import cProfile
    import pstats
    import tracemalloc

    from identity_graph import IdentityGraph, Limits, Link

    cust, mail, pairs = customer_ids(n), emails(n), merge_pairs(n)

    def phases(g: Any) -> list[Callable[[], Any]]:
        def do_link() -> None:
            for c, e in zip(cust, mail, strict=True):
                g.link(c, Link("email", e), at=T)

        def do_merge() -> None:
            for a, b in pairs:
                g.merge(cust[a], cust[b], reason="bench", at=T)

        def do_resolve() -> None:
            for c in cust:
                g.resolve(c)

        return [do_link, do_merge, do_resolve]

    g = IdentityGraph(limits=Limits(max_customers_per_profile=10**9))
    for name, fn in zip(PHASES, phases(g), strict=True):
        prof = cProfile.Profile()
        prof.runcall(fn)
        print(f"\n=== cProfile: {name} phase, N={n:,} (top {top} by tottime) ===")
        stats = pstats.Stats(prof)
        stats.strip_dirs().sort_stats("tottime").print_stats(top)
    del g
    gc.collect()

    print(f"\n=== tracemalloc: memory held after each phase, N={n:,}, by line ===")
    tracemalloc.start()
    g = IdentityGraph(limits=Limits(max_customers_per_profile=10**9))
    base = tracemalloc.take_snapshot()
    previous = base
    for name, fn in zip(PHASES, phases(g), strict=True):
        fn()
        gc.collect()
        snap = tracemalloc.take_snapshot()
        current, peak = tracemalloc.get_traced_memory()
        diff = snap.compare_to(previous, "lineno")
        grown = sum(d.size_diff for d in diff)
        per = n if name != "merge" else len(pairs)
        print(
            f"\n-- after {name}: +{grown / 2**20:.1f} MiB held "
            f"({grown / per:.0f} B per call), traced now {current / 2**20:.1f} MiB, "
            f"peak {peak / 2**20:.1f} MiB"
        )
        for d in diff[:top]:
            if d.size_diff <= 0:
                continue
            frame = d.traceback[0]
            where = f"{os.path.relpath(frame.filename)}:{frame.lineno}"
            print(
                f"  {d.size_diff / 2**20:8.2f} MiB  {d.size_diff / per:6.0f} B/call  "
                f"{d.count_diff:+9d} blocks  {where}"
            )
        previous = snap
    tracemalloc.stop()


# ----------------------------------------------------------------------------- driver


def _sub(args: list[str]) -> dict[str, Any]:
    return run_worker(os.path.abspath(__file__), args)


def _mb(value: float) -> str:
    return f"{value / 2**20:,.1f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def print_table(n: int, res: dict[str, dict[str, Any]]) -> None:
    print(f"\nN = {n:,} customers, {n:,} email links, {n // 2:,} random merges")
    header = (
        f"{'library':<12}{'link s':>9}{'merge s':>9}{'resolve s':>10}{'total s':>9}"
        f"{'peak MiB':>10}{'kept MiB':>10}  {'time/nx':>8}{'time/sp':>9}{'mem/nx':>8}"
        f"{'mem/sp':>8}  {'parts':>8} digest"
    )
    print(header)
    print("-" * len(header))
    for lib in LIBRARIES:
        r = res[lib]
        total = sum(r["phases"])
        r["total"] = total
    nx, sp = res["networkx"], res["scipy"]
    for lib in LIBRARIES:
        r = res[lib]
        p = r["phases"]
        ratios = ""
        if lib in OURS:
            ratios = (
                f"{_ratio(r['total'], nx['total']):>8}"
                f"{_ratio(r['total'], sp['total']):>9}"
                f"{_ratio(r['peak_delta'], nx['peak_delta']):>8}"
                f"{_ratio(r['peak_delta'], sp['peak_delta']):>8}"
            )
        else:
            ratios = " " * 33
        print(
            f"{lib:<12}{p[0]:>9.3f}{p[1]:>9.3f}{p[2]:>10.3f}{r['total']:>9.3f}"
            f"{_mb(r['peak_delta']):>10}{_mb(r['retained_delta']):>10}  {ratios}"
            f"  {r['parts']:>8} {r['digest']}"
        )
    digests = {res[lib]["digest"] for lib in LIBRARIES}
    same = "yes" if len(digests) == 1 else "NO - PARTITIONS DIFFER"
    print(f"partitions identical across every way and library (digest): {same}")
    scope = "" if n >= 100_000 else " (targets apply at 100k and 1M)"
    for lib, target in (("ours", TARGET_TIME_VS_NX), ("bulk", TARGET_BULK_VS_NX)):
        for way in (lib,) if lib == "ours" else ("bulk", "bulk-polars"):
            t_ratio = res[way]["total"] / nx["total"]
            t_ok = "met" if t_ratio <= target else "NOT met"
            per = res[way]["retained_delta"] / n
            print(
                f"target {way} time <= {target:.1f}x networkx: {t_ratio:.2f}x {t_ok}; "
                f"kept {per:.0f} B per customer (RSS){scope}"
            )
    for lib in LIBRARIES:
        names = ", ".join(f"{ph}={nm}" for ph, nm in zip(PHASES, PHASE_NAMES[lib], strict=True))
        print(f"  {lib}: {names}")


def print_micro(m: dict[str, Any]) -> None:
    print(f"\nMicro (graph of N={m['n']:,}; best of repeats)")

    def ok(good: bool) -> str:
        return "met" if good else "NOT met"

    print(
        f"  resolve(customer id): {m['resolve_us']:.2f} us/call "
        f"(incl. {m['loop_us']:.3f} us loop)  target <= {TARGET_RESOLVE_US} us: "
        f"{ok(m['resolve_us'] <= TARGET_RESOLVE_US)}"
    )
    print(f"  resolve(Link):        {m['resolve_link_us']:.2f} us/call")
    print(
        f"  link(email), Link prebuilt:  {m['link_per_s']:,.0f} calls/s  "
        f"target >= {TARGET_LINK_PER_S:,}: {ok(m['link_per_s'] >= TARGET_LINK_PER_S)}"
    )
    print(f"  link(email) + Link(...):     {m['link_with_Link_per_s']:,.0f} calls/s")
    print(f"  merge (N/2 random pairs):    {m['merge_us']:.2f} us/call")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--quick", action="store_true", help="N = 10k only")
    parser.add_argument(
        "--check-max",
        type=int,
        default=100_000,
        help="compare partitions as frozensets up to this N (digests are compared at all N)",
    )
    parser.add_argument("--micro-n", type=int, default=100_000, help="graph size for micro")
    parser.add_argument("--no-micro", action="store_true")
    parser.add_argument("--profile", type=int, metavar="N", help="profile the API run at N")
    parser.add_argument("--top", type=int, default=15, help="rows per profile listing")
    # internal: one measurement in this (fresh) process
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument(
        "--mode", choices=("time", "cpu", "mem"), default="time", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time by the wall clock, or by the process's CPU time (steadier on a busy machine)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time runs per (library, N), interleaved; the best counts",
    )
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=("check", "micro"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.mode)))
        return
    if args.task == "check":
        print(json.dumps(check_frozensets(args.n)))
        return
    if args.task == "micro":
        print(json.dumps(micro(args.n)))
        return
    if args.profile:
        profile(args.profile, args.top)
        return

    sizes = [10_000] if args.quick else args.sizes
    print(
        f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs; "
        "every (library, N) runs in a fresh subprocess, once for time and once for memory."
    )
    print(
        f"Times: seconds per phase ({'perf_counter' if args.clock == 'wall' else 'process_time'}), "
        f"best of {args.repeat} interleaved runs; input generated before timing; "
        "ours includes building Link objects."
    )
    print(
        "Memory: peak RSS during the workload minus RSS just before it (peak counter reset via "
        "/proc/self/clear_refs); 'kept' = RSS after minus before."
    )
    for n in sizes:
        res: dict[str, dict[str, Any]] = {}
        best: dict[str, dict[str, Any]] = {}
        mode = "time" if args.clock == "wall" else "cpu"
        for _ in range(args.repeat):  # interleaved: a burst of load hits every library alike
            for lib in LIBRARIES:
                timed = _sub(["--worker", lib, "--n", str(n), "--mode", mode])
                if lib not in best or sum(timed["phases"]) < sum(best[lib]["phases"]):
                    best[lib] = timed
        for lib in LIBRARIES:
            mem = _sub(["--worker", lib, "--n", str(n), "--mode", "mem"])
            res[lib] = {**best[lib], **{k: v for k, v in mem.items() if k not in ("mode",)}}
        print_table(n, res)
        if n <= args.check_max:
            check = _sub(["--task", "check", "--n", str(n)])
            print(
                f"frozenset check vs networkx at N={n:,}: "
                f"{'equal' if check['equal'] else 'DIFFERENT'} ({check['parts']:,} profiles); "
                f"profile ids are the oldest customer: {'yes' if check['ids_ok'] else 'NO'}"
            )
        sys.stdout.flush()
    if not args.no_micro:
        micro_n = min(args.micro_n, max(sizes))
        print_micro(_sub(["--task", "micro", "--n", str(micro_n)]))


if __name__ == "__main__":
    main()
