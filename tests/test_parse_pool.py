"""Parsing in worker processes under tickets.max_processing_time."""

from __future__ import annotations

import os
import signal
import smtplib
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mailticket.errors import ParseError
from mailticket.parse.mail import InboundMail, parse
from mailticket.runtime.core import build_core
from mailticket.runtime.parse_pool import (
    NEARBY_BUDGET,
    NEARBY_MAX_BYTES,
    ParsePool,
    ProcessingTimeout,
)
from mailticket.store.models import Inbound
from tests.conftest import Clock, build_mail, make_settings
from tests.daemon_thread import DaemonThread


def many_parts(count: int) -> bytes:
    """A real pathological mail: thousands of attachments take the parser seconds."""
    head = (
        b"From: flood@customer.example\r\nTo: support@example.org\r\nSubject: parts\r\n"
        b"Message-ID: <parts@customer.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
    )
    part = (
        b'--B\r\nContent-Type: text/plain; name="a.txt"\r\n'
        b'Content-Disposition: attachment; filename="a.txt"\r\n\r\nx\r\n'
    )
    return head + part * count + b"--B--\r\n"


def die(raw: bytes, max_attachment_size: int) -> InboundMail:
    """A parser that crashes its process (as a segfault in a C extension would)."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def where_parsed(raw: bytes, max_attachment_size: int) -> InboundMail:
    """The parser, saying in its subject which process ran it; a mail that asks for it is
    slow (as an adversarial mail is), past the nearby budget."""
    if b"slow please" in raw:
        time.sleep(NEARBY_BUDGET * 5)
    mail = parse(raw, max_attachment_size=max_attachment_size)
    return replace(mail, subject=str(os.getpid()))


def test_a_small_mail_is_parsed_nearby_the_rest_in_a_worker() -> None:
    pool = ParsePool(max_attachment_size=10**6, time_limit=30, function=where_parsed)
    here = str(os.getpid())
    try:
        small = build_mail(body="short")
        nearby = pool.submit_nearby(small)
        assert nearby.done(), "a small mail is parsed before submit_nearby returns"
        assert (nearby.result().subject, nearby.result().raw) == (here, small)

        big = build_mail(body="x" * NEARBY_MAX_BYTES)
        slow = build_mail(body="slow please")
        for raw in (big, slow):  # too big to try; stopped by the alarm, then given a worker
            mail = pool.submit_nearby(raw).result(30)
            assert mail.subject != here and mail.raw == raw

        with pytest.raises(ParseError, match="empty message"):  # rejected nearby, as in a worker
            pool.submit_nearby(b"   ").result(0)
    finally:
        pool.close()


def test_an_alarm_set_before_a_nearby_parse_is_kept() -> None:
    pool = ParsePool(max_attachment_size=10**6, time_limit=30, function=where_parsed)
    rang: list[int] = []
    theirs = signal.signal(signal.SIGALRM, lambda signum, frame: rang.append(signum))
    their_timer = signal.setitimer(signal.ITIMER_REAL, 60)  # pytest-timeout's, set aside
    try:
        assert pool.submit_nearby(build_mail(body="slow please")).result(30).raw
        assert pool.submit_nearby(build_mail()).done()
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 60
        assert rang == []
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        time.sleep(0.5)  # interrupted by the alarm: its handler is the one we installed
        assert rang == [signal.SIGALRM]
    finally:
        signal.signal(signal.SIGALRM, theirs)
        signal.setitimer(signal.ITIMER_REAL, *their_timer)
        pool.close()


def test_off_the_main_thread_every_mail_goes_to_a_worker() -> None:
    pool = ParsePool(max_attachment_size=10**6, time_limit=30, function=where_parsed)
    parsed: list[InboundMail] = []
    try:
        thread = threading.Thread(
            target=lambda: parsed.append(pool.submit_nearby(build_mail()).result(30))
        )
        thread.start()
        thread.join(60)
        assert [mail.subject != str(os.getpid()) for mail in parsed] == [True]
    finally:
        pool.close()


def test_a_mail_parses_in_a_worker_and_keeps_its_bytes() -> None:
    pool = ParsePool(max_attachment_size=1024, time_limit=30)
    try:
        raw = build_mail(subject="Cannot log in")
        mail = pool.submit(raw).result(30)
        assert (mail.subject, mail.raw) == ("Cannot log in", raw)
        with pytest.raises(ParseError, match="empty message"):
            pool.submit(b"   ").result(30)
    finally:
        pool.close()


def test_a_worker_that_dies_is_replaced_and_its_mail_rejected() -> None:
    dying = ParsePool(max_attachment_size=1024, time_limit=30, function=die)
    try:
        with pytest.raises(ParseError, match="parser process died"):
            dying.submit(build_mail()).result(30)
    finally:
        dying.close()


def test_a_mail_that_takes_too_long_is_quarantined_and_intake_goes_on(
    tmp_path: Path, clock: Clock
) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", tickets={"max_processing_time": "0.5s"}
    )
    slow = many_parts(20_000)  # about 1.7 s of parsing on an idle machine
    finished: list[str] = []

    def send(port: int, raw: bytes, name: str) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("a@customer.example", ["support@example.org"], raw)
        finished.append(name)

    with build_core(settings, clock=clock) as core, DaemonThread(core) as daemon:
        port = daemon.ports["smtp"]
        flood = threading.Thread(target=send, args=(port, slow, "slow"))
        flood.start()
        time.sleep(0.2)  # the slow mail is in a worker now
        send(port, build_mail(subject="meanwhile", message_id="<meanwhile@c.example>"), "normal")
        flood.join(30)
        send(port, build_mail(subject="afterwards", message_id="<after@c.example>"), "after")
        with Session(core.engine) as session:
            rows = {row.message_id: row for row in session.exec(select(Inbound)).all()}
    assert finished == ["normal", "slow", "after"]  # nobody waited for the slow mail
    quarantined = [row for row in rows.values() if row.state == "quarantined"]
    assert len(quarantined) == 1
    assert quarantined[0].error == "processing took longer than 0.5s"
    # kept byte for byte, under the envelope the listener records (Return-Path, Delivered-To)
    assert quarantined[0].raw.endswith(slow)
    assert quarantined[0].raw.startswith(b"Return-Path: <a@customer.example>\r\n")
    assert rows["<meanwhile@c.example>"].state == "processed"
    assert rows["<after@c.example>"].state == "processed"  # the killed worker was replaced


def test_the_time_bound_is_reported_as_processing_timeout() -> None:
    pool = ParsePool(max_attachment_size=1024, time_limit=0.3)
    try:
        with pytest.raises(ProcessingTimeout, match=r"longer than 0\.3s"):
            pool.submit(many_parts(20_000)).result(30)
    finally:
        pool.close()
