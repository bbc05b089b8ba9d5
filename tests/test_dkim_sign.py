"""DKIM signing at delivery: keys generated here (cryptography), mail composed by notices,
delivered through the real maildir and SMTP transports, verified by dkimpy through a DNS
function that answers from a dict, the way dkimpy's own tests publish keys."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from dkim.util import parse_tag_value

from mailticket.errors import ConfigError
from mailticket.outbound.notices import Envelope, Rendered, compose
from mailticket.outbound.transport import (
    MaildirTransport,
    Outcome,
    SigningTransport,
    build_transport,
)
from mailticket.settings import OutboundSettings, load_settings
from tests.test_transport import Recorder, smtp_server

DOMAIN = "example.com"
SUPPORT = f"Support Team <support@{DOMAIN}>"
PEM = serialization.Encoding.PEM
PKCS8 = serialization.PrivateFormat.PKCS8
UNENCRYPTED = serialization.NoEncryption()


@dataclass(frozen=True, slots=True)
class Key:
    path: Path
    record: bytes  # the TXT record to publish at <selector>._domainkey.<domain>


def write_key(folder: Path, name: str, private: bytes) -> Path:
    path = folder / name
    path.write_bytes(private)
    path.chmod(0o600)
    return path


def public_record(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(key.public_key().public_bytes_raw())


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL, UNENCRYPTED)
    return Key(write_key(tmp_path_factory.mktemp("rsa"), "mail.private", pem), public_record(key))


@pytest.fixture(scope="module")
def ed_key(tmp_path_factory: pytest.TempPathFactory) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def dns(selector: str, key: Key) -> Callable[..., bytes | None]:
    records = {f"{selector}._domainkey.{DOMAIN}.".encode(): key.record}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return lookup


def outbound(key: Path | None, selector: str = "mt2026", **options: object) -> OutboundSettings:
    return OutboundSettings.model_validate(
        {"dkim_selector": selector, "dkim_domain": DOMAIN, "dkim_key": key, **options}
    )


def mail(sender: str = SUPPORT, html: str | None = "<p>您好</p>") -> bytes:
    """A notification as the outbox stores it: Chinese text, multipart, folded headers."""
    rendered = Rendered(
        subject="[MT-7] 账户被盗，无法登录 — please help, this subject is long enough to fold",
        text="您好，\n\n我们已收到您的工单 [MT-7]。\n.a line that starts with a dot\n",
        html=html,
    )
    envelope = Envelope(
        sender=sender,
        to="Bob <bob@example.org>",
        cc=("carol@example.net",),
        message_id=f"<MT-7.abc123@{DOMAIN}>",
        in_reply_to="<q1@example.org>",
        references=("<q0@example.org>", "<q1@example.org>"),
        auto_submitted="auto-replied",
        date=datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
    )
    return compose(rendered, envelope)


def deliver_to_maildir(settings: OutboundSettings, folder: Path, message: bytes) -> bytes:
    transport = build_transport(settings.model_copy(update={"maildir": folder}))
    delivery = asyncio.run(
        transport.deliver(key="1", sender=f"support@{DOMAIN}", recipients=["bob@example.org"],
                          message=message)
    )  # fmt: skip
    assert delivery.outcome is Outcome.SENT, delivery.detail
    (delivered,) = (folder / "new").iterdir()
    return delivered.read_bytes()


def signature_tags(raw: bytes) -> dict[bytes, bytes]:
    header = raw.split(b"\r\n\r\n", 1)[0].split(b"DKIM-Signature:", 1)[1]
    value = header.split(b"\r\nFrom:", 1)[0]
    tags: dict[bytes, bytes] = parse_tag_value(value)
    return tags


# --- through the real transports --------------------------------------------------------


def test_maildir_delivery_is_signed_and_verifies(rsa_key: Key, tmp_path: Path) -> None:
    message = mail()
    raw = deliver_to_maildir(outbound(rsa_key.path), tmp_path, message)

    assert raw.startswith(b"DKIM-Signature: ") and raw.endswith(message)
    assert dkim.verify(raw, dnsfunc=dns("mt2026", rsa_key))
    tags = signature_tags(raw)
    assert (tags[b"d"], tags[b"s"], tags[b"a"]) == (b"example.com", b"mt2026", b"rsa-sha256")
    assert tags[b"c"] == b"relaxed/relaxed"
    signed = [h.strip() for h in tags[b"h"].split(b":")]
    assert [signed.count(h) for h in (b"from", b"to", b"cc", b"subject")] == [2, 2, 2, 2]
    assert signed.count(b"reply-to") == 1  # not in this mail: signed as absent
    assert {b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
            b"mime-version", b"content-type", b"auto-submitted"} <= set(signed)  # fmt: skip


def test_smtp_delivery_is_signed_and_verifies(rsa_key: Key) -> None:
    recorder = Recorder()

    async def scenario() -> Outcome:
        async with smtp_server(recorder) as port:
            transport = build_transport(
                outbound(rsa_key.path, transport="smtp", host="127.0.0.1", port=port)
            )
            delivery = await transport.deliver(
                key="1", sender=f"support@{DOMAIN}", recipients=["bob@example.org"],
                message=mail(),
            )  # fmt: skip
            return delivery.outcome

    assert asyncio.run(scenario()) is Outcome.SENT
    (envelope,) = recorder.received
    assert isinstance(envelope.original_content, bytes)
    assert dkim.verify(envelope.original_content, dnsfunc=dns("mt2026", rsa_key))


@pytest.mark.parametrize("form", ["pem", "dknewkey"])
def test_ed25519_keys_sign_too(
    ed_key: ed25519.Ed25519PrivateKey, form: str, tmp_path: Path
) -> None:
    private = (
        ed_key.private_bytes(PEM, PKCS8, UNENCRYPTED)
        if form == "pem"
        else base64.b64encode(ed_key.private_bytes_raw()) + b"\n"
    )
    key = Key(write_key(tmp_path, "ed.key", private), public_record(ed_key))

    raw = deliver_to_maildir(outbound(key.path, "ed"), tmp_path / "box", mail())

    assert signature_tags(raw)[b"a"] == b"ed25519-sha256"
    assert dkim.verify(raw, dnsfunc=dns("ed", key))


# --- what the signature protects --------------------------------------------------------


def tamper_subject(raw: bytes) -> bytes:
    return re.sub(rb"\r\nSubject: [^\r]*", b"\r\nSubject: [MT-8] Your invoice", raw, count=1)


def tamper_message_id(raw: bytes) -> bytes:
    return raw.replace(b"<MT-7.abc123@", b"<MT-7.abc124@", 1)


def tamper_body(raw: bytes) -> bytes:
    return raw + b"P.S. Please pay to the account below.\r\n"


def add_header(header: bytes) -> Callable[[bytes], bytes]:
    """Add ``header`` on top, where a relay's headers go: a copy of one, or one we never sent."""

    def tamper(raw: bytes) -> bytes:
        return header + b"\r\n" + raw

    tamper.__name__ = f"add_{header.split(b':')[0].decode()}"
    return tamper


