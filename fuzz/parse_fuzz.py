"""Coverage-guided fuzzing of mail.parse and the intake's decision (atheris, libFuzzer).

    .venv/bin/python fuzz/parse_fuzz.py -max_total_time=60 NEW_DIR tests/mails [CORPUS_DIR]

libFuzzer writes what it learns to NEW_DIR and reads the other folders as seeds, in
place (the shared corpus is never copied into the repository). Each input is parsed; a
MailRejected is an answer (intake quarantines the mail), unless parse() raised it
because it caught an exception: such a mail is lost to a bug, a crash. A parsed mail
must have a valid sender (or none) and headers without control characters, then goes
through ``decide`` over an empty store with the shipped rules, as ``mailticket
explain`` does on a new database. A crash is written as ``crash-<sha1>`` (see
``-artifact_prefix``); minimise it with ``-minimize_crash=1 -runs=10000 FILE`` and keep
the mail in tests/mails/fuzz/ as a regression test.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import atheris  # type: ignore[import-untyped]  # no type information shipped

with atheris.instrument_imports(include=["mailticket", "email"]):
    from mailticket.decide.decision import Context, decide
    from mailticket.decide.rules import load_rules
    from mailticket.decide.threads import MessageIdSigner
    from mailticket.errors import MailRejected
    from mailticket.ops.explain import EmptyView
    from mailticket.parse.mail import parse, sendable_address
    from mailticket.settings import TicketSettings

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = Context(
    TicketSettings(support_address="support@example.org", secret="fuzz"),
    load_rules(ROOT / "rules.yaml"),
    MessageIdSigner(b"fuzz", "MT", "example.org"),
    datetime(2026, 11, 2, tzinfo=UTC),
)
VIEW = EmptyView()
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def test_one_input(data: bytes) -> None:
    """One input: parse it, check what it gives, decide on it."""
    try:
        mail = parse(data, max_attachment_size=4096)
    except MailRejected as rejected:
        if rejected.__cause__ is not None:  # parse() caught a crash: the mail is lost to it
            raise rejected.__cause__ from rejected
        return
    if mail.from_addr and sendable_address(mail.from_addr) != mail.from_addr:
        raise AssertionError(f"invalid sender {mail.from_addr!r}")
    if CONTROL.search(mail.subject + mail.from_name + "".join(v for _, v in mail.headers)):
        raise AssertionError("a control character in a decoded header")
    decide(mail, VIEW, CONTEXT)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
