"""The requester's files reach the agents: attached to agent_new / agent_update up to
agents.max_attachment_bytes, listed beyond, secrets masked; `tickets show` lists them and
`tickets attachment` writes one out (through the real intake, SQLite and PostgreSQL)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner
from mnemonic import Mnemonic
from sqlmodel import Session, col, select

from mailticket.cli import main
from mailticket.outbound.agent_files import OVER_BUDGET, WITHHELD, files_for_agents, human_size
from mailticket.outbound.outbox import message_bytes
from mailticket.parse.mime_parts import AttachedFile
from mailticket.runtime.core import Core, build_core
from mailticket.store import views
from mailticket.store.models import Outbox, Ticket
from tests.conftest import Clock, make_settings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # 10 KiB of a "screenshot"
LOG = b"2026-12-07 10:00:01 ERROR login failed for alice\n" * 20
PHRASE = Mnemonic("english").to_mnemonic(bytes(range(16)))


def _mail(
    *files: tuple[str, str, bytes],
    subject: str = "登录失败",
    message_id: str = "<files-1@customer.example>",
    in_reply_to: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = "Alice <alice@customer.example>"
    message["To"] = "support@example.org"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    message.set_content("The screenshot and the log are attached.")
    for name, content_type, content in files:
        maintype, subtype = content_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


def _sent(core: Core, template: str, to: str = "agent@example.com") -> list[EmailMessage]:
    """What ``template`` sent to ``to`` (an agent, unless told)."""
    with Session(core.engine) as session:
        query = (
            select(Outbox)
            .where(Outbox.template == template, Outbox.recipient == to)
            .order_by(col(Outbox.id))
        )
        rows = session.exec(query).all()
    parsed = [message_from_bytes(message_bytes(row), policy=policy.default) for row in rows]
    return [m for m in parsed if isinstance(m, EmailMessage)]


def _files(message: EmailMessage) -> dict[str, bytes]:
    return {
        str(part.get_filename()): part.get_content()  # type: ignore[attr-defined]
        for part in message.iter_attachments()
    }


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def test_agents_get_the_requesters_screenshot_and_log(core: Core) -> None:
    core.intake.submit(
        _mail(("屏幕截图.png", "image/png", PNG), ("app.log", "text/plain", LOG)), "smtp"
    )
    [notice] = _sent(core, "agent_new")
    assert _files(notice) == {"屏幕截图.png": PNG, "app.log": LOG.decode()}
    text = _text(notice)
    assert "屏幕截图.png (10.0 KB): attached" in text
    assert f"app.log ({len(LOG)} bytes): attached" in text
    [ack] = _sent(core, "ack", "alice@customer.example")
    assert _files(ack) == {}  # the requester does not get their own files back


def test_a_reply_with_a_file_reaches_the_agents_in_agent_update(core: Core) -> None:
    core.intake.submit(_mail(), "smtp")
    [ack] = _sent(core, "ack", "alice@customer.example")
    reply = _mail(
        ("second.png", "image/png", PNG[:500]),
        subject="Re: [MT-1] 登录失败",
        message_id="<files-2@customer.example>",
        in_reply_to=str(ack["Message-ID"]),
    )
    core.intake.submit(reply, "smtp")
    [update] = _sent(core, "agent_update")
    assert _files(update) == {"second.png": PNG[:500]}


def test_files_over_the_budget_are_listed_with_the_way_to_get_them(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    settings = make_settings(tmp_path, db_url, agents={"max_attachment_bytes": "12KiB"})
    with build_core(settings, clock=clock) as core:
        big = ("dump.bin", "application/octet-stream", b"\0" * 8000)
        core.intake.submit(_mail(("屏幕截图.png", "image/png", PNG), big), "smtp")
        [notice] = _sent(core, "agent_new")
    assert list(_files(notice)) == ["屏幕截图.png"]  # the first fits, the second would not
    text = _text(notice)
    assert f"dump.bin (7.8 KB): {OVER_BUDGET}" in text
    assert "mailticket tickets show MT-1" in text


def test_a_secret_in_a_file_is_masked_in_the_agents_copy_and_withheld_when_it_cannot_be(
    core: Core,
) -> None:
    log = f"wallet words: {PHRASE}\nthen it crashed\n".encode()
    forwarded = EmailMessage()
    forwarded["Subject"] = "my wallet"
    forwarded.set_content(f"words:\n{PHRASE}\n", cte="base64")  # masking cannot reach it
    files = (
        ("app.log", "text/plain", log),
        ("wallet.eml", "application/octet-stream", forwarded.as_bytes()),
    )
    core.intake.submit(_mail(*files), "smtp")
    [notice] = _sent(core, "agent_new")
    attached = _files(notice)
    assert list(attached) == ["app.log"]
    assert PHRASE.split()[4] not in str(attached["app.log"])
    assert "[secret removed: recovery phrase]" in str(attached["app.log"])
    assert "then it crashed" in str(attached["app.log"])
    text = _text(notice)
    assert "app.log (" in text and "attached, secrets masked" in text
    assert f"wallet.eml ({human_size(len(forwarded.as_bytes()))}): {WITHHELD}" in text


def test_tickets_show_lists_the_files_and_tickets_attachment_writes_one_out(
    core: Core, tmp_path: Path
) -> None:
    secret_log = f"key words {PHRASE}\n".encode()
    raw = _mail(("屏幕截图.png", "image/png", PNG), ("app.log", "text/plain", secret_log))
    core.intake.submit(raw, "smtp")
    with Session(core.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        detail = views.ticket_detail(session, ticket, "MT")
    files = detail["messages"][0]["attachments"]
    assert [(f["filename"], f["content_type"], f["size"], f["kept"]) for f in files] == [
        ("屏幕截图.png", "image/png", len(PNG), True),
        ("app.log", "text/plain", len(secret_log), True),
    ]
    png_id, log_id = (f["id"] for f in files)

    runner = CliRunner()
    config = str(tmp_path / "mailticket.toml")
    shown = runner.invoke(main, ["-c", config, "tickets", "show", "MT-1"])
    assert shown.exit_code == 0, shown.output
    assert f"file {png_id}: 屏幕截图.png (10.0 KB, image/png)" in shown.output

    out = tmp_path / "shot.png"
    written = runner.invoke(
        main, ["-c", config, "tickets", "attachment", "MT-1", str(png_id), "-o", str(out)]
    )
    assert written.exit_code == 0, written.output
    assert out.read_bytes() == PNG

    masked = runner.invoke(main, ["-c", config, "tickets", "attachment", "MT-1", str(log_id)])
    assert masked.exit_code == 0
    assert PHRASE.encode() not in masked.stdout_bytes
    assert b"[secret removed: recovery phrase]" in masked.stdout_bytes
    clear = runner.invoke(
        main, ["-c", config, "tickets", "attachment", "MT-1", str(log_id), "--raw"]
    )
    assert clear.stdout_bytes == secret_log

    wrong = runner.invoke(main, ["-c", config, "tickets", "attachment", "MT-2", str(png_id)])
    assert wrong.exit_code == 1
    assert f"no file {png_id} on ticket MT-2" in wrong.output


def test_a_file_over_the_size_cap_is_listed_as_not_kept() -> None:
    parts = [
        AttachedFile("huge.iso", "application/octet-stream", 50_000_000, None),
        AttachedFile("ok.txt", "text/plain", 3, b"abc"),
    ]
    chosen = files_for_agents(parts, 100, secrets=False)
    assert chosen.attached == (("ok.txt", "text/plain", b"abc"),)
    assert [(n.filename, n.attached, n.size_text) for n in chosen.notes] == [
        ("huge.iso", False, "47.7 MB"),
        ("ok.txt", True, "3 bytes"),
    ]
    assert files_for_agents(parts, 0, secrets=False).attached == ()  # 0: list, attach none