@pytest.mark.parametrize(
    "tamper",
    [
        tamper_subject,
        tamper_message_id,
        tamper_body,
        add_header(b"From: ceo@example.com"),
        add_header(b"To: victim@example.net"),
        add_header(b"Cc: victim@example.net"),
        add_header(b"Reply-To: thief@example.net"),
        add_header(b"Subject: Your invoice"),
    ],
    ids=lambda tamper: tamper.__name__,
)
def test_a_changed_mail_fails_verification(
    rsa_key: Key, tmp_path: Path, tamper: Callable[[bytes], bytes]
) -> None:
    raw = deliver_to_maildir(outbound(rsa_key.path), tmp_path, mail(html=None))
    changed = tamper(raw)

    assert changed != raw
    assert dkim.verify(raw, dnsfunc=dns("mt2026", rsa_key))
    assert not dkim.verify(changed, dnsfunc=dns("mt2026", rsa_key))


def test_relays_refolding_and_respacing_headers_still_verifies(
    rsa_key: Key, tmp_path: Path
) -> None:
    raw = deliver_to_maildir(outbound(rsa_key.path), tmp_path, mail())
    head, body = raw.split(b"\r\n\r\n", 1)
    respaced = head.replace(b"Subject: ", b"Subject:   ").replace(b"\r\n ", b"\r\n\t")

    assert dkim.verify(respaced + b"\r\n\r\n" + body, dnsfunc=dns("mt2026", rsa_key))


