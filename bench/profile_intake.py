"""Where mailticket's intake spends its time (py-spy is not in .venv, so cProfile).

Three views of the same corpus, each on a fresh SQLite database:

  submit  cProfile (wall clock) around ``Intake.submit(raw, "smtp")`` in-process, one mail
          after the other: the work per mail with nothing around it;
  import  the same around ``import_mailbox(..., notify=False)`` of the corpus mbox;
  daemon  the real daemon fed by K SMTP connections (``bench/intake.py``'s load), one
          profiler per thread (event loop, the threads that run intake and the outbox
          worker's database work), merged. ``--clock cpu`` counts each thread's CPU time only;
          ``--clock wall`` also counts waiting (SQLite's busy handler, the GIL, sockets).

    .venv/bin/python bench/profile_intake.py --mails 2000 [--view submit import daemon]
    .venv/bin/python bench/profile_intake.py --report bench/results/profile-*.pstats

Prints the stage breakdown and the top entries by cumulative and by own time, and writes
``bench/results/profile-<view>-<timestamp>.pstats`` for ``python -m pstats``. Profiling
slows Python code more than C code (SQLite, socket I/O): read shares, not absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import pstats
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

# Run with -P (bench/calendar.py must not shadow the standard library): bench/ goes on
# sys.path after the standard library, for `intake` here and in the spawned servers.
sys.path.append(str(Path(__file__).resolve().parent))

from intake import (
    CORPUS_SCRIPT,
    RESULTS,
    Corpus,
    ServerSpec,
    add_snapshot_option,
    format_row,
    mailticket_core,
    prepare_corpus,
    reporting_errors,
    rerun_on_snapshot,
    running_server,
    serve_child,
    smtp_load,
    source_description,
    sqlite_url,
    write_settings,
)

from mailticket.inbound.bulk_import import import_mailbox
from mailticket.runtime.core import Core

# Inclusive times of these functions (they nest, so shares overlap): (label, file, function).
STAGES = [
    ("Intake.submit_many (all intake work)", "mailticket/intake.py", "submit_many"),
    ("  wait for the parser pool (arrival)", "mailticket/intake.py", "arrival"),
    ("  one mail in the transaction (_store)", "mailticket/intake.py", "_store"),
    ("    decide (threads, guards, rules)", "mailticket/decision.py", "decide"),
    ("    store inbound (raw + key)", "mailticket/tickets.py", "store_inbound"),
    ("    open ticket", "mailticket/tickets.py", "open_ticket"),
    ("    add message", "mailticket/tickets.py", "add_message"),
    ("    event log rows", "mailticket/tickets.py", "add_events"),
    ("    answers: Answers.outgoing", "mailticket/answers.py", "outgoing"),
    ("      template render (jinja2)", "mailticket/notices.py", "render"),
    ("      MIME compose", "mailticket/notices.py", "compose"),
    ("  group commit (batch.run_batch)", "mailticket/batch.py", "run_batch"),
    ("  BEGIN IMMEDIATE (write lock wait)", "mailticket/store.py", "_sqlite_begin_immediate"),
    ("sqlite3 execute (driver)", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("sqlite3 commit (driver)", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("logging (Logger._log)", "logging/__init__.py", "_log"),
    ("aiosmtpd session (_handle_client)", "aiosmtpd/smtp.py", "_handle_client"),
    ("outbox worker: claim", "mailticket/outbox.py", "claim"),
    ("outbox worker: record outcome", "mailticket/outbox.py", "_record_on"),
    ("outbox worker: maildir write", "mailticket/transport.py", "_store"),
]


# -- views 1 and 2: in-process, one thread ---------------------------------------------------


def profile_inprocess(workdir: Path, work: Callable[[Core], object]) -> pstats.Stats:
    """cProfile around ``work`` only: building the core and the schema stay outside."""
    config = write_settings(workdir, sqlite_url(workdir), "note")
    with mailticket_core(config) as core:
        profiler = cProfile.Profile()
        profiler.enable()
        work(core)
        profiler.disable()
    return pstats.Stats(profiler)


def submit_all(corpus: Corpus) -> Callable[[Core], object]:
    """The intake's own work, mail after mail, with the same source and notify as SMTP."""
    return lambda core: [core.intake.submit(raw, "smtp") for raw in corpus.mails]


def import_all(corpus: Corpus) -> Callable[[Core], object]:
    """``import`` of the mbox without notifications: what the import target is about."""
    return lambda core: import_mailbox(core.intake, corpus.mbox, notify=False)


# -- view 3: the daemon under SMTP load, every thread profiled ------------------------------


class ThreadProfiles:
    """One profiler per thread, started in that thread (cProfile sees only its own thread)."""

    def __init__(self, clock: str) -> None:
        self._clock = clock
        self._profilers: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        profiler = (
            cProfile.Profile(time.thread_time) if self._clock == "cpu" else cProfile.Profile()
        )
        with self._lock:
            self._profilers.append(profiler)
        profiler.enable()

    def bootstrap(self, frame: object, event: str, arg: object) -> None:
        """For threading.setprofile: a new thread's first event starts its own profiler,
        which replaces this hook. Covers every executor (default, SQLite writer, to_thread)."""
        self.start()

    def stats(self) -> pstats.Stats:
        first, *rest = self._profilers
        merged = pstats.Stats(first)
        for profiler in rest:
            merged.add(profiler)
        return merged


def profiled_server(spec: ServerSpec, conn: Connection, *, output: Path, clock: str) -> None:
    """Child process entry: the daemon with its loop and executor threads profiled."""
    profiles = ThreadProfiles(clock)
    with reporting_errors(conn):
        asyncio.run(_profiled_daemon(spec, conn, profiles))
    profiles.stats().dump_stats(output)  # before exit: the parent reads it after join


