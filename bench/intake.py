"""Intake benchmark: how fast mailticket takes mail in, next to the floors of its own stack.

One run generates (or reads) the shared corpus and sends the same mails through:

  (a) a bare aiosmtpd server answering 250 without looking at the mail (network floor);
  (b) aiosmtpd parsing each mail with the standard library (the stack's parse floor);
  (c) the real daemon (``mailticket.runtime.daemon.serve``) on a fresh SQLite database, with K
      parallel SMTP connections, plus a paced run at a fixed rate for latency;
  (d) ``import`` (in-process and CLI), ``ingest`` (CLI, on a subset) and
      ``Intake.submit`` in-process.

Every server runs in a child process of its own (its own GIL, as ``mailticket serve``
does in production) while the SMTP clients run as threads here; every configuration
gets a fresh database so runs are independent. Absolute numbers depend on the machine;
the ratios to the floors are what to compare across changes.

    .venv/bin/python bench/intake.py --mails 2000 [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import hashlib
import json
import logging
import mailbox
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

import mailticket
from mailticket.inbound.bulk_import import import_mailbox
from mailticket.ops.logs import configure as configure_logging
from mailticket.runtime.core import Core, build_core
from mailticket.runtime.daemon import serve
from mailticket.settings import Settings, load_settings
from mailticket.store.models import Inbound, Outbox, Ticket

ROOT = Path(__file__).resolve().parents[1]
CORPUS_SCRIPT = ROOT.parent / "shared" / "bench" / "corpus.py"
RESULTS = ROOT / "bench" / "results"
SNAPSHOT_ENV = "BENCH_MAILTICKET_SNAPSHOT"
SOURCE = Path(os.environ.get(SNAPSHOT_ENV) or ROOT)  # mailticket/, templates/, rules.yaml
TAG_FORMAT = "[MT-{n}]"  # the corpus numbers threads as mailticket numbers tickets
SUPPORT = "support@bench.example"  # the corpus writes To: support@bench.example
SENDER = "customer@bench.example"
WARM_AFTER = 1.0  # seconds into an SMTP run
TARGETS = {"smtp_k8_over_parse_k8": 0.60, "import_mails_per_s": 400.0, "paced_p99_ms": 50.0}


# -- corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    directory: Path
    mbox: Path
    files: list[Path]
    mails: list[bytes]  # CRLF wire form, as SMTP carries them
    summary: dict[str, Any]


def prepare_corpus(directory: Path | None, count: int, workdir: Path, script: Path) -> Corpus:
    """Generate the corpus into the work directory unless one is given (then reuse it)."""
    if directory is None:
        directory = workdir / "corpus"
        command = [sys.executable, str(script), "--n", str(count), "--out", str(directory)]
        subprocess.run([*command, "--tag-format", TAG_FORMAT], check=True, capture_output=True)
    files = sorted((directory / "eml").glob("*.eml"))[:count]
    if not files:
        raise SystemExit(f"{directory}: no eml/*.eml (run {script} --out {directory})")
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    mails = [crlf(path.read_bytes()) for path in files]
    mbox = directory / "corpus.mbox"
    if manifest["summary"]["messages"] != len(mails):  # a larger corpus than asked for
        mbox = write_mbox(mails, workdir / f"corpus-{len(mails)}.mbox")
    return Corpus(directory, mbox, files, mails, manifest["summary"])


def write_mbox(mails: Sequence[bytes], path: Path) -> Path:
    """The selected mails only, as an mbox (LF line ends, >From quoting) for ``import``."""
    box = mailbox.mbox(path, create=True)
    try:
        for raw in mails:
            box.add(raw.replace(b"\r\n", b"\n"))
        box.flush()
    finally:
        box.close()
    return path


def crlf(raw: bytes) -> bytes:
    """CRLF line ends: smtplib sends bytes as they are, and SMTP requires CRLF."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def parse_and_touch(raw: bytes) -> int:
    """The standard library's parse of a mail plus its body text: what any tracker must do."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("plain", "html"))
    return len(body.get_content()) if body is not None else 0  # type: ignore[attr-defined]


# -- results -------------------------------------------------------------------------------


@dataclass
class Run:
    """One measured configuration; latencies in seconds, per mail."""

    key: str
    label: str
    k: int | None
    mails: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return (self.mails - self.errors) / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "k": self.k,
            "mails": self.mails,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "mails_per_s": round(self.rate, 1),
            "latency_ms": latency_summary(self.latencies),
            **self.extra,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: an actual observed value, no interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_summary(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "p50": round(percentile(values, 50) * 1000, 2),
        "p99": round(percentile(values, 99) * 1000, 2),
        "max": round(max(values) * 1000, 2),
    }


# -- mailticket configuration -------------------------------------------------------------


def write_settings(workdir: Path, db_url: str, foreign_reply: str) -> Path:
    """A mailticket.toml of its own per run: fresh database, outbox maildir in workdir."""
    config: dict[str, dict[str, object]] = {
        "database": {"url": db_url},
        "smtp": {"host": "127.0.0.1", "port": 0},
        "outbound": {"transport": "maildir", "maildir": str(workdir / "outbox")},
        "tickets": {
            "support_address": SUPPORT,
            "rules_file": str(SOURCE / "rules.yaml"),
            "templates_dir": str(SOURCE / "templates"),
            "secret": "bench",
            # The corpus tags replies with the ordinal of their thread's request; a reply
            # from a non-participant opening a new ticket (the default) shifts every later
            # ticket number, and the remaining tags then point at the wrong tickets.
            "foreign_reply": foreign_reply,
        },
        "log": {"format": "text", "level": "INFO"},
    }
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "mailticket.toml"
    lines: list[str] = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sqlite_url(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mailticket.db'}"


def load(config: Path) -> Settings:
    return load_settings(config, environ={})  # MAILTICKET_* of the caller must not leak in


@contextlib.contextmanager
def logging_to(path: Path) -> Iterator[None]:
    """mailticket's own INFO logging, into a file: serve/ingest pay for it in production too."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    with path.open("a", encoding="utf-8") as stream:
        configure_logging("text", "INFO")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        try:
            yield
        finally:
            root.handlers[:], level = saved
            root.setLevel(level)