def test_a_retry_after_key_rotation_carries_the_new_signature(
    rsa_key: Key, ed_key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    message = mail()  # what the outbox row holds: unsigned, whatever the key
    new_key = Key(
        write_key(tmp_path, "new.key", ed_key.private_bytes(PEM, PKCS8, UNENCRYPTED)),
        public_record(ed_key),
    )

    before = deliver_to_maildir(outbound(rsa_key.path, "old"), tmp_path / "a", message)
    after = deliver_to_maildir(outbound(new_key.path, "new"), tmp_path / "b", message)

    assert dkim.verify(before, dnsfunc=dns("old", rsa_key))
    assert dkim.verify(after, dnsfunc=dns("new", new_key))
    assert not dkim.verify(after, dnsfunc=dns("new", rsa_key))


# --- which mail is signed ---------------------------------------------------------------


@pytest.mark.parametrize("sender", ["support@EXAMPLE.com", "Help <help@eu.example.com>"])
def test_mail_from_the_domain_or_a_subdomain_is_signed(
    rsa_key: Key, tmp_path: Path, sender: str
) -> None:
    raw = deliver_to_maildir(outbound(rsa_key.path), tmp_path, mail(sender=sender))

    assert dkim.verify(raw, dnsfunc=dns("mt2026", rsa_key))


@pytest.mark.parametrize("sender", ["support@example.org", "support@notexample.com"])
def test_mail_from_another_domain_leaves_unsigned_and_says_so(
    rsa_key: Key, tmp_path: Path, sender: str
) -> None:
    message = mail(sender=sender)
    transport = build_transport(outbound(rsa_key.path, maildir=tmp_path))
    delivery = asyncio.run(
        transport.deliver(key="1", sender=sender, recipients=["bob@example.org"], message=message)
    )

    assert delivery.outcome is Outcome.SENT
    assert "not DKIM-signed: From is outside example.com" in delivery.detail
    assert [f.read_bytes() for f in (tmp_path / "new").iterdir()] == [message]


def test_bytes_dkimpy_cannot_read_fail_permanently_and_are_not_sent(
    rsa_key: Key, tmp_path: Path
) -> None:
    transport = build_transport(outbound(rsa_key.path, maildir=tmp_path))
    broken = b"From: support@example.com\r\nnot a header line\r\n\r\nbody\r\n"

    delivery = asyncio.run(
        transport.deliver(key="1", sender="s@example.com", recipients=["b@x.org"], message=broken)
    )

    assert delivery.outcome is Outcome.PERMANENT
    assert delivery.detail.startswith("cannot DKIM-sign: ")
    assert not (tmp_path / "new").exists()


def test_without_dkim_settings_nothing_is_signed(tmp_path: Path) -> None:
    transport = build_transport(OutboundSettings(maildir=tmp_path))

    assert isinstance(transport, MaildirTransport)
    assert not isinstance(transport, SigningTransport)


# --- configuration errors ---------------------------------------------------------------


def ec_key() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(PEM, PKCS8, UNENCRYPTED)


def short_rsa_key() -> bytes:
    """cryptography refuses to make one, which says enough; openssl still does."""
    return subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:768"],
        check=True,
        capture_output=True,
    ).stdout


