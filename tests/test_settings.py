from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mailticket.errors import ConfigError
from mailticket.settings import load_settings, rooted_url
from mailticket.units import format_duration, parse_duration, parse_size


def test_embedded_defaults_match_the_spec() -> None:
    settings = load_settings(None, environ={})
    assert settings.database.url == "sqlite:///mailticket.db"
    assert (settings.smtp.host, settings.smtp.port) == ("127.0.0.1", 2525)
    assert settings.smtp.max_message_size == 25 * 1024 * 1024
    assert settings.outbound.transport == "maildir"
    assert settings.outbound.maildir == Path("outbox")
    assert settings.tickets.prefix == "MT"
    assert settings.tickets.max_auto_replies_per_sender == 10
    assert settings.tickets.reopen_window == timedelta(days=30)
    assert settings.scheduler.sweep_interval == timedelta(seconds=30)
    assert "我的工单" in settings.tickets.status_subjects


def test_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "mailticket.toml"
    path.write_text(
        '[smtp]\nport = 2600\naccept = ["a@x.org"]\n[tickets]\nreopen_window = "7d"\n'
        '[[imap]]\nhost = "imap.x.org"\nusername = "u"\npassword = "p"\n',
        encoding="utf-8",
    )
    env = {"MAILTICKET_SMTP_PORT": "2700", "MAILTICKET_SMTP_ACCEPT": "a@x.org, b@x.org"}
    settings = load_settings(path, environ=env)
    assert settings.smtp.port == 2700
    assert settings.smtp.accept == ("a@x.org", "b@x.org")
    assert settings.tickets.reopen_window == timedelta(days=7)
    assert settings.imap[0].host == "imap.x.org"
    assert settings.imap[0].poll_interval == timedelta(seconds=60)


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[smtp]\nprot = 1\n", {}, "smtp.prot: unknown key"),
        ("[smtpp]\n", {}, "smtpp: unknown key"),
        (
            "",
            {"MAILTICKET_SMTP_PORT": "abc"},
            "MAILTICKET_SMTP_PORT (smtp.port): Input should be a valid integer",
        ),
        (
            "[smtp]\nport = 25\n",
            {"MAILTICKET_AGENTS_TRUSTED_RELAYS": "10.0.0.0/8, 10.0.0.300"},
            "MAILTICKET_AGENTS_TRUSTED_RELAYS (agents.trusted_relays.1): Value error, not an IP",
        ),
        (
            '[tickets]\nreopen_window = "soon"\n',
            {},
            "tickets.reopen_window: Value error, not a duration",
        ),
        (
            '[outbound]\ntransport = "pigeon"\n',
            {},
            "outbound.transport: Input should be 'maildir' or 'smtp'",
        ),
        ("[smtp\n", {}, "mailticket.toml: "),
    ],
)
def test_errors_are_one_line_naming_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "mailticket.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=env)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("8h", timedelta(hours=8)),
        ("3d", timedelta(days=3)),
        (90, timedelta(seconds=90)),
    ],
)
def test_durations(text: object, delta: timedelta) -> None:
    assert parse_duration(text) == delta


def test_duration_round_trip_and_errors() -> None:
    assert format_duration(timedelta(hours=2)) == "2h"
    assert format_duration(timedelta(seconds=61)) == "61s"
    with pytest.raises(ValueError):
        parse_duration("3 days")
    assert parse_size("25MiB") == 25 * 1024 * 1024
    assert parse_size(1000) == 1000
    with pytest.raises(ValueError):
        parse_size("big")


SITE = """\
[database]
url = "sqlite:///data/mailticket.db"
[smtp]
tls_cert = "tls/cert.pem"
tls_key = "/etc/ssl/private/key.pem"
[outbound]
maildir = "spool/outbox"
dkim_selector = "mt2026"
dkim_domain = "example.com"
dkim_key = "dkim/mt2026.private"
[tickets]
rules_file = "rules.yaml"
[[imap]]
host = "imap.example.com"
username = "support"
password_file = "imap.password"
"""


def test_relative_paths_are_under_the_files_folder_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "mailticket.toml").write_text(SITE, encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # an MTA's pipe, cron, an admin's shell
    settings = load_settings(Path("../site/mailticket.toml"), environ={})
    assert settings.database.url == f"sqlite:///{site}/data/mailticket.db"
    assert settings.smtp.tls_cert == site / "tls/cert.pem"
    assert settings.smtp.tls_key == Path("/etc/ssl/private/key.pem")  # absolute: kept
    assert settings.outbound.maildir == site / "spool/outbox"
    assert settings.outbound.dkim_key == site / "dkim/mt2026.private"
    assert settings.tickets.rules_file == site / "rules.yaml"
    assert settings.tickets.templates_dir == site / "templates"  # a default: the same rule
    assert settings.imap[0].password_file == site / "imap.password"


def test_environment_paths_follow_the_file_when_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "site").mkdir()
    config = tmp_path / "site" / "mailticket.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    env = {"MAILTICKET_DATABASE_URL": "sqlite:///env.db", "MAILTICKET_OUTBOUND_MAILDIR": "out"}
    with_file = load_settings(config, environ=env)
    assert with_file.database.url == f"sqlite:///{tmp_path}/site/env.db"
    assert with_file.outbound.maildir == tmp_path / "site" / "out"
    without = load_settings(None, environ=env)  # no ./mailticket.toml here
    assert without.database.url == "sqlite:///env.db"  # the working directory's
    assert without.outbound.maildir == Path("out")
    assert without.tickets.rules_file == Path("rules.yaml")


def test_the_working_directorys_own_file_roots_paths_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mailticket.toml").write_text('[tickets]\nrules_file = "r.yaml"\n')
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, environ={})
    assert settings.tickets.rules_file == tmp_path / "r.yaml"
    assert settings.database.url == f"sqlite:///{tmp_path}/mailticket.db"


@pytest.mark.parametrize(
    ("url", "rooted"),
    [
        ("sqlite:///mailticket.db", "sqlite:////srv/site/mailticket.db"),
        ("sqlite:///data/mt.db?timeout=5", "sqlite:////srv/site/data/mt.db?timeout=5"),
        ("sqlite+pysqlite:///mt.db", "sqlite+pysqlite:////srv/site/mt.db"),
        ("sqlite:////var/lib/mailticket/mt.db", "sqlite:////var/lib/mailticket/mt.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:///file:mt.db?mode=ro&uri=true", "sqlite:///file:mt.db?mode=ro&uri=true"),
        ("postgresql+psycopg://mt@/mt?host=/run/pg", "postgresql+psycopg://mt@/mt?host=/run/pg"),
        ("postgresql+psycopg://mt@db:5432/mt", "postgresql+psycopg://mt@db:5432/mt"),
    ],
)
def test_a_relative_sqlite_file_in_the_url_is_rooted(url: str, rooted: str) -> None:
    assert rooted_url(url, Path("/srv/site")) == rooted


def test_a_value_from_the_environment_names_its_variable_not_the_file(tmp_path: Path) -> None:
    """The file is fine; the admin has to look at the service's environment."""
    path = tmp_path / "mailticket.toml"
    path.write_text("[smtp]\nport = 25\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"MAILTICKET_SMTP_PORT": "abc"})
    assert str(caught.value).startswith("MAILTICKET_SMTP_PORT (smtp.port): Input should be")
