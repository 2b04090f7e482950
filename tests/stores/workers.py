"""Child processes for the crash, I/O-fault and concurrency tests of the stores.

Run as a script, never imported by pytest as a test module::

    python workers.py crash PATH SEED REPORT      write until SIGKILLed
    python workers.py contend TARGET WORKER OPS SEED REPORT PAUSE
    python workers.py create TARGET WORKER REPORT  open a brand-new store, write one link
    python workers.py fulldisk PATH LIMIT MODE     write until RLIMIT_FSIZE stops it
    python workers.py readonly PATH UID HOW        try to write a store it cannot write
    python workers.py forget PATH PERSON           forget one person (until SIGKILLed)
    python workers.py eraser TARGET PEOPLE REPORT  forget several people, with pauses
    python workers.py busy TARGET OPS SEED REPORT  link, record and read meanwhile

Protocol: the worker prints ``IMPORTED`` on stdout once the library is
imported, and ``READY`` once the graph is open.  ``crash`` and ``create``
wait for a line on stdin before opening the store, ``contend`` before its
first call, so the parent decides when each one starts.

Every call that *returned* is reported to REPORT, one line each, written
with a single ``os.write`` after the call returned (so after its commit):

- ``J <seq> <op>``: a journal entry the call appended (a merge reports the
  seq its merge id ``m<seq>`` names);
- ``E <event id>``: an event ``record``/``record_many`` holds in the ledger;
- ``S <step>`` / ``C <seq>``: a checkpoint starts / was written at ``seq``;
- ``X <json>``: the worker's last words (``fulldisk``, ``contend``).
- ``F <person>``: ``forget`` of that person returned (``eraser``).

``eraser`` and ``busy`` print ``DONE`` when their calls are over and wait
for a line on stdin; then they catch up, print the :func:`digest` of what
their graph serves and exit.

A line without its ``\\n`` was cut by a kill and does not count.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import resource
import signal
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from identity_graph import Event, IdentityGraph, Link
from identity_graph.errors import IdentityGraphError, StoreError

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class Report:
    def __init__(self, path: str) -> None:
        """Append to ``path``; ``-`` is stdout."""
        self.fd = 1 if path == "-" else os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def lines(self, *lines: str) -> None:
        if lines:
            os.write(self.fd, "".join(f"{line}\n" for line in lines).encode())

    def entry(self, entry: Any, op: str) -> None:
        if entry is not None:
            self.lines(f"J {entry.seq} {op}")

    def merge(self, merge_id: str | None) -> None:
        if merge_id is not None:
            self.lines(f"J {merge_id[1:]} merge")


def say(word: str) -> None:
    sys.stdout.write(word + "\n")
    sys.stdout.flush()


def wait_for_go() -> None:
    if not sys.stdin.readline():
        raise SystemExit("the parent went away before saying go")


def purchase(event_id: str, at: datetime, customer: str | None, link: Link | None) -> Event:
    amount = f"{zlib.crc32(event_id.encode()) % 9000 / 100 + 1:.2f}"
    return Event(
        "purchase",
        at=at,
        customer_id=customer,
        links=() if link is None else (link,),
        data={"amount": amount, "items": [{"sku": "A", "quantity": 1, "price": amount}]},
        id=event_id,
    )


# ------------------------------------------------------------------ crash


def crash(path: str, seed: int, report_path: str) -> None:
    """Write a random mix of calls to ``path`` until killed."""
    rng = random.Random(seed)
    report = Report(report_path)
    say("IMPORTED")
    wait_for_go()
    g = IdentityGraph.open(path, checkpoint_every=120, batch_size=20, register_unknown=True)
    say("READY")
    customers = [f"c{i}" for i in range(60)]
    links = [Link("email", f"u{i}@example.com") for i in range(30)]
    links += [Link("loyalty_card", f"70{i:04d}") for i in range(10)]
    kinds = ["link", "relink", "merge", "split", "detach", "release", "record", "record_many"]
    weights = [8, 4, 4, 3, 1, 1, 3, 1]
    parent, deadline = os.getppid(), time.monotonic() + 60
    for step in itertools.count(1):
        if os.getppid() != parent or time.monotonic() > deadline:
            raise SystemExit("orphaned or running for too long: a kill never came")
        at = T0 + timedelta(days=rng.randrange(365), seconds=rng.randrange(86400))
        kind = "checkpoint" if step % 25 == 0 else rng.choices(kinds, weights)[0]
        try:
            if kind == "link":
                report.entry(g.link(rng.choice(customers), rng.choice(links), at=at), "link")
            elif kind == "relink":
                report.entry(g.relink(rng.choice(links), to=rng.choice(customers), at=at), "relink")
            elif kind == "merge":
                a, b = rng.sample(customers, 2)
                report.merge(g.merge(a, b, reason="crash test", at=at))
            elif kind == "split":
                merge_ids = sorted(g.profile(rng.choice(customers)).merge_ids)
                if merge_ids:
                    report.entry(g.split(rng.choice(merge_ids), at=at), "split")
            elif kind == "detach":
                report.entry(g.detach(rng.choice(customers), at=at), "detach")
            elif kind == "release":
                for link in g.frozen_links():
                    report.entry(g.release(link, at=at), "release")
            elif kind == "record":
                event = purchase(f"s{seed}-{step}", at, rng.choice(customers), None)
                g.record(event)
                report.lines(f"E {event.id}")
            elif kind == "record_many":
                events = [
                    purchase(
                        f"s{seed}-{step}-{i}",
                        at + timedelta(minutes=i),
                        None if i % 2 else rng.choice(customers),
                        rng.choice(links) if i % 2 else None,
                    )
                    for i in range(rng.randrange(10, 70))
                ]
                g.record_many(events)  # several transactions of 20
                report.lines(*(f"E {event.id}" for event in events))
            else:
                report.lines(f"S {step}")  # a checkpoint starts: a kill may land in it
                report.lines(f"C {g.checkpoint()}")
        except StoreError:
            raise
        except IdentityGraphError:
            pass  # a refused call (unknown customer, guard…): its refusal is stored


# ------------------------------------------------------------------ contend


def contend(
    target: str, worker: int, ops: int, seed: int, report_path: str, pause: float = 0.0
) -> None:
    """Merges of the same customers in opposite orders, relinks of the same
    links, splits and events, against other workers on the same store."""
    rng = random.Random(seed * 1000 + worker)
    report = Report(report_path)
    say("IMPORTED")
    g = IdentityGraph.open(target)
    say("READY")
    wait_for_go()
    customers = [f"c{i}" for i in range(12)]
    links = [Link("email", f"shared{i}@example.com") for i in range(6)]
    links += [Link("loyalty_card", f"90{i:03d}") for i in range(4)]
    refused = 0
    for step in range(ops):
        # A little work between calls, as a real process has: without it one
        # SQLite writer re-takes the lock before the sleeping ones wake up.
        time.sleep(rng.random() * pause)
        at = T0 + timedelta(days=rng.randrange(200), seconds=rng.randrange(86400))
        roll = rng.random()
        try:
            if roll < 0.30:
                # The same pairs, in opposite orders in even and odd workers.
                a, b = customers[rng.randrange(6)], customers[6 + rng.randrange(6)]
                if worker % 2:
                    a, b = b, a
                report.merge(g.merge(a, b, reason=f"w{worker}", at=at))
            elif roll < 0.55:
                link = rng.choice(links)
                report.entry(g.relink(link, to=rng.choice(customers), at=at), "relink")
            elif roll < 0.65:
                report.entry(
                    g.link(rng.choice(customers), rng.choice(links), at=at),
                    "link",
                )
            elif roll < 0.80:
                merge_ids = sorted(g.profile(rng.choice(customers)).merge_ids)
                if merge_ids:
                    report.entry(g.split(rng.choice(merge_ids), at=at), "split")
            elif roll < 0.95:
                # Own ids, and shared ids with identical content in every worker.
                event_id = f"w{worker}-{step}" if rng.random() < 0.7 else f"shared-{step % 25}"
                day = T0 + timedelta(days=int(event_id.rsplit("-", 1)[1]) % 200)
                customer = customers[int(event_id.rsplit("-", 1)[1]) % len(customers)]
                g.record(purchase(event_id, day, customer, None))
                report.lines(f"E {event_id}")
            else:
                report.entry(g.detach(rng.choice(customers), at=at), "detach")
        except StoreError:
            raise
        except IdentityGraphError:
            refused += 1
    report.lines("X " + json.dumps({"worker": worker, "refused": refused}))
    g.close()


def register_all(target: str) -> None:
    """Register the customers ``contend`` works on (run once, before the workers)."""
    g = IdentityGraph.open(target)
    for i in range(12):
        g.register(f"c{i}", at=T0)
    g.close()


# ------------------------------------------------------------------- create


def create(target: str, worker: int, report_path: str) -> None:
    report = Report(report_path)
    say("IMPORTED")
    wait_for_go()
    g = IdentityGraph.open(target)
    report.entry(g.link(f"new{worker}", Link("email", f"new{worker}@example.com"), at=T0), "link")
    g.close()


# ----------------------------------------------------------------- fulldisk


def fulldisk(path: str, limit: int, mode: str) -> None:
    """Write under an ``RLIMIT_FSIZE`` of ``limit`` bytes until a write fails,
    then check the graph object still reads and equals the store.

    ``mode`` ``mixed``: links, merges and ``record_many`` calls; ``events``:
    only ``record_many`` calls of 120 events (3 transactions each).  The
    report goes to stdout: a pipe is not limited by ``RLIMIT_FSIZE``."""
    report = Report("-")
    g = IdentityGraph.open(path, batch_size=50)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    customers: list[str] = []
    error: StoreError | None = None
    step = 0
    try:
        while step < 100_000:
            step += 1
            at = T0 + timedelta(minutes=step)
            if mode == "events" or (step % 7 == 0 and customers):
                events = [
                    purchase(f"f{step}-{i}", at, customers[0] if customers else None, None)
                    if customers and i % 2
                    else purchase(f"f{step}-{i}", at, None, Link("email", f"e{i}@example.com"))
                    for i in range(120)
                ]
                g.record_many(events)
                report.lines(*(f"E {event.id}" for event in events))
            elif step % 5 == 0 and len(customers) > 1:
                report.merge(g.merge(customers[-1], customers[-2], at=at))
            else:
                customer = f"c{step}"
                link = Link("email", f"{customer}@example.com")
                report.entry(g.link(customer, link, at=at), "link")
                customers.append(customer)
    except StoreError as caught:
        error = caught
    result: dict[str, Any] = {"steps": step, "error": None if error is None else str(error)}
    if error is not None:
        result["error_type"] = type(error).__name__
        result["cause"] = type(error.__cause__).__name__
        # The object still reads, and what it reads is what the store holds.
        result["customers"] = len(g.customers())
        result["journal"] = len(list(g.journal()))
        other = IdentityGraph.open(path)
        result["equals_store"] = g == other
        result["equals_replay"] = g._state() == IdentityGraph.from_journal(g.journal())._state()
        other.close()
        # A further write fails the same way or, if it is small enough to
        # fit under the limit, is stored.
        try:
            report.entry(g.link("late", Link("email", "late@example.com"), at=T0), "link")
            result["late"] = "returned"
        except StoreError as late:
            result["late"] = type(late).__name__
    report.lines("X " + json.dumps(result))
    g.close()


def readonly(path: str, uid: int, read_only: bool) -> None:
    """Open a store this process may read but not write; try every kind of write.

    Root writes to any file whatever its mode, so a root worker first loads
    what it needs (the interpreter lives under /root, which the other user
    cannot read) and then becomes ``uid``.  ``read_only`` opens with the
    store's own ``read_only=True`` (SQLite ``mode=ro``) instead."""
    if uid >= 0:
        import identity_graph.kpis
        import identity_graph.session
        import identity_graph.stores.sqlite  # noqa: F401

        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    g = IdentityGraph.open(path, read_only=True) if read_only else IdentityGraph.open(path)
    before = g._state()
    result: dict[str, Any] = {"uid": os.getuid(), "customers": g.customers()}
    attempts = {
        "link": lambda: g.link("c9", Link("email", "c9@example.com"), at=T0),
        "merge": lambda: g.merge("c1", "c2", at=T0),
        "record": lambda: g.record(purchase("ro-1", T0, "c1", None)),
        "record_many": lambda: g.record_many(
            [purchase(f"ro-{i}", T0, "c1", None) for i in range(3)]
        ),
        "checkpoint": g.checkpoint,
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            result[name] = "returned"
        except StoreError as error:
            result[name] = f"{type(error).__name__}: {error}"
    # Reads still work and see what they saw before.
    result["unchanged"] = g._state() == before
    result["resolve"] = g.resolve(Link("email", "c2@example.com"))
    result["events"] = len(g.events("c1"))
    g.close()
    Report("-").lines("X " + json.dumps(result))


# ------------------------------------------------------------------ erasure


#: The people ``eraser`` forgets, and the texts only each of them holds.
def gone_texts(person: str) -> list[str]:
    number = person.rsplit("-", 1)[1]
    return [person, f"Gonename{number}x", f"gone{number}.person@", f"ev-gone-{number}-"]


def add_gone_person(g: IdentityGraph, person: str, at: datetime) -> None:
    """A person ``eraser`` forgets: attributes, an email, events."""
    number = person.rsplit("-", 1)[1]
    g.register(person, {"first_name": f"Gonename{number}x"}, at=at)
    g.link(person, Link("email", f"gone{number}.person@erase.example"), at=at)
    for i in range(3):
        g.record(purchase(f"ev-gone-{number}-{i}", at + timedelta(minutes=i), person, None))


def served(g: IdentityGraph) -> str:
    """Everything the graph serves, as one text."""
    parts: list[object] = [sorted(g.customers()), list(g.journal()), g.refusals()]
    for profile in sorted(g.profiles(), key=lambda p: p.id):
        parts.extend((profile, g.events(profile.id)))
    return repr(parts)


def digest(g: IdentityGraph) -> str:
    """A hash of the graph's state and of what it serves (equal graphs, in
    any process, have equal digests)."""
    return hashlib.sha256((repr(g._state()) + served(g)).encode()).hexdigest()


def check_no_erased(g: IdentityGraph, people: list[str]) -> None:
    """Fail if the graph serves a value of someone it knows was erased."""
    # In one transaction: the reads see one state of the store (between two
    # separate reads the other process may forget a profile just listed).
    with g.batch():
        erased = [person for person in people if g.suppressed(person)]
        text = served(g)
    for person in erased:
        found = [value for value in gone_texts(person) if value in text]
        if found:
            raise AssertionError(f"{person} was erased, but the graph serves {found}")


def final(g: IdentityGraph, report: Report, extra: dict[str, Any]) -> None:
    say("DONE")
    wait_for_go()
    g.customers()  # catch up with the other process's last calls
    extra["digest"] = digest(g)
    report.lines("X " + json.dumps(extra))
    g.close()


def forget_one(path: str, person: str) -> None:
    """Forget one person (the parent kills this process at a random moment)."""
    say("IMPORTED")
    wait_for_go()
    g = IdentityGraph.open(path)
    say("READY")
    g.forget(person, at=T0 + timedelta(days=400), reason="crash test")
    say("FORGOTTEN")
    g.close()
    time.sleep(60)  # the parent kills it


def eraser(target: str, people: list[str], report_path: str) -> None:
    """Forget ``people`` one by one while another process writes."""
    report = Report(report_path)
    rng = random.Random(len(people))
    say("IMPORTED")
    g = IdentityGraph.open(target)
    say("READY")
    wait_for_go()
    # The other process writes first (on a loaded machine its start can
    # take longer than a sleep), so the erasures fall among its writes.
    start = len(g.state.journal)
    deadline = time.monotonic() + 30
    while len(g.state.journal) < start + 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    for step, person in enumerate(people):
        time.sleep(0.05 + rng.random() * 0.1)
        g.forget(person, at=T0 + timedelta(days=300 + step), reason="two writers")
        report.lines(f"F {person}")
        check_no_erased(g, people)
    final(g, report, {"worker": "eraser"})


def busy(target: str, ops: int, seed: int, people: list[str], report_path: str) -> None:
    """Links, relinks, merges, events and reads on customers other than
    ``people``, while ``eraser`` forgets them (at least ``ops`` calls, and
    until every one is erased); every few calls, check that
    nothing of a person this process knows was erased is served."""
    rng = random.Random(seed)
    report = Report(report_path)
    say("IMPORTED")
    g = IdentityGraph.open(target)
    say("READY")
    wait_for_go()
    customers = [f"b{i}" for i in range(10)]
    links = [Link("email", f"busy{i}@keep.example") for i in range(8)]
    checks = 0
    deadline = time.monotonic() + 90
    for step in itertools.count():
        # At least ops calls, and on until every erasure is seen, so the
        # calls come before, between and after them.
        if step >= ops and (all(map(g.suppressed, people)) or time.monotonic() > deadline):
            break
        time.sleep(rng.random() * 0.004)  # SQLite: let the other writer take turns
        at = T0 + timedelta(days=rng.randrange(200), seconds=rng.randrange(86400))
        roll = rng.random()
        try:
            if roll < 0.3:
                report.entry(g.link(rng.choice(customers), rng.choice(links), at=at), "link")
            elif roll < 0.45:
                report.entry(g.relink(rng.choice(links), to=rng.choice(customers), at=at), "relink")
            elif roll < 0.55:
                a, b = rng.sample(customers, 2)
                report.merge(g.merge(a, b, reason="busy", at=at))
            elif roll < 0.8:
                event_id = f"busy-{seed}-{step}"
                g.record(purchase(event_id, at, rng.choice(customers), None))
                report.lines(f"E {event_id}")
            else:
                g.events(rng.choice(customers))
                g.profile(rng.choice(customers))
        except StoreError:
            raise
        except IdentityGraphError:
            pass
        if step % 10 == 0:
            check_no_erased(g, people)
            checks += 1
    check_no_erased(g, people)
    final(g, report, {"worker": "busy", "checks": checks})


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "crash":
        crash(args[0], int(args[1]), args[2])
    elif mode == "contend":
        contend(args[0], int(args[1]), int(args[2]), int(args[3]), args[4], float(args[5]))
    elif mode == "register":
        register_all(args[0])
    elif mode == "create":
        create(args[0], int(args[1]), args[2])
    elif mode == "fulldisk":
        fulldisk(args[0], int(args[1]), args[2])
    elif mode == "readonly":
        readonly(args[0], int(args[1]), args[2] == "read_only")
    elif mode == "forget":
        forget_one(args[0], args[1])
    elif mode == "eraser":
        eraser(args[0], args[1].split(","), args[2])
    elif mode == "busy":
        busy(args[0], int(args[1]), int(args[2]), args[3].split(","), args[4])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
