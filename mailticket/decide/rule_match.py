"""Conditions of rules.yaml compiled into matchers (pure): mail in, "what matched" out.

A matcher's ``test`` returns None when the condition does not hold, or a short human
description of what made it hold ("subject contains '被盗'"); ``Routing.matched`` and
``mailticket explain`` show these. Every text test is one RE2 pass over the field (see
``rule_regex``), so matching cost is linear in the mail's size.

Chinese is written in two scripts: simplified (GB mail) and traditional (Big5, Hong Kong,
Taiwan). ``contains`` and ``equals`` fold traditional characters to simplified on both
sides, so an admin writes a word once, in either script. For ``contains`` the fold is
compiled into the pattern (账 becomes [账帐帳賬], from OpenCC's t2s table, built once per
process, and 帐 = 账, which mainland mail mixes) rather than applied to every mail: a
mail's text is never copied or converted, and routing costs what it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final, Protocol

import re2  # type: ignore[import-untyped]

from mailticket.decide.rule_regex import Pattern, compile_pattern, encode
from mailticket.decide.rules_schema import AddressTest, Condition, HeaderTest, TextTest
from mailticket.parse.mail import InboundMail

SHOWN: Final = 60  # characters of a matched text quoted back in "what matched"
# CJK unified ideographs, extension A and the compatibility block: where the two scripts differ
_HAN: Final = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
# simplified variants that mail mixes and OpenCC keeps apart: 帐号 = 账号 (so 帳號 = 賬號)
_VARIANTS: Final = {"帐": "账"}


@dataclass(frozen=True, slots=True)
class Scripts:
    """Traditional -> simplified, one character to one (OpenCC's t2s), and back."""

    fold: dict[int, str]  # a str.translate table: traditional code point -> simplified
    forms: dict[str, str]  # simplified -> it and every traditional form, when there are any

    def word_source(self, word: str) -> str:
        """RE2 source finding ``word`` in either script, or a mix: 号码 -> [号號][码碼]."""
        parts = []
        for char in word:
            forms = self.forms.get(char.translate(self.fold))
            parts.append(f"[{forms}]" if forms else re2.escape(char))
        return "".join(parts)

    def same(self, one: str, other: str) -> bool:
        return one.translate(self.fold).casefold() == other.translate(self.fold).casefold()


@cache
def scripts() -> Scripts:
    """Built once per process from a single OpenCC call (about 30,000 characters, 25 ms);
    imported here, so commands that never compile a rule do not load OpenCC."""
    import opencc

    chars = [chr(code) for low, high in _HAN for code in range(low, high + 1)]
    folded = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    pairs = [(c, _VARIANTS.get(s, s)) for c, s in zip(chars, folded, strict=True) if len(s) == 1]
    pairs = [(c, s) for c, s in pairs if c != s]
    forms: dict[str, str] = {}
    for traditional, simplified in pairs:
        forms[simplified] = forms.get(simplified, simplified) + traditional
    return Scripts({ord(t): s for t, s in pairs}, forms)


def compile_words(words: Sequence[str]) -> Pattern:
    """One case-insensitive pattern finding any of ``words`` as plain text, in either script."""
    return compile_pattern("(?i)" + "|".join(scripts().word_source(word) for word in words))


class MailText:
    """The fields rules look at in one mail; each is encoded for RE2 once, when first used.

    A field has one or more parts, each named for messages: ``text`` is the subject and
    the body, ``from`` the sender's address and display name, ``to`` every address.
    """

    def __init__(self, mail: InboundMail) -> None:
        self.mail = mail
        self._encoded: dict[str, tuple[tuple[str, bytes], ...]] = {}

    def parts(self, field: str) -> tuple[tuple[str, str], ...]:
        mail = self.mail
        if field == "text":
            return (("subject", mail.subject), ("body", mail.text))
        if field == "subject":
            return (("subject", mail.subject),)
        if field == "body":
            return (("body", mail.text),)
        if field == "from":
            return tuple(("from", v) for v in (mail.from_addr, mail.from_name) if v)
        if field in ("to", "cc"):
            return tuple((field, v) for v in (mail.to if field == "to" else mail.cc))
        name = field.removeprefix("header:")
        return tuple((f"header {name}", v) for v in mail.header(name))

    def encoded(self, field: str) -> tuple[tuple[str, bytes], ...]:
        if field == "text":  # the body is encoded once, whether tests name text or body
            return self.encoded("subject") + self.encoded("body")
        if field not in self._encoded:
            self._encoded[field] = tuple((label, encode(v)) for label, v in self.parts(field))
        return self._encoded[field]


class Matcher(Protocol):
    def test(self, text: MailText) -> str | None: ...
    def describe(self) -> str: ...


def _quote(text: str) -> str:
    """'text' on one line, shortened; not repr(): a regex's backslashes stay single."""
    flat = " ".join(text.split())
    return "'" + (flat if len(flat) <= SHOWN else flat[: SHOWN - 1] + "…") + "'"


def _listed(values: Sequence[str]) -> str:
    return ", ".join(_quote(v) for v in values)


@dataclass(frozen=True, slots=True)
class Contains:
    label: str
    field: str
    words: tuple[str, ...]
    pattern: Pattern

    def test(self, text: MailText) -> str | None:
        for label, value in text.encoded(self.field):
            found = self.pattern.search(value)
            if found is not None:
                same = scripts().same
                word = next((w for w in self.words if same(w, found[0])), found[0])
                written = (
                    "" if word.casefold() == found[0].casefold() else f" as {_quote(found[0])}"
                )
                return f"{label} contains {_quote(word)}{written}"
        return None

    def describe(self) -> str:
        return f"{self.label} contains any of {_listed(self.words)}"


@dataclass(frozen=True, slots=True)
class Matches:
    label: str
    field: str
    patterns: tuple[Pattern, ...]

    def test(self, text: MailText) -> str | None:
        for pattern in self.patterns:
            for label, value in text.encoded(self.field):
                found = pattern.search(value)
                if found is not None:
                    return f"{label} matches {_quote(pattern.source)} ({_quote(found[0])})"
        return None

    def describe(self) -> str:
        return f"{self.label} matches {_listed([p.source for p in self.patterns])}"


@dataclass(frozen=True, slots=True)
class Equals:
    label: str
    field: str
    words: tuple[str, ...]

    def test(self, text: MailText) -> str | None:
        fold = scripts().fold
        wanted = {w.strip().translate(fold).casefold(): w for w in self.words}
        for label, value in text.parts(self.field):
            word = wanted.get(value.strip().translate(fold).casefold())
            if word is not None:
                return f"{label} equals {_quote(word)}"
        return None

    def describe(self) -> str:
        return f"{self.label} equals one of {_listed(self.words)}"


@dataclass(frozen=True, slots=True)
class Domain:
    """The domain after the last '@', equal to a listed domain or a subdomain of it."""

    label: str
    field: str
    domains: tuple[str, ...]

    def test(self, text: MailText) -> str | None:
        for label, value in text.parts(self.field):
            host = value.rpartition("@")[2].strip().lower()
            if "@" not in value or not host:
                continue
            for domain in self.domains:
                if host == domain or host.endswith("." + domain):
                    return f"{label} domain {_quote(domain)} ({value})"
        return None

    def describe(self) -> str:
        return f"{self.label} domain {_listed(self.domains)}"


@dataclass(frozen=True, slots=True)
class Present:
    label: str
    field: str

    def test(self, text: MailText) -> str | None:
        return f"{self.label} present" if text.parts(self.field) else None

    def describe(self) -> str:
        return f"{self.label} present"


@dataclass(frozen=True, slots=True)
class HasAttachment:
    wanted: bool

    def test(self, text: MailText) -> str | None:
        names = [a.filename for a in text.mail.attachments]
        if bool(names) != self.wanted:
            return None
        return f"has_attachment ({', '.join(names)})" if names else "no attachment"

    def describe(self) -> str:
        return "has_attachment" if self.wanted else "no attachment"


@dataclass(frozen=True, slots=True)
class Language:
    codes: tuple[str, ...]

    def test(self, text: MailText) -> str | None:
        found = text.mail.language
        return f"language {found}" if found in self.codes else None

    def describe(self) -> str:
        return f"language {' or '.join(self.codes)}"


@dataclass(frozen=True, slots=True)
class All:
    members: tuple[Matcher, ...]

    def test(self, text: MailText) -> str | None:
        found: list[str] = []
        for member in self.members:
            why = member.test(text)
            if why is None:
                return None
            found.append(why)
        return " and ".join(found)

    def describe(self) -> str:
        return "(" + " and ".join(m.describe() for m in self.members) + ")"


@dataclass(frozen=True, slots=True)
class Any_:
    members: tuple[Matcher, ...]

    def test(self, text: MailText) -> str | None:
        return next((why for m in self.members if (why := m.test(text)) is not None), None)

    def describe(self) -> str:
        return "(" + " or ".join(m.describe() for m in self.members) + ")"


@dataclass(frozen=True, slots=True)
class Not:
    member: Matcher

    def test(self, text: MailText) -> str | None:
        return None if self.member.test(text) is not None else f"not {self.member.describe()}"

    def describe(self) -> str:
        return f"not {self.member.describe()}"


def compile_condition(condition: Condition) -> Matcher:
    """The matcher for one ``if`` mapping (several keys: all must hold)."""
    members: list[Matcher] = []
    for label, test in (
        ("from", condition.from_),
        ("to", condition.to),
        ("cc", condition.cc),
        ("subject", condition.subject),
        ("body", condition.body),
        ("text", condition.text),
    ):
        if test is not None:
            members += _field_tests(label, label, test)
    if condition.header is not None:
        members += _header_tests(condition.header)
    if condition.has_attachment is not None:
        members.append(HasAttachment(condition.has_attachment))
    if condition.language is not None:
        members.append(Language(condition.language))
    if condition.all_ is not None:
        members.append(All(tuple(compile_condition(c) for c in condition.all_)))
    if condition.any_ is not None:
        members.append(Any_(tuple(compile_condition(c) for c in condition.any_)))
    if condition.not_ is not None:
        members.append(Not(compile_condition(condition.not_)))
    return members[0] if len(members) == 1 else All(tuple(members))


def _header_tests(header: HeaderTest) -> list[Matcher]:
    label, field = f"header {header.name}", f"header:{header.name.lower()}"
    return _field_tests(label, field, header) if header.tests() else [Present(label, field)]


def _field_tests(label: str, field: str, test: TextTest) -> list[Matcher]:
    found: list[Matcher] = []
    if test.contains:
        found.append(Contains(label, field, test.contains, compile_words(test.contains)))
    if test.matches:
        found.append(Matches(label, field, tuple(compile_pattern(p) for p in test.matches)))
    if test.equals:
        found.append(Equals(label, field, test.equals))
    if isinstance(test, AddressTest) and test.domain:
        found.append(Domain(label, field, test.domain))
    return found


@dataclass(frozen=True, slots=True)
class Extractor:
    """``extract: {name: regex}``: the first match in the subject, else in the body.

    The value is the pattern's first named group, or the whole match when it has none.
    """

    name: str
    pattern: Pattern
    max_length: int = 200  # a field is an identifier, not a copy of the mail

    def pull(self, text: MailText) -> str | None:
        for _, value in text.encoded("text"):
            found = self.pattern.search(value)
            if found is not None and found[1]:
                return found[1][: self.max_length]
        return None
