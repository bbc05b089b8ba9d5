"""Run the IMAP poller, and SIGKILL this process right after the N-th intake commit:
the mail is stored, its ledger row is not written, the server has not been told.

    python tests/imap_crash_child.py CONFIG HOST PORT USER PASSWORD N
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from mailticket.inbound.imap import Accepted, Tuning, run_imap_accounts
from mailticket.runtime.core import build_core
from mailticket.settings import ImapAccount, load_settings


async def main(config: str, host: str, port: str, user: str, password: str, kill: str) -> int:
    core = build_core(load_settings(Path(config), environ={}))
    account = ImapAccount(
        host=host,
        port=int(port),
        ssl=False,
        username=user,
        password=password,
        processed_folder="Processed",
    )
    commits = 0

    async def submit(raw: bytes, notify: bool, trusted: bool = False) -> Accepted:
        nonlocal commits
        result = core.intake.submit(raw, "imap", notify=notify)
        commits += 1
        if commits == int(kill):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    stop = asyncio.Event()
    poller = run_imap_accounts([account], submit, core.engine, core.clock, stop, tuning=Tuning())
    try:
        await asyncio.wait_for(poller, 30)
    except TimeoutError:
        return 3  # never reached the kill: the test fails on this exit code
    return 4


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:])))
