"""Commands at the top of an agent's mail, a requester's ``#close``, status requests (pure).

An agent's mail may start with command lines (``#close``, ``#priority high``…; blank lines
between them are fine); the first other line starts the reply text. ``parse`` reads the
commands and ``check`` validates them against the names ``rules.yaml`` knows
(``read_agent_mail`` does both in one pass). Every problem is told at once, each naming its
line, and then nothing is applied: a half-applied command list would leave the ticket in a
state the agent did not ask for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Final

from mailticket.threads import clean_subject

STATUSES: Final = {"close": "closed", "resolve": "resolved", "reopen": "open"}


@dataclass(frozen=True, slots=True)
class SetStatus:
    status: str  # "closed", "resolved" or "open"
    line: int


@dataclass(frozen=True, slots=True)
class Assign:
    agent: str  # lower-case address; "#assign" and "#assign me" name the sender
    line: int


@dataclass(frozen=True, slots=True)
class SetPriority:
    priority: str
    line: int


@dataclass(frozen=True, slots=True)
class SetQueue:
    queue: str
    line: int


@dataclass(frozen=True, slots=True)
class Tag:
    words: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Untag:
    words: tuple[str, ...]
    line: int


Command = SetStatus | Assign | SetPriority | SetQueue | Tag | Untag


@dataclass(frozen=True, slots=True)
class AgentMail:
    """What an agent's mail asks for: commands, whether it is a note, the text to relay."""

    commands: tuple[Command, ...]
    note: bool  # "#note": for the other agents only
    text: str  # the mail below the commands

    @property
    def commands_only(self) -> bool:
        """Nothing to relay: the commands change the ticket and no mail goes out."""
        return not self.text.strip()


@dataclass(frozen=True, slots=True)
class CommandErrors:
    """Why nothing was applied, one line per problem: ``line 2: #priority: …``."""

    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Known:
    """The names a command may use, from rules.yaml (in the file's order)."""

    queues: Sequence[str]
    priorities: Sequence[str]
    agents: Collection[str]  # lower-case addresses


_ADDRESS: Final = re.compile(r"[^@\s<>,;:\"]+@[^@\s<>,;:\"]+\.[^@\s<>,;:\"]+")
_WORD: Final = re.compile(r"\w[\w.-]*")
_HASH: Final = ("#", "＃")  # a Chinese input method types the full-width one


def parse(text: str, sender: str, known: Known | None = None) -> AgentMail | CommandErrors:
    """Split the command lines off the top of ``text`` and read them (and ``check`` them
    when ``known`` is given, so that every problem is told at once)."""
    lines = text.split("\n")
    commands: list[tuple[str, Command]] = []
    errors: list[tuple[int, str]] = []
    note = False
    body = len(lines)  # index of the first line of the reply text
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith(_HASH):
            body = number - 1
            break
        name, *args = line[1:].split() or [""]
        try:
            if name.lower() == "note":
                note = _note(args)
                continue
            command = _read(name.lower(), args, number, sender)
            commands.append((name, _checked(command, known) if known else command))
        except ValueError as problem:
            errors.append((number, f"line {number}: #{name}: {problem}"))
    errors += _conflicts(commands)
    if errors:
        return CommandErrors(tuple(error for _, error in sorted(errors, key=lambda e: e[0])))
    text = "\n".join(lines[body:]).strip("\n")
    return AgentMail(tuple(command for _, command in commands), note, text)


def _note(args: list[str]) -> bool:
    if args:
        raise ValueError(f"takes no argument (got {' '.join(args)!r})")
    return True


def _read(name: str, args: list[str], line: int, sender: str) -> Command:
    reader = _READERS.get(name)
    if reader is None:
        known = ", ".join(f"#{known}" for known in (*_READERS, "note"))
        raise ValueError(f"unknown command (known: {known})")
    return reader(args, line, sender)


def _status(status: str) -> Callable[[list[str], int, str], Command]:
    def read(args: list[str], line: int, sender: str) -> Command:
        if args:
            raise ValueError(f"takes no argument (got {' '.join(args)!r})")
        return SetStatus(status, line)

    return read


def _assign(args: list[str], line: int, sender: str) -> Command:
    if len(args) > 1:
        raise ValueError("takes one address, or 'me'")
    agent = args[0].strip("<>").lower() if args else "me"
    if agent == "me":
        return Assign(sender.lower(), line)
    if not _ADDRESS.fullmatch(agent):
        raise ValueError(f"not an email address: {args[0]!r}")
    return Assign(agent, line)


