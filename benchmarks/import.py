"""Import benchmark: rows per second of the file importers (identity_graph.io).

Workload (one seed, files generated in a temporary directory before any
clock starts):

- **offline data**: N lines (default 1M) of a ``;``-separated file with a
  decimal comma, tickets of 1-4 lines over 100k customers (~400k tickets),
  every column of the format but the ten ``EventName Attr`` ones; imported
  with ``tz="Europe/Helsinki"``, ``ticket_fields={"Var1": "store"}``;
- **customers**: an XLSX workbook of M rows (default 100k): id, first and
  last name, city, email, phone, loyalty card (every tenth ``generate()``).

Measured, each in a fresh subprocess (``memory.run_worker``):

- the floor: polars alone reads the offline-data file, parses its times and
  amounts and groups its lines into tickets (no checks, no graph);
- offline data with each reader (``engine="polars"`` and ``"python"``):
  into nothing (a sink that counts the events: the importer's own cost),
  into memory (``IdentityGraph()``, then the same file again: every row
  unchanged) and into SQLite (``IdentityGraph.open(path)``);
- customers XLSX into memory: ``import_customers`` into ``IdentityGraph()``,
  again (unchanged), and ``export_customers`` back to an XLSX file;
- customers XLSX into SQLite: the first ``--sqlite-customers`` rows (default
  5,000), because every changed row is a few durable calls.

Time with ``time.perf_counter``; memory as peak RSS above the RSS before the
import (``memory.PeakMeter``), which includes the graph the import builds.
Nothing is asserted; the summaries are checked (every row imported, then
every row unchanged) so that a fast wrong run cannot pass for a result.

Run: ``python benchmarks/import.py [--rows 1000000] [--customers 100000] [--quick]
[--no-customers] [--no-sqlite] [--before OLD/src]``; ``--before`` imports the
offline data with an older checkout's ``src`` too, in the same run.
The full run takes several minutes on a 2-core machine; run it once.
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# ``--src DIR``: measure another checkout's src (what --before passes to
# its workers); taken off the command line before anything else reads it.
_SRC = Path(__file__).resolve().parents[1] / "src"
if "--src" in sys.argv:
    _at = sys.argv.index("--src")
    _SRC = Path(sys.argv[_at + 1]).resolve()
    del sys.argv[_at : _at + 2]
sys.path.insert(0, str(_SRC))

from identity_graph import IdentityGraph  # noqa: E402
from identity_graph.io import export_customers, import_customers, import_offline_data  # noqa: E402
from memory import PeakMeter, run_worker  # noqa: E402

SEED = 20240601
CUSTOMERS_IN_DATA = 100_000
OFFLINE_OPTIONS: dict[str, Any] = {"tz": "Europe/Helsinki", "ticket_fields": {"Var1": "store"}}
MAPPING: dict[str, Any] = {
    "attributes": {"Firstname": "first_name", "Lastname": "last_name", "City": "city"},
    "links": {"Email": "email", "Phone": "phone", "customerId": "loyalty_card"},
}
CITIES = ("Helsinki", "Espoo", "Tampere", "Turku", "Oulu", "Vaasa")
NAMES = ("Ann", "Ben", "Cecilia", "David", "Eeva", "Frank", "Greta", "Heikki")


# ------------------------------------------------------------------ inputs


def write_offline_data(path: Path, rows: int) -> None:
    rng = random.Random(SEED)
    header = (
        "Time Stamp;Customer ID;Event Type;Category;Event Name;Num1;Num2;"
        "Var1;Var2;EventTransaction Attr1;EventTransaction Attr2\n"
    )
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(header)
        written = ticket = 0
        while written < rows:
            ticket += 1
            customer = rng.randrange(CUSTOMERS_IN_DATA)
            day, second = rng.randrange(1, 29), rng.randrange(86_400)
            stamp = f"2024-{rng.randrange(1, 13):02d}-{day:02d} "
            stamp += f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
            store = f"S{customer % 50:02d}"
            for _ in range(min(rng.randint(1, 4), rows - written)):
                quantity = rng.randint(1, 3)
                price = rng.randrange(100, 5000)
                total = price * quantity
                handle.write(
                    f"{stamp};C{customer};7;Cat{price % 7};SKU-{price % 997};{quantity};"
                    f"{total // 100},{total % 100:02d};{store};BU1;T{ticket};card\n"
                )
                written += 1


def write_customers(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    rng = random.Random(SEED + 1)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Customers")
    sheet.append(["Customer ID", "Firstname", "Lastname", "City", "Email", "Phone", "customerId"])
    for i in range(rows):
        card = "generate()" if i % 10 == 0 else f"7001{i:012d}"
        sheet.append(
            [
                f"C{i}",
                rng.choice(NAMES),
                f"Surname{rng.randrange(5000)}",
                rng.choice(CITIES),
                f"person{i}@example.com",
                f"+35840{i:07d}",
                card,
            ]
        )
    book.save(path)


# ------------------------------------------------------------------ workers


class Sink:
    """A graph that keeps nothing: what is left to time is the importer."""

    register_unknown = True

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def record_many(self, events: list[Any], refused: Any = None) -> tuple[int, int]:
        return self._count([event.id or event.content_id() for event in events])

    def record_table(self, table: Any, refused: Any = None) -> tuple[int, int]:
        # A row without an id is counted as new (the benchmark's lines are all purchases).
        return self._count([str(i) if i is not None else object() for i in table["id"]])

    def _count(self, ids: list[Any]) -> tuple[int, int]:
        new = [i for i in ids if i not in self.seen]
        self.seen.update(new)
        return len(new), len(ids) - len(new)

    def close(self) -> None:
        pass


def _open(target: str) -> Any:
    if target == "memory":
        return IdentityGraph()
    if target == "none":
        return Sink()
    return IdentityGraph.open(target)


def worker_floor(path: str) -> dict[str, Any]:
    """Polars alone: read every cell as text, parse times and amounts, group
    the purchase lines into tickets (what any import must do at least)."""
    import polars as pl

    meter = PeakMeter()
    start = time.perf_counter()
    frame = pl.read_csv(path, separator=";", infer_schema=False)
    frame = frame.with_columns(
        pl.col("Time Stamp")
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S")
        .dt.replace_time_zone(OFFLINE_OPTIONS["tz"], ambiguous="earliest")
        .dt.convert_time_zone("UTC"),
        pl.col("Num1").cast(pl.Int64),
        pl.col("Num2").str.replace(",", ".", literal=True).cast(pl.Decimal(18, 2)),
    )
    tickets = frame.group_by("EventTransaction Attr1").agg(
        pl.col("Customer ID").first(),
        pl.col("Time Stamp").min(),
        pl.col("Num2").sum(),
        pl.col("Event Name"),
        pl.col("Num1"),
    )
    seconds = time.perf_counter() - start
    return {
        "rows": frame.height,
        "seconds": seconds,
        "again": seconds,
        "peak": meter.delta(),
        "tickets": tickets.height,
    }


def _has_readers(src: str) -> bool:
    """Whether the checkout at ``src`` has the ``engine`` option (the polars
    reader), read from its source text rather than imported here."""
    module = Path(src) / "identity_graph" / "io" / "offline_data.py"
    return "engine: str" in module.read_text(encoding="utf-8")


def worker_offline(path: str, target: str, engine: str = "auto") -> dict[str, Any]:
    graph = _open(target)
    options = {**OFFLINE_OPTIONS, "engine": engine}
    if "engine" not in inspect.signature(import_offline_data).parameters:
        # A checkout from before the readers (--before): it has only its own.
        if engine == "polars":
            raise SystemExit("this checkout has no polars reader")
        del options["engine"]
    meter = PeakMeter()
    start = time.perf_counter()
    first = import_offline_data(graph, path, **options)
    seconds = time.perf_counter() - start
    peak = meter.delta()
    start = time.perf_counter()
    again = import_offline_data(graph, path, **options)
    seconds_again = time.perf_counter() - start
    assert first.imported == first.read and first.rejected == 0, first
    assert again.unchanged == again.read, again
    graph.close()
    return {
        "rows": first.read,
        "seconds": seconds,
        "again": seconds_again,
        "peak": peak,
    }


def worker_customers(path: str, target: str, limit: int) -> dict[str, Any]:
    from openpyxl import Workbook, load_workbook

    source = Path(path)
    if limit:
        # The first `limit` rows, as a workbook of their own (before the clock).
        book = load_workbook(source, read_only=True)
        out = Workbook(write_only=True)
        sheet = out.create_sheet("Customers")
        for number, row in enumerate(book.worksheets[0].iter_rows(values_only=True)):
            if number > limit:
                break
            sheet.append(list(row))
        book.close()
        source = source.with_name(f"customers-{limit}.xlsx")
        out.save(source)
    graph = _open(target)
    meter = PeakMeter()
    start = time.perf_counter()
    first = import_customers(graph, source, **MAPPING)
    seconds = time.perf_counter() - start
    peak = meter.delta()
    start = time.perf_counter()
    again = import_customers(graph, source, **MAPPING)
    seconds_again = time.perf_counter() - start
    assert first.imported == first.read and first.rejected == 0, first
    assert again.unchanged == again.read, again
    exported = source.with_name("exported.xlsx")
    start = time.perf_counter()
    written = export_customers(graph, exported, **MAPPING)
    seconds_export = time.perf_counter() - start
    assert written == first.read
    graph.close()
    return {
        "rows": first.read,
        "seconds": seconds,
        "again": seconds_again,
        "export": seconds_export,
        "peak": peak,
    }


# ------------------------------------------------------------------ driver


def row(label: str, result: dict[str, Any]) -> str:
    rows = result["rows"]
    export = f"{rows / result['export']:>10,.0f}" if "export" in result else f"{'-':>10}"
    return (
        f"{label:<35} {rows:>9,} {result['seconds']:>8.1f} {rows / result['seconds']:>10,.0f} "
        f"{rows / result['again']:>10,.0f} {export} {result['peak'] / 2**20:>9,.0f}"
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        kind, path, target, *rest = sys.argv[2:]
        if kind == "floor":
            result = worker_floor(path)
        elif kind == "offline":
            result = worker_offline(path, target, *rest)
        else:
            result = worker_customers(path, target, int(rest[0]) if rest else 0)
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="offline data lines")
    parser.add_argument("--customers", type=int, default=100_000, help="customer rows")
    parser.add_argument("--sqlite-customers", type=int, default=5_000)
    parser.add_argument("--quick", action="store_true", help="100k lines, 10k customers")
    parser.add_argument("--no-customers", action="store_true", help="offline data only")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite imports")
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="also import the offline data with the src directory SRC (an older "
        "checkout), side by side in the same run",
    )
    options = parser.parse_args()
    rows = 100_000 if options.quick else options.rows
    customers = 0 if options.no_customers else 10_000 if options.quick else options.customers
    sqlite_customers = min(options.sqlite_customers, customers)
    script = str(Path(__file__).resolve())
    print(f"Python {sys.version.split()[0]}; seed {SEED}")
    with tempfile.TemporaryDirectory(prefix="ig-import-bench-") as scratch:
        data, book = Path(scratch) / "offline.csv", Path(scratch) / "customers.xlsx"
        start = time.perf_counter()
        write_offline_data(data, rows)
        if customers:
            write_customers(book, customers)
        print(
            f"inputs: {data.stat().st_size / 2**20:,.0f} MiB offline data, "
            f"{book.stat().st_size / 2**20 if customers else 0:,.1f} MiB workbook "
            f"({time.perf_counter() - start:.0f} s to write)"
        )
        results = [
            ("polars floor (read+group)", run_worker(script, ["--worker", "floor", str(data), "-"]))
        ]
        targets = ["none", "memory"] + ([] if options.no_sqlite else ["sqlite"])
        sources = [("", [])] + ([("before ", ["--src", options.before])] if options.before else [])
        for target in targets:
            for engine in ("polars", "python"):
                for label, src in sources:
                    if label and engine == "polars" and not _has_readers(options.before):
                        continue  # a checkout from before the polars reader
                    where = target
                    if target == "sqlite":
                        where = str(Path(scratch) / f"offline-{engine}-{label.strip()}.db")
                    results.append(
                        (
                            f"{label}offline {engine} -> {target}",
                            run_worker(
                                script, ["--worker", "offline", str(data), where, engine, *src]
                            ),
                        )
                    )
        if customers:
            results.append(
                (
                    "customers xlsx -> memory",
                    run_worker(script, ["--worker", "customers", str(book), "memory"]),
                )
            )
        if customers and sqlite_customers:
            db = str(Path(scratch) / "customers.db")
            results.append(
                (
                    "customers xlsx -> SQLite",
                    run_worker(
                        script, ["--worker", "customers", str(book), db, str(sqlite_customers)]
                    ),
                )
            )
    print()
    print(
        f"{'import':<35} {'rows':>9} {'seconds':>8} {'rows/s':>10} {'again/s':>10} "
        f"{'export/s':>10} {'peak MiB':>9}"
    )
    for label, result in results:
        print(row(label, result))


if __name__ == "__main__":
    main()
