"""Every whole mail of the shared corpus through the real intake (SQLite).

Nothing may raise or be lost; automatic mail (bounces, auto-replies, lists) never gets an
acknowledgement; a bounce never opens a ticket; only a mail without a usable sender or
over a limit is quarantined, never a bounce. Skips when the corpus is not here.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from mailticket.decide.guard import classify
from mailticket.outbound.outbox import message_bytes
from mailticket.parse.fingerprint import canonical_bytes_digest
from mailticket.parse.mail import parse
from mailticket.runtime.core import build_core
from mailticket.store.models import Inbound, Outbox, Ticket
from mailticket.store.seen import digest
from tests.conftest import Clock, make_settings
from tests.test_corpus import CORPUS, ENTRIES


def test_every_corpus_mail_goes_through_intake(tmp_path: Path, clock: Clock) -> None:
    if not ENTRIES:
        pytest.skip(
            f"shared corpus not found at {CORPUS}: it ships only with the development workspace"
        )
    messages = [entry for entry in ENTRIES if entry.kind == "message"]
    core = build_core(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"), clock=clock)
    outcomes: Counter[str] = Counter()
    automatic_ids: set[str] = set()
    identities: set[str] = set()
    quarantined: list[str] = []
    for entry in messages:
        raw = entry.read()
        result = core.intake.submit(raw, "import")
        outcomes[result.outcome] += 1
        if result.outcome == "quarantined":
            quarantined.append(f"{entry.name} ({entry.category}): {result.detail}")
            identities.add(f"sha256:{hashlib.sha256(raw).hexdigest()}")
            continue
        mail = parse(raw)
        # a mail is its Message-ID and what it says (a reused Message-ID is another mail)
        said = digest(mail)
        identities.add(
            f"{mail.message_id}#{said}"
            if mail.has_message_id
            else f"sha256c:{canonical_bytes_digest(raw)}"
        )
        if classify(mail, {"support@example.org"}).automatic:
            automatic_ids.add(mail.message_id)
    print(f"{len(messages)} corpus mails: {dict(outcomes)}")
    with Session(core.engine) as session:
        stored = session.exec(select(func.count()).select_from(Inbound)).one()
        acks = session.exec(select(Outbox).where(Outbox.template == "ack")).all()
        answered = {
            message_from_bytes(message_bytes(row), policy=policy.default)["In-Reply-To"]
            for row in acks
        }
        bounce_tickets = session.exec(
            select(func.count()).select_from(Ticket).where(Ticket.requester.like("mailer-daemon@%"))  # type: ignore[attr-defined]
        ).one()
    wrong = [q for q in quarantined if "(bounce)" in q or "(auto-reply)" in q]
    wrong += [
        q for q in quarantined if not q.split("): ", 1)[1].startswith(("sender: ", "limit: "))
    ]
    assert not wrong, "\n".join(wrong)
    assert stored == len(messages) - outcomes["duplicate"]  # every mail kept, once
    # sisimai's bsd/ and dos/ hold the same mails (LF vs CRLF): one identity, stored once
    assert outcomes["duplicate"] == len(messages) - len(identities)
    assert automatic_ids and not (answered & automatic_ids)
    assert bounce_tickets == 0
    core.engine.dispose()
