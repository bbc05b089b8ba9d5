"""The shape of rules.yaml as typed, frozen pydantic models: every key, every value checked.

Names that refer to other parts of the file (queues, priorities) are checked against the
file's own ``queues:`` and ``priorities:`` keys, handed in as validation context, so one
validation pass reports every problem with its exact place. Regexes are compiled under
RE2 here (see ``rule_regex``), so a pattern that cannot run never reaches a mail.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mailticket.decide.rule_regex import compile_pattern
from mailticket.followup.business_calendar import ALWAYS, CalendarSpec
from mailticket.units import parse_duration

_ADDRESS: Final = re.compile(r"^[^@\s<>,;:\"]+@[^@\s<>,;:\"]+$")
_DOMAIN: Final = re.compile(r"^[\w-]+(\.[\w-]+)*$")
_NAME: Final = re.compile(r"^[\w][\w.-]*$")
_HEADER: Final = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field name: printable, no colon
_LANGUAGE: Final = re.compile(r"^[a-z]{2,3}$")


def _as_list(value: Any) -> Any:
    """One word or a list of words: ``contains: hacked`` == ``contains: [hacked]``."""
    return [value] if isinstance(value, str) else value


def _word(value: str) -> str:
    if not value.strip():
        raise ValueError("empty word")
    return value


def _regex(value: str) -> str:
    compile_pattern(value)
    return value


def _extract_regex(value: str) -> str:
    if compile_pattern(value).matches_empty():
        raise ValueError(f"regex '{value}' matches an empty text: it would extract nothing")
    return value


def _address(value: str) -> str:
    if not _ADDRESS.match(value.strip()):
        raise ValueError(f"not an email address: {value!r}")
    return value.strip().lower()


def _domain(value: str) -> str:
    cleaned = value.strip().lower().lstrip("@").removeprefix("*.")
    if not _DOMAIN.match(cleaned):
        raise ValueError(f"not a domain: {value!r} (write e.g. example.com)")
    return cleaned


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r}: use letters, digits, '_', '-' or '.', no spaces")
    return value


_SINGULAR: Final = {"queues": "queue", "priorities": "priority"}


def _known(kind: str) -> Any:
    """A validator: the value must be one of the file's ``kind`` keys (from the context)."""

    def check(value: str, info: ValidationInfo) -> str:
        known: Collection[str] | None = (info.context or {}).get(kind)
        if known is not None and value not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise ValueError(f"unknown {_SINGULAR[kind]} {value!r} (known: {listed})")
        return value

    return check


