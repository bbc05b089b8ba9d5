"""Scale-out benchmark: SMTP intake of one daemon on SQLite, one on PostgreSQL and two on
one PostgreSQL database, in the same run, on the same corpus, with the same K clients.

Each daemon is ``mailticket.runtime.daemon.serve`` in a spawned child process of its own (as
``mailticket serve`` runs), with a fresh database (a new PostgreSQL schema per
configuration, migrated before the daemons start) and its own maildir outbox. With two
daemons, connection j talks to daemon j mod 2. mails/s = mails answered 250 / wall time
from the moment every connection has said EHLO; a run counts only if the database then
holds every mail once. The ratios to the SQLite daemon are what to compare across runs.

    .venv/bin/python bench/scale.py --mails 1000 --connections 8 [--postgres URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from mailticket import store

sys.path.append(str(Path(__file__).resolve().parent))  # after the stdlib: bench/intake.py
import intake  # shared bench helpers: corpus, servers, SMTP senders, snapshot

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
APPLICATION = "mailticket-scale-bench"  # marks this run's PostgreSQL backends


@dataclass(frozen=True)
class Setup:
    key: str
    label: str
    daemons: int
    postgres: bool


SETUPS = (
    Setup("sqlite-1", "1 daemon, SQLite", 1, postgres=False),
    Setup("pg-1", "1 daemon, PostgreSQL", 1, postgres=True),
    Setup("pg-2", "2 daemons, one PostgreSQL", 2, postgres=True),
)


def split_load(ports: Sequence[int], mails: Sequence[bytes], k: int) -> intake.Run:
    """K connections share the mails round-robin; connection j talks to ports[j % n]."""
    start = intake.Start()
    barrier = threading.Barrier(k, action=start.mark)
    with ThreadPoolExecutor(k) as pool:
        futures = [
            pool.submit(intake.send_share, ports[j % len(ports)], mails[j::k], None, barrier, start)
            for j in range(k)
        ]
        results = [future.result() for future in futures]
    samples = [sample for share, _ in results for sample in share]
    good = [sample for sample in samples if sample.ok]
    run = intake.Run("", "", k, len(mails), max(end for _, end in results) - start.at)
    run.latencies = [sample.latency for sample in good]
    run.errors = len(samples) - len(good)
    return run


@contextlib.contextmanager
def database(setup: Setup, workdir: Path, postgres: str) -> Iterator[str]:
    """A fresh database for one configuration, migrated once before any daemon starts."""
    if not setup.postgres:
        yield intake.sqlite_url(workdir)
        return
    separator = "&" if "?" in postgres else "?"
    with intake.postgres_schema(f"{postgres}{separator}application_name={APPLICATION}") as url:
        engine = create_engine(url)
        try:
            store.upgrade(engine)
        finally:
            engine.dispose()
        yield url


def measure(
    setup: Setup, corpus: intake.Corpus, k: int, workdir: Path, postgres: str
) -> intake.Run:
    workdir.mkdir(parents=True)
    with database(setup, workdir, postgres) as url, contextlib.ExitStack() as stack:
        configs = [
            intake.write_settings(workdir / f"daemon-{n}", url, "note")
            for n in range(setup.daemons)
        ]
        servers = [
            stack.enter_context(intake.running_server(intake.ServerSpec("mailticket", config)))
            for config in configs
        ]
        backend_url = url if setup.postgres else None
        started = Usage.now(backend_url)
        run = split_load([server.port for server in servers], corpus.mails, k)
        busy = Usage.now(backend_url).since(started, run.seconds)["machine_busy_cores"]
        drained = wait_until_sent(url) + run.seconds
        run.extra |= Usage.now(backend_url).since(started, drained)
        run.extra |= {"machine_busy_cores": busy, "drained_s": round(drained, 2)}
        stack.close()  # stop the daemons; each reports what the database holds
        run.extra["database"] = servers[0].stats  # stopped last: the final counts
    run.key, run.label = f"{setup.key}-k{k}", setup.label
    stored = sum(run.extra["database"]["inbound"].values())
    run.extra["stored"] = stored
    if stored != len(corpus.mails) - run.errors:
        raise SystemExit(f"{run.key}: {stored} mails stored, {len(corpus.mails)} sent")
    return run


def wait_until_sent(url: str, patience: float = 600.0) -> float:
    """Seconds until the outbox holds nothing pending: every answer handed to a maildir."""
    engine = create_engine(url)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < patience:
            with engine.connect() as connection:
                pending = connection.execute(PENDING).scalar_one()
            if not pending:
                return time.perf_counter() - started
            time.sleep(0.1)
        raise SystemExit(f"{pending} outbox rows still pending after {patience:.0f} s")
    finally:
        engine.dispose()


PENDING = text("SELECT count(*) FROM outbox WHERE state = 'pending'")


@dataclass(frozen=True)
class Usage:
    """CPU seconds so far (Linux /proc): the whole machine, this process's descendants
    (the daemons and their parser workers), this run's PostgreSQL backends by pid."""

    machine: float
    daemons: float
    backends: dict[int, float]

    @classmethod
    def now(cls, url: str | None) -> Usage:
        fields = [int(v) for v in Path("/proc/stat").read_text().split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / TICK  # all but idle and iowait
        return cls(busy, sum(descendants().values()), backends(url) if url else {})

    def since(self, start: Usage, seconds: float) -> dict[str, float]:
        """The window's figures; a backend that started meanwhile counts from zero."""
        spent = {"daemons_cpu_s": round(self.daemons - start.daemons, 2)}
        if self.backends:
            used = sum(cpu - start.backends.get(pid, 0.0) for pid, cpu in self.backends.items())
            spent["postgres_cpu_s"] = round(used, 2)
        spent["machine_busy_cores"] = round((self.machine - start.machine) / seconds, 2)
        return spent


TICK = os.sysconf("SC_CLK_TCK")


def process_stats() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) of every process we may read."""
    found: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    return found


def descendants() -> dict[int, float]:
    """CPU seconds of every process below this one."""
    stats = process_stats()
    mine, frontier = {}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, cpu) in stats.items():
            if ppid == parent and pid not in mine:
                mine[pid] = cpu
                frontier.append(pid)
    return mine


def backends(url: str) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends marked with this run's application_name."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            pids = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": APPLICATION},
            ).scalars()
            stats = process_stats()
            return {pid: stats[pid][1] for pid in pids if pid in stats}
    finally:
        engine.dispose()


def cpu_line(run: intake.Run) -> str:
    """Until every answer was sent: mails/s, and CPU per mail of the daemons (with their
    parser workers) and of their PostgreSQL backends; cores busy while the clients sent."""
    stored = max(run.extra["stored"], 1)
    daemons = run.extra["daemons_cpu_s"] * 1000 / stored
    postgres = run.extra.get("postgres_cpu_s")
    server = f", postgres {postgres * 1000 / stored:.1f} ms" if postgres is not None else ""
    return (
        f"until all answers sent: {stored / run.extra['drained_s']:.1f} mails/s; cpu per mail: "
        f"daemons {daemons:.1f} ms{server}; machine busy {run.extra['machine_busy_cores']:.2f} cores"
    )


def ratios(runs: Sequence[intake.Run]) -> dict[str, float]:
    """Each run over the SQLite daemon with the same K and round: mails/s answered 250
    ("accepted") and mails/s until every answer was sent ("sent")."""
    base = {(run.k, run.extra["round"]): run for run in runs if run.key.startswith("sqlite-1")}
    found: dict[str, float] = {}
    for run in runs:
        reference = base.get((run.k, run.extra["round"]))
        if reference is None or reference is run:
            continue
        name = f"{run.key}/sqlite-1 round {run.extra['round']}"
        found[f"{name} accepted"] = round(run.rate / reference.rate, 2)
        found[f"{name} sent"] = round(reference.extra["drained_s"] / run.extra["drained_s"], 2)
    return found


def write_results(
    runs: Sequence[intake.Run], args: argparse.Namespace, began: datetime, facts: dict[str, Any]
) -> Path:
    document = {
        "started": began.isoformat(timespec="seconds"),
        "loadavg_at_end": os.getloadavg(),
        "options": {k: v for k, v in vars(args).items() if k != "postgres"},
        "environment": facts,
        "runs": [run.summary() for run in runs],
        "ratios": ratios(runs),
    }
    intake.RESULTS.mkdir(parents=True, exist_ok=True)
    path = intake.RESULTS / f"scale-{began:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=1000, help="corpus size (default 1000)")
    parser.add_argument("--corpus", type=Path, help="an existing corpus directory (eml/)")
    parser.add_argument("--corpus-script", type=Path, default=intake.CORPUS_SCRIPT)
    parser.add_argument("--connections", type=int, nargs="+", default=[8], help="K values")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the three setups")
    parser.add_argument("--postgres", metavar="URL", default=PG_URL)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    intake.add_snapshot_option(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if (code := intake.rerun_on_snapshot(args, Path(__file__), argv)) is not None:
        return code
    began = datetime.now().astimezone()
    workdir = Path(tempfile.mkdtemp(prefix="mailticket-scale-"))
    try:
        corpus = intake.prepare_corpus(args.corpus, args.mails, workdir, args.corpus_script)
        facts = intake.environment_facts(corpus)
        print(f"corpus: {len(corpus.mails)} mails; work directory: {workdir}")
        print(intake.HEADER, flush=True)
        runs: list[intake.Run] = []
        for round_ in range(1, args.rounds + 1):
            for k in args.connections:
                for setup in SETUPS:
                    where = workdir / f"r{round_}-{setup.key}-k{k}"
                    run = measure(setup, corpus, k, where, args.postgres)
                    run.extra["round"] = round_
                    runs.append(run)
                    print(intake.format_row(run), flush=True)
                    print(f"{'':<4}{cpu_line(run)}", flush=True)
        print("\nratios (mails/s):")
        for name, value in ratios(runs).items():
            print(f"  {name:<34} {value:5.2f}")
        print(f"\nresults: {write_results(runs, args, began, facts)}")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
