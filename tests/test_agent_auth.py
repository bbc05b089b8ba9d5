"""Agent authentication: real DKIM signatures made with a key pair generated here (openssl),
verified by dkimpy through a DNS function that answers from a dict; Authentication-Results
headers as a trusted and an untrusted server would add them."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Callable

import dkim
import pytest

from mailticket.decide.agent_auth import AuthVerdict, authenticate
from mailticket.parse.mail import parse

TRUSTED = "mx.example.com"
SELECTOR = b"mt2026"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """(private key PEM, the DNS TXT record publishing its public half)."""
    folder = tmp_path_factory.mktemp("dkim")
    private = folder / "private.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        check=True,
        stdout=private.open("wb"),
        stderr=subprocess.DEVNULL,
    )
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(private), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return private.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns_for(records: dict[bytes, bytes]) -> Callable[..., bytes | None]:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return lookup


def published(key: tuple[bytes, bytes], *domains: str) -> Callable[..., bytes | None]:
    return dns_for({SELECTOR + b"._domainkey." + d.encode() + b".": key[1] for d in domains})


def raw_mail(sender: str = "alice@example.com", headers: str = "", body: str = "") -> bytes:
    text = (
        f"{headers}From: Alice Agent <{sender}>\r\n"
        "To: support@example.com\r\n"
        "Subject: Re: [MT-7] Cannot log in\r\n"
        "Date: Mon, 05 Jan 2026 10:30:00 +0800\r\n"
        "Message-ID: <reply-1@example.com>\r\n"
        "\r\n" + (body or "#close\r\n\r\nFixed, closing.\r\n")
    )
    return text.encode()


def signed(
    raw: bytes, key: tuple[bytes, bytes], domain: str = "example.com", **options: object
) -> bytes:
    signature: bytes = dkim.sign(
        raw,
        SELECTOR,
        domain.encode(),
        key[0],
        include_headers=options.pop(
            "include_headers", [b"from", b"to", b"subject", b"date", b"message-id"]
        ),
        **options,
    )
    return signature + raw


def verdict(
    raw: bytes,
    dns: Callable[..., bytes | None],
    trusted: str | None = TRUSTED,
    *,
    relay: bool = True,
) -> AuthVerdict:
    """``relay``: the mail came from a trusted relay, so its Authentication-Results count."""
    return authenticate(parse(raw), trusted, dns, results_trusted=relay)


def test_a_valid_signature_of_the_from_domain_authenticates(key: tuple[bytes, bytes]) -> None:
    result = verdict(signed(raw_mail(), key), published(key, "example.com"))
    assert result == AuthVerdict(True, "dkim pass d=example.com")


def test_a_signature_of_a_parent_domain_is_aligned(key: tuple[bytes, bytes]) -> None:
    raw = signed(raw_mail("alice@eu.example.com"), key, "example.com")
    assert verdict(raw, published(key, "example.com")) == AuthVerdict(
        True, "dkim pass d=example.com"
    )


def test_a_tampered_body_fails(key: tuple[bytes, bytes]) -> None:
    raw = signed(raw_mail(), key).replace(b"#close", b"#assign mallory@evil.example")
    result = verdict(raw, published(key, "example.com"))
    assert not result.authenticated
    assert "dkim fail d=example.com (body hash mismatch" in result.method


def test_a_from_changed_after_signing_fails(key: tuple[bytes, bytes]) -> None:
    raw = signed(raw_mail("bob@example.com"), key).replace(b"bob@example.com", b"alice@example.com")
    result = verdict(raw, published(key, "example.com"))
    assert not result.authenticated
    assert result.method.startswith("not authenticated: ")
    assert "dkim fail d=example.com" in result.method


def test_a_valid_signature_of_another_domain_proves_nothing(key: tuple[bytes, bytes]) -> None:
    raw = signed(raw_mail("alice@example.com"), key, "attacker.example")
    result = verdict(raw, published(key, "attacker.example", "example.com"))
    assert not result.authenticated
    assert "dkim d=attacker.example is not the From domain example.com" in result.method


def test_a_sibling_domain_is_not_aligned(key: tuple[bytes, bytes]) -> None:
    raw = signed(raw_mail("alice@example.com"), key, "evil.example.com")
    assert not verdict(raw, published(key, "evil.example.com")).authenticated


def test_a_signature_over_part_of_the_body_is_refused(key: tuple[bytes, bytes]) -> None:
    """With l= anyone can append text (and commands) below the signed part."""
    raw = signed(raw_mail(), key, length=True) + b"#assign mallory@evil.example\r\n"
    result = verdict(raw, published(key, "example.com"))
    assert not result.authenticated
    assert "signs only part of the body (l=)" in result.method


def test_a_signature_without_the_from_header_is_refused(key: tuple[bytes, bytes]) -> None:
    """dkimpy will not make one; other signers may: h= edited to leave From out."""
    raw = signed(raw_mail(), key, include_headers=[b"from", b"to", b"subject"])
    raw, edits = re.subn(rb"h=from\s*:\s*", b"h=", raw, count=1)
    assert edits == 1
    result = verdict(raw, published(key, "example.com"))
    assert not result.authenticated
    assert "dkim d=example.com does not sign date, from, message-id" in result.method


def test_an_unpublished_key_fails(key: tuple[bytes, bytes]) -> None:
    result = verdict(signed(raw_mail(), key), published(key, "other.example"))
    assert not result.authenticated
    assert "missing public key" in result.method


def test_a_dns_timeout_fails_with_its_reason(key: tuple[bytes, bytes]) -> None:
    def timeout(name: bytes, timeout: int = 5) -> bytes | None:
        raise dkim.DnsTimeoutError("resolver timed out")

    result = verdict(signed(raw_mail(), key), timeout)
    assert not result.authenticated
    assert "resolver timed out" in result.method


def test_a_second_signature_can_vouch_when_the_first_does_not(key: tuple[bytes, bytes]) -> None:
    """A mailing list or relay adds its own signature on top; the agent's is below."""
    inner = signed(raw_mail(), key, "example.com")
    raw = signed(inner, key, "relay.example")
    result = verdict(raw, published(key, "example.com", "relay.example"))
    assert result == AuthVerdict(True, "dkim pass d=example.com")