def database_counts(engine: Engine) -> dict[str, Any]:
    """What the run left behind: proof nothing was lost, and the mix of work done."""
    with engine.connect() as connection:
        inbound = dict(
            connection.execute(select(Inbound.state, func.count()).group_by(Inbound.state)).all()
        )
        outbox = dict(
            connection.execute(select(Outbox.state, func.count()).group_by(Outbox.state)).all()
        )
        tickets = connection.execute(select(func.count()).select_from(Ticket)).scalar_one()
    return {"inbound": inbound, "tickets": tickets, "outbox": outbox}


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema for one run (as tests/conftest.py does), dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- servers (each in a child process) ------------------------------------------------------


class FloorHandler:
    """(a): accept and forget; what aiosmtpd and the socket cost on their own."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


class ParseHandler:
    """(b): parse with the standard library and read the body, store nothing."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        parse_and_touch(envelope.original_content or b"")
        return "250 OK"


@dataclass(frozen=True)
class ServerSpec:
    kind: str  # "floor", "parse" or "mailticket"
    config: Path | None = None  # mailticket only: its toml, in the run's own directory


ServerMain = Callable[[ServerSpec, Connection], None]


def server_main(spec: ServerSpec, conn: Connection) -> None:
    """Child process entry: report ("ready", port), serve until told, report ("done", stats)."""
    with reporting_errors(conn):
        asyncio.run(serve_child(spec, conn))


@contextlib.contextmanager
def reporting_errors(conn: Connection) -> Iterator[None]:
    """A child that fails says why, so the parent raises at once instead of timing out."""
    try:
        yield
    except BaseException as exc:
        conn.send(("error", repr(exc)))
        raise


