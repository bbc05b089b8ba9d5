"""Follow-up sweep cost: 1,000 due tickets among 10,000 vs among 1,000,000 (same run).

The sweep reads ``ticket.next_action_at <= now`` through its index, so its cost should
follow the number of due tickets, not the table size: the ratio should stay close to 1.

    .venv/bin/python bench/followup.py                       # SQLite, 10k and 1M
    .venv/bin/python bench/followup.py --sizes 10000 100000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, text

from mailticket.followup.sweep import FollowupSweep
from mailticket.runtime.core import build_core
from mailticket.settings import load_settings
from mailticket.store import TICKET

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
CHUNK = 20_000


def settings_for(workdir: Path, url: str) -> object:
    config = workdir / "mailticket.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[outbound]\nmaildir = "{workdir / "outbox"}"\n'
        f'[tickets]\nrules_file = "{ROOT / "rules.yaml"}"\n'
        f'templates_dir = "{ROOT / "templates"}"\nsecret = "bench"\n',
        encoding="utf-8",
    )
    return load_settings(config, environ={})


def fill(engine: object, size: int, due: int) -> None:
    """``size`` open urgent tickets; ``due`` of them have a reminder due now."""
    later = NOW + timedelta(days=30)
    with engine.begin() as connection:  # type: ignore[attr-defined]
        for start in range(0, size, CHUNK):
            rows = [
                {
                    "subject": f"ticket {n}",
                    "status": "new",
                    "priority": "urgent",
                    "queue": "security",
                    "requester": f"user{n}@c.example",
                    "tags": "",
                    "language": "en",
                    "created_at": NOW - timedelta(hours=2),
                    "updated_at": NOW,
                    "due_at": NOW + timedelta(minutes=30),
                    "next_action_at": NOW - timedelta(minutes=1) if n < due else later,
                    "fields": "{}",
                    "due_derivation": "",
                }
                for n in range(start, min(start + CHUNK, size))
            ]
            connection.execute(insert(TICKET), rows)


def measure(url: str, size: int, due: int, workdir: Path) -> dict[str, float]:
    settings = settings_for(workdir, url)
    with build_core(settings, clock=lambda: NOW) as core:  # type: ignore[arg-type]
        started = time.perf_counter()
        fill(core.engine, size, due)
        filled = time.perf_counter() - started
        sweep = FollowupSweep(
            core.engine, core.settings.tickets, core.rules, core.renderer, core.signer, lambda: NOW
        )
        started = time.perf_counter()
        taken = sweep.run()
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        assert sweep.run() == 0
        empty = time.perf_counter() - started
    assert taken == due, (taken, due)
    return {
        "tickets": size,
        "due": due,
        "fill_s": filled,
        "sweep_s": seconds,
        "empty_sweep_ms": empty * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument(
        "--postgres", help="a PostgreSQL URL (a schema per size is made and dropped)"
    )
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-followup-") as tmp:
        for size in args.sizes:
            workdir = Path(tmp) / str(size)
            workdir.mkdir()
            if args.postgres:
                schema = f"b_{uuid.uuid4().hex[:10]}"
                admin = create_engine(args.postgres)
                with admin.begin() as connection:
                    connection.execute(text(f"CREATE SCHEMA {schema}"))
                url = f"{args.postgres}?options=-csearch_path%3D{schema}"
                try:
                    results.append(measure(url, size, args.due, workdir))
                finally:
                    with admin.begin() as connection:
                        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                    admin.dispose()
            else:
                results.append(measure(f"sqlite:///{workdir / 'mt.db'}", size, args.due, workdir))
    base = results[0]
    for row in results:
        ratio = row["sweep_s"] / base["sweep_s"]
        print(
            f"{row['tickets']:>9} tickets, {row['due']} due: sweep {row['sweep_s']:.2f} s "
            f"({row['due'] / row['sweep_s']:.0f} reminders/s), ratio {ratio:.2f}; "
            f"empty sweep {row['empty_sweep_ms']:.1f} ms; fill {row['fill_s']:.0f} s"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
