"""The requester's files in the mail agents get: attached up to a budget, listed beyond (pure).

Agents work from their mail client, so a notification carries what the requester sent
(the screenshot, the log) in the order sent, while all of them together stay within
``agents.max_attachment_bytes``; every other file is listed by name and size, with the
command that writes it out. A copy agents get never holds a secret the scanner can find:
a text file is attached with its secrets masked; a file whose secret cannot be masked in
place (a forwarded mail, HTML, a file past the scanner's reach) is withheld and listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mailticket.decide.secret_scan import mask_secrets, scan_mail
from mailticket.parse.mime_parts import AttachedFile

__all__ = ["AgentFiles", "FileNote", "files_for_agents", "masked_copy"]

File = tuple[str, str, bytes]  # (file name, content type, bytes): what Outgoing attaches

NOT_KEPT: Final = "not kept: over tickets.max_attachment_size (the raw mail has it)"
OVER_BUDGET: Final = "not attached: over agents.max_attachment_bytes"
WITHHELD: Final = "withheld: it holds a secret that cannot be masked in place"


@dataclass(frozen=True, slots=True)
class FileNote:
    """A line of the notification's file list; ``note`` is empty when it is attached as is."""

    filename: str
    content_type: str
    size: int
    attached: bool
    note: str = ""

    @property
    def size_text(self) -> str:
        return human_size(self.size)


@dataclass(frozen=True, slots=True)
class AgentFiles:
    attached: tuple[File, ...]
    notes: tuple[FileNote, ...]  # every file of the mail, attached or not, in order


NO_FILES: Final = AgentFiles((), ())


def files_for_agents(
    attachments: Sequence[AttachedFile], budget: int, *, secrets: bool
) -> AgentFiles:
    """What of ``attachments`` goes to agents; ``secrets`` is true when the mail holds any
    (then each file is checked and masked; without, none is read)."""
    attached: list[File] = []
    notes: list[FileNote] = []
    left = budget
    for part in attachments:
        if part.content is None:
            notes.append(FileNote(part.filename, part.content_type, part.size, False, NOT_KEPT))
            continue
        content, note = masked_copy(part.filename, part.content) if secrets else (part.content, "")
        if content is None:
            notes.append(FileNote(part.filename, part.content_type, part.size, False, note))
        elif len(content) > left:
            notes.append(FileNote(part.filename, part.content_type, part.size, False, OVER_BUDGET))
        else:
            left -= len(content)
            attached.append((part.filename, part.content_type, content))
            notes.append(FileNote(part.filename, part.content_type, part.size, True, note))
    return AgentFiles(tuple(attached), tuple(notes))


def masked_copy(filename: str, content: bytes) -> tuple[bytes | None, str]:
    """``content`` safe to show: as is, with its secrets masked (UTF-8 text), or None
    (withheld); and the note that says which."""
    if not scan_mail("", attachments=((filename, content),)):
        return content, ""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None, WITHHELD
    masked = mask_secrets(text).encode("utf-8")
    if scan_mail("", attachments=((filename, masked),)):
        return None, WITHHELD
    return masked, "secrets masked"


def human_size(size: int) -> str:
    """1,234 bytes as "1.2 KB": what a mail client shows beside a file."""
    if size < 1024:
        return f"{size:,} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