async def serve_child(spec: ServerSpec, conn: Connection) -> None:
    """Serve ``spec`` in the running loop until the parent says stop."""
    stop = asyncio.Event()
    _stop_on_message(conn, stop)
    if spec.kind == "mailticket":
        assert spec.config is not None
        with logging_to(spec.config.parent / "mailticket.log"):
            core = build_core(load(spec.config))
            await serve(core, stop=stop, ready=lambda ports: conn.send(("ready", ports["smtp"])))
        conn.send(("done", database_counts(core.engine)))
        core.close()
        return
    handler = FloorHandler() if spec.kind == "floor" else ParseHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, decode_data=False, enable_SMTPUTF8=True, hostname="bench"),
        "127.0.0.1",
        0,
    )
    conn.send(("ready", server.sockets[0].getsockname()[1]))
    await stop.wait()
    server.close()
    await server.wait_closed()
    conn.send(("done", {}))


def _stop_on_message(conn: Connection, stop: asyncio.Event) -> None:
    """Any message from the parent on the pipe means stop (read once, so the loop won't spin)."""
    loop = asyncio.get_running_loop()

    def readable() -> None:
        loop.remove_reader(conn.fileno())
        conn.recv()
        stop.set()

    loop.add_reader(conn.fileno(), readable)


@dataclass
class Server:
    port: int
    stats: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def running_server(spec: ServerSpec, target: ServerMain = server_main) -> Iterator[Server]:
    """Start the server in a fresh (spawned) process; on exit stop it and collect its stats."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(spec, child), name=spec.kind)
    process.start()
    try:
        server = Server(_expect(parent, process, "ready", 60))
        yield server
        parent.send("stop")
        server.stats = _expect(parent, process, "done", 120)
    finally:
        process.join(30)
        if process.is_alive():
            process.terminate()  # only our own child, and only if it hangs
            process.join(5)


def _expect(conn: Connection, process: BaseProcess, what: str, timeout: float) -> Any:
    """The child's next message, or an error as soon as it dies or the time is up."""
    ready = multiprocessing.connection.wait([conn, process.sentinel], timeout)
    if conn not in ready:
        why = f"exited with {process.exitcode}" if ready else f"timed out after {timeout:.0f}s"
        raise RuntimeError(f"server {process.name}: no {what!r}, {why}")
    kind, payload = conn.recv()
    if kind != what:
        raise RuntimeError(f"server: expected {what!r}, got {kind!r}: {payload}")
    return payload


# -- SMTP load --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    latency: float  # DATA sent -> 250 received
    late: float  # scheduled time -> 250 received (paced runs; else equal to latency)
    sent: float  # when DATA was sent, in seconds since the common start
    ok: bool


class Start:
    """The common start, taken once every connection has said EHLO (a barrier action)."""

    at = 0.0

    def mark(self) -> None:
        self.at = time.perf_counter()


