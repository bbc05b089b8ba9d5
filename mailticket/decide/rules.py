"""rules.yaml: queues, priorities and routing, validated whole into typed objects.

A bad file is refused with ``rules.yaml:LINE: message`` and the caller keeps the last
good RuleSet. ``RuleSet.route`` is pure: mail in, Routing out. The evaluator is one
short loop: rules in file order, every match applies (later queue, priority, assignee
and template override earlier ones, tags accumulate, the first value extracted for a
field stays), and a matching rule with ``stop: true`` ends the walk.

    rules_schema (the file's shape) -> rules (load, validate, route)
    rule_match (conditions -> matchers), rule_regex (RE2)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from mailticket.decide.rule_match import Extractor, MailText, Matcher, compile_condition
from mailticket.decide.rule_regex import compile_pattern
from mailticket.decide.rules_errors import (
    OwnAddresses,
    Problem,
    own_address_problems,
    pydantic_problems,
    shadow_problems,
)
from mailticket.decide.rules_schema import (
    Actions,
    DefaultsSpec,
    QueueSpec,
    Rule,
    RulesFile,
    context_of,
)
from mailticket.decide.yamlsource import Located, load_bytes, load_located, read_file
from mailticket.errors import ConfigError
from mailticket.followup.business_calendar import Due, add_business_time
from mailticket.followup.clocks import Policy
from mailticket.parse.mail import InboundMail

__all__ = [
    "ConfigError",
    "OwnAddresses",
    "QueueSpec",
    "Routing",
    "RuleSet",
    "RulesFile",
    "default_rules",
    "load_rules",
    "parse_rules",
    "validate",
]


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
    rules: tuple[str, ...] = ()  # names of the rules that matched, in order


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    condition: Matcher | None  # None: every mail
    then: Actions
    stop: bool
    extractors: tuple[Extractor, ...]


def compile_rule(rule: Rule) -> CompiledRule:
    condition = None if rule.always() or rule.if_ is None else compile_condition(rule.if_)
    extractors = tuple(
        Extractor(name, compile_pattern(source)) for name, source in rule.then.extract.items()
    )
    return CompiledRule(rule.name, condition, rule.then, rule.stop, extractors)


class _Walk:
    """The routing being built while the rules are walked."""

    def __init__(self, defaults: DefaultsSpec) -> None:
        self.queue, self.priority = defaults.queue, defaults.priority
        self.assignee: str | None = None
        self.template, self.no_ack, self.drop = "ack", False, False
        self.tags: dict[str, None] = {}
        self.fields: dict[str, str] = {}
        self.matched: list[str] = []
        self.rules: list[str] = []

    def apply(self, rule: CompiledRule, why: str, text: MailText) -> None:
        then = rule.then
        self.queue = then.queue or self.queue
        self.priority = then.priority or self.priority
        self.assignee = then.assign or self.assignee
        self.template = then.template or self.template
        self.no_ack = self.no_ack if then.no_ack is None else then.no_ack
        self.drop = self.drop if then.drop is None else then.drop
        self.tags.update(dict.fromkeys(then.tags))
        for extractor in rule.extractors:
            if extractor.name not in self.fields and (value := extractor.pull(text)):
                self.fields[extractor.name] = value
        self.matched.append(f"{rule.name}: {why}")
        self.rules.append(rule.name)

    def routing(self) -> Routing:
        return Routing(
            queue=self.queue,
            priority=self.priority,
            tags=tuple(self.tags),
            assignee=self.assignee,
            template=self.template,
            no_ack=self.no_ack,
            drop=self.drop,
            matched=tuple(self.matched),
            fields=tuple(self.fields.items()),
            rules=tuple(self.rules),
        )


@dataclass(frozen=True, slots=True)
class RuleSet:
    spec: RulesFile
    version: str  # short hash of the file's bytes, recorded on routing events
    source: str
    compiled: tuple[CompiledRule, ...] = field(init=False, repr=False)
    # every address that is an agent somewhere (queues' agents and escalate_to): intake
    # asks for each mail, so it is worked out once per rules file
    agent_addresses: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", tuple(compile_rule(r) for r in self.spec.rules))
        leads = {q.escalate_to.lower() for q in self.spec.queues.values() if q.escalate_to}
        object.__setattr__(self, "agent_addresses", self.all_agents() | leads)

    @property
    def queues(self) -> dict[str, QueueSpec]:
        return self.spec.queues

    def agents_of(self, queue: str) -> tuple[str, ...]:
        spec = self.spec.queues.get(queue)
        return tuple(a.lower() for a in spec.agents) if spec else ()

    def agent_language(self, queue: str, default: str) -> str:
        """The language of the mail the agents of ``queue`` get."""
        spec = self.spec.queues.get(queue)
        return spec.language if spec and spec.language else default

    def all_agents(self) -> frozenset[str]:
        return frozenset(a.lower() for q in self.spec.queues.values() for a in q.agents)

    def first_response(self, priority: str) -> timedelta | None:
        spec = self.spec.priorities.get(priority)
        return spec.first_response if spec else None

    def followup_policy(self, priority: str) -> Policy:
        """What the follow-up state machine (``sla``) needs for a ticket of ``priority``."""
        spec = self.spec
        return Policy(spec.priorities.get(priority), spec.followup, spec.calendar)

    def first_due(self, priority: str, received: datetime) -> Due | None:
        """When the first response is due: ``first_response`` of the calendar's business time."""
        first_response = self.first_response(priority)
        if first_response is None:
            return None
        return add_business_time(received, first_response, self.spec.calendar, event="received")

    def route(self, mail: InboundMail) -> Routing:
        """Queue, priority, tags... for a new ticket opened by ``mail``."""
        text = MailText(mail)
        walk = _Walk(self.spec.defaults)
        for rule in self.compiled:
            why = rule.condition.test(text) if rule.condition is not None else "every mail"
            if why is None:
                continue
            walk.apply(rule, why, text)
            if rule.stop:
                break
        return walk.routing()

    def extract(self, mail: InboundMail) -> tuple[tuple[str, str], ...]:
        """The fields the ``extract`` rules that match ``mail`` pull from it (a later mail
        on a ticket): only those rules are tested; the first value of a field wins."""
        text = MailText(mail)
        found: dict[str, str] = {}
        for rule in self.compiled:
            if not rule.extractors:
                continue
            if rule.condition is not None and rule.condition.test(text) is None:
                continue
            for extractor in rule.extractors:
                if extractor.name not in found and (value := extractor.pull(text)):
                    found[extractor.name] = value
        return tuple(found.items())


