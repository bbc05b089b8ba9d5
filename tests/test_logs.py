"""Log lines: JSON for shippers (one object a line), text with the same fields for people."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailticket.ops.logs import JsonFormatter, TextFormatter, configure
from tests.conftest import make_settings


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, put back as it was (``configure`` replaces its handlers)."""
    logger = logging.getLogger()
    handlers, level = logger.handlers[:], logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def emit(formatter: logging.Formatter, message: str, *args: object, **kwargs: Any) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("mailticket.test_logs")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning(message, *args, **kwargs)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_json_line_with_the_mail_fields() -> None:
    extra = {"message_id": "<a1@customer.example>", "ticket": "MT-7", "account": "support"}
    line = emit(JsonFormatter(), "stored %s", "工单", extra=extra)
    assert line.count("\n") == 1 and "工单" in line  # one line, UTF-8 as written
    entry = json.loads(line)
    stamp = datetime.fromisoformat(entry.pop("time"))
    assert stamp.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert entry == {
        "level": "warning",
        "logger": "mailticket.test_logs",
        "message": "stored 工单",
        "message_id": "<a1@customer.example>",
        "ticket": "MT-7",
        "account": "support",
    }


def test_json_exception_and_values_json_cannot_hold() -> None:
    try:
        raise ValueError("bad\nmultiline")
    except ValueError:
        line = emit(JsonFormatter(), "failed", exc_info=True, extra={"path": Path("/x")})
    entry = json.loads(line)
    assert line.count("\n") == 1
    assert entry["path"] == "/x"
    assert entry["exception"].startswith("Traceback")
    assert entry["exception"].endswith("ValueError: bad\nmultiline")


def test_extra_cannot_replace_the_standard_keys() -> None:
    entry = json.loads(emit(JsonFormatter(), "hello", extra={"level": "forged", "logger": "x"}))
    assert (entry["level"], entry["logger"]) == ("warning", "mailticket.test_logs")


def test_text_line_ends_with_the_fields() -> None:
    line = emit(TextFormatter(), "stored", extra={"message_id": "<a1@x>", "ticket": "MT-7"})
    assert line.rstrip("\n").endswith(
        "WARNING mailticket.test_logs: stored message_id=<a1@x> ticket=MT-7"
    )
    assert emit(TextFormatter(), "plain").rstrip("\n").endswith("mailticket.test_logs: plain")


def test_configure_json(root: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    configure("json", "info")
    logging.getLogger("mailticket.x").info("up", extra={"ticket": "MT-1"})
    logging.getLogger("mailticket.x").debug("not shown")
    logging.getLogger("mail.log").info("aiosmtpd chatter")
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["ticket"] == "MT-1"


def test_the_setting_from_the_environment(tmp_path: Path) -> None:
    """A real ``mailticket`` process: MAILTICKET_LOG_FORMAT=json, and a missing rules file
    (the warning it logs is the line we read)."""
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    (tmp_path / "rules.yaml").unlink()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailticket",
            "-c",
            str(tmp_path / "mailticket.toml"),
            "tickets",
            "list",
        ],
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        env={**os.environ, "MAILTICKET_LOG_FORMAT": "json"},
    )
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stderr.decode().splitlines()]
    assert [(e["level"], e["logger"]) for e in entries] == [("warning", "mailticket.runtime.core")]
    assert "not found" in entries[0]["message"]


# what a mail may carry into a log line, and how each formatter must show it
CONTROLS = [
    ("\x1b[2J", "\\x1b[2J", "\\u001b[2J"),
    ("a\r\nforged line", "a\\r\\nforged line", "a\\r\\nforged line"),
    ("\x00\x07\x08\x7f", "\\x00\\x07\\x08\\x7f", "\\u0000\\u0007\\b\\u007f"),
    ("c1 \x85 \x9b31m", "c1 \\x85 \\x9b31m", "c1 \\u0085 \\u009b31m"),
    ("\u2028\u2029", "\\u2028\\u2029", "\\u2028\\u2029"),
    ("\u202egpj.exe\u202c \u2066x\u2069", "\\u202egpj.exe\\u202c \\u2066x\\u2069", None),
    ("工单 ok", "工单 ok", "工单 ok"),
]


@pytest.mark.parametrize(("value", "text", "json_escaped"), CONTROLS)
def test_control_characters_from_a_mail_are_escaped(
    value: str, text: str, json_escaped: str | None
) -> None:
    extra = {"message_id": f"<{value}@x>", "subject": value}
    line = emit(TextFormatter(), "%s quarantined: %s", f"<{value}@x>", value, extra=extra)
    assert line.count("\n") == 1 and line.endswith("\n")
    assert line.rstrip("\n").endswith(
        f"<{text}@x> quarantined: {text} message_id=<{text}@x> subject={text}"
    )
    raw = emit(JsonFormatter(), "%s quarantined: %s", f"<{value}@x>", value, extra=extra)
    assert raw.count("\n") == 1
    assert f'"subject": "{json_escaped or text}"' in raw
    assert not any(0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029\u202e\u2066" for c in raw)
    entry = json.loads(raw)
    assert entry["message"] == f"<{value}@x> quarantined: {value}"
    assert entry["subject"] == value


def test_a_traceback_keeps_its_lines_and_escapes_the_rest() -> None:
    try:
        raise ValueError("bad id <a\x1b[31m@x>\u202e")
    except ValueError:
        line = emit(TextFormatter(), "failed", exc_info=True)
    assert line.split("\n")[0].endswith(": failed")
    assert "\nTraceback (most recent call last):\n" in line
    assert line.rstrip("\n").endswith("ValueError: bad id <a\\x1b[31m@x>\\u202e")
    assert "\x1b" not in line and "\u202e" not in line
