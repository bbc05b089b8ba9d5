"""Reload on file change: a good edit is picked up, a broken one refused while mail keeps arriving."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session

from mailticket.runtime.core import Core, RulesHolder
from mailticket.runtime.rules_watch import fingerprint, watch_rules
from mailticket.store.models import Ticket
from tests.conftest import RULES, build_mail

SECURITY_RULE = """\
rules:
  - name: hacked
    if: {subject: {contains: hacked}}
    then: {queue: security, priority: urgent}
"""
INTERVAL = 0.02


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):  # 10 s at most: the watcher looks every 20 ms
        if condition():
            return
        await asyncio.sleep(INTERVAL)
    raise AssertionError(f"timed out waiting for {what}")


def queue_of(core: Core, number: int | None) -> str:
    with Session(core.engine) as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        return ticket.queue


class Arrivals:
    """Mail arriving in a thread of its own while the rules are edited."""

    def __init__(self, core: Core) -> None:
        self.core, self.outcomes, self.stop = core, list[str](), threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        count = 0
        while not self.stop.is_set():
            count += 1
            raw = build_mail(subject=f"hacked {count}", message_id=f"<arrival-{count}@x.example>")
            self.outcomes.append(self.core.intake.submit(raw, "pipe").outcome)


def test_edits_are_picked_up_and_a_broken_one_is_refused(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    path: Path = core.rules.path
    submitted = iter(range(1, 1000))

    def route() -> str:
        n = next(submitted)
        raw = build_mail(subject="account hacked", message_id=f"<probe-{n}@x.example>")
        return queue_of(core, core.intake.submit(raw, "pipe").ticket)

    async def scenario() -> None:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_rules(core.rules, stop, interval=INTERVAL))
        arrivals = Arrivals(core)
        arrivals.thread.start()
        try:
            assert route() == "general"
            first = core.rules().version
            path.write_text(RULES + SECURITY_RULE, encoding="utf-8")
            await until(lambda: core.rules().version != first, "the good edit")
            assert route() == "security"

            good = core.rules().version
            path.write_text(RULES + SECURITY_RULE.replace("security,", "nowhere,"), "utf-8")
            await until(lambda: "rules refused" in caplog.text, "the refusal")
            assert "unknown queue 'nowhere'" in caplog.text
            assert core.rules().version == good
            assert route() == "security"  # the last good rules still route

            path.write_text(RULES + SECURITY_RULE.replace("security,", "general,"), "utf-8")
            await until(lambda: core.rules().version != good, "the fixed edit")
            assert route() == "general"
        finally:
            arrivals.stop.set()
            await asyncio.to_thread(arrivals.thread.join)
            stop.set()
            await watcher
        assert arrivals.outcomes and set(arrivals.outcomes) == {"stored"}

    with caplog.at_level(logging.INFO, logger="mailticket.runtime.core"):
        asyncio.run(scenario())


def test_a_missing_file_keeps_the_rules_and_its_return_is_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reloads: list[str | None] = []

    class Holder:
        path = tmp_path / "rules.yaml"
        loaded = None  # nothing known of its content: the first look reloads

        def reload(self) -> bool:
            reloads.append(fingerprint(self.path))
            return True

    Holder.path.write_text("version: 1\n", encoding="utf-8")

    async def scenario() -> None:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_rules(Holder(), stop, interval=INTERVAL))
        await until(lambda: len(reloads) == 1, "the first look")
        Holder.path.unlink()
        await until(lambda: "missing or unreadable" in caplog.text, "the warning")
        Holder.path.write_text("version: 1\n# back\n", encoding="utf-8")
        await until(lambda: len(reloads) == 2, "the reload")
        stop.set()
        await asyncio.wait_for(watcher, 5)

    with caplog.at_level(logging.WARNING, logger="mailticket.runtime.rules_watch"):
        asyncio.run(scenario())
    first = hashlib.sha256(b"version: 1\n").hexdigest()
    assert reloads == [first, fingerprint(Holder.path)]  # nothing while it was missing


class CountingHolder(RulesHolder):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reloads = 0

    def reload(self) -> bool:
        self.reloads += 1
        return super().reload()


def test_the_first_look_reloads_only_a_file_changed_since_the_holder_loaded_it(
    tmp_path: Path,
) -> None:
    """An unchanged file is not parsed again at start (a reload holds the GIL while mail
    may be arriving); an edit made between the load and the watcher's start is not missed."""
    for name in ("unchanged.yaml", "edited.yaml"):
        (tmp_path / name).write_text(RULES, encoding="utf-8")
    unchanged = CountingHolder(tmp_path / "unchanged.yaml")
    edited = CountingHolder(tmp_path / "edited.yaml")
    edited.path.write_text(RULES + SECURITY_RULE, encoding="utf-8")  # after its load

    async def scenario() -> None:
        stop = asyncio.Event()
        watchers = [
            asyncio.create_task(watch_rules(holder, stop, interval=INTERVAL))
            for holder in (unchanged, edited)
        ]
        await until(lambda: edited.reloads == 1, "the edit's reload")
        await asyncio.sleep(INTERVAL * 10)  # several looks at the same content
        stop.set()
        await asyncio.gather(*watchers)

    asyncio.run(scenario())
    assert (unchanged.reloads, edited.reloads) == (0, 1)
    assert [rule.name for rule in edited.current.spec.rules][-1] == "hacked"