def send_share(
    port: int,
    mails: Sequence[bytes],
    offsets: Sequence[float] | None,
    barrier: threading.Barrier,
    start: Start,
) -> tuple[list[Sample], float]:
    """One connection, one SMTP session, its mails in order; returns samples and end time."""
    samples: list[Sample] = []
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example", timeout=120) as client:
        client.ehlo()
        barrier.wait()
        for index, raw in enumerate(mails):
            due = start.at + offsets[index] if offsets is not None else None
            if due is not None and (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            samples.append(_send_one(client, raw, due, start.at))
    return samples, time.perf_counter()


def _send_one(client: smtplib.SMTP, raw: bytes, due: float | None, origin: float) -> Sample:
    """MAIL and RCPT untimed; DATA timed up to the final reply (250 once committed)."""
    if client.mail(SENDER)[0] != 250 or client.rcpt(SUPPORT)[0] not in (250, 251):
        client.rset()
        return Sample(0.0, 0.0, time.perf_counter() - origin, ok=False)
    sent = time.perf_counter()
    code, _ = client.data(raw)
    done = time.perf_counter()
    late = done - (due if due is not None else sent)
    return Sample(done - sent, late, sent - origin, ok=code == 250)


def smtp_load(port: int, mails: Sequence[bytes], k: int, rate: float | None = None) -> Run:
    """K connections share the mails round-robin (keeps replies near corpus order)."""
    offsets = [index / rate for index in range(len(mails))] if rate else None
    start = Start()
    barrier = threading.Barrier(k, action=start.mark)
    with ThreadPoolExecutor(k) as pool:
        futures = [
            pool.submit(
                send_share,
                port,
                mails[j::k],
                offsets[j::k] if offsets is not None else None,
                barrier,
                start,
            )
            for j in range(k)
        ]
        results = [future.result() for future in futures]
    samples = [sample for share, _ in results for sample in share]
    good = [sample for sample in samples if sample.ok]
    run = Run("", "", k, len(mails), max(end for _, end in results) - start.at)
    run.latencies = [sample.latency for sample in good]
    run.errors = len(samples) - len(good)
    # the first second pays one-off costs (templates compiled, statement caches filled)
    warm = [sample.latency for sample in good if sample.sent >= WARM_AFTER]
    run.extra["latency_after_first_second_ms"] = latency_summary(warm)
    if rate:
        run.extra["rate"] = rate
        run.extra["latency_from_schedule_ms"] = latency_summary([s.late for s in good])
    return run


def measure_server(spec: ServerSpec, mails: Sequence[bytes], k: int, rate: float | None) -> Run:
    with running_server(spec) as server:
        run = smtp_load(server.port, mails, k, rate)
    if server.stats:
        run.extra["database"] = server.stats
    return run


# -- in-process and CLI intake ------------------------------------------------------------------


@contextlib.contextmanager
def mailticket_core(config: Path) -> Iterator[Core]:
    """A core built as the CLI builds it, logging to the run's directory."""
    with logging_to(config.parent / "mailticket.log"), build_core(load(config)) as core:
        yield core  # closing it stops its parser processes before the next run


def timed_each(
    items: Sequence[Any], action: Callable[[Any], bool]
) -> tuple[float, list[float], int]:
    """Run action per item; returns (total seconds, latencies of successes, failures)."""
    latencies: list[float] = []
    failures = 0
    began = time.perf_counter()
    for item in items:
        started = time.perf_counter()
        if action(item):
            latencies.append(time.perf_counter() - started)
        else:
            failures += 1
    return time.perf_counter() - began, latencies, failures


def measure_submit(config: Path, mails: Sequence[bytes]) -> Run:
    """``Intake.submit(raw, "pipe")`` in-process: intake without any transport around it."""
    with mailticket_core(config) as core:
        seconds, latencies, failures = timed_each(
            mails, lambda raw: core.intake.submit(raw, "pipe").outcome != "quarantined"
        )
        counts = database_counts(core.engine)
    return Run("", "", 1, len(mails), seconds, latencies, failures, {"database": counts})


def measure_import(config: Path, mbox: Path) -> Run:
    """``import_mailbox`` in-process: the import use case without CLI start-up."""
    with mailticket_core(config) as core:
        began = time.perf_counter()
        outcomes = import_mailbox(core.intake, mbox, notify=False)
        seconds = time.perf_counter() - began
        counts = database_counts(core.engine)
    errors = sum(number for outcome, number in outcomes.items() if outcome != "stored")
    extra = {"outcomes": dict(outcomes), "database": counts}
    return Run("", "", 1, outcomes.total(), seconds, [], errors, extra)


def cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mailticket", "-c", str(config), *args]


def cli_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("MAILTICKET_")}


def measure_import_cli(config: Path, mbox: Path, count: int) -> Run:
    """``mailticket import`` once, wall clock including interpreter start and migrations."""
    log = config.parent / "cli.log"
    with log.open("ab") as stderr:
        subprocess.run(  # a new database: ingest and import never create one
            cli(config, "db", "upgrade"), stdout=subprocess.DEVNULL, stderr=stderr,
            cwd=config.parent, env=cli_environment(), check=True,
        )  # fmt: skip
        began = time.perf_counter()
        done = subprocess.run(
            cli(config, "import", str(mbox)),
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=config.parent,  # not the checkout: ``-m`` would import mailticket from there
            env=cli_environment(),
            check=False,
        )
        seconds = time.perf_counter() - began
    last = done.stdout.decode(errors="replace").strip().splitlines()[-1:] or [""]
    errors = 0 if done.returncode == 0 else count
    return Run("", "", 1, count, seconds, [], errors, {"exit": done.returncode, "output": last[0]})


