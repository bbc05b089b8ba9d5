"""The exception tree; one outcome per type.

    MailticketError
    ├── ConfigError          bad mailticket.toml / environment / rules.yaml: refuse to start
    ├── TemporaryFailure     storage or relay unavailable: SMTP 451, ingest exit 75, retry later
    └── MailRejected         this mail cannot be processed: store it raw as quarantined
        └── ParseError       the bytes are not a mail we can read at all

Lower-level errors (SQLAlchemy, OSError, smtplib) are mapped to these at one boundary
per entry point, never deeper.
"""


class MailticketError(Exception):
    """Base of every error mailticket raises on purpose."""


class ConfigError(MailticketError):
    """Configuration is invalid; the message is one line naming the key or file:line."""


class TemporaryFailure(MailticketError):
    """A dependency (database, relay) is unavailable; nothing was committed, retry later."""


class MailRejected(MailticketError):
    """A mail failed a processing step; it is kept raw as quarantined with this reason."""


class ParseError(MailRejected):
    """The bytes cannot be parsed as a mail at all."""
