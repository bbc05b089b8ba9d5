"""Composition of the use cases every command shares: store, rules, templates, intake.

Built once from Settings; the CLI and the daemon hand pieces of it to the edges.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dkim.dnsplug import get_txt
from sqlalchemy.engine import Engine

from mailticket import store
from mailticket.decide.agent_auth import DnsLookup
from mailticket.decide.rules import OwnAddresses, RuleSet, default_rules, load_rules
from mailticket.decide.threads import MessageIdSigner
from mailticket.errors import ConfigError
from mailticket.intake import Intake
from mailticket.outbound.notices import Renderer, template_dirs
from mailticket.runtime.parse_pool import ParsePool
from mailticket.runtime.rules_watch import fingerprint
from mailticket.runtime.warm_up import sample_mails
from mailticket.settings import Settings

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class RulesHolder:
    """The current rule set; a bad edit is refused and the last good rules stay.

    ``own``: our own addresses; a file whose queues name one is refused like a bad edit."""

    def __init__(
        self, path: Path, current: RuleSet | None = None, *, own: OwnAddresses | None = None
    ) -> None:
        self.path = path
        self.own = own
        self.loaded: str | None = None  # the fingerprint of the file the rules came from
        self.current: RuleSet = current or self._initial()
        self.observers: list[Callable[[bool], None]] = []  # e.g. metrics: told each outcome

    def _initial(self) -> RuleSet:
        if not self.path.exists():
            log.warning("%s not found: every ticket goes to the built-in defaults", self.path)
            return default_rules()
        self.loaded = fingerprint(self.path)  # before: an edit while loading is seen later
        return load_rules(self.path, own=self.own)  # at start a bad file is fatal: no last good

    def __call__(self) -> RuleSet:
        return self.current

    def reload(self) -> bool:
        """Load the file again; False (and an error log) when it is refused."""
        self.loaded = fingerprint(self.path)
        try:
            rules = load_rules(self.path, own=self.own)
        except ConfigError as exc:
            log.error("rules refused, keeping version %s: %s", self.current.version, exc)
            self._tell(False)
            return False
        if rules.version != self.current.version:
            log.info("rules reloaded: version %s -> %s", self.current.version, rules.version)
        self.current = rules
        self._tell(True)
        return True

    def _tell(self, ok: bool) -> None:
        for observer in self.observers:
            observer(ok)


@dataclass
class Core:
    settings: Settings
    engine: Engine
    rules: RulesHolder
    renderer: Renderer
    intake: Intake
    signer: MessageIdSigner
    clock: Clock
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    parser: ParsePool | None = None

    def warm_up(self) -> None:
        """Pay the first mails' one-off costs now, where they store (see ``warm_up``)."""
        self.renderer.compile_all()
        self.intake.rehearse(sample_mails(self.settings.tickets.support_address))

    def close(self) -> None:
        """Stop the parser processes and close the database connections."""
        if self.parser is not None:
            self.parser.close()
        self.engine.dispose()

    def __enter__(self) -> Core:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def build_core(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    migrate: bool = True,
    dns: DnsLookup = get_txt,
    rules: RuleSet | None = None,
) -> Core:
    """Open the store (migrating it), load rules and templates, wire the intake.

    ``dns`` answers DKIM key lookups (a test gives its own keys); ``rules``, when given,
    are used instead of reading ``tickets.rules_file`` (the daemon's store process)."""
    engine = store.make_engine(
        settings.database.url, busy_timeout=settings.database.busy_timeout.total_seconds()
    )
    if migrate:
        store.upgrade(engine)
    rules_holder = RulesHolder(settings.tickets.rules_file, rules, own=own_addresses(settings))
    renderer = Renderer(template_dirs(settings.tickets.templates_dir))
    signer = MessageIdSigner(
        secret=store.secret(engine, settings.tickets.secret),
        prefix=settings.tickets.prefix,
        host=_message_id_host(settings.tickets.support_address),
    )
    on_commit: list[Callable[[], None]] = []  # the daemon adds "wake the outbox"

    def committed() -> None:
        for callback in on_commit:
            callback()

    tickets = settings.tickets
    parser = ParsePool(
        max_attachment_size=tickets.max_attachment_size,
        time_limit=tickets.max_processing_time.total_seconds(),
    )
    intake = Intake(
        engine,
        settings,
        rules_holder,
        renderer,
        signer,
        clock,
        on_commit=committed,
        parser=parser.submit,
        dns=dns,
    )
    return Core(settings, engine, rules_holder, renderer, intake, signer, clock, on_commit, parser)


def own_addresses(settings: Settings) -> OwnAddresses:
    """The addresses no queue of rules.yaml may name as an agent or escalation contact."""
    return OwnAddresses(settings.tickets.support_address, settings.tickets.comment_address)


def _message_id_host(support_address: str) -> str:
    domain = support_address.rpartition("@")[2]
    return domain if domain and domain != "localhost" else socket.getfqdn() or "localhost"