def _one_name(kind: str, make: Callable[[str, int], Command]) -> Callable[..., Command]:
    def read(args: list[str], line: int, sender: str) -> Command:
        if len(args) != 1:
            raise ValueError(f"takes one {kind} name")
        return make(args[0], line)

    return read


def _words(make: Callable[[tuple[str, ...], int], Command]) -> Callable[..., Command]:
    def read(args: list[str], line: int, sender: str) -> Command:
        if not args:
            raise ValueError("takes one or more words")
        bad = [word for word in args if not _WORD.fullmatch(word)]
        if bad:
            raise ValueError(f"not a tag: {bad[0]!r} (letters, digits, '_', '-', '.')")
        return make(tuple(dict.fromkeys(args)), line)

    return read


_READERS: Final[dict[str, Callable[[list[str], int, str], Command]]] = {
    **{name: _status(status) for name, status in STATUSES.items()},
    "assign": _assign,
    "priority": _one_name("priority", SetPriority),
    "queue": _one_name("queue", SetQueue),
    "tag": _words(Tag),
    "untag": _words(Untag),
}


def _conflicts(commands: Sequence[tuple[str, Command]]) -> list[tuple[int, str]]:
    """Two commands setting the same thing: which one the agent meant is a guess."""
    first: dict[type, tuple[str, Command]] = {}
    errors = []
    for name, command in commands:
        if isinstance(command, Tag | Untag):
            continue
        earlier_name, earlier = first.setdefault(type(command), (name, command))
        if earlier is not command:
            line = command.line
            message = f"#{name} conflicts with #{earlier_name} on line {earlier.line}"
            errors.append((line, f"line {line}: {message}"))
    return errors


def check(mail: AgentMail, known: Known) -> AgentMail | CommandErrors:
    """Validate names against rules.yaml; the result carries them spelt as the file does."""
    checked: list[Command] = []
    errors: list[str] = []
    for command in mail.commands:
        try:
            checked.append(_checked(command, known))
        except ValueError as problem:
            errors.append(f"line {command.line}: #{_NAMES[type(command)]}: {problem}")
    if errors:
        return CommandErrors(tuple(errors))
    return replace(mail, commands=tuple(checked))


_NAMES: Final[dict[type, str]] = {
    SetStatus: "status",
    Assign: "assign",
    SetPriority: "priority",
    SetQueue: "queue",
    Tag: "tag",
    Untag: "untag",
}


def _checked(command: Command, known: Known) -> Command:
    match command:
        case SetPriority(priority=name):
            return replace(command, priority=_known_name("priority", name, known.priorities))
        case SetQueue(queue=name):
            return replace(command, queue=_known_name("queue", name, known.queues))
        case Assign(agent=agent) if agent not in {a.lower() for a in known.agents}:
            raise ValueError(f"{agent} is not an agent of any queue")
    return command


def _known_name(kind: str, name: str, known: Sequence[str]) -> str:
    for candidate in known:
        if candidate.casefold() == name.casefold():
            return candidate
    raise ValueError(f"unknown {kind} {name!r} (known: {', '.join(known) or 'none'})")


def read_agent_mail(text: str, sender: str, known: Known) -> AgentMail | CommandErrors:
    """What the intake calls for a mail from an agent: commands read and checked."""
    return parse(text, sender, known)


def requester_closes(text: str, sender: str, requester: str) -> bool:
    """Whether this mail is the ticket's requester closing it: first line ``#close``.

    Only the requester may; a Cc participant's or anyone else's ``#close`` is just text
    (and gets no error mail: we do not answer strangers' commands).
    """
    if sender.strip().lower() != requester.strip().lower():
        return False
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    return first.lower() in {"#close", "＃close"}


def without_first_line(text: str) -> str:
    """The text below a requester's ``#close`` line, to store as the message."""
    lines = text.lstrip("\n").split("\n", 1)
    return lines[1].strip("\n") if len(lines) > 1 else ""


_TRAILING_PUNCTUATION: Final = "?？!！.。:："


def is_status_request(subject: str, status_subjects: Collection[str], prefix: str) -> bool:
    """Whether the subject asks for the sender's ticket list (``status``, ``我的工单``…).

    Reply prefixes (``Re:``, ``回复:``), tracking tags and trailing punctuation do not count,
    nor does letter case.
    """
    cleaned = clean_subject(subject, prefix).rstrip(_TRAILING_PUNCTUATION).strip().casefold()
    return cleaned != "" and cleaned in {" ".join(s.split()).casefold() for s in status_subjects}