Word = Annotated[str, AfterValidator(_word)]
Words = Annotated[tuple[Word, ...], BeforeValidator(_as_list), Field(min_length=1)]
Regex = Annotated[str, AfterValidator(_regex)]
Regexes = Annotated[tuple[Regex, ...], BeforeValidator(_as_list), Field(min_length=1)]
Address = Annotated[str, AfterValidator(_address)]
Domain = Annotated[str, AfterValidator(_domain)]
Domains = Annotated[tuple[Domain, ...], BeforeValidator(_as_list), Field(min_length=1)]
Name = Annotated[str, AfterValidator(_name)]
QueueName = Annotated[str, AfterValidator(_known("queues"))]
PriorityName = Annotated[str, AfterValidator(_known("priorities"))]
Tags = Annotated[tuple[Name, ...], BeforeValidator(_as_list)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- queues, priorities, followup -------------------------------------------------------


class QueueSpec(_Strict):
    agents: tuple[Address, ...] = ()
    escalate_to: Address | None = None
    language: str | None = None  # of the mail its agents get (default: agents.language)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and not _LANGUAGE.match(value):
            raise ValueError(f"not a language code: {value!r} (write e.g. zh or en)")
        return value


class DefaultsSpec(_Strict):
    queue: QueueName = "general"
    priority: PriorityName = "normal"


class PrioritySpec(_Strict):
    first_response: Duration
    remind_every: Duration | None = None


class FollowupSpec(_Strict):
    remind_requester_after: Duration = timedelta(days=3)
    close_pending_after: Duration = timedelta(days=7)
    close_resolved_after: Duration = timedelta(days=3)


# -- conditions -------------------------------------------------------------------------


class TextTest(_Strict):
    """Tests on a text field; several keys must all hold."""

    needs_test: ClassVar[bool] = True
    contains: Words | None = None  # any of the words, anywhere, case-insensitive
    matches: Regexes | None = None  # any of the regexes (RE2), case-sensitive unless (?i)
    equals: Words | None = None  # the whole value, case-insensitive, spaces trimmed

    @model_validator(mode="after")
    def _some_test(self) -> TextTest:
        if self.needs_test and self.tests() == ():
            raise ValueError("give a test: contains, matches or equals")
        return self

    def tests(self) -> tuple[str, ...]:
        return tuple(
            name
            for name in ("contains", "matches", "equals", "domain")
            if getattr(self, name, None)
        )


class AddressTest(TextTest):
    """Tests on addresses; ``domain`` matches the domain and its subdomains."""

    domain: Domains | None = None


class HeaderTest(AddressTest):
    """``header: {name: X-Foo, <tests>}``; with no test, the header only has to be present."""

    needs_test: ClassVar[bool] = False
    name: str

    @field_validator("name")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _HEADER.match(value):
            raise ValueError(f"not a header name: {value!r}")
        return value


class Condition(_Strict):
    """One mapping of ``if``; several keys must all hold."""

    from_: AddressTest | None = Field(None, alias="from")
    to: AddressTest | None = None
    cc: AddressTest | None = None
    subject: TextTest | None = None
    body: TextTest | None = None
    text: TextTest | None = None  # the subject or the body
    header: HeaderTest | None = None
    has_attachment: bool | None = None
    language: Annotated[tuple[str, ...], BeforeValidator(_as_list)] | None = None
    all_: tuple[Condition, ...] | None = Field(None, alias="all", min_length=1)
    any_: tuple[Condition, ...] | None = Field(None, alias="any", min_length=1)
    not_: Condition | None = Field(None, alias="not")

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)

    @field_validator("all_", "any_")
    @classmethod
    def _no_empty_member(cls, value: tuple[Condition, ...] | None) -> tuple[Condition, ...] | None:
        for index, member in enumerate(value or ()):
            if member.is_empty():
                raise ValueError(f"item {index + 1} is an empty condition")
        return value

    @field_validator("not_")
    @classmethod
    def _not_empty(cls, value: Condition | None) -> Condition | None:
        if value is not None and value.is_empty():
            raise ValueError("empty condition")
        return value

    @field_validator("language")
    @classmethod
    def _languages(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for code in value or ():
            if not _LANGUAGE.match(code):
                raise ValueError(f"not a language code: {code!r} (write e.g. zh or en)")
        return value


# -- rules ------------------------------------------------------------------------------


class Actions(_Strict):
    queue: QueueName | None = None
    priority: PriorityName | None = None
    tags: Tags = ()
    assign: Address | None = None
    template: Name | None = None
    no_ack: bool | None = None
    drop: bool | None = None
    extract: dict[Name, Annotated[str, AfterValidator(_extract_regex)]] = {}

    def is_empty(self) -> bool:
        return self == Actions()


class Rule(_Strict):
    name: Annotated[str, Field(min_length=1)]
    if_: Condition | None = Field(None, alias="if")
    then: Actions = Actions()
    stop: bool = False

    @model_validator(mode="after")
    def _does_something(self) -> Rule:
        if self.then.is_empty() and not self.stop:
            raise ValueError("the rule does nothing: give `then:` or `stop: true`")
        return self

    def always(self) -> bool:
        return self.if_ is None or self.if_.is_empty()


# -- inline tests -----------------------------------------------------------------------


class InlineMail(_Strict):
    """A mail written inline; the real parser reads it, as it would a mail from outside."""

    from_: str = Field("someone@example.com", alias="from")
    to: Annotated[tuple[str, ...], BeforeValidator(_as_list)] = ("support@example.com",)
    cc: Annotated[tuple[str, ...], BeforeValidator(_as_list)] = ()
    subject: str = ""
    body: str = ""
    headers: dict[str, str] = {}
    attachments: Annotated[tuple[str, ...], BeforeValidator(_as_list)] = ()  # file names


class Expect(_Strict):
    queue: QueueName | None = None
    priority: PriorityName | None = None
    tags: Tags | None = None  # exactly these, in any order
    assign: Address | None = None
    template: Name | None = None
    no_ack: bool | None = None
    drop: bool | None = None
    fields: dict[str, str] | None = None  # exactly these
    rules: Annotated[tuple[str, ...], BeforeValidator(_as_list)] | None = None  # matched, in order


class RuleTest(_Strict):
    name: str | None = None
    mail: InlineMail | None = None
    file: str | None = None  # an .eml file, relative to the rules file
    expect: Expect

    @model_validator(mode="after")
    def _one_mail(self) -> RuleTest:
        if (self.mail is None) == (self.file is None):
            raise ValueError("give either `mail:` or `file:`")
        return self


# -- the file ---------------------------------------------------------------------------


class RulesFile(_Strict):
    """A file must name its queues: one without (empty, only comments) routes nowhere."""

    version: int = 1
    queues: Annotated[dict[Name, QueueSpec], Field(min_length=1)]
    defaults: DefaultsSpec = DefaultsSpec()
    priorities: dict[Name, PrioritySpec] = {
        "normal": PrioritySpec(first_response=timedelta(hours=24))
    }
    followup: FollowupSpec = FollowupSpec()
    calendar: CalendarSpec = ALWAYS
    rules: tuple[Rule, ...] = ()
    tests: tuple[RuleTest, ...] = ()

    @model_validator(mode="after")
    def _defaults_exist(self) -> RulesFile:
        """``defaults:`` left out means general/normal, which the file must then have."""
        if self.defaults.queue not in self.queues:
            raise ValueError(f"defaults.queue {self.defaults.queue!r} is not a queue")
        if self.defaults.priority not in self.priorities:
            raise ValueError(f"defaults.priority {self.defaults.priority!r} is not a priority")
        return self


def context_of(data: Any) -> dict[str, Collection[str]]:
    """The names other sections may refer to, read from the raw file before validation."""
    context: dict[str, Collection[str]] = {}
    for kind, builtin in (("queues", {"general"}), ("priorities", {"normal"})):
        section = data.get(kind, builtin) if isinstance(data, dict) else None
        if isinstance(section, dict | set):
            context[kind] = frozenset(str(key) for key in section)
    return context
