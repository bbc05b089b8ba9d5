"""rules.yaml: queues, priorities and routing, validated whole into typed objects.

A bad file is refused with ``rules.yaml:LINE: message`` and the caller keeps the last
good RuleSet. ``RuleSet.route`` is pure: mail in, Routing out.

This version routes every new ticket to ``defaults``; the ordered ``rules:`` walk
(issue "Routing rules that admins can trust") plugs in behind ``route``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from mailticket.errors import ConfigError
from mailticket.mail import InboundMail
from mailticket.units import parse_duration
from mailticket.yamlsource import Located, load_file, load_located

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QueueSpec(_Strict):
    agents: tuple[str, ...] = ()
    escalate_to: str | None = None


class DefaultsSpec(_Strict):
    queue: str = "general"
    priority: str = "normal"


class PrioritySpec(_Strict):
    first_response: Duration
    remind_every: Duration | None = None


class FollowupSpec(_Strict):
    remind_requester_after: Duration = timedelta(days=3)
    close_pending_after: Duration = timedelta(days=7)
    close_resolved_after: Duration = timedelta(days=3)


class RulesFile(_Strict):
    version: int = 1
    queues: dict[str, QueueSpec] = {"general": QueueSpec()}
    defaults: DefaultsSpec = DefaultsSpec()
    priorities: dict[str, PrioritySpec] = {
        "normal": PrioritySpec(first_response=timedelta(hours=24))
    }
    followup: FollowupSpec = FollowupSpec()
    calendar: Any = "always"
    rules: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []

    @model_validator(mode="after")
    def _defaults_exist(self) -> RulesFile:
        if self.defaults.queue not in self.queues:
            raise ValueError(f"defaults.queue {self.defaults.queue!r} is not a queue")
        if self.defaults.priority not in self.priorities:
            raise ValueError(f"defaults.priority {self.defaults.priority!r} is not a priority")
        return self


@dataclass(frozen=True, slots=True)
class Routing:
    queue: str
    priority: str
    tags: tuple[str, ...] = ()
    assignee: str | None = None
    template: str = "ack"
    no_ack: bool = False
    drop: bool = False
    matched: tuple[str, ...] = ()  # "rule name: what matched"
    fields: tuple[tuple[str, str], ...] = ()  # (name, value) pulled by `extract`, in rule order


@dataclass(frozen=True, slots=True)
class RuleSet:
    spec: RulesFile
    version: str  # short hash of the file's bytes, recorded on routing events
    source: str

    @property
    def queues(self) -> dict[str, QueueSpec]:
        return self.spec.queues

    def agents_of(self, queue: str) -> tuple[str, ...]:
        spec = self.spec.queues.get(queue)
        return tuple(a.lower() for a in spec.agents) if spec else ()

    def all_agents(self) -> frozenset[str]:
        return frozenset(a.lower() for q in self.spec.queues.values() for a in q.agents)

    def first_response(self, priority: str) -> timedelta | None:
        spec = self.spec.priorities.get(priority)
        return spec.first_response if spec else None

    def route(self, mail: InboundMail) -> Routing:
        """Queue, priority, tags... for a new ticket opened by ``mail``."""
        defaults = self.spec.defaults
        return Routing(queue=defaults.queue, priority=defaults.priority, matched=("defaults",))


def default_rules() -> RuleSet:
    spec = RulesFile()
    return RuleSet(spec=spec, version="builtin", source="<builtin defaults>")


def load_rules(path: Path) -> RuleSet:
    """Validate ``path`` whole; ConfigError("path:line: message") on the first problem."""
    try:
        located = load_file(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return _build(located, path.read_bytes())


def parse_rules(text: str, name: str = "rules.yaml") -> RuleSet:
    try:
        located = load_located(text, name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return _build(located, text.encode())


def _build(located: Located, content: bytes) -> RuleSet:
    if not isinstance(located.data, dict):
        raise ConfigError(f"{located.name}:1: the file must be a mapping (version: 1, queues: ...)")
    try:
        spec = RulesFile.model_validate(located.data)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, located)) from None
    version = hashlib.sha256(content).hexdigest()[:12]
    return RuleSet(spec=spec, version=version, source=located.name)


def _first_error(exc: ValidationError, located: Located) -> str:
    error = exc.errors()[0]
    path = tuple(part for part in error["loc"] if isinstance(part, str | int))
    if error["type"] == "extra_forbidden":
        return f"{located.where(path)}: unknown key {path[-1]!r}"
    where = ".".join(str(part) for part in path)
    message = error["msg"].removeprefix("Value error, ")
    return f"{located.where(path)}: {where + ': ' if where else ''}{message}"
