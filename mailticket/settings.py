"""Frozen settings from mailticket.toml plus MAILTICKET_<SECTION>_<KEY> environment variables.

Built once by ``load_settings`` and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from mailticket.errors import ConfigError
from mailticket.units import Rate, parse_duration, parse_rate, parse_size

DEFAULT_CONFIG = Path("mailticket.toml")
ENV_PREFIX = "MAILTICKET_"

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
RateLimit = Annotated[Rate, BeforeValidator(parse_rate)]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseSettings(Section):
    url: str = "sqlite:///mailticket.db"
    busy_timeout: Duration = timedelta(seconds=5)
    # serve: intake's transactions in a process of their own (a second core), or in a
    # thread of the daemon's process (see store_process.py)
    writer: Literal["process", "thread"] = "process"


class SmtpSettings(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    accept: tuple[str, ...] = ()  # empty: accept every recipient
    max_message_size: Size = 25 * 1024 * 1024
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> SmtpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        return self


class ImapAccount(Section):
    name: str = ""
    host: str
    port: int = 993
    ssl: bool = True
    starttls: bool = False
    username: str
    password: str | None = None
    password_file: Path | None = None
    folder: str = "INBOX"
    processed_folder: str | None = None
    poll_interval: Duration = timedelta(seconds=60)
    idle: bool = True
    since: date | None = None
    # the server's own Authentication-Results (agents.trusted_authserv_id) and spam
    # verdict headers are read on this account's mail: only when the MTA that delivers to
    # this mailbox strips incoming copies of them (docs/postfix.md)
    trust_authentication_results: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ImapAccount:
        if (self.password is None) == (self.password_file is None):
            raise ValueError("set one of password and password_file")
        if self.processed_folder is not None and self.processed_folder == self.folder:
            raise ValueError("processed_folder must differ from folder")
        if self.ssl and self.starttls:
            raise ValueError("starttls needs ssl = false (and usually port = 143)")
        return self


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _dns_name(value: object) -> object:
    """A DKIM selector or domain: ASCII (IDNA) labels, lower-cased, no trailing dot."""
    if not isinstance(value, str):
        return value
    name = value.strip().lower().removesuffix(".")
    if not _DNS_NAME.fullmatch(name):
        raise ValueError(f"not a DNS name: {value!r}")
    return name


DnsName = Annotated[str, BeforeValidator(_dns_name)]


class OutboundSettings(Section):
    transport: Literal["maildir", "smtp"] = "maildir"
    maildir: Path = Path("outbox")
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: Duration = timedelta(seconds=60)
    max_attempts: int = 8
    retry_base: Duration = timedelta(seconds=60)
    dkim_selector: DnsName | None = None  # the key is at <selector>._domainkey.<dkim_domain>
    dkim_domain: DnsName | None = None
    dkim_key: Path | None = None  # read when the transport is built: see dkim_sign.py

    @model_validator(mode="after")
    def _dkim_all_or_none(self) -> OutboundSettings:
        given = [self.dkim_selector, self.dkim_domain, self.dkim_key]
        if None in given and any(value is not None for value in given):
            raise ValueError("dkim_selector, dkim_domain and dkim_key must be set together")
        return self


class TicketSettings(Section):
    support_address: str = "support@localhost"
    comment_address: str | None = None
    prefix: str = "MT"
    rules_file: Path = Path("rules.yaml")
    templates_dir: Path = Path("templates")
    max_attachment_size: Size = 10 * 1024 * 1024
    max_auto_replies_per_sender: int = 10
    reopen_window: Duration = timedelta(days=30)
    foreign_reply: Literal["new_ticket", "note"] = "new_ticket"
    secret: str | None = None
    bounce_block: Duration = timedelta(days=30)
    status_subjects: tuple[str, ...] = ("status", "my tickets", "我的工单", "工单状态")
    max_processing_time: Duration = timedelta(seconds=60)  # parse a mail; past it: quarantined
    # budgets for automatic answers (acknowledgements, status, resolved, agent_error): a
    # tripped one pauses automatic answers to that address for auto_reply_pause
    auto_reply_burst: RateLimit = Rate(5, timedelta(minutes=10))  # per recipient
    auto_reply_per_ticket: RateLimit = Rate(3, timedelta(hours=1))  # per recipient and ticket
    auto_reply_global: RateLimit = Rate(600, timedelta(minutes=1))  # all recipients together
    auto_reply_pause: Duration = timedelta(hours=1)
    # a ticket's participants (requester and Cc) and the recipients of any one mail we send
    max_participants: int = 10
    # relays and notices on one ticket (loop guard: two autoresponders through us); past
    # it the ticket is tagged loop-suspected, the agents get one notice, nothing more goes
    ticket_mail_budget: RateLimit = Rate(30, timedelta(hours=1))
    # new tickets one sender opens with an agent_new each; past it, one digest to agents
    new_tickets_per_sender: RateLimit = Rate(5, timedelta(minutes=10))

    @model_validator(mode="after")
    def _participants(self) -> TicketSettings:
        if self.max_participants < 1:
            raise ValueError("max_participants must be at least 1")
        return self


def _network(value: object) -> object:
    """An IP network ("10.0.0.0/8", "::1", "127.0.0.1"), checked now: a typo here would
    trust nobody, or everybody."""
    if not isinstance(value, str):
        return value
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"not an IP network: {value!r}") from None


Network = Annotated[str, BeforeValidator(_network)]


class AgentSettings(Section):
    # an agent's mail acts only when authenticated (see agent_auth.py); false is unsafe on
    # the Internet, and `status` says so
    require_authenticated: bool = True
    trusted_authserv_id: str | None = None
    # SMTP peers whose Authentication-Results and spam verdict headers are read
    trusted_relays: tuple[Network, ...] = ()
    # the requester's files attached to agent_new / agent_update, all together up to this
    # (the rest are listed by name and size); 0 lists them all, attaches none
    max_attachment_bytes: Size = 10 * 1024 * 1024
    # the language of the mail agents get (a queue's `language` in rules.yaml wins); the
    # requester's mail follows the requester's language
    language: str = "en"


class SpamSettings(Section):
    """The verdict of the MTA in front (rspamd, SpamAssassin, DMARC), read only on mail
    from agents.trusted_relays or an IMAP account with trust_authentication_results."""

    enabled: bool = True
    # X-Spam-Flag: YES, X-Spam: Yes, X-Spam-Status: Yes, score=...
    flag_headers: tuple[str, ...] = ("x-spam-flag", "x-spam", "x-spam-status")
    # rspamd's X-Spamd-Result "default: False [12.3 / 15.0]", X-Spam-Score: 7.1 (X-Spam-Status
    # has its own Yes/No, read as a flag)
    score_headers: tuple[str, ...] = ("x-spamd-result", "x-spam-score")
    score_threshold: float = 6.0
    # Authentication-Results (from agents.trusted_authserv_id): dmarc=fail under a reject or
    # quarantine policy, or spf=fail
    dmarc_fail: bool = True
    spf_fail: bool = False


class SchedulerSettings(Section):
    sweep_interval: Duration = timedelta(seconds=30)


class MetricsSettings(Section):
    port: int | None = None
    host: str = "127.0.0.1"


class LogSettings(Section):
    format: Literal["text", "json"] = "text"
    level: str = "INFO"


class Settings(Section):
    database: DatabaseSettings = DatabaseSettings()
    smtp: SmtpSettings = SmtpSettings()
    imap: tuple[ImapAccount, ...] = ()
    outbound: OutboundSettings = OutboundSettings()
    tickets: TicketSettings = TicketSettings()
    agents: AgentSettings = AgentSettings()
    spam: SpamSettings = SpamSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    metrics: MetricsSettings = MetricsSettings()
    log: LogSettings = LogSettings()


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (or ./mailticket.toml when present), overlay the environment, validate.

    With a file, every relative path (from the file, the environment or a default) is
    made relative to the file's folder: a command run from elsewhere (an MTA's pipe, cron)
    finds the same database, rules and templates as the daemon. Without a file they stay
    relative to the working directory."""
    source = path if path is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    data = _read_toml(source) if source is not None else {}
    variables = _overlay_environment(data, environ or {})
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source, variables)) from None
    if source is None:
        return settings
    return rooted(settings, Path(os.path.abspath(source)).parent)  # lexically: no symlinks