def encrypted_key() -> bytes:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"secret"))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "No such file or directory"),
        (lambda: b"", "neither a PEM private key nor a base64 ed25519 key"),
        (lambda: b"not a key\n", "neither a PEM private key nor a base64 ed25519 key"),
        (lambda: b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a"),
        (encrypted_key, "the key is encrypted"),
        (ec_key, "RSA or ed25519"),
        (short_rsa_key, "a 768-bit RSA key"),
    ],
    ids=["missing", "empty", "text", "bad-pem", "encrypted", "ecdsa", "short-rsa"],
)
def test_a_key_that_cannot_sign_stops_the_transport_from_being_built(
    tmp_path: Path, content: Callable[[], bytes] | None, reason: str
) -> None:
    path = tmp_path / "mail.private"
    if content is not None:
        write_key(tmp_path, path.name, content())

    with pytest.raises(ConfigError) as caught:
        build_transport(outbound(path))

    message = str(caught.value)
    assert message.startswith(f"outbound.dkim_key: {path}: ")
    assert reason in message
    assert "\n" not in message


def test_an_unreadable_key_is_a_config_error(tmp_path: Path) -> None:
    directory = tmp_path / "mail.private"
    directory.mkdir()  # reading it fails whoever we run as

    with pytest.raises(ConfigError, match=r"^outbound\.dkim_key: .*: Is a directory$"):
        build_transport(outbound(directory))


def empty_config(folder: Path) -> Path:
    config = folder / "mailticket.toml"
    config.write_text("", encoding="utf-8")
    return config


@pytest.mark.parametrize(
    "given",
    [
        {"dkim_selector": "mt2026"},
        {"dkim_domain": DOMAIN},
        {"dkim_key": "/etc/mailticket/dkim.key"},
        {"dkim_selector": "mt2026", "dkim_domain": DOMAIN},
        {"dkim_domain": DOMAIN, "dkim_key": "/etc/mailticket/dkim.key"},
    ],
)
def test_partial_dkim_settings_are_refused(tmp_path: Path, given: dict[str, str]) -> None:
    config = tmp_path / "mailticket.toml"
    config.write_text(
        "[outbound]\n" + "".join(f'{k} = "{v}"\n' for k, v in given.items()), encoding="utf-8"
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})

    assert "dkim_selector, dkim_domain and dkim_key must be set together" in str(caught.value)


def test_dkim_settings_come_from_the_environment_too(tmp_path: Path) -> None:
    environ = {
        "MAILTICKET_OUTBOUND_DKIM_SELECTOR": "MT2026",
        "MAILTICKET_OUTBOUND_DKIM_DOMAIN": "Example.COM.",
        "MAILTICKET_OUTBOUND_DKIM_KEY": "/etc/mailticket/dkim.key",
    }

    settings = load_settings(empty_config(tmp_path), environ=environ).outbound

    assert (settings.dkim_selector, settings.dkim_domain) == ("mt2026", "example.com")
    assert settings.dkim_key == Path("/etc/mailticket/dkim.key")


@pytest.mark.parametrize("field", ["dkim_selector", "dkim_domain"])
@pytest.mark.parametrize("value", ["two words", "-leading.example", "a..b", "例子.公司"])
def test_selector_and_domain_must_be_dns_names(tmp_path: Path, field: str, value: str) -> None:
    environ = {
        "MAILTICKET_OUTBOUND_DKIM_SELECTOR": "mt2026",
        "MAILTICKET_OUTBOUND_DKIM_DOMAIN": DOMAIN,
        "MAILTICKET_OUTBOUND_DKIM_KEY": "/etc/mailticket/dkim.key",
        f"MAILTICKET_OUTBOUND_{field.upper()}": value,
    }

    variable = f"MAILTICKET_OUTBOUND_{field.upper()}"
    with pytest.raises(ConfigError, match=rf"^{variable} \(outbound\.{field}\): .*not a DNS name"):
        load_settings(empty_config(tmp_path), environ=environ)
