"""The states and log kinds are one closed list each, and the admin's docs know them all."""

from __future__ import annotations

import re

from mailticket.decide.states import EventKind, OutboxState, TicketStatus
from mailticket.followup.clocks import ActionKind
from tests.conftest import ROOT


def test_every_follow_up_action_is_a_kind_of_the_log() -> None:
    assert {a.value for a in ActionKind} <= {k.value for k in EventKind}


def test_docs_explain_every_kind_of_the_log_and_no_other() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split("### A ticket's log", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = {kind for row in rows for kind in re.findall(r"`([a-z_]+)`", row)}
    assert documented == {k.value for k in EventKind}


def test_states_read_and_compare_as_their_stored_values() -> None:
    assert TicketStatus("pending") is TicketStatus.PENDING
    assert TicketStatus.CLOSED == "closed" and f"{OutboxState.UNCERTAIN}" == "uncertain"
    assert "resolved" in {TicketStatus.RESOLVED}  # a status read from a row finds its enum