async def _profiled_daemon(spec: ServerSpec, conn: Connection, profiles: ThreadProfiles) -> None:
    threading.setprofile(profiles.bootstrap)  # every thread the daemon starts from now on
    profiles.start()  # this one: the event loop
    await serve_child(spec, conn)


def profile_daemon(corpus: Corpus, workdir: Path, k: int, clock: str, output: Path) -> pstats.Stats:
    config = write_settings(workdir, sqlite_url(workdir), "note")
    target = functools.partial(profiled_server, output=output, clock=clock)
    with running_server(ServerSpec("mailticket", config), target) as server:
        run = smtp_load(server.port, corpus.mails, k)
    run.label = f"(c) under profiler, clock={clock}"
    print(format_row(run))
    return pstats.Stats(str(output))


# -- reporting ---------------------------------------------------------------------------------


def stage_times(stats: pstats.Stats) -> list[tuple[str, float, int]]:
    """(label, inclusive seconds, calls) per stage; a stage absent from the profile is 0."""
    table = stats.stats  # type: ignore[attr-defined]
    rows = []
    for label, filename, function in STAGES:
        seconds, calls = 0.0, 0
        for (file, _line, name), (_cc, nc, _tt, ct, _callers) in table.items():
            if name == function and file.endswith(filename):
                seconds, calls = seconds + ct, calls + nc
        rows.append((label, seconds, calls))
    return rows


# Own time by where the code lives (no overlap: the shares add up to 100 %).
PACKAGES = [
    ("sqlite3 driver (C)", ("sqlite3.",)),
    ("SQLAlchemy", ("/sqlalchemy/",)),
    ("SQLModel + pydantic", ("/sqlmodel/", "/pydantic")),
    ("email (stdlib)", ("/email/",)),
    ("jinja2 + markupsafe", ("/jinja2/", "/markupsafe/")),
    ("aiosmtpd", ("/aiosmtpd/",)),
    ("asyncio", ("/asyncio/",)),
    ("logging", ("/logging/",)),
    ("mailbox (stdlib)", ("/mailbox.py",)),
    ("mailticket", ("/mailticket/",)),
]


def package_of(file: str, name: str) -> str:
    """Where a profile entry's own time belongs; C functions by the object they belong to."""
    where = name if file == "~" else file
    for label, markers in PACKAGES:
        if any(marker in where for marker in markers):
            return label
    return "C builtins (str, bytes, ...)" if file == "~" else "other Python (stdlib, ...)"


def package_times(stats: pstats.Stats) -> dict[str, float]:
    totals: dict[str, float] = {}
    table = stats.stats  # type: ignore[attr-defined]
    for (file, _line, name), (_cc, _nc, own, _ct, _callers) in table.items():
        label = package_of(file, name)
        totals[label] = totals.get(label, 0.0) + own
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def print_report(title: str, stats: pstats.Stats, top: int) -> None:
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n=== {title}: {total:.2f} s profiled (all threads) ===")
    print(f"{'stage (inclusive, overlapping)':<40} {'seconds':>8} {'share':>6} {'calls':>8}")
    for label, seconds, calls in stage_times(stats):
        print(f"{label:<40} {seconds:8.2f} {seconds / total:6.1%} {calls:8d}")
    print(f"\n{'own time by package (adds up)':<40} {'seconds':>8} {'share':>6}")
    for label, seconds in package_times(stats).items():
        print(f"{label:<40} {seconds:8.2f} {seconds / total:6.1%}")
    stats.strip_dirs()
    for order in ("cumulative", "tottime"):
        print(f"\n--- top {top} by {order} ---")
        stats.sort_stats(order).print_stats(top)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--corpus", type=Path, help="an existing corpus directory")
    parser.add_argument("--corpus-script", type=Path, default=CORPUS_SCRIPT)
    parser.add_argument(
        "--view",
        nargs="+",
        choices=["submit", "import", "daemon"],
        default=["submit", "import", "daemon"],
    )
    parser.add_argument("--connections", type=int, default=8, help="K for the daemon view")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="daemon view")
    parser.add_argument("--top", type=int, default=25)
    add_snapshot_option(parser)
    parser.add_argument(
        "--report", type=Path, nargs="+", metavar="PSTATS", help="only print saved profiles"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        for path in args.report:
            print_report(path.name, pstats.Stats(str(path)), args.top)
        return 0
    if (code := rerun_on_snapshot(args, Path(__file__), argv)) is not None:
        return code
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    workdir = Path(tempfile.mkdtemp(prefix="mailticket-profile-"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        corpus = prepare_corpus(args.corpus, args.mails, workdir, args.corpus_script)
        print(f"source: {source_description()}")
        count = len(corpus.mails)
        for view, work, title in (
            ("submit", submit_all(corpus), f"Intake.submit in-process, {count} mails"),
            ("import", import_all(corpus), f"import_mailbox (notify=False), {count} mails"),
        ):
            if view in args.view:
                stats = profile_inprocess(workdir / view, work)
                stats.dump_stats(RESULTS / f"profile-{view}-{stamp}.pstats")
                print_report(title, stats, args.top)
        if "daemon" in args.view:
            output = RESULTS / f"profile-daemon-k{args.connections}-{args.clock}-{stamp}.pstats"
            stats = profile_daemon(corpus, workdir / "daemon", args.connections, args.clock, output)
            title = f"daemon, K={args.connections}, clock={args.clock}, {count} mails"
            print_report(title, stats, args.top)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
