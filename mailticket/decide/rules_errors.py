"""Every problem of a rules file as one line an admin can act on: ``file:LINE: where: what``.

Pydantic's errors are translated here (its locations become the file's lines, its
wording becomes an admin's), and the one check that needs the whole rule list is made
here too: a rule that can never run because an earlier ``stop`` rule always matches first,
and, when the caller knows them, a queue whose people include one of our own addresses.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mailticket.decide import rules_schema
from mailticket.decide.rules_schema import QueueSpec, Rule
from mailticket.decide.yamlsource import Located, Path_

_PLAIN = {
    "missing": "missing",
    "dict_type": "should be a mapping (key: value)",
    "model_type": "should be a mapping (key: value)",
    "model_attributes_type": "should be a mapping (key: value)",
    "tuple_type": "should be a list",
    "list_type": "should be a list",
    "too_short": "should not be empty",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "literal_error": "not an allowed value",
}


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    text: str  # "file:line: where: what"


def pydantic_problems(exc: ValidationError, located: Located) -> list[Problem]:
    errors = exc.errors()
    return [_problem(error, located) for error in errors if not _misspelt(error, errors)]


def _misspelt(error: ErrorDetails, errors: Sequence[ErrorDetails]) -> bool:
    """A missing key that a close unknown key beside it explains: report the typo once."""
    if error["type"] != "missing":
        return False
    parent, name = error["loc"][:-1], str(error["loc"][-1])
    typos = [
        str(e["loc"][-1])
        for e in errors
        if e["type"] == "extra_forbidden" and e["loc"][:-1] == parent
    ]
    return bool(difflib.get_close_matches(name, typos, n=1, cutoff=0.75))


def _problem(error: ErrorDetails, located: Located) -> Problem:
    path: Path_ = tuple(
        part for part in error["loc"] if isinstance(part, str | int) and part != "[key]"
    )
    kind = error["type"]
    if kind in ("extra_forbidden", "missing"):
        name = str(path[-1])
        where, what = _label(path[:-1], located), _key_message(kind, name)
    else:
        where, what = _label(path, located), _value_message(error)
    line = located.line(path)
    return Problem(line, f"{located.name}:{line}: {where + ': ' if where else ''}{what}")


def _key_message(kind: str, name: str) -> str:
    if kind == "missing":
        return f"missing key {name!r}"
    close = difflib.get_close_matches(name, _vocabulary(), n=1, cutoff=0.75)
    if close and close[0] == name:
        return f"unknown key {name!r} (not allowed here)"
    return f"unknown key {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _value_message(error: ErrorDetails) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "string_type" and isinstance(value, bool | int | float | type(None)):
        return f"should be text, not {value!r}: quote it (YAML reads yes/no/on/off as true/false)"
    if kind == "string_type":
        return "should be text"
    message = _PLAIN.get(kind) or error["msg"].removeprefix("Value error, ")
    return message


def _label(path: Path_, located: Located) -> str:
    """``rule 'account security': then.queue``, ``test 3: expect``, ``priorities.urgent``."""
    head, rest = path[:2], path[2:]
    if len(head) == 2 and head[0] in ("rules", "tests") and isinstance(head[1], int):
        name = _rule_name(located.data, head[1]) if head[0] == "rules" else None
        label = f"rule {name!r}" if name else f"{head[0][:-1]} {head[1] + 1}"
        return label + (": " + _dotted(rest) if rest else "")
    return _dotted(path)


def _rule_name(data: Any, index: int) -> str | None:
    try:
        name = data["rules"][index]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) and name else None


def _dotted(path: Path_) -> str:
    return ".".join(f"[{p + 1}]" if isinstance(p, int) else p for p in path).replace(".[", "[")


@cache
def _vocabulary() -> tuple[str, ...]:
    """Every key the file may use, for "did you mean" hints."""
    models: list[type[BaseModel]] = [
        value
        for value in vars(rules_schema).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel
    ]
    return tuple(
        sorted({f.alias or name for model in models for name, f in model.model_fields.items()})
    )


def shadow_problems(rules: Sequence[tuple[int, Rule]], located: Located) -> list[Problem]:
    """Rules that can never run: an earlier `stop` rule matches every mail they could match."""
    problems: list[Problem] = []
    names: dict[str, int] = {}
    stops: list[tuple[int, Rule]] = []
    for index, rule in rules:
        line = located.line(("rules", index))
        if rule.name in names:
            text = f"rule {rule.name!r}: the name is already used by the rule at line {names[rule.name]}"
            problems.append(Problem(line, f"{located.name}:{line}: {text}"))
        names.setdefault(rule.name, line)
        blocker = next((s for s in stops if _covers(s[1], rule)), None)
        if blocker is not None:
            problems.append(_shadowed(index, rule, *blocker, located))
        if rule.stop:
            stops.append((index, rule))
    return problems


def _covers(earlier: Rule, later: Rule) -> bool:
    return earlier.always() or (not later.always() and earlier.if_ == later.if_)


def _shadowed(index: int, rule: Rule, at: int, blocker: Rule, located: Located) -> Problem:
    line, blocker_line = located.line(("rules", index)), located.line(("rules", at))
    why = "matches every mail (no `if`)" if blocker.always() else "has the same condition"
    text = (
        f"rule {rule.name!r} can never run: rule {blocker.name!r} (line {blocker_line}) "
        f"has `stop: true` and {why}"
    )
    return Problem(line, f"{located.name}:{line}: {text}")


@dataclass(frozen=True, slots=True)
class OwnAddresses:
    """The addresses mailticket itself sends from and reads (``tickets.support_address``,
    ``tickets.comment_address``): mail to them comes back as our own and is dropped, so no
    queue may name one as an agent or as its ``escalate_to``."""

    support: str | None = None
    comment: str | None = None

    def role(self, address: str) -> str | None:
        """Which of ours ``address`` is ("the support address"...), or None."""
        wanted = address.strip().lower()
        for role, own in (("support", self.support), ("comment", self.comment)):
            if own and own.strip().lower() == wanted:
                return f"the {role} address"
        return None


def own_address_problems(
    queues: Mapping[str, QueueSpec], located: Located, own: OwnAddresses
) -> list[Problem]:
    """``queue general: agent support@example.com is the support address``."""
    problems: list[Problem] = []
    for name, queue in queues.items():
        people: list[tuple[Path_, str, str]] = [
            (("queues", name, "agents", index), "agent", agent)
            for index, agent in enumerate(queue.agents)
        ]
        if queue.escalate_to:
            people.append((("queues", name, "escalate_to"), "escalate_to", queue.escalate_to))
        for path, what, address in people:
            role = own.role(address)
            if role is not None:
                line = located.line(path)
                text = f"queue {name}: {what} {address} is {role}"
                problems.append(Problem(line, f"{located.name}:{line}: {text}"))
    return problems
