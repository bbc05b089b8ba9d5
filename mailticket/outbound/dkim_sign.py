"""DKIM for the mail we send: load the key once, then sign (bytes in, a header out).

The key is read and checked once, when the transport is built, so a missing or broken
key stops ``serve`` instead of letting unsigned mail out. Signing itself happens at
delivery (see ``transport.SigningTransport``), never at enqueue: the outbox keeps the
unsigned bytes, so a retry after a key rotation carries the new key's signature and the
transaction that writes a ticket never waits for RSA.

Which mail is signed follows OpenDKIM with ``SubDomains yes``, what an RT or
Postfix+OpenDKIM admin already expects: mail whose From domain is ``dkim_domain`` or one
of its subdomains (DMARC's relaxed alignment then passes). Mail from any other domain
would get a signature that aligns with nothing, so it leaves unsigned, as OpenDKIM lets
it pass, and the delivery detail says so.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailticket.errors import ConfigError
from mailticket.settings import OutboundSettings

# RFC 6376 5.4.1's list, as it applies to what notices.compose writes; signed when present.
SIGNED_HEADERS = (
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "auto-submitted",
)
# Named once more ("oversigned", as rspamd does by default): a copy added anywhere, or the
# header added where we sent none (a Reply-To to a thief), then breaks the signature.
OVERSIGNED_HEADERS = ("from", "to", "cc", "reply-to", "subject")
MIN_RSA_BITS = 1024  # RFC 8301: verifiers must ignore shorter keys
_RELAXED = (b"relaxed", b"relaxed")  # survives the refolding and re-spacing relays do
_PROBE = b"From: probe@invalid\r\n\r\nprobe\r\n"


@dataclass(frozen=True, slots=True)
class DkimKey:
    algorithm: bytes  # b"rsa-sha256" or b"ed25519-sha256"
    private: bytes  # as dkimpy reads it: PEM for RSA, the base64 seed for ed25519


class DkimSigner:
    """Signs as ``selector._domainkey.domain``; ``signature`` is safe to call from threads."""

    def __init__(self, *, selector: str, domain: str, key: DkimKey) -> None:
        self.selector, self.domain, self._key = selector, domain.lower().rstrip("."), key

    def signature(self, message: bytes) -> bytes | None:
        """The DKIM-Signature header line to put on top; None when From is not ours.

        Raises ``dkim.DKIMException`` for bytes dkimpy cannot read as a mail.
        """
        headers = BytesHeaderParser(policy=compat32).parsebytes(message)
        if not self._covers(_from_domain(headers)):
            return None
        present = {name.lower() for name in headers}
        names = [name for name in SIGNED_HEADERS if name in present] + [*OVERSIGNED_HEADERS]
        header: bytes = dkim.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self._key.private,
            canonicalize=_RELAXED,
            signature_algorithm=self._key.algorithm,
            include_headers=[name.encode() for name in names],
            linesep=_line_ending(message),
        )
        return header

    def _covers(self, sender: str | None) -> bool:
        return sender is not None and (sender == self.domain or sender.endswith(f".{self.domain}"))


def build_signer(settings: OutboundSettings) -> DkimSigner | None:
    """The signer ``[outbound]`` asks for, or None; a key that cannot sign is a ConfigError."""
    selector, domain, path = settings.dkim_selector, settings.dkim_domain, settings.dkim_key
    if selector is None or domain is None or path is None:  # the settings allow all or none
        return None
    key = load_key(path)
    try:  # sign once now: what dkimpy rejects must stop the start, not each delivery
        dkim.sign(_PROBE, b"probe", b"invalid", key.private, signature_algorithm=key.algorithm)
    except (dkim.DKIMException, ValueError) as exc:
        raise ConfigError(f"outbound.dkim_key: {path}: {_one_line(exc)}") from None
    return DkimSigner(selector=selector, domain=domain, key=key)


def load_key(path: Path) -> DkimKey:
    """Read a PEM RSA or ed25519 private key, or an ed25519 key as ``dknewkey`` writes it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"outbound.dkim_key: {path}: {exc.strerror or exc}") from None
    try:
        return _pem_key(data) if b"-----BEGIN" in data else _dknewkey_key(data)
    except ValueError as exc:
        raise ConfigError(f"outbound.dkim_key: {path}: {exc}") from None


def _pem_key(data: bytes) -> DkimKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography's way of saying "encrypted, and no password given"
        raise ValueError("the key is encrypted; mailticket needs it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a readable PEM private key") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return DkimKey(b"ed25519-sha256", base64.b64encode(key.private_bytes_raw()))
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("DKIM signs with an RSA or ed25519 key, not this kind")
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"a {key.key_size}-bit RSA key: receivers ignore it (use 2048 bits)")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return DkimKey(b"rsa-sha256", pem)


def _dknewkey_key(data: bytes) -> DkimKey:
    """``dknewkey --ktype ed25519`` writes the 32-byte seed in base64, nothing else."""
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except binascii.Error:
        seed = b""
    if len(seed) != 32:
        raise ValueError("neither a PEM private key nor a base64 ed25519 key (dknewkey)")
    return DkimKey(b"ed25519-sha256", base64.b64encode(seed))


def _from_domain(headers: Message) -> str | None:
    """The domain of the mail's single From address, lower-case; None unless exactly one."""
    values = headers.get_all("From", [])
    addresses = [address for _, address in getaddresses([str(v) for v in values]) if address]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None
    return addresses[0].rpartition("@")[2].lower().rstrip(".")


def _line_ending(message: bytes) -> bytes:
    """The message's own line ending, for folding the signature header to match."""
    end = message.find(b"\n")
    return b"\r\n" if end > 0 and message[end - 1 : end] == b"\r" else b"\n"


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
