"""What one mail may hold, and what happens past each limit (pure).

Every limit keeps the raw mail: past a hard limit the mail is quarantined (LimitExceeded,
the reason names the limit); past a soft one it is stored with a line in
``InboundMail.limits`` saying what was left out.

=============================  =========================  ====================================
limit                          value                      past it
=============================  =========================  ====================================
message size                   ``smtp.max_message_size``  SMTP ``552 5.3.4`` (smtp_inbox)
header fields in one block     1,000                      quarantined
one header field (folded)      102,400 bytes              quarantined
MIME nesting that is read      40 levels                  the deeper parts kept whole as one
                                                          attachment (``parts.eml``), noted
MIME nesting the parser reads  ~500 levels (the stdlib    quarantined
                               parser's recursion)
an attachment                  ``max_attachment_size``    name and size kept, content not,
                                                          noted
processing time                ``max_processing_time``    quarantined (parse_pool)
=============================  =========================  ====================================

Why these values: 102,400 bytes is Postfix's ``header_size_limit``, the largest header
mail through a Postfix relay can carry unchanged (Postfix cuts the rest). No MTA caps the
number of fields by default, but real header blocks stay small (82 fields in the largest
of the development corpus, an Office 365 bounce; Postfix bounces a mail after 50
``Received`` hops): 1,000 is an order of magnitude above real mail and bounds the work of
decoding. A forward of a forward adds two levels of nesting, so 40 levels is twenty
forwards deep; deeper parts are still kept, whole, as an attachment that a mail client
opens, so the ticket is opened and nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from email.message import Message
from typing import Final

MAX_HEADER_FIELDS: Final = 1_000
MAX_HEADER_BYTES: Final = 102_400
MAX_DEPTH: Final = 40
TOO_DEEP: Final = "MIME nesting too deep for the parser to read (hundreds of levels)"


def header_problem(parts: Iterable[Message]) -> str | None:
    """Why the header blocks of ``parts`` (the mail's, then each part's) are over a
    limit, or None when they are not."""
    for index, part in enumerate(parts):
        found = _block_problem(part.raw_items())
        if found:
            return f"{'the mail' if index == 0 else f'MIME part {index}'} {found}"
    return None


def _block_problem(fields: Iterable[tuple[str, object]]) -> str | None:
    """What is over a limit in one header block (values as read: 8-bit bytes count one)."""
    count = 0
    for name, value in fields:
        count += 1
        size = len(name) + 2 + len(str(value))
        if size > MAX_HEADER_BYTES:
            shown = name.strip()[:40]
            return f"has a {shown!r} field of {size:,} bytes (limit {MAX_HEADER_BYTES:,})"
    if count > MAX_HEADER_FIELDS:
        return f"has {count:,} header fields (limit {MAX_HEADER_FIELDS:,})"
    return None


def depth_note(filename: str) -> str:
    """The note for the parts below MAX_DEPTH, kept whole as attachment ``filename``."""
    return f"MIME nesting deeper than {MAX_DEPTH} levels: the deeper parts are kept whole as {filename!r}"


def attachment_note(filename: str, size: int, cap: int) -> str:
    """The note for an attachment over ``tickets.max_attachment_size``."""
    return (
        f"attachment {filename!r} is {size:,} bytes, over tickets.max_attachment_size "
        f"({cap:,}): its name and size are kept, not its content"
    )