def default_rules() -> RuleSet:
    spec = RulesFile(queues={"general": QueueSpec()})
    return RuleSet(spec=spec, version="builtin", source="<builtin defaults>")


def load_rules(path: Path, *, own: OwnAddresses | None = None) -> RuleSet:
    """Validate ``path`` whole; ConfigError("path:line: message") on the first problem.

    ``own``: our own addresses, which no queue may name (unchecked when None)."""
    try:
        content = read_file(path)
        located = load_bytes(content, str(path))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return _raise_first(*validate(located, content, own=own))


def parse_rules(text: str, name: str = "rules.yaml", *, own: OwnAddresses | None = None) -> RuleSet:
    try:
        located = load_located(text, name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return _raise_first(*validate(located, text.encode(), own=own))


def _raise_first(rules: RuleSet | None, problems: list[Problem]) -> RuleSet:
    if problems or rules is None:
        raise ConfigError(problems[0].text if problems else "invalid rules")
    return rules


def validate(
    located: Located, content: bytes, *, own: OwnAddresses | None = None
) -> tuple[RuleSet | None, list[Problem]]:
    """The rule set, or None, and every problem of the file sorted by line; with ``own``,
    a queue naming one of our own addresses is a problem too."""
    data = located.data
    if not isinstance(data, dict) or not data:
        what = "is empty" if data in ({}, None) else "must be a mapping"
        text = f"{located.name}:1: the file {what} (version: 1, queues: ...)"
        return None, [Problem(1, text)]
    context = context_of(data)
    spec: RulesFile | None = None
    problems: list[Problem] = []
    try:
        spec = RulesFile.model_validate(data, context=context)
    except ValidationError as exc:
        problems += pydantic_problems(exc, located)
    problems += shadow_problems(_valid_rules(spec, data, context), located)
    if spec is not None and own is not None:
        problems += own_address_problems(spec.queues, located, own)
    problems.sort(key=lambda problem: problem.line)
    if problems or spec is None:
        return None, problems
    version = hashlib.sha256(content).hexdigest()[:12]
    return RuleSet(spec=spec, version=version, source=located.name), []


def _valid_rules(
    spec: RulesFile | None, data: dict[str, object], context: Mapping[str, object]
) -> list[tuple[int, Rule]]:
    """(index, rule) of every rule that validates, even when other parts of the file do not."""
    if spec is not None:
        return list(enumerate(spec.rules))
    raw = data.get("rules")
    found: list[tuple[int, Rule]] = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            found.append((index, Rule.model_validate(item, context=context)))
        except ValidationError:
            continue
    return found
