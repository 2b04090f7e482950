"""Indicators benchmark: ``g.kpis(as_of)`` against a bare polars group-by.

Workload: ``tests/data/CDNOW_sample.txt`` (6,919 purchase lines of 2,357
customers: customer id, unused, YYYYMMDD, quantity, amount) replicated R times
(default 150) with distinct customer ids per replica, so R=150 gives 353,550
customers and 1,037,850 purchase lines.  Each line is one ``purchase`` event
at midnight UTC of its date, with a ``Decimal`` amount and one item
``{sku: "CD", quantity}``; ``as_of`` = 1998-07-01 00:00 UTC (after every line).

- ours: register every customer, ``record_many`` the events (timed apart, as
  "build"; it includes keeping the purchase columns), then time only
  ``g.kpis(as_of, engine=...)``: all 69 indicators of every profile, once
  with the columnar engine (``engine="polars"``, what ``"auto"`` picks when
  polars is installed) and once with the pure-Python engine
  (``engine="python"``), each in its own process.  The columnar engine
  builds each profile's ``dict`` of Python values when it is read, so the
  time to read every row (``dict(result.items())``) is printed beside it;
- polars: the same rows as a DataFrame (customer id string, ``at`` as
  ``Datetime("us", "UTC")``, amount as integer cents; built before the clock),
  timed: for each window 30/60/90/180/360 days and Total, per customer the
  count, the sum of cents and the last purchase date -> recency days, then the
  F and M digits ``1 + floor(5 * #{strictly less} / n)`` over the customers
  that bought in the window (``rank("min") - 1`` is the count strictly less).
  This is the floor a data engineer would write by hand; it computes a small
  subset of our indicators (no R digit, items, brands, stores, last-ticket
  fields, segments), in integer cents instead of ``Decimal``, on every core.

Every measurement runs in a fresh subprocess: one per side for time (ours also
times the build), one per side for memory (peak RSS above the RSS just before
the measured call: ``VmHWM`` after ``echo 5 > /proc/self/clear_refs``).  The
time workers return, for a fixed sample of customers, each window's count,
cents, recency and F/M digits; the driver asserts that both sides agree (a
correctness guard, not a timing assertion).  The issue's target, the full
indicator set within 3x the bare polars time, is printed, never asserted.

Both sides are timed ``--repeats`` times (default 3) in their process; the
best is compared and the first (cold) call printed too.

Run: ``python benchmarks/kpis.py [--replicas 150] [--quick] [--profile R]``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from memory import PeakMeter, current_rss, run_worker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CDNOW = ROOT / "tests" / "data" / "CDNOW_sample.txt"
SEED = 20240601
AS_OF = datetime(1998, 7, 1, tzinfo=UTC)
REGISTERED_AT = datetime(1996, 12, 31, tzinfo=UTC)
PERIODS: tuple[int | None, ...] = (30, 60, 90, 180, 360, None)  # None: Total
TARGET_RATIO = 3.0  # ours <= 3x the bare polars time
SAMPLE = 2_000  # customers compared between the two sides
# For reference, from the issue (same machine, 1.04M rows).
REFERENCE = (("bare polars", 0.66), ("DuckDB", 1.17), ("pure-Python grouping + bisect", 11.9))


def _tag(days: int | None) -> str:
    return "Total" if days is None else str(days)


# ----------------------------------------------------------------------------- input


Row = tuple[str, datetime, int, Decimal, int]  # customer, at, quantity, amount, cents


def read_cdnow() -> list[tuple[str, datetime, int, Decimal]]:
    lines = []
    for line in CDNOW.read_text().splitlines():
        if not line.strip():
            continue
        customer, _unused, day, quantity, amount = line.split()
        at = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
        lines.append((customer, at, int(quantity), Decimal(amount)))
    return lines


def make_rows(replicas: int) -> list[Row]:
    """The CDNOW lines ``replicas`` times, customer ids ``r{k}-{id}`` per replica."""
    base = read_cdnow()
    rows: list[Row] = []
    for k in range(replicas):
        prefix = f"r{k}-"
        for customer, at, quantity, amount in base:
            rows.append((prefix + customer, at, quantity, amount, int(amount * 100)))
    return rows


def customers_of(rows: list[Row]) -> list[str]:
    return list(dict.fromkeys(row[0] for row in rows))


def sample_customers(customers: list[str]) -> list[str]:
    return sorted(random.Random(SEED).sample(customers, min(SAMPLE, len(customers))))


# ----------------------------------------------------------------------------- memory


# ----------------------------------------------------------------------------- measuring


def measure(call: Any, mode: str, repeats: int, out: dict[str, Any]) -> Any:
    """Run ``call`` once under a peak-memory meter (mode "mem": ``peak``,
    ``peak_reset``) or ``repeats`` times on the clock (``times``); return
    its last result."""
    if mode == "mem":
        meter = PeakMeter()
        result = call()
        out["peak"] = meter.delta()
        out["peak_reset"] = meter.reset
        return result
    times = []
    result = None
    for _ in range(repeats):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    assert result is not None
    out["times"] = times
    return result


# ----------------------------------------------------------------------------- ours


def build_graph(rows: list[Row]) -> tuple[Any, dict[str, float]]:
    from identity_graph import Event, IdentityGraph

    t0 = time.perf_counter()
    events = [
        Event(
            "purchase",
            at=at,
            customer_id=customer,
            data={"amount": amount, "items": [{"sku": "CD", "quantity": quantity}]},
            id=f"E{j}",
        )
        for j, (customer, at, quantity, amount, _cents) in enumerate(rows)
    ]
    t1 = time.perf_counter()
    g = IdentityGraph()
    register = g.register
    for customer in customers_of(rows):
        register(customer, at=REGISTERED_AT)
    t2 = time.perf_counter()
    recorded, unchanged = g.record_many(events)
    t3 = time.perf_counter()
    assert (recorded, unchanged) == (len(rows), 0), (recorded, unchanged)
    del events
    return g, {"events": t1 - t0, "register": t2 - t1, "record_many": t3 - t2}


def sample_ours(result: dict[Any, dict[str, Any]], sample: list[str]) -> dict[str, list[Any]]:
    found = {}
    for customer in sample:
        row = result[customer]
        per = []
        for days in PERIODS:
            name = "Total_{}" if days is None else f"{{}}_{days}_Days"
            count = row[name.format("Purchases")]
            rfm = row[name.format("RFM")]
            per.append(
                [
                    count,
                    int(row[name.format("Value")] * 100),
                    row["Days_Since_Last_Purchase"] if count else None,
                    None if rfm is None else int(rfm[1]),
                    None if rfm is None else int(rfm[2]),
                ]
            )
        found[customer] = per
    return found


def worker_ours(replicas: int, mode: str, repeats: int, engine: str) -> dict[str, Any]:
    from identity_graph import kpis

    rows = make_rows(replicas)
    sample = sample_customers(customers_of(rows))
    out: dict[str, Any] = {"rows": len(rows), "customers": len(customers_of(rows))}
    gc.collect()
    rss0 = current_rss()
    g, build = build_graph(rows)
    gc.collect()
    out["graph_mib"] = (current_rss() - rss0) / 2**20
    out["build"] = build
    result = measure(lambda: g.kpis(AS_OF, engine=engine), mode, repeats, out)
    out["profiles"] = len(result)
    if mode == "mem":
        return out
    out["indicators"] = len(kpis.INDICATORS)
    start = time.perf_counter()
    every = dict(result.items())
    out["read_all"] = time.perf_counter() - start
    del every
    out["sample"] = sample_ours(result, sample)
    return out


# ----------------------------------------------------------------------------- polars


def polars_frame(rows: list[Row]) -> Any:
    import polars as pl

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    micro = timedelta(microseconds=1)
    return pl.DataFrame(
        {
            "customer": [row[0] for row in rows],
            "at": [(row[1] - epoch) // micro for row in rows],
            "cents": [row[4] for row in rows],
        },
        schema={"customer": pl.String, "at": pl.Int64, "cents": pl.Int64},
    ).with_columns(pl.col("at").cast(pl.Datetime("us", "UTC")))


def polars_floor(df: Any, as_of: datetime) -> Any:
    """Per customer and window: count, cents, recency days, F and M digits."""
    import polars as pl

    aggs = []
    for days in PERIODS:
        tag = _tag(days)
        if days is None:
            aggs += [
                pl.len().alias(f"n_{tag}"),
                pl.col("cents").sum().alias(f"v_{tag}"),
                pl.col("at").max().alias(f"last_{tag}"),
            ]
        else:
            inside = pl.col("at") > as_of - timedelta(days=days)
            aggs += [
                inside.sum().alias(f"n_{tag}"),
                pl.col("cents").filter(inside).sum().alias(f"v_{tag}"),
                pl.col("at").filter(inside).max().alias(f"last_{tag}"),
            ]
    ranks = []
    for days in PERIODS:
        tag = _tag(days)
        count, value = pl.col(f"n_{tag}"), pl.col(f"v_{tag}")
        active = count > 0
        n = active.sum().cast(pl.Int64)
        ranks += [
            (pl.lit(as_of) - pl.col(f"last_{tag}")).dt.total_days().alias(f"r_{tag}"),
            (1 + 5 * (pl.when(active).then(count).rank("min").cast(pl.Int64) - 1) // n).alias(
                f"F_{tag}"
            ),
            (1 + 5 * (pl.when(active).then(value).rank("min").cast(pl.Int64) - 1) // n).alias(
                f"M_{tag}"
            ),
        ]
    return (
        df.lazy()
        .filter(pl.col("at") <= as_of)
        .group_by("customer")
        .agg(aggs)
        .with_columns(ranks)
        .collect()
    )


def sample_polars(result: Any, sample: list[str]) -> dict[str, list[Any]]:
    import polars as pl

    picked = result.filter(pl.col("customer").is_in(sample))
    found = {}
    for row in picked.iter_rows(named=True):
        per = []
        for days in PERIODS:
            tag = _tag(days)
            count = row[f"n_{tag}"]
            per.append(
                [
                    count,
                    row[f"v_{tag}"] if count else 0,
                    row[f"r_{tag}"],
                    row[f"F_{tag}"],
                    row[f"M_{tag}"],
                ]
            )
        found[row["customer"]] = per
    return found


def worker_polars(replicas: int, mode: str, repeats: int) -> dict[str, Any]:
    import polars as pl

    rows = make_rows(replicas)
    sample = sample_customers(customers_of(rows))
    df = polars_frame(rows)
    del rows
    out: dict[str, Any] = {"polars": pl.__version__, "threads": pl.thread_pool_size()}
    result = measure(lambda: polars_floor(df, AS_OF), mode, repeats, out)
    out["profiles"] = result.height
    if mode == "mem":
        return out
    out["sample"] = sample_polars(result, sample)
    return out


# ----------------------------------------------------------------------------- profile


def profile(replicas: int, top: int) -> None:
    rows = make_rows(replicas)
    g, build = build_graph(rows)
    print(
        f"cProfile of g.kpis(as_of) at {replicas} replicas ({len(rows):,} purchases); "
        f"build {sum(build.values()):.1f} s not profiled"
    )
    profiler = cProfile.Profile()
    profiler.enable()
    g.kpis(AS_OF)
    profiler.disable()
    for key in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(key).print_stats(top)
        lines = text.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "function calls" in line)
        print(f"\nsorted by {key}:")
        print("\n".join(line for line in lines[start:] if line.strip()))


# ----------------------------------------------------------------------------- driver


def _sub(args: list[str]) -> dict[str, Any]:
    return run_worker(os.path.abspath(__file__), args)


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def compare(ours: dict[str, list[Any]], theirs: dict[str, list[Any]]) -> int:
    assert set(ours) == set(theirs), "the two sides report different customers"
    for customer, per in ours.items():
        for days, a, b in zip(PERIODS, per, theirs[customer], strict=True):
            assert a == b, (
                f"{customer} window {_tag(days)}: ours (count, cents, recency, F, M) = {a}, "
                f"polars = {b}"
            )
    return len(ours)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=150, help="copies of CDNOW_sample")
    parser.add_argument("--quick", action="store_true", help="10 replicas")
    parser.add_argument("--repeats", type=int, default=3, help="timed kpis() calls (best kept)")
    parser.add_argument("--profile", type=int, metavar="R", help="cProfile kpis() at R replicas")
    parser.add_argument("--top", type=int, default=20, help="rows per profile listing")
    # internal: one measurement in this (fresh) process
    parser.add_argument("--worker", choices=("ours", "polars"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("time", "mem"), default="time", help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=("python", "polars"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    replicas = 10 if args.quick else args.replicas

    if args.worker == "ours":
        print(json.dumps(worker_ours(replicas, args.mode, args.repeats, args.engine)))
        return
    if args.worker == "polars":
        print(json.dumps(worker_polars(replicas, args.mode, args.repeats)))
        return
    if args.profile:
        profile(args.profile, args.top)
        return

    print(
        f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.2f} at start; "
        "every measurement in a fresh subprocess (time, then memory, per side)."
    )
    common = ["--replicas", str(replicas)]
    repeats = ["--repeats", str(args.repeats)]
    engines = ("polars", "python")
    ours = {e: _sub(["--worker", "ours", "--engine", e, *repeats, *common]) for e in engines}
    ours_mem = {
        e: _sub(["--worker", "ours", "--engine", e, "--mode", "mem", *common]) for e in engines
    }
    theirs = _sub(["--worker", "polars", *repeats, *common])
    theirs_mem = _sub(["--worker", "polars", "--mode", "mem", *common])
    checked = 0
    for engine in engines:
        checked = compare(ours[engine]["sample"], theirs["sample"])

    first = ours["polars"]
    rows, customers = first["rows"], first["customers"]
    print(
        f"\nCDNOW_sample x {replicas}: {rows:,} purchases, {customers:,} customers; "
        f"as_of {AS_OF.date()} UTC; {first['profiles']:,} profiles"
    )
    build = first["build"]
    print(
        f"build (not in the timed region): register {build['register']:.2f} s, "
        f"record_many {build['record_many']:.2f} s ({rows / build['record_many']:,.0f} events/s, "
        "purchase columns included), "
        f"building the Event objects {build['events']:.2f} s; graph holds "
        f"~{first['graph_mib']:,.0f} MiB RSS"
    )
    t_pl = min(theirs["times"])
    header = f"{'side':<44}{'best s':>8}{'first s':>9}{'peak MiB':>10}{'ratio':>7}  what"
    print("\n" + header)
    print("-" * (len(header) + 40))
    for engine in engines:
        side, mem = ours[engine], ours_mem[engine]
        print(
            f"{'ours: g.kpis(as_of, engine=' + repr(engine) + ')':<44}{min(side['times']):>8.3f}"
            f"{side['times'][0]:>9.3f}{_mib(mem['peak']):>10}{min(side['times']) / t_pl:>6.1f}x  "
            f"{side['indicators']} indicators x {side['profiles']:,} profiles, Decimal money; "
            f"reading every row as dicts afterwards: {side['read_all']:.1f} s"
        )
    print(
        f"{'polars ' + theirs['polars'] + ' group-by (bare floor)':<44}{t_pl:>8.3f}"
        f"{theirs['times'][0]:>9.3f}{_mib(theirs_mem['peak']):>10}{1:>6.1f}x  "
        f"counts, cents, recency, F/M x 6 windows, {theirs['threads']} threads"
    )
    ratio = min(ours["polars"]["times"]) / t_pl
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(
        f"\ntarget: the full indicator set within {TARGET_RATIO:.0f}x the bare polars time: "
        f"{ratio:.1f}x with the columnar engine ({verdict}); "
        f"{min(ours['python']['times']) / t_pl:.0f}x with the pure-Python engine"
    )
    print(
        "paths: engine='polars' is identity_graph.kpis.columnar (polars on every core, money as "
        "exact 64/128-bit integers at one decimal scale, Decimal when a row is read); "
        "engine='python' is identity_graph.kpis.compute_python (one thread); "
        "the floor keeps amounts as integer cents (Int64)"
    )
    reset = all(m["peak_reset"] for m in (*ours_mem.values(), theirs_mem))
    print(
        "memory: peak RSS above the RSS just before the call (VmHWM after clear_refs 5"
        f"{'' if reset else '; reset refused: peak may include input building'})"
    )
    print(
        f"check: {checked:,} sampled customers agree on count, cents, recency, F and M "
        "in all 6 windows, for both engines"
    )
    refs = "; ".join(f"{name} {s:.2f} s" for name, s in REFERENCE)
    print(f"reference from the issue (1.04M rows, this machine): {refs}")
    if os.getloadavg()[0] > 1.0:
        print(
            f"note: load average {os.getloadavg()[0]:.2f} at the end; other work on the "
            "machine adds noise to these times"
        )


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