def test_two_from_headers_are_never_authenticated(key: tuple[bytes, bytes]) -> None:
    # the same address twice: parse() reads it (two different ones are quarantined there)
    raw = signed(raw_mail(headers="From: Alice <alice@example.com>\r\n"), key)
    result = verdict(raw, published(key, "example.com"))
    assert result == AuthVerdict(False, "not authenticated: from header repeated")


def test_no_signature_and_no_results_header() -> None:
    result = verdict(raw_mail(), dns_for({}))
    assert result == AuthVerdict(
        False,
        f"not authenticated: no Authentication-Results from {TRUSTED}; no DKIM signature",
    )


def test_without_a_trusted_server_results_headers_are_ignored() -> None:
    headers = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    result = verdict(raw_mail(headers=headers), dns_for({}), trusted=None)
    assert result == AuthVerdict(False, "not authenticated: no DKIM signature")


@pytest.mark.parametrize(
    ("header", "method"),
    [
        (
            "mx.example.com; dkim=pass header.d=example.com header.s=mt2026",
            "authentication-results mx.example.com: dkim=pass header.d=example.com",
        ),
        (
            "MX.Example.COM 1; spf=pass smtp.mailfrom=example.com; dkim=pass (2048-bit key) header.i=@example.com",
            "authentication-results mx.example.com: dkim=pass header.i=@example.com",
        ),
        (
            "mx.example.com; dkim=fail header.d=example.com; dmarc=pass (p=reject) header.from=example.com",
            "authentication-results mx.example.com: dmarc=pass",
        ),
    ],
)
def test_the_trusted_servers_results_authenticate(header: str, method: str) -> None:
    raw = raw_mail(headers=f"Authentication-Results: {header}\r\n")
    assert verdict(raw, dns_for({})) == AuthVerdict(True, method)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        # forged by the sender: not our server's id
        (
            ["evil.example; dkim=pass header.d=example.com"],
            "no Authentication-Results from mx.example.com",
        ),
        # our server's verdict is fail; the pass below it came with the mail
        (
            [
                "mx.example.com; dkim=fail header.d=example.com; dmarc=fail header.from=example.com",
                "mx.example.com; dkim=pass header.d=example.com",
            ],
            "authentication-results mx.example.com said dkim=fail, dmarc=fail for example.com",
        ),
        # a pass, but for another domain
        (
            [
                "mx.example.com; dkim=pass header.d=attacker.example; dmarc=pass header.from=attacker.example"
            ],
            "authentication-results mx.example.com said dkim=pass, dmarc=pass for example.com",
        ),
        (
            ["mx.example.com; dkim=pass header.d=example.com ;;; ="],
            "unreadable Authentication-Results from mx.example.com",
        ),
        (
            ["mx.example.com; none"],
            "authentication-results mx.example.com said none for example.com",
        ),
    ],
)
def test_results_that_do_not_vouch(headers: list[str], reason: str) -> None:
    raw = raw_mail(headers="".join(f"Authentication-Results: {h}\r\n" for h in headers))
    assert verdict(raw, dns_for({})) == AuthVerdict(
        False, f"not authenticated: {reason}; no DKIM signature"
    )


