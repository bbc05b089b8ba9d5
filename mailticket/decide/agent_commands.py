"""Commands at the top of an agent's mail, a requester's ``#close``, status requests (pure).

An agent's mail may start with command lines (``#close``, ``#priority high``…; blank lines
between them are fine); the first other line starts the reply text. ``parse`` reads the
commands and ``check`` validates them against the names ``rules.yaml`` knows
(``read_agent_mail`` does both in one pass). Every problem is told at once, each naming its
line, and then nothing is applied: a half-applied command list would leave the ticket in a
state the agent did not ask for.

Besides the ticket's status, assignee, priority, queue and tags, an agent decides who is on
Cc (``#cc add <email>…``, ``#cc remove <email>…``: a stranger's Cc is only proposed) and
releases mail the MTA in front called spam (``#notspam``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Final

from mailticket.decide.states import TicketStatus
from mailticket.decide.threads import clean_subject
from mailticket.parse.mail import sendable_address

STATUSES: Final = {
    "close": TicketStatus.CLOSED, "resolve": TicketStatus.RESOLVED, "reopen": TicketStatus.OPEN,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SetStatus:
    status: TicketStatus  # closed, resolved or open
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


@dataclass(frozen=True, slots=True)
class CcAdd:
    """``#cc add <email>``: one per address (``#cc add a@x b@y`` gives two)."""

    address: str  # as mail.sendable_address writes it: lower case, an IDN in ASCII
    line: int


@dataclass(frozen=True, slots=True)
class CcRemove:
    """``#cc remove <email>``: one per address."""

    address: str
    line: int


@dataclass(frozen=True, slots=True)
class NotSpam:
    """``#notspam``: the ticket the MTA's spam verdict held back is a real one."""

    line: int


Command = SetStatus | Assign | SetPriority | SetQueue | Tag | Untag | CcAdd | CcRemove | NotSpam
Reader = Callable[[list[str], int, str], Command | tuple[Command, ...]]


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
            for command in _read(name.lower(), args, number, sender):
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


def _read(name: str, args: list[str], line: int, sender: str) -> tuple[Command, ...]:
    reader = _READERS.get(name)
    if reader is None:
        known = ", ".join(f"#{known}" for known in (*_READERS, "note"))
        raise ValueError(f"unknown command (known: {known})")
    read = reader(args, line, sender)
    return read if isinstance(read, tuple) else (read,)


def _status(status: TicketStatus) -> Reader:
    def read(args: list[str], line: int, sender: str) -> Command:
        if args:
            raise ValueError(f"takes no argument (got {' '.join(args)!r})")
        return SetStatus(status, line)

    return read


def _not_spam(args: list[str], line: int, sender: str) -> Command:
    if args:
        raise ValueError(f"takes no argument (got {' '.join(args)!r})")
    return NotSpam(line)


_CC: Final[dict[str, Callable[[str, int], Command]]] = {"add": CcAdd, "remove": CcRemove}
_LIST_SEPARATORS: Final = re.compile(r"[,;]")


def _cc(args: list[str], line: int, sender: str) -> tuple[Command, ...]:
    """``#cc add|remove <email>…``: addresses apart by spaces or commas, ``<>`` allowed."""
    make = _CC.get(args[0].lower()) if args else None
    if make is None:
        raise ValueError("takes 'add' or 'remove', then one or more email addresses")
    words = [word.strip("<>") for arg in args[1:] for word in _LIST_SEPARATORS.split(arg)]
    if not any(words):
        raise ValueError(f"{args[0].lower()} takes one or more email addresses")
    addresses = []
    for word in filter(None, words):
        address = sendable_address(word)
        if address is None:
            raise ValueError(f"not an email address: {word!r}")
        addresses.append(address)
    return tuple(make(address, line) for address in dict.fromkeys(addresses))


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


_READERS: Final[dict[str, Reader]] = {
    **{name: _status(status) for name, status in STATUSES.items()},
    "assign": _assign,
    "priority": _one_name("priority", SetPriority),
    "queue": _one_name("queue", SetQueue),
    "tag": _words(Tag),
    "untag": _words(Untag),
    "cc": _cc,
    "notspam": _not_spam,
}


def _conflicts(commands: Sequence[tuple[str, Command]]) -> list[tuple[int, str]]:
    """Two commands setting the same thing: which one the agent meant is a guess. (Adding
    the same address twice, or a tag, is no conflict; adding and removing one is.)"""
    first: dict[object, tuple[str, Command]] = {}
    errors = []
    for name, command in commands:
        if isinstance(command, Tag | Untag):
            continue
        cc = isinstance(command, CcAdd | CcRemove)
        key = ("cc", command.address) if isinstance(command, CcAdd | CcRemove) else type(command)
        earlier_name, earlier = first.setdefault(key, (name, command))
        if earlier is command or (cc and type(earlier) is type(command)):
            continue
        line = command.line
        message = f"{_label(name, command)} conflicts with {_label(earlier_name, earlier)}"
        errors.append((line, f"line {line}: {message} on line {earlier.line}"))
    return errors


def _label(name: str, command: Command) -> str:
    match command:
        case CcAdd(address=address):
            return f"#{name} add {address}"
        case CcRemove(address=address):
            return f"#{name} remove {address}"
    return f"#{name}"


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
    CcAdd: "cc",
    CcRemove: "cc",
    NotSpam: "notspam",
}


def _checked(command: Command, known: Known) -> Command:
    match command:
        case SetPriority(priority=name):
            return replace(command, priority=_known_name("priority", name, known.priorities))
        case SetQueue(queue=name):
            return replace(command, queue=_known_name("queue", name, known.queues))
        case Assign(agent=agent) if agent not in {a.lower() for a in known.agents}:
            raise ValueError(f"{agent} is not an agent of any queue")
        case CcAdd(address=address) if address in {a.lower() for a in known.agents}:
            raise ValueError(f"{address} is an agent: agents are never on a ticket's Cc")
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
