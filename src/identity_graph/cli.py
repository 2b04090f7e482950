"""``identity-graph``: the command line over a stored graph.

Every command takes ``--db`` (default ``identity-graph.db``, a SQLite file;
a ``postgresql://`` URL works too) and ``--region`` (the default phone
region, e.g. ``FI``; give the same one every time).  A REF is a customer
id, or ``name:value`` for a link (``email:ann@example.com``); write
``customer:ID`` for a customer id that itself looks like ``name:value``.
Times are ISO 8601 with an offset (``2024-06-01T12:00+03:00``) or a date
(``2024-06-01``, midnight UTC; for ``kpis --as-of`` the end of that day).

Errors print one line on stderr and exit non-zero (2 for a usage error, 1
for anything else), never a traceback.  See ``docs/files.md`` for examples.
"""

from __future__ import annotations

import csv
import functools
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .errors import IdentityGraphError
from .graph import IdentityGraph, Profile
from .ids import Link
from .kpis import NAMINGS
from .times import RANGE_RULE, check_range

if TYPE_CHECKING:
    from .stores.base import Store

__all__ = ["cli", "main", "parse_ref", "parse_time"]

PROG = "identity-graph"
DEFAULT_DB = "identity-graph.db"
_LINK_REF = re.compile(r"([a-z][a-z0-9_]*):(.+)", re.DOTALL)
F = TypeVar("F", bound=Callable[..., Any])

#: The sample files' mapping, shared by ``demo`` and the documentation.
SAMPLE_ATTRIBUTES = {"Firstname": "first_name", "Lastname": "last_name", "City": "city"}
SAMPLE_LINKS = {"Email": "email", "Phone": "phone", "customerId": "loyalty_card"}
SAMPLE_TZ = "Europe/Helsinki"
SAMPLE_EVENT_TYPES = {"3": "call"}
SAMPLE_TICKET_FIELDS = {"Var1": "store"}
DEMO_AS_OF = datetime(2024, 7, 1, tzinfo=UTC)
#: Indicators shown by ``kpis`` without ``--out`` and by ``demo``.
SHOWN_INDICATORS = (
    "Total_Purchases",
    "Total_Items",
    "Total_Value",
    "Total_Average_Value",
    "Total_Stores",
    "Last_Purchase_Date",
    "Days_Since_Last_Purchase",
    "Total_RFM",
    "RFM_Segment",
)


class _Fatal(Exception):
    """An error the command line reports with a chosen exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------ parsing


def parse_ref(text: str) -> str | Link:
    """A REF as the library takes it: a customer id, or a :class:`Link`.

    >>> parse_ref("c-1001"), parse_ref("email:ann@example.com"), parse_ref("customer:shop:7")
    ('c-1001', Link(name='email', value='ann@example.com'), 'shop:7')
    """
    if text.startswith("customer:"):
        return text[len("customer:") :]
    found = _LINK_REF.fullmatch(text)
    if found:
        return Link(found.group(1), found.group(2))
    return text


def parse_time(text: str, end_of_day: bool = False, option: str | None = None) -> datetime:
    """An aware datetime from ISO 8601 text; a bare date is midnight UTC
    (with ``end_of_day``, the midnight that ends it).  A time without an
    offset is refused: the tool never guesses a time zone.  Errors name
    ``option`` (e.g. ``--as-of``).

    >>> parse_time("2024-06-01", end_of_day=True).isoformat()
    '2024-06-02T00:00:00+00:00'
    """
    text = text.strip()
    meaning = ""  # what a bare date stands for, when it is not its midnight
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            at = datetime.combine(day, time(0), tzinfo=UTC)
            if end_of_day:
                meaning = " (the end of that day)"
                at += timedelta(days=1)
        else:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except OverflowError:  # the day after 9999-12-31
        raise click.BadParameter(f"{text}{meaning}: {RANGE_RULE}", param_hint=option) from None
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO date (2024-06-01) or time (2024-06-01T12:00+03:00)",
            param_hint=option,
        ) from None
    if at.tzinfo is None:
        raise click.BadParameter(
            f"{text!r} has no UTC offset; write e.g. {text}+00:00 (the tool never guesses a zone)",
            param_hint=option,
        )
    try:
        check_range(at, text)
    except ValueError:
        shown = f"{text} (the end of that day is {at.isoformat()})" if meaning else text
        raise click.BadParameter(f"{shown}: {RANGE_RULE}", param_hint=option) from None
    return at


def _pairs(values: Sequence[str], option: str, form: str = "COLUMN=NAME") -> dict[str, str]:
    """``COLUMN=NAME`` options as a dict (split at the last ``=``).  A column
    given twice is refused: which of its two names was meant cannot be told.
    ``form`` is how the option's help writes a value (``CODE=TYPE``)."""
    found: dict[str, str] = {}
    for value in values:
        column, equals, name = value.rpartition("=")
        column, name = column.strip(), name.strip()
        if not equals or not column or not name:
            raise click.BadParameter(f"{value!r} must be {form}", param_hint=option)
        if column in found:
            raise click.BadParameter(
                f"column {column!r} is given twice ({found[column]!r} and {name!r})",
                param_hint=option,
            )
        found[column] = name
    return found


