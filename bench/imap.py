"""IMAP benchmark: drain a backlog from a local Dovecot, next to in-process ``submit``.

One run generates the shared corpus, starts a private Dovecot (as the tests do),
APPENDs every mail into one mailbox, then measures in two spawned child processes
(each its own interpreter, so each peak RSS is its own):

  (i)  the IMAP poller (``run_imap_accounts``, production ``Tuning``) draining the
       mailbox into a fresh SQLite database through a single writer thread, as
       ``mailticket serve`` does, moving each mail to ``Processed`` after the commit;
  (s)  ``core.intake.submit(raw, "pipe")`` over the same mails, read one by one from the
       corpus files, on another fresh database: the intake without any transport, the
       ceiling of every path in (the SMTP-rate proxy).

    .venv/bin/python bench/imap.py --mails 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.dovecot

from sqlalchemy import func, select  # noqa: E402

from mailticket.inbound.imap import Accepted, run_imap_accounts  # noqa: E402
from mailticket.runtime.core import build_core  # noqa: E402
from mailticket.runtime.daemon import submitter  # noqa: E402
from mailticket.runtime.writer import Writer  # noqa: E402
from mailticket.settings import ImapAccount, load_settings  # noqa: E402
from mailticket.store.models import Inbound  # noqa: E402
from tests.dovecot import PASSWORD, running_dovecot  # noqa: E402

CORPUS_SCRIPT = ROOT.parent / "shared" / "bench" / "corpus.py"
RESULTS = ROOT / "bench" / "results"


def write_config(workdir: Path) -> Path:
    workdir.mkdir(parents=True)
    config = workdir / "mailticket.toml"
    config.write_text(
        f"""[database]
url = "sqlite:///{workdir / "mailticket.db"}"
[smtp]
enabled = false
[outbound]
maildir = "{workdir / "outbox"}"
[tickets]
support_address = "support@bench.example"
rules_file = "{ROOT / "rules.yaml"}"
templates_dir = "{ROOT / "templates"}"
secret = "bench"
foreign_reply = "note"
""",
        encoding="utf-8",
    )
    return config


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_inbound(core: Any) -> int:
    with core.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Inbound)).scalar_one())


# -- child processes ---------------------------------------------------------------------


def drain_imap(config: Path, account: ImapAccount, expected: int, out: Connection) -> None:
    """The poller wired as ``mailticket serve`` wires it: parse pool, one writer thread."""
    core = build_core(load_settings(config, environ={}))
    baseline = peak_rss_mib()
    if core.parser is not None:
        core.parser.start()
    writer = Writer(core.engine)
    to_intake = submitter(core, core.intake.in_thread(writer), "imap")
    submitted = 0
    everything = asyncio.Event()

    async def submit(raw: bytes, notify: bool, trusted: bool = False) -> Accepted:
        nonlocal submitted
        result = await to_intake(raw, notify)
        submitted += 1
        if submitted == expected:
            everything.set()
        return result

    async def main() -> float:
        stop = asyncio.Event()
        start = time.perf_counter()
        poller = asyncio.create_task(
            run_imap_accounts([account], submit, core.engine, core.clock, stop, writer=writer)
        )
        await everything.wait()
        stop.set()
        await poller  # the last batch is recorded and moved before it returns
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    writer.shutdown()
    stored = count_inbound(core)
    core.close()
    out.send({"seconds": elapsed, "stored": stored, "baseline_rss_mib": baseline})
    out.send({"peak_rss_mib": peak_rss_mib()})


def submit_inline(config: Path, files: list[Path], out: Connection) -> None:
    core = build_core(load_settings(config, environ={}))
    baseline = peak_rss_mib()
    start = time.perf_counter()
    for path in files:
        core.intake.submit(path.read_bytes(), "pipe")
    elapsed = time.perf_counter() - start
    stored = count_inbound(core)
    core.close()
    out.send({"seconds": elapsed, "stored": stored, "baseline_rss_mib": baseline})
    out.send({"peak_rss_mib": peak_rss_mib()})


def in_child(target: Any, *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, send))
    process.start()
    result: dict[str, Any] = {}
    try:
        result |= receive.recv()
        result |= receive.recv()
    finally:
        process.join(60)
    return result


# -- the run -----------------------------------------------------------------------------


def corpus(count: int, workdir: Path) -> list[Path]:
    directory = workdir / "corpus"
    command = [sys.executable, str(CORPUS_SCRIPT), "--n", str(count), "--out", str(directory)]
    subprocess.run([*command, "--tag-format", "[MT-{n}]"], check=True, capture_output=True)
    return sorted((directory / "eml").glob("*.eml"))[:count]


def run(count: int, workdir: Path) -> dict[str, Any]:
    files = corpus(count, workdir)
    size = sum(path.stat().st_size for path in files)
    with running_dovecot() as server:
        user = server.new_user()
        start = time.perf_counter()
        server.append(user, (path.read_bytes() for path in files))
        append_seconds = time.perf_counter() - start
        account = ImapAccount(
            host=server.host,
            port=server.port,
            ssl=False,
            username=user,
            password=PASSWORD,
            processed_folder="Processed",
        )
        imap = in_child(drain_imap, write_config(workdir / "imap"), account, len(files))
        left = len(server.contents(user))
        moved = len(server.contents(user, "Processed"))
    inline = in_child(submit_inline, write_config(workdir / "submit"), files)
    for result in (imap, inline):
        result["mails_per_s"] = round(result["stored"] / result["seconds"], 1)
    return {
        "mails": len(files),
        "corpus_mib": round(size / 2**20, 1),
        "append_seconds": round(append_seconds, 1),
        "imap": {**imap, "left_in_inbox": left, "moved": moved},
        "submit": inline,
        "imap_over_submit": round(imap["mails_per_s"] / inline["mails_per_s"], 2),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailticket-bench-imap-") as tmp:
        report = run(args.mails, Path(tmp))
    report["time"] = datetime.now().isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"imap-{report['time'].replace(':', '')}.json"
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    imap, inline = report["imap"], report["submit"]
    print(
        f"{report['mails']} mails, {report['corpus_mib']} MiB, appended in {report['append_seconds']} s"
    )
    print(f"{'path':<28} {'mails/s':>8} {'stored':>7} {'peak RSS MiB':>13} {'after start':>12}")
    for name, result in (("(i) IMAP poller, SQLite", imap), ("(s) submit, in-process", inline)):
        print(
            f"{name:<28} {result['mails_per_s']:>8} {result['stored']:>7} "
            f"{result['peak_rss_mib']:>13.0f} {result['baseline_rss_mib']:>12.0f}"
        )
    print(
        f"IMAP / submit = {report['imap_over_submit']} (target >= 0.5); left in INBOX: "
        f"{imap['left_in_inbox']}, moved: {imap['moved']}; {path}"
    )


if __name__ == "__main__":
    main()