def measure_ingest_cli(config: Path, files: Sequence[Path]) -> Run:
    """``mailticket ingest FILE``, one process per mail, as an MTA pipe runs it."""
    log = config.parent / "cli.log"
    environment = cli_environment()
    with log.open("ab") as stderr:
        subprocess.run(  # a new database: ingest never creates one
            cli(config, "db", "upgrade"), stdout=subprocess.DEVNULL, stderr=stderr,
            cwd=config.parent, env=environment, check=True,
        )  # fmt: skip

        def ingest(path: Path) -> bool:
            command = cli(config, "ingest", str(path))
            done = subprocess.run(
                command,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=environment,
                cwd=config.parent,
                check=False,
            )
            return done.returncode == 0

        seconds, latencies, failures = timed_each(files, ingest)
    return Run("", "", 1, len(files), seconds, latencies, failures)


def measure_parse_inprocess(mails: Sequence[bytes]) -> Run:
    """The parse floor without SMTP: the reference for import and in-process submit."""
    seconds, latencies, failures = timed_each(mails, lambda raw: parse_and_touch(raw) >= 0)
    return Run("", "", 1, len(mails), seconds, latencies, failures)


# -- the plan -------------------------------------------------------------------------------


@dataclass
class Bench:
    """Shared state of one benchmark invocation: corpus, work directory, options."""

    corpus: Corpus
    workdir: Path
    foreign_reply: str
    runs: list[Run] = field(default_factory=list)
    _count: int = 0

    def fresh(self, key: str, db_url: str | None = None) -> Path:
        """A new directory (and, unless given, a new SQLite database) for one run."""
        self._count += 1
        directory = self.workdir / f"{self._count:02d}-{key}"
        return write_settings(directory, db_url or sqlite_url(directory), self.foreign_reply)

    def record(self, key: str, label: str, run: Run) -> Run:
        run.key, run.label = key, label
        self.runs.append(run)
        print(format_row(run), flush=True)
        return run


def run_all(bench: Bench, args: argparse.Namespace) -> None:
    """Interleave the floors and mailticket per K, so each comparison is close in time."""
    mails = bench.corpus.mails
    bench.record("parse-inproc", "parse only, in-process", measure_parse_inprocess(mails))
    for k in args.connections:
        for kind, key, label in (
            ("floor", "a", "(a) aiosmtpd, 250 only"),
            ("parse", "b", "(b) aiosmtpd + stdlib parse"),
        ):
            spec = ServerSpec(kind)
            bench.record(f"{key}-k{k}", label, measure_server(spec, mails, k, None))
        spec = ServerSpec("mailticket", bench.fresh(f"c-k{k}"))
        bench.record(f"c-k{k}", "(c) mailticket SMTP, SQLite", measure_server(spec, mails, k, None))
    paced = mails[: args.paced_mails]
    spec = ServerSpec("mailticket", bench.fresh("paced"))
    label = f"(c) paced {args.rate:g}/s, SQLite"
    bench.record("c-paced", label, measure_server(spec, paced, args.paced_connections, args.rate))
    run_inprocess_and_cli(bench, args)
    if args.postgres:
        with postgres_schema(args.postgres) as url:
            spec = ServerSpec("mailticket", bench.fresh("c-pg-k8", url))
            bench.record(
                "c-pg-k8", "(c) mailticket SMTP, PostgreSQL", measure_server(spec, mails, 8, None)
            )


def run_inprocess_and_cli(bench: Bench, args: argparse.Namespace) -> None:
    """(d): the other ways in, each on its own fresh database."""
    corpus = bench.corpus
    count = len(corpus.mails)
    run = measure_submit(bench.fresh("submit"), corpus.mails)
    bench.record("d-submit", "(d) submit('pipe'), in-process", run)
    run = measure_import(bench.fresh("import"), corpus.mbox)
    bench.record("d-import", "(d) import, in-process", run)
    run = measure_import_cli(bench.fresh("import-cli"), corpus.mbox, count)
    bench.record("d-import-cli", "(d) import, CLI process", run)
    subset = corpus.files[: args.ingest_mails]
    run = measure_ingest_cli(bench.fresh("ingest-cli"), subset)
    bench.record("d-ingest-cli", "(d) ingest, CLI process per mail", run)


# -- reporting -------------------------------------------------------------------------------

HEADER = f"{'run':<36} {'K':>3} {'mails':>6} {'err':>4} {'mails/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"