def _check_tz(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A usage error for a name that is no time zone, before any file is read."""
    if value is None:
        return None
    from .io.cells import time_zone

    try:
        time_zone(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return value


_tz_option = click.option(
    "--tz",
    required=True,
    callback=_check_tz,
    help="Time zone of the time stamps, e.g. Europe/Helsinki.",
)


# ------------------------------------------------------------------ the graph


def _is_url(db: str) -> bool:
    return "://" in db or db == "memory:"


def _empty(path: Path) -> bool:
    """Whether ``path`` is an empty file (``: > graph.db``), which SQLite would
    take for an empty database.  (A store's file never is: switching it to
    WAL writes its first page.  An empty file beside a non-empty ``-wal``
    is left for SQLite to judge all the same.)"""
    wal = path.with_name(path.name + "-wal")
    return (
        path.is_file()
        and path.stat().st_size == 0
        and not (wal.is_file() and wal.stat().st_size > 0)
    )


@contextmanager
def _graph(db: str, region: str | None, must_exist: bool = True) -> Iterator[IdentityGraph]:
    """The stored graph at ``db``, closed afterwards.  ``must_exist`` (the
    read commands): a missing or empty file is no store, and opening it
    would write one, so it is refused instead."""
    if must_exist and not _is_url(db):
        if not Path(db).exists():
            raise _Fatal(f"no store at {db}; import a file first, or pass --db")
        if _empty(Path(db)):
            raise _Fatal(f"no store at {db} (the file is empty); import a file first, or pass --db")
        foreign = _not_a_store(Path(db))
        if foreign is not None:
            raise _Fatal(f"no store at {db} ({foreign}); pass the --db of an identity_graph store")
    graph = IdentityGraph.open(db, default_region=region)
    try:
        yield graph
    finally:
        graph.close()


def _not_a_store(path: Path) -> str | None:
    """Why the SQLite file at ``path`` holds no identity_graph store, or None.

    Looked at through a read-only connection: opening the file as a store
    would create the store's tables in another application's database (and
    switch its journal mode), which a read command must never do.  O(1).
    """
    import sqlite3
    from urllib.parse import quote

    try:
        probe = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error:
        return None  # let the store say what is wrong
    try:
        found = probe.execute(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('ig_meta', 'ig_journal')"
        ).fetchone()[0]
    except sqlite3.DatabaseError as error:
        return f"it is not a SQLite database: {error}"
    finally:
        probe.close()
    return None if found else "the SQLite file holds other tables, no identity_graph store"


_DB_HELP = (
    "The store: a SQLite file or a postgresql:// URL "
    f"[env IDENTITY_GRAPH_DB; default: {DEFAULT_DB}]."
)
_REGION_HELP = (
    "Default region of phone numbers without +country, e.g. FI [env IDENTITY_GRAPH_REGION]."
)


def _store_settings() -> tuple[str, str | None]:
    """``--db`` and ``--region`` as given before the subcommand (or their
    environment variables and defaults)."""
    root = click.get_current_context().find_root().params
    return root.get("db") or DEFAULT_DB, root.get("region")


def _graph_options(command: F) -> F:
    """``--db`` and ``--region`` after the subcommand too; given there, they
    win over the ones before it, which win over the environment."""

    @functools.wraps(command)
    def with_store(*args: Any, db: str | None, region: str | None, **kwargs: Any) -> Any:
        root_db, root_region = _store_settings()
        return command(*args, db=db or root_db, region=region or root_region, **kwargs)

    with_store = click.option("--region", default=None, metavar="CC", help=_REGION_HELP)(with_store)
    with_store = click.option("--db", default=None, help=_DB_HELP)(with_store)
    return with_store  # type: ignore[return-value]


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M} {value.tzname() or ''}".rstrip()
    if isinstance(value, tuple | list):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


# ------------------------------------------------------------------ commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="identity-graph", prog_name=PROG)
@click.option("--db", envvar="IDENTITY_GRAPH_DB", default=DEFAULT_DB, help=_DB_HELP)
@click.option(
    "--region", envvar="IDENTITY_GRAPH_REGION", default=None, metavar="CC", help=_REGION_HELP
)
def cli(db: str, region: str | None) -> None:
    """Which of a business's records are the same person: files in, answers out.

    --db and --region go before or after the command.  After `make demo`,
    try: identity-graph profile C-1001
    """


@cli.group("import")
def import_group() -> None:
    """Import a file; prints read / imported / unchanged / rejected."""


def _rejects_option(command: F) -> F:
    return click.option(
        "--rejects",
        type=click.Path(dir_okay=False),
        default=None,
        help="Rejects CSV to write [default: FILE's name with .rejects.csv, here].",
    )(command)


def _csv_options(command: F) -> F:
    command = click.option(
        "--delimiter",
        type=click.Choice([",", ";", "tab"]),
        default=None,
        help="Column delimiter [default: sniffed].",
    )(command)
    command = click.option(
        "--encoding",
        default=None,
        callback=_text_encoding,
        help="Text encoding [default: UTF-8, or the file's BOM].",
    )(command)
    command = click.option(
        "--engine",
        type=click.Choice(["auto", "polars", "python"]),
        default="auto",
        show_default=True,
        help="CSV reader: polars (with the [polars] extra; holds the file's cells in "
        "memory) or python (streams any file); auto takes polars when installed and the "
        "file is one it reads exactly as the python reader. The import is the same.",
    )(command)
    return command


def _text_encoding(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--encoding``: a text encoding Python knows, else a usage error naming
    the option (``rot13`` and ``base64`` are codecs, not text encodings)."""
    if value is None:
        return None
    from .io.csvfiles import check_encoding  # the importers' own rule; io loads lazily

    try:
        return check_encoding(value, "")
    except ValueError as error:
        raise click.BadParameter(str(error).strip()) from None


def _rejects_path(file: str, rejects: str | None) -> Path:
    return Path(rejects) if rejects else Path(Path(file).stem + ".rejects.csv")


def _delimiter(value: str | None) -> str | None:
    return "\t" if value == "tab" else value


def _report(file: str, summary: Any, rejects: Path) -> None:
    line = f"{Path(file).name}: {summary}"
    if summary.rejected:
        line += f"; rejects in {rejects}"
    click.echo(line)


#: The offline-data importer's arguments as this command's options name them.
_OFFLINE_DATA_OPTIONS = {
    "event_types": "--event-type",
    "ticket_fields": "--ticket-field",
    "item_fields": "--item-field",
}


@import_group.command("offline-data")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_tz_option
@click.option(
    "--event-type", "event_types", multiple=True, metavar="CODE=TYPE", help="e.g. 3=call."
)
@click.option(
    "--ticket-field",
    "ticket_fields",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="A ticket-wide column, e.g. Var1=store (store, seller, payment_methods, "
    "shipping_methods and promo_codes feed the indicators); one value per ticket.",
)
@click.option(
    "--item-field",
    "item_fields",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="A per-line column (Var1-Var5, EventName Attr1-Attr10) and the item field it "
    "fills, e.g. 'EventName Attr1=brand' (brand and seller feed the indicators; "
    "categories come from the Category column); lines of one ticket may differ.",
)
@click.option(
    "--register/--no-register",
    default=True,
    show_default=True,
    help="Register customer ids the store does not know (or reject their lines).",
)
@_rejects_option
@_csv_options
@_graph_options
def import_offline_data_command(
    file: str,
    tz: str,
    event_types: tuple[str, ...],
    ticket_fields: tuple[str, ...],
    item_fields: tuple[str, ...],
    register: bool,
    rejects: str | None,
    encoding: str | None,
    engine: str,
    delimiter: str | None,
    db: str,
    region: str | None,
) -> None:
    """Import an offline-data CSV (store purchases, call-centre events)."""
    from .io import import_offline_data
    from .io.offline_data import check_options

    types = _pairs(event_types, "--event-type", "CODE=TYPE")
    tickets = _pairs(ticket_fields, "--ticket-field")
    items = _pairs(item_fields, "--item-field")
    try:  # before any file is opened, in the options' own names
        check_options(types, tickets, items, names=_OFFLINE_DATA_OPTIONS)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    target = _rejects_path(file, rejects)
    with _graph(db, region, must_exist=False) as graph:
        summary = import_offline_data(
            graph,
            file,
            tz=tz,
            event_types=types,
            ticket_fields=tickets,
            item_fields=items,
            register_unknown=register,
            rejects=target,
            encoding=encoding,
            delimiter=_delimiter(delimiter),
            engine=engine,
        )
    _report(file, summary, target)


@import_group.command("offline-events")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_tz_option
@_rejects_option
@_csv_options
@_graph_options
def import_offline_events_command(
    file: str,
    tz: str,
    rejects: str | None,
    encoding: str | None,
    engine: str,
    delimiter: str | None,
    db: str,
    region: str | None,
) -> None:
    """Import an offline-events CSV (plain, interest, purchase) for members."""
    from .io import import_offline_events

    target = _rejects_path(file, rejects)
    with _graph(db, region, must_exist=False) as graph:
        summary = import_offline_events(
            graph,
            file,
            tz=tz,
            rejects=target,
            encoding=encoding,
            delimiter=_delimiter(delimiter),
            engine=engine,
        )
    _report(file, summary, target)


def _mapping_options(command: F) -> F:
    command = click.option(
        "--link", "links", multiple=True, metavar="COLUMN=NAME", help="e.g. Email=email."
    )(command)
    command = click.option(
        "--attribute",
        "attributes",
        multiple=True,
        metavar="COLUMN=NAME",
        help="e.g. Firstname=first_name.",
    )(command)
    command = click.option(
        "--no-id-column",
        is_flag=True,
        help="The file has no id column: match rows by their links.",
    )(command)
    command = click.option(
        "--id-column", default="Customer ID", show_default=True, help="Column of customer ids."
    )(command)
    return command


def _layout(
    id_column: str, no_id_column: bool, attributes: tuple[str, ...], links: tuple[str, ...]
) -> dict[str, Any]:
    """The customers mapping of the options, checked before any file or
    store is opened: a bad attribute or link name is a usage error."""
    from .io.customers import CustomerLayout

    column = None if no_id_column else id_column
    mapped_attributes = _pairs(attributes, "--attribute")
    mapped_links = _pairs(links, "--link")
    try:
        CustomerLayout.build(column, mapped_attributes, mapped_links)
    except ValueError as error:  # InvalidLink too
        raise click.UsageError(str(error)) from None
    return {"id_column": column, "attributes": mapped_attributes, "links": mapped_links}


def _only_for_its_format(
    file: str, *, csv_only: Sequence[str] = (), xlsx_only: Sequence[str] = (), writing: bool = False
) -> None:
    """A usage error for an option given that does not apply to FILE's format
    (``--sheet`` for a CSV file, ``--encoding`` for a workbook), which would
    otherwise be ignored without a word.  ``csv_only`` and ``xlsx_only`` name
    the command's parameters; a suffix of neither format is left to the
    command's own call, whose error names the suffixes."""
    from click.core import ParameterSource

    from .io.tables import is_csv  # io loads lazily

    try:
        csv_file = is_csv(Path(file), writing=writing)
    except ValueError:
        return
    ctx = click.get_current_context()
    for name in xlsx_only if csv_file else csv_only:
        if ctx.get_parameter_source(name) in (None, ParameterSource.DEFAULT):
            continue
        option = next(param.opts[0] for param in ctx.command.params if param.name == name)
        kind, other = ("XLSX", "a CSV file") if csv_file else ("CSV", "an XLSX workbook")
        raise click.UsageError(f"{option} applies to {kind} files only; {file} is {other}", ctx)


@import_group.command("customers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_mapping_options
@click.option("--at", "at_text", default=None, help="When the import takes effect [default: now].")
@click.option("--sheet", default=None, help="XLSX only: the sheet [default: the first].")
@click.option(
    "--max-rows", type=click.IntRange(min=1), default=None, help="XLSX only: the row limit."
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=None,
    help="XLSX only: the uncompressed size limit.",
)
@_rejects_option
@_csv_options
@_graph_options
def import_customers_command(
    file: str,
    id_column: str,
    no_id_column: bool,
    attributes: tuple[str, ...],
    links: tuple[str, ...],
    at_text: str | None,
    sheet: str | None,
    max_rows: int | None,
    max_bytes: int | None,
    rejects: str | None,
    encoding: str | None,
    engine: str,
    delimiter: str | None,
    db: str,
    region: str | None,
) -> None:
    """Import customers from a CSV or XLSX file through a column mapping."""
    from .io import XlsxLimits, import_customers

    _only_for_its_format(
        file,
        csv_only=("encoding", "delimiter", "engine"),
        xlsx_only=("sheet", "max_rows", "max_bytes"),
    )

    limits = XlsxLimits()
    if max_rows is not None or max_bytes is not None:
        limits = XlsxLimits(
            max_uncompressed_bytes=max_bytes or limits.max_uncompressed_bytes,
            max_rows=max_rows or limits.max_rows,
        )
    at = None if at_text is None else parse_time(at_text, option="--at")
    target = _rejects_path(file, rejects)
    with _graph(db, region, must_exist=False) as graph:
        summary = import_customers(
            graph,
            file,
            **_layout(id_column, no_id_column, attributes, links),
            rejects=target,
            at=at,
            sheet=sheet,
            encoding=encoding,
            delimiter=_delimiter(delimiter),
            engine=engine,
            limits=limits,
        )
    _report(file, summary, target)


@cli.group("export")
def export_group() -> None:
    """Write a file from the store."""


@export_group.command("customers")
@click.argument("file", type=click.Path(dir_okay=False))
@_mapping_options
@click.option("--sheet", default="Customers", show_default=True, help="XLSX only: the sheet name.")
@_graph_options
def export_customers_command(
    file: str,
    id_column: str,
    no_id_column: bool,
    attributes: tuple[str, ...],
    links: tuple[str, ...],
    sheet: str,
    db: str,
    region: str | None,
) -> None:
    """Write every customer to FILE (.csv or .xlsx) in the mapping's layout."""
    from .io import export_customers

    _only_for_its_format(file, xlsx_only=("sheet",), writing=True)

    with _graph(db, region) as graph:
        written = export_customers(
            graph, file, **_layout(id_column, no_id_column, attributes, links), sheet=sheet
        )
    click.echo(f"wrote {written} customers to {file}")


@export_group.command("profiles")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--as-of", "as_of_text", required=True, help="Date or time of the indicators.")
@click.option("--sheet", default="Profiles", show_default=True, help="XLSX only: the sheet name.")
@_graph_options
def export_profiles_command(
    file: str, as_of_text: str, sheet: str, db: str, region: str | None
) -> None:
    """Write every profile to FILE (.csv or .xlsx): ids, links, attributes and
    the indicators under the omnichannel platform's names (ICOMMKT_...)."""
    from .io import export_profiles

    _only_for_its_format(file, xlsx_only=("sheet",), writing=True)
    as_of = parse_time(as_of_text, end_of_day=True, option="--as-of")
    with _graph(db, region) as graph:
        written = export_profiles(graph, file, as_of, sheet=sheet)
    click.echo(f"wrote {written} profiles at {as_of.isoformat()} to {file}")


@cli.command()
@click.argument("ref")
@click.option("--at", "at_text", default=None, help="Resolve as of this time [default: now].")
@_graph_options
def resolve(ref: str, at_text: str | None, db: str, region: str | None) -> None:
    """Print the profile id of REF."""
    with _graph(db, region) as graph:
        at = None if at_text is None else parse_time(at_text, option="--at")
        click.echo(str(graph.resolve(parse_ref(ref), at=at)))


def _profile_table(profile: Profile) -> Any:
    from rich.table import Table

    table = Table(title=f"profile {profile.id}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("customers", ", ".join(profile.customer_ids) or "- (anonymous)")
    table.add_row("links", "\n".join(str(link) for link in profile.links) or "-")
    for name, value in profile.attributes.items():
        table.add_row(name, _cell(value))
    table.add_row("merges", ", ".join(profile.merge_ids) or "-")
    return table


def _linked_since(graph: IdentityGraph, link: Link) -> datetime | None:
    """When the current owner of ``link`` got it: the first change point of
    the last unbroken run of that owner in the link's history."""
    since = None
    owner = graph.owner(link)
    for valid_from, holder in reversed(graph.history(link)):
        if holder != owner:
            break
        since = valid_from
    return since


def _event_place(data: Any) -> str:
    """Where an event happened, as far as its data says: store, mailing or channel."""
    for field in ("store", "mailing", "channel"):
        if data.get(field) not in (None, ""):
            return f"{field} {data[field]}"
    return ""


def _events_table(title: str, events: Sequence[Any], detail: str) -> Any:
    """Events as a table: time, type, ``detail`` (``"customer"``: who it is
    anchored on; ``"where"``: its store, mailing or channel), amount, id."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("at", "type", detail, "amount", "id"):
        table.add_column(column, justify="right" if column == "amount" else "left")
    for event in events:
        amount = event.data.get("amount")
        if detail == "customer":
            shown = event.customer_id or ", ".join(str(link) for link in event.links)
        else:
            shown = _event_place(event.data)
        money = "" if amount is None else str(amount)
        table.add_row(_cell(event.at), event.type, shown, money, event.id or "")
    return table


#: How many events the customer card lists, newest first.
CARD_EVENTS = 5
#: The indicators the customer card shows.
CARD_INDICATORS = (*SHOWN_INDICATORS, "RFM_Group")


def _customer_card(graph: IdentityGraph, ref: str | Link, as_of: datetime) -> list[Any]:
    """What ``profile REF`` prints: who (ids, links since when, attributes),
    the latest events, and the main indicators at ``as_of``.  O(profile size
    + its events) plus one indicators pass over every purchase (the RFM ranks
    compare profiles)."""
    from rich.table import Table

    found = graph.profile(ref)
    card = Table(title=f"profile {found.id}", show_header=False, title_justify="left")
    card.add_column(style="bold", no_wrap=True)
    card.add_column()
    card.add_row("customers", ", ".join(found.customer_ids) or "- (anonymous)")
    lines = []
    for link in found.links:
        since = _linked_since(graph, link)
        owner = graph.owner(link)
        held = "" if owner is None or len(found.customer_ids) < 2 else f" ({owner})"
        when = "never owned" if since is None else f"since {_cell(since)}"
        lines.append(f"{link}{held}  {when}")
    card.add_row("links", "\n".join(lines) or "-")
    for name, value in found.attributes.items():
        card.add_row(name, _cell(value))
    card.add_row("merges", ", ".join(found.merge_ids) or "-")
    shown: list[Any] = [card]

    latest = graph.events(found.id, end=as_of)[-CARD_EVENTS:][::-1]
    title = f"latest events before {as_of:%Y-%m-%d %H:%M} UTC"
    shown.append(_events_table(title, latest, "where") if latest else "no events")

    row = graph.kpis(as_of, ref=found.id)
    title = f"indicators at {as_of.isoformat(timespec='seconds')}"
    indicators = Table(title=title, title_justify="left")
    indicators.add_column("indicator", no_wrap=True)
    indicators.add_column("value", justify="right", overflow="fold")
    for name in CARD_INDICATORS:
        indicators.add_row(name, _cell(row[name]))
    shown.append(indicators)
    return shown


@cli.command()
@click.argument("ref")
@click.option(
    "--as-of",
    "as_of_text",
    default=None,
    help="Date or time of the indicators [default: now; a date means its end].",
)
@_graph_options
def profile(ref: str, as_of_text: str | None, db: str, region: str | None) -> None:
    """Show the customer card of REF: customer ids, links and since when,
    attributes, the latest events, and the main indicators with the RFM
    segment.  The profile is as it stands now; its events and indicators are
    those up to --as-of (default: now)."""
    as_of = datetime.now(UTC) if as_of_text is None else parse_time(as_of_text, True, "--as-of")
    console = _console()
    with _graph(db, region) as graph:
        for part in _customer_card(graph, parse_ref(ref), as_of):
            console.print(part)


@cli.command()
@click.argument("a")
@click.argument("b")
@_graph_options
def explain(a: str, b: str, db: str, region: str | None) -> None:
    """Show why A and B are in one profile: the chain of links and merges."""
    from rich.table import Table

    with _graph(db, region) as graph:
        steps = graph.explain(parse_ref(a), parse_ref(b))
    if not steps:
        click.echo(f"{a} and {b} are the same")
        return
    table = Table(title=f"why {a} and {b} are one profile", title_justify="left")
    for column in ("step", "from", "to", "journal entry", "at"):
        table.add_column(column)
    for step in steps:
        kind = f"merge {step.merge_id}" if step.kind == "merge" else step.kind
        table.add_row(
            kind,
            str(step.source),
            str(step.target),
            f"#{step.entry.seq} {step.entry.op}",
            _cell(step.entry.at),
        )
    _console().print(table)


@cli.command()
@click.argument("ref")
@click.option("--start", default=None, help="From this time (inclusive).")
@click.option("--end", default=None, help="Until this time (exclusive).")
@click.option("--type", "types", multiple=True, help="Only events of this type (repeatable).")
@_graph_options
def events(
    ref: str,
    start: str | None,
    end: str | None,
    types: tuple[str, ...],
    db: str,
    region: str | None,
) -> None:
    """List the events of REF's profile, oldest first."""
    since = None if start is None else parse_time(start, option="--start")
    until = None if end is None else parse_time(end, option="--end")
    if since is not None and until is not None and since >= until:
        # An empty window is a mistake, never an answer of "no events".
        raise click.UsageError(f"--start {start} is not before --end {end}")
    with _graph(db, region) as graph:
        found = graph.events(parse_ref(ref), start=since, end=until, types=types or None)
    _console().print(_events_table(f"{len(found)} events of {ref}", found, "customer"))


def _kpi_table(rows: dict[Any, dict[str, Any]], title: str) -> Any:
    """A few indicators per profile: one column per profile when there are
    few (readable on a narrow terminal), else one row per profile."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    if len(rows) <= 4:
        table.add_column("indicator", no_wrap=True)
        for profile_id in rows:
            table.add_column(str(profile_id), justify="right", overflow="fold")
        for name in SHOWN_INDICATORS:
            table.add_row(name, *(_cell(row[name]) for row in rows.values()))
        return table
    table.add_column("profile")
    for name in SHOWN_INDICATORS:
        table.add_column(name.replace("_", " "), justify="right")
    for profile_id, row in rows.items():
        table.add_row(str(profile_id), *(_cell(row[name]) for name in SHOWN_INDICATORS))
    return table


@cli.command()
@click.option("--as-of", "as_of_text", required=True, help="Date or time of the indicators.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="CSV file to write.")
@click.option("--ref", default=None, help="Only this profile.")
@click.option(
    "--names",
    type=click.Choice(list(NAMINGS)),
    default="plain",
    show_default=True,
    help="Column names in --out: the indicators' own, or the omnichannel platform's "
    "(ICOMMKT_ before each; RFM_Group and RFM_Segment bare).",
)
@_graph_options
def kpis(
    as_of_text: str, out: str | None, ref: str | None, names: str, db: str, region: str | None
) -> None:
    """Compute the indicators; write them all to --out, or show a summary."""
    from .kpis import write_csv

    as_of = parse_time(as_of_text, end_of_day=True, option="--as-of")
    if out is not None and Path(out).suffix.lower() != ".csv":
        raise click.BadParameter(f"{out}: the file name must end in .csv", param_hint="--out")
    with _graph(db, region) as graph:
        if ref is None:
            rows = dict(graph.kpis(as_of).items())  # one walk over a columnar result
        else:
            target = parse_ref(ref)
            rows = {graph.resolve(target): graph.kpis(as_of, ref=target)}
    if out is not None:
        written = write_csv(rows, out, names=names)
        click.echo(f"wrote the indicators of {written} profiles at {as_of.isoformat()} to {out}")
    else:
        _console().print(_kpi_table(rows, f"indicators at {as_of.isoformat()}"))


@cli.command()
@_graph_options
def refusals(db: str, region: str | None) -> None:
    """List every refused call: the review log of what the guards refused, and why."""
    from rich.table import Table

    with _graph(db, region) as graph:
        found = graph.refusals()
    if not found:
        click.echo("no refusals")
        return
    table = Table(title=f"{len(found)} refusals", title_justify="left")
    for column in ("at", "operation", "error", "reason"):
        table.add_column(column)
    for refusal in found:
        table.add_row(_cell(refusal.at), refusal.op, refusal.error, refusal.reason)
    _console().print(table)


@cli.command()
@_graph_options
def verify(db: str, region: str | None) -> None:
    """Check the store thoroughly: its pages (SQLite integrity_check), every row,
    and that the checkpoint agrees with replaying the whole journal."""
    with _graph(db, region) as graph:
        entries = graph.verify()
    click.echo(f"{db}: no damage found ({entries} journal entries checked)")


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _customer_argument(text: str) -> str:
    """The customer id of a command that takes no link: REF syntax, so a
    ``name:value`` is a link, and a usage error here (erasing the wrong
    person is what a guess would risk)."""
    ref = parse_ref(text)
    if isinstance(ref, Link):
        raise click.BadParameter(
            f"{text!r} is a link ({ref.name}:…), not a customer id; write customer:{text}"
            " if that is the customer's id",
            param_hint="CUSTOMER_ID",
        )
    return ref


@cli.command()
@click.argument("customer_id")
@click.option(
    "--reason",
    default="",
    help="Why, kept in the journal as given: name the request (a ticket number), never the person.",
)
@_graph_options
def forget(customer_id: str, reason: str, db: str, region: str | None) -> None:
    """Erase the person CUSTOMER_ID: its attributes, the links only it ever
    held, its events and the merges that held it; the journal keeps keyed
    hashes in their place, and the id and links are refused from then on
    (see release-suppression).  The store's freed space is cleared (SQLite:
    VACUUM and the write-ahead log truncated; PostgreSQL: VACUUM of its
    tables).  The output names the person only by the id's keyed hash.
    Write customer:ID for an id that looks like name:value.  Backups and
    copies outside the store are yours to erase: see docs/erasure.md."""
    customer = _customer_argument(customer_id)
    with _graph(db, region) as graph:
        entry = graph.forget(customer, reason=reason)
        hashed = graph.state.suppression.customer_hash(customer)
        cleared = _cleared(graph.store)
    if entry is None:
        click.echo(f"customer {hashed} was erased already; nothing to do")
        return
    args = entry.args
    shared = sum(1 for change in entry.changes if change.kind in ("link_moved", "link_history"))
    kept = f"; {_counted(shared, 'shared link')} kept for its other owners" if shared else ""
    click.echo(
        f"erased the customer as {args['customer_id']} in journal entry #{entry.seq}: "
        f"{_counted(len(args['links']), 'link')}, {_counted(len(args['events']), 'event')} "
        f"and {_counted(len(args['merge_ids']), 'merge')} went{kept}; {cleared}"
    )


def _cleared(store: Store | None) -> str:
    """What ``forget`` did to clear the space an erasure freed in ``store``
    (its ``scrub``), for the summary line."""
    from .stores.memory import MemoryStore
    from .stores.postgres import PostgresStore
    from .stores.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        return "the store was vacuumed and its write-ahead log truncated"
    if isinstance(store, PostgresStore):
        return "the store's tables were vacuumed"
    if store is None or isinstance(store, MemoryStore):
        return "nothing to clear (the graph is kept in memory)"
    return "the store cleared the space it freed"


@cli.command("release-suppression")
@click.argument("ref")
@_graph_options
def release_suppression(ref: str, db: str, region: str | None) -> None:
    """Let an erased customer id or link value (REF) be registered, linked or
    recorded again, when the person came back on their own.  Prints whether
    anything was lifted.  Give the id or value itself: a keyed hash
    (erased:...) cannot be released, since it names no value."""
    if ref.strip().startswith("erased:"):
        raise click.UsageError(
            f"{ref[:50]!r} is a keyed hash; release-suppression takes the customer id or the"
            " link value that was erased (name:value), which only the person can give again"
        )
    target = parse_ref(ref)
    what = f"link {target}" if isinstance(target, Link) else f"customer id {target}"
    with _graph(db, region) as graph:
        entry = graph.release_suppression(target)
    if entry is None:
        click.echo(f"{what} is not suppressed; nothing was lifted")
    else:
        click.echo(f"lifted the suppression of {what} (journal entry #{entry.seq})")


def sample(name: str) -> Any:
    """A sample file shipped in the package (``customers.xlsx``, ``offline_data.csv``,
    ``offline_events.csv``) as an importlib resource."""
    return resources.files("identity_graph").joinpath("samples", name)


def _import_samples(graph: IdentityGraph, scratch: Path) -> list[tuple[str, Any, list[str]]]:
    """Import the three sample files into ``graph``: ``(file, summary, rejects)``
    each, the rejects as one line a row."""
    from .io import import_customers, import_offline_data, import_offline_events

    steps: list[tuple[str, Callable[[Path, Path], Any]]] = [
        (
            "customers.xlsx",
            lambda path, rejects: import_customers(
                graph,
                path,
                attributes=SAMPLE_ATTRIBUTES,
                links=SAMPLE_LINKS,
                rejects=rejects,
                at=datetime(2024, 1, 1, tzinfo=UTC),
            ),
        ),
        (
            "offline_data.csv",
            lambda path, rejects: import_offline_data(
                graph,
                path,
                tz=SAMPLE_TZ,
                event_types=SAMPLE_EVENT_TYPES,
                ticket_fields=SAMPLE_TICKET_FIELDS,
                rejects=rejects,
            ),
        ),
        (
            "offline_events.csv",
            lambda path, rejects: import_offline_events(graph, path, tz=SAMPLE_TZ, rejects=rejects),
        ),
    ]
    done = []
    for name, run in steps:
        rejects = scratch / f"{name}.rejects.csv"
        with resources.as_file(sample(name)) as path:
            summary = run(path, rejects)
        with open(rejects, newline="", encoding="utf-8") as handle:
            lines = [
                f"row {row}, {column} {value!r}: {reason}"
                for row, column, value, reason in list(csv.reader(handle))[1:]
            ]
        done.append((name, summary, lines))
    return done


def _sample_customers() -> set[str]:
    """The customer ids the sample files make (imported into memory)."""
    with tempfile.TemporaryDirectory(prefix="identity-graph-demo-") as scratch:
        graph = IdentityGraph()
        _import_samples(graph, Path(scratch))
        return set(graph.customers())


#: The commands the demo suggests next, as a reader would type them.
NEXT_COMMANDS = (
    "profile C-1001 --as-of 2024-06-30",
    "resolve phone:+358401234567",
    "events email:ann.lee@example.com",
    "kpis --as-of 2024-06-30 --out kpis.csv",
    "export profiles profiles.xlsx --as-of 2024-06-30",
    "export customers customers.csv --attribute Firstname=first_name --link Email=email",
)


@cli.command()
@_graph_options
def demo(db: str, region: str | None) -> None:
    """Build the store (--db, default identity-graph.db) from the sample
    files shipped in the package, show a customer card, and print the
    commands to try next.  Run it twice: the second import changes nothing.
    A store that already holds other customers is left alone."""
    with tempfile.TemporaryDirectory(prefix="identity-graph-demo-") as scratch:
        _demo(Path(scratch), db, region)


def _demo(scratch: Path, db: str, region: str | None) -> None:
    from rich.table import Table

    console = _console()
    with _graph(db, region, must_exist=False) as graph:
        strangers = set(graph.customers())
        if strangers:
            strangers -= _sample_customers()
        if strangers:
            raise _Fatal(
                f"{db} already holds {len(strangers)} customer(s) that are not the demo's "
                f"(e.g. {min(strangers)!r}); the demo writes only into a new store or its "
                "own: pass --db demo.db"
            )
        console.print(f"[bold]identity-graph demo[/bold]: building {db} from the sample files")
        summaries = Table(title="imports", title_justify="left")
        for column in ("file", "read", "imported", "unchanged", "rejected"):
            summaries.add_column(column, justify="left" if column == "file" else "right")
        done = _import_samples(graph, scratch)
        for name, summary, _ in done:
            summaries.add_row(
                name,
                str(summary.read),
                str(summary.imported),
                str(summary.unchanged),
                str(summary.rejected),
            )
        console.print(summaries)
        for name, _, lines in done:
            for line in lines:
                console.print(f"rejected from {name}, {line}")
        first = next(graph.profiles())
        for part in _customer_card(graph, first.id, DEMO_AS_OF):
            console.print(part)
        indicators = graph.kpis(DEMO_AS_OF)
        rows = {p.id: indicators[p.id] for p in graph.profiles()}
    console.print(_kpi_table(rows, f"indicators at {DEMO_AS_OF.isoformat()}"))
    # Plain text, never wrapped: each line must paste into a shell as it is.
    click.echo(_next_steps(db))


def _next_steps(db: str) -> str:
    """The commands to try next, with ``--db`` where the store is not the one
    the command line opens by default."""
    default = os.environ.get("IDENTITY_GRAPH_DB") or DEFAULT_DB
    where = "" if db == default else f" --db {shlex.quote(db)}"
    lines = [f"Try next (the store is {db}):"]
    lines += [f"  {PROG}{where} {command}" for command in NEXT_COMMANDS]
    return "\n".join(lines)


# ------------------------------------------------------------------ entry point


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _describe(error: Exception) -> str:
    """An error for people: the library's errors keep their class name, which
    tells the kind of refusal (``LinkConflict: …``); a file the system
    refused is named with the system's reason (``out/x.csv: No such file or
    directory``), and any other error is its message, without Python's
    class name and errno."""
    if isinstance(error, IdentityGraphError):
        return f"{type(error).__name__}: {error}"
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    # A bare ValueError or LookupError: its class says nothing the message does not.
    return str(error) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; exit with its status (never a traceback)."""
    try:
        result = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.UsageError as error:
        where = f" (see {error.ctx.command_path} --help)" if error.ctx is not None else ""
        click.echo(f"{PROG}: error: {_one_line(error.format_message())}{where}", err=True)
        code = error.exit_code
    except click.ClickException as error:
        click.echo(f"{PROG}: error: {_one_line(error.format_message())}", err=True)
        code = error.exit_code
    except click.exceptions.Abort:
        click.echo(f"{PROG}: aborted", err=True)
        code = 130
    except _Fatal as error:
        click.echo(f"{PROG}: error: {_one_line(str(error))}", err=True)
        code = error.code
    except (IdentityGraphError, OSError, ValueError, LookupError, ArithmeticError) as error:
        click.echo(f"{PROG}: error: {_one_line(_describe(error))}", err=True)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
