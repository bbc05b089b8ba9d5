"""Logging set-up: plain text for people, one JSON object a line for log shippers.

Fields about a mail travel as ``extra=``, e.g.
``log.info("stored", extra={"message_id": mid, "ticket": "MT-7", "account": "support"})``:
JSON lines carry them as keys, text lines end with ``key=value`` pairs.

Both formatters escape control characters (``terminal``): a Message-ID, a subject or an
error from a mail can never forge a log line or send an escape sequence to a terminal.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from mailticket.ops.terminal import json_text, printable, printable_lines

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

# what every LogRecord has; anything else on a record came in through ``extra=``
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
QUIET = ("mail.log", "alembic")  # aiosmtpd logs every SMTP command at INFO


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` values of ``record``, in the order they were given."""
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """``{"time": ISO 8601 UTC, "level", "logger", "message", ...extra, "exception"}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json_text(entry, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, then the ``extra=`` fields as ``key=value``; one line a record
    (a traceback aside), control characters escaped."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = " ".join(f"{k}={v}" for k, v in extra_fields(record).items())
        return printable(f"{line} {fields}" if fields else line)

    def formatException(self, ei: ExcInfo) -> str:
        return printable_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return printable_lines(super().formatStack(stack_info))


def configure(fmt: str, level: str) -> None:
    """One handler on stderr (journald takes it from there under systemd)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for chatty in QUIET:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