def format_row(run: Run) -> str:
    latency = latency_summary(run.latencies) or {}

    def ms(name: str) -> str:
        return f"{latency[name]:8.1f}" if name in latency else f"{'-':>8}"

    k = str(run.k) if run.k is not None else "-"
    row = f"{run.label:<36} {k:>3} {run.mails:>6} {run.errors:>4} {run.rate:9.1f} {ms('p50')} {ms('p99')} {ms('max')}"
    late = run.extra.get("latency_from_schedule_ms")
    warm = run.extra.get("latency_after_first_second_ms")
    if not late or not warm:
        return row
    return f"{row}   (p99 after 1st s {warm['p99']:.1f}, from schedule {late['p99']:.1f})"


def ratios(runs: Sequence[Run]) -> dict[str, float | None]:
    by_key = {run.key: run for run in runs}

    def ratio(top: str, bottom: str) -> float | None:
        if top not in by_key or bottom not in by_key or not by_key[bottom].rate:
            return None
        return round(by_key[top].rate / by_key[bottom].rate, 3)

    return {
        "c_k8/b_k8": ratio("c-k8", "b-k8"),
        "c_k1/b_k1": ratio("c-k1", "b-k1"),
        "c_k16/b_k16": ratio("c-k16", "b-k16"),
        "c_pg_k8/b_k8": ratio("c-pg-k8", "b-k8"),
        "import/b_k1": ratio("d-import", "b-k1"),
        "import/parse_inproc": ratio("d-import", "parse-inproc"),
        "submit/parse_inproc": ratio("d-submit", "parse-inproc"),
    }