def test_a_signature_still_counts_when_the_results_do_not(key: tuple[bytes, bytes]) -> None:
    """Our server's DNS may have failed (dkim=temperror): our own check can still pass."""
    raw = signed(raw_mail(), key)
    raw = b"Authentication-Results: mx.example.com; dkim=temperror header.d=example.com\r\n" + raw
    assert verdict(raw, published(key, "example.com")) == AuthVerdict(
        True, "dkim pass d=example.com"
    )


def test_an_untrusted_pass_does_not_stop_a_failing_signature(key: tuple[bytes, bytes]) -> None:
    raw = signed(raw_mail(), key).replace(b"Fixed", b"Fixxd")
    raw = b"Authentication-Results: evil.example; dkim=pass header.d=example.com\r\n" + raw
    result = verdict(raw, published(key, "example.com"))
    assert not result.authenticated
    assert "no Authentication-Results from mx.example.com" in result.method
    assert "body hash mismatch" in result.method


# -- one reading of the identity; what a signature must cover; who may say "pass" --------


def test_results_are_not_read_from_a_sender_that_is_no_trusted_relay() -> None:
    """On a listener facing the Internet the sender writes any Authentication-Results."""
    forged = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    result = verdict(raw_mail(headers=forged), dns_for({}), relay=False)
    assert not result.authenticated
    assert "did not come from a trusted relay" in result.method


def test_an_encoded_word_from_that_reads_two_ways_is_never_authenticated(
    key: tuple[bytes, bytes],
) -> None:
    """Intake reads agent@example.com; a decoding verifier reads mallory@evil.example. The
    attacker signs for evil.example: nothing may vouch for the agent's domain."""
    tricky = (
        "From: =?utf-8?b?Ig==?=x <alice@example.com>"
        "=?utf-8?b?IiA8bWFsbG9yeUBldmlsLmV4YW1wbGU+?=\r\n"
    )
    raw = raw_mail().replace(b"From: Alice Agent <alice@example.com>\r\n", tricky.encode())
    raw = signed(raw, key, "evil.example")
    result = verdict(raw, published(key, "evil.example", "example.com"))
    assert not result.authenticated
    assert "from reads differently to different parsers" in result.method


@pytest.mark.parametrize("header", ["Subject: [MT-2] other\r\n", "Message-ID: <new@evil>\r\n"])
def test_a_signed_mail_replayed_with_a_second_singleton_on_top_is_refused(
    key: tuple[bytes, bytes], header: str
) -> None:
    """The signature verifies (it covers the bottom copy), intake would read the top one."""
    raw = header.encode() + signed(raw_mail(), key)
    result = verdict(raw, published(key, "example.com"))
    assert not result.authenticated
    assert "header repeated" in result.method


def test_a_signature_must_cover_the_threading_headers_the_mail_has(
    key: tuple[bytes, bytes],
) -> None:
    """An unsigned In-Reply-To could be rewritten to aim the mail at another ticket."""
    raw = raw_mail(headers="In-Reply-To: <q1@customer.example>\r\n")
    result = verdict(signed(raw, key), published(key, "example.com"))
    assert not result.authenticated
    assert "does not sign in-reply-to" in result.method
    covering = signed(
        raw,
        key,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"in-reply-to"],
    )
    assert verdict(covering, published(key, "example.com")).authenticated