def rooted(settings: Settings, folder: Path) -> Settings:
    """``settings`` with each relative path, and a relative SQLite file in
    ``database.url``, under ``folder`` (absolute ones are kept)."""
    sections = {name: _rooted(getattr(settings, name), folder) for name in Settings.model_fields}
    database = settings.database
    url = rooted_url(database.url, folder)
    sections["database"] = database.model_copy(update={"url": url})
    return settings.model_copy(update=sections)


def _rooted(value: object, folder: Path) -> object:
    """Every Path field of a section (or of each [[imap]] account) under ``folder``."""
    if isinstance(value, tuple):
        return tuple(_rooted(item, folder) for item in value)
    if not isinstance(value, Section):
        return value
    paths = {
        name: folder / found
        for name in type(value).model_fields
        if isinstance(found := getattr(value, name), Path) and not found.is_absolute()
    }
    return value.model_copy(update=paths)


def rooted_url(url: str, folder: Path) -> str:
    """``sqlite:///mailticket.db`` -> ``sqlite:////srv/site/mailticket.db``; other
    databases, absolute files, ``:memory:`` and ``file:`` URIs unchanged."""
    scheme, found, rest = url.partition(":///")
    if not found or scheme.partition("+")[0] != "sqlite":
        return url
    file, query, parameters = rest.partition("?")
    if not file or file.startswith(("/", "file:")) or file == ":memory:":
        return url
    return f"{scheme}:///{folder / file}{query}{parameters}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _overlay_environment(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, str], str]:
    """MAILTICKET_SMTP_PORT=2526 sets [smtp] port; lists are comma-separated. Returns
    the variable that set each (section, key), so an error names it."""
    variables: dict[tuple[str, str], str] = {}
    for section_name, field in Settings.model_fields.items():
        section_model = field.annotation
        if not (isinstance(section_model, type) and issubclass(section_model, Section)):
            continue  # [[imap]] accounts are tables, configured in the file only
        for key, key_field in section_model.model_fields.items():
            variable = f"{ENV_PREFIX}{section_name}_{key}".upper()
            value = environ.get(variable)
            if value is None:
                continue
            is_list = typing.get_origin(key_field.annotation) is tuple
            parsed: object = (
                [v.strip() for v in value.split(",") if v.strip()] if is_list else value
            )
            section = data.setdefault(section_name, {})
            if not isinstance(section, dict):
                raise ConfigError(f"{section_name}: must be a table")
            section[key] = parsed
            variables[section_name, key] = variable
    return variables


def _one_line(
    exc: ValidationError, source: Path | None, variables: Mapping[tuple[str, str], str]
) -> str:
    """The first error, where its value came from (the environment variable, or the
    file) and the key: ``MAILTICKET_SMTP_PORT (smtp.port): Input should be ...``. The
    line does not add the value: it may be a password."""
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    where = ".".join(loc)
    what = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
    variable = variables.get((loc[0], loc[1])) if len(loc) >= 2 else None
    if variable is not None:
        where = f"{variable} ({where})"
    origin = f"{source}: " if source and variable is None else ""
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{origin}{where}: {what}{more}"
