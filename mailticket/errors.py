"""The exception tree; one outcome per type.

    MailticketError
    ├── ConfigError          bad mailticket.toml / environment / rules.yaml: refuse to start
    ├── TemporaryFailure     storage or relay unavailable: SMTP 451, ingest exit 75, retry later
    │   └── StorageFull      the database's disk is full: SMTP 452 instead of 451
    └── MailRejected         this mail cannot be processed: store it raw as quarantined
        ├── ParseError       the bytes are not a mail we can read at all
        ├── LimitExceeded    the mail is over one of the limits in mailticket.parse.limits
        └── SenderRejected   no usable sender: nobody to answer, nobody to trust

Lower-level errors (SQLAlchemy, OSError, smtplib) are mapped to these at one boundary
per entry point, never deeper.
"""

from __future__ import annotations


class MailticketError(Exception):
    """Base of every error mailticket raises on purpose."""


class ConfigError(MailticketError):
    """Configuration is invalid; the message is one line naming the key or file:line."""


class TemporaryFailure(MailticketError):
    """A dependency (database, relay) is unavailable; nothing was committed, retry later."""


class StorageFull(TemporaryFailure):
    """The database's disk is full: as TemporaryFailure, but SMTP says 452 4.3.1
    (insufficient system storage, RFC 3463), so the sender's admin sees the cause."""


class MailRejected(MailticketError):
    """A mail failed a processing step; it is kept raw as quarantined with this reason.

    ``message_id`` is the mail's own Message-ID when it could be read ("" otherwise), so
    that the quarantine row and the log line name the mail.
    """

    def __init__(self, reason: str, message_id: str = "") -> None:
        super().__init__(reason)
        self.message_id = message_id

    def __reduce__(self) -> tuple[type[MailRejected], tuple[str, str]]:
        # Raised in parser processes: keep message_id across pickling.
        return type(self), (str(self), self.message_id)


class ParseError(MailRejected):
    """The bytes cannot be parsed as a mail at all."""


class LimitExceeded(MailRejected):
    """The mail is over a limit (header count or size, MIME nesting); the reason names it."""


class SenderRejected(MailRejected):
    """The From header gives no single valid address, and the mail is not a bounce or an
    auto-reply (which may come from no one)."""