def verdicts(runs: Sequence[Run], found: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    by_key = {run.key: run for run in runs}
    paced = latency_summary(by_key["c-paced"].latencies) if "c-paced" in by_key else None
    measured = {
        "smtp_k8_over_parse_k8": found["c_k8/b_k8"],
        "import_mails_per_s": round(by_key["d-import"].rate, 1) if "d-import" in by_key else None,
        "paced_p99_ms": paced["p99"] if paced else None,
    }
    result: dict[str, dict[str, Any]] = {}
    for name, target in TARGETS.items():
        value = measured[name]
        met = (
            None
            if value is None
            else (value < target if name == "paced_p99_ms" else value >= target)
        )
        result[name] = {"target": target, "measured": value, "met": met}
    return result


def environment_facts(corpus: Corpus) -> dict[str, Any]:
    """Enough context to judge a number later: code version, machine, load, corpus."""
    return {
        "source": source_description(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "corpus": {"directory": str(corpus.directory), **corpus.summary},
    }


def write_results(
    bench: Bench, args: argparse.Namespace, began: datetime, environment: dict[str, Any]
) -> Path:
    found = ratios(bench.runs)
    document = {
        "started": began.isoformat(timespec="seconds"),
        "loadavg_at_end": os.getloadavg(),
        "options": {k: v for k, v in vars(args).items() if k != "postgres"}
        | {"postgres": bool(args.postgres)},
        "environment": environment,
        "runs": [run.summary() for run in bench.runs],
        "ratios": found,
        "targets": verdicts(bench.runs, found),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"intake-{began:%Y%m%d-%H%M%S}.json"
    path.write_text(
        json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    return path


def print_verdicts(bench: Bench) -> None:
    found = ratios(bench.runs)
    print("\nratios (mails/s):")
    for name, value in found.items():
        if value is not None:
            print(f"  {name:<22} {value:6.2f}")
    print("targets:")
    for name, verdict in verdicts(bench.runs, found).items():
        state = {True: "met", False: "MISSED", None: "not measured"}[verdict["met"]]
        print(
            f"  {name:<22} target {verdict['target']:<6g} measured {verdict['measured']}  {state}"
        )


# -- a fixed copy of the code under test ---------------------------------------------------


def source_facts(tree: Path) -> dict[str, Any]:
    """The commit, whether the working tree differs from it, and a hash of what is measured."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    digest = hashlib.sha256()
    for path in sorted(tree.glob("mailticket/**/*.py")) + sorted(tree.glob("templates/**/*")):
        if path.is_file():
            digest.update(path.relative_to(tree).as_posix().encode() + path.read_bytes())
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", *SNAPSHOT_PARTS)),
        "tree_sha256": digest.hexdigest()[:16],
        "taken": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


SNAPSHOT_PARTS = ("mailticket", "templates", "rules.yaml")


def source_description() -> dict[str, Any]:
    """What this process measures: the snapshot's facts, and where mailticket came from."""
    snapshot = SOURCE / "SNAPSHOT.json"
    facts = json.loads(snapshot.read_text()) if snapshot.exists() else source_facts(SOURCE)
    return facts | {"imported_from": str(Path(mailticket.__file__).parent)}


def run_on_snapshot(script: Path, argv: Sequence[str]) -> int:
    """Run ``script`` again, importing a copy of mailticket taken now.

    mailticket is installed editable and is edited while benchmarks run; every server and
    CLI process imports it afresh, so without a copy one run could measure several versions.
    """
    source = Path(tempfile.mkdtemp(prefix="mailticket-source-"))
    try:
        for part in SNAPSHOT_PARTS:
            if (ROOT / part).is_dir():
                ignore = shutil.ignore_patterns("__pycache__")
                shutil.copytree(ROOT / part, source / part, ignore=ignore)
            else:
                shutil.copy2(ROOT / part, source / part)
        facts = source_facts(source)
        (source / "SNAPSHOT.json").write_text(json.dumps(facts), encoding="utf-8")
        path = os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))
        environment = os.environ | {SNAPSHOT_ENV: str(source), "PYTHONPATH": path}
        # -P: bench/ must not come first on sys.path (bench/calendar.py is not the stdlib's)
        command = [sys.executable, "-P", str(script), *argv]
        return subprocess.run(command, env=environment, check=False).returncode
    finally:
        shutil.rmtree(source, ignore_errors=True)


def add_snapshot_option(parser: argparse.ArgumentParser) -> None:
    """``--no-snapshot``, for every bench that runs itself again on a copy."""
    parser.add_argument(
        "--no-snapshot",
        dest="snapshot",
        action="store_false",
        help="import mailticket from the working tree instead of a copy taken at start",
    )


def rerun_on_snapshot(
    args: argparse.Namespace, script: Path, argv: Sequence[str] | None
) -> int | None:
    """The exit code of ``script`` run again on a snapshot, or None when this is that run
    (or ``--no-snapshot``): then the caller goes on."""
    if not args.snapshot or SNAPSHOT_ENV in os.environ:
        return None
    return run_on_snapshot(script, sys.argv[1:] if argv is None else argv)


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=2000, help="corpus size (default 2000)")
    parser.add_argument(
        "--corpus",
        type=Path,
        help=f"an existing corpus directory (eml/, corpus.mbox) made with --tag-format {TAG_FORMAT}",
    )
    parser.add_argument("--corpus-script", type=Path, default=CORPUS_SCRIPT)
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[1, 8, 16], help="K values for (a), (b), (c)"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="paced run: mails per second")
    parser.add_argument("--paced-connections", type=int, default=4)
    parser.add_argument("--paced-mails", type=int, default=1000)
    parser.add_argument("--ingest-mails", type=int, default=100, help="subset for `ingest` (slow)")
    parser.add_argument("--foreign-reply", choices=["note", "new_ticket"], default="note")
    parser.add_argument("--postgres", metavar="URL", help="also run (c) K=8 on PostgreSQL")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    add_snapshot_option(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if (code := rerun_on_snapshot(args, Path(__file__), argv)) is not None:
        return code
    began = datetime.now().astimezone()
    workdir = Path(tempfile.mkdtemp(prefix="mailticket-bench-"))
    try:
        corpus = prepare_corpus(args.corpus, args.mails, workdir, args.corpus_script)
        environment = environment_facts(corpus)  # before the runs: the code measured
        bench = Bench(corpus, workdir, args.foreign_reply)
        size = sum(map(len, corpus.mails))
        print(f"corpus: {len(corpus.mails)} mails, {size} bytes; work directory: {workdir}")
        print(HEADER, flush=True)
        run_all(bench, args)
        print_verdicts(bench)
        print(f"\nresults: {write_results(bench, args, began, environment)}")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
