"""APScheduler drives the follow-up sweep; the state it acts on lives in the database.

The scheduler only says "look now": one interval job, run once at start (so reminders
missed while the daemon was down go out once, not once per missed interval), never two
at a time, coalescing missed runs. What is due is read from ``ticket.next_action_at``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from mailticket.errors import TemporaryFailure

log = logging.getLogger(__name__)


async def run_sweeps(
    sweep: Callable[[], int],
    interval: timedelta,
    stop: asyncio.Event,
    executor: Executor | None = None,
) -> None:
    """Run ``sweep`` every ``interval`` (in ``executor``) until ``stop`` is set."""
    loop = asyncio.get_running_loop()
    failing = False
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per sweep

    async def job() -> None:
        nonlocal failing
        try:
            taken = await loop.run_in_executor(executor, sweep)
        except TemporaryFailure as exc:
            if not failing:
                log.warning("follow-up sweep postponed: %s", exc)
            failing = True
            return
        except Exception:
            log.exception("follow-up sweep failed")
            return
        if failing:
            log.info("follow-up sweep running again")
        failing = False
        if taken:
            log.info("follow-up sweep: %d actions", taken)

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        job,
        "interval",
        seconds=max(interval.total_seconds(), 0.05),
        next_run_time=datetime.now(UTC),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        id="followup",
    )
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
