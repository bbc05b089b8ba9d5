"""Does the From domain vouch for a mail? (DNS comes in as a function.)

Anyone can write any From. A mail from an agent's address acts, and a requester's Cc
becomes a participant, only when something we can check vouches for it; this module
checks the two proofs that come with the mail (the third, a reply to a Message-ID we sent
to that address, is :meth:`mailticket.decide.threads.MessageIdSigner.sent_to`):

1. the ``Authentication-Results`` header our own server added (authserv-id equal to
   ``agents.trusted_authserv_id``) saying ``dkim=pass`` for that domain, or ``dmarc=pass``
   with ``header.from`` that domain. Read only when the mail came from a trusted relay or
   an IMAP account marked so (``results_trusted``): on a listener that faces the Internet
   the sender writes that header. Only the topmost header with that id is read: our
   server adds its header on top, and any below it came with the mail.
2. a DKIM signature of that domain that dkimpy verifies, over the whole body, covering
   From, Subject, Message-ID and every other singleton header the mail has (a header it
   does not cover could be rewritten: a replayed mail aimed at another ticket).

The domain is that of ``mail.from_addr``, the one reading of From that intake keys on;
a mail whose identity reads more than one way (``mail.identity_problems``) is never
authenticated. "Of that domain" is relaxed alignment: ``d=`` is the From domain or a
parent of it (whoever publishes keys under ``_domainkey.example.com`` runs
``example.com``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import authres
import dkim
from dkim.dnsplug import get_txt
from dkim.util import InvalidTagValueList, parse_tag_value

from mailticket.parse.identity import SINGLETONS
from mailticket.parse.mail import InboundMail

DnsLookup = Callable[..., bytes | None]  # dkimpy's dnsfunc: (name: bytes, timeout=5) -> TXT
MAX_SIGNATURES: Final = 5  # each costs a DNS lookup and an RSA verification
_COMMENT: Final = re.compile(r"\([^()]*\)")


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    authenticated: bool
    method: str  # for the event log: "dkim pass d=example.com", "not authenticated: …"


def authenticate(
    mail: InboundMail,
    trusted_authserv_id: str | None,
    dns: DnsLookup = get_txt,
    *,
    results_trusted: bool = False,
) -> AuthVerdict:
    """How, if at all, the mail's From domain vouches for it; ``results_trusted``: the
    mail came from a trusted relay or account, so its Authentication-Results are read."""
    if mail.identity_problems:
        return AuthVerdict(False, "not authenticated: " + "; ".join(mail.identity_problems))
    if "@" not in mail.from_addr:
        return AuthVerdict(False, "not authenticated: no sender address")
    domain = mail.from_addr.rpartition("@")[2].rstrip(".")
    reasons: list[str] = []
    if trusted_authserv_id and results_trusted:
        verdict = _by_results(mail.header("authentication-results"), trusted_authserv_id, domain)
        if isinstance(verdict, AuthVerdict):
            return verdict
        reasons.append(verdict)
    elif trusted_authserv_id:
        reasons.append(
            "Authentication-Results not read: the mail did not come from a trusted relay"
        )
    verdict = _by_signature(mail.raw, domain, dns, _present_singletons(mail))
    if isinstance(verdict, AuthVerdict):
        return verdict
    reasons.append(verdict)
    return AuthVerdict(False, "not authenticated: " + "; ".join(reasons))


def _present_singletons(mail: InboundMail) -> frozenset[str]:
    """The singleton headers a signature must cover: From, Subject, Message-ID always."""
    present = {name for name, _ in mail.headers if name in SINGLETONS}
    return frozenset(present | {"from", "subject", "message-id"})


def _aligned(signer: str, domain: str) -> bool:
    signer = signer.lower().rstrip(".")
    return signer == domain or ("." in signer and domain.endswith("." + signer))


# -- Authentication-Results -----------------------------------------------------------------


def _by_results(values: tuple[str, ...], trusted: str, domain: str) -> AuthVerdict | str:
    """The verdict of the topmost header from ``trusted``, or why there is none."""
    for value in values:
        value = " ".join(value.split())
        if _authserv_id(value) != trusted.lower():
            continue
        try:
            header = authres.AuthenticationResultsHeader.parse_value(value)
        except authres.AuthResError:
            return f"unreadable Authentication-Results from {trusted}"
        for result in header.results:
            if _vouches(result, domain):
                return AuthVerdict(True, f"authentication-results {trusted}: {_describe(result)}")
        said = ", ".join(f"{r.method}={r.result}" for r in header.results) or "none"
        return f"authentication-results {trusted} said {said} for {domain}"
    return f"no Authentication-Results from {trusted}"


def _authserv_id(value: str) -> str:
    """The authserv-id (before the first ';', comments and version aside), lower-case."""
    head = _COMMENT.sub(" ", value.partition(";")[0]).split()
    return head[0].lower() if head else ""


def _vouches(result: authres.AuthenticationResult, domain: str) -> bool:
    if result.result.lower() != "pass":
        return False
    found = {(p.type.lower(), p.name.lower()): str(p.value) for p in result.properties}
    if result.method.lower() == "dkim":
        signer = found.get(("header", "d")) or found.get(("header", "i"), "").rpartition("@")[2]
        return bool(signer) and _aligned(signer, domain)
    if result.method.lower() == "dmarc":
        return found.get(("header", "from"), "").lower().rstrip(".") == domain
    return False


def _describe(result: authres.AuthenticationResult) -> str:
    if result.method.lower() == "dkim":
        signer = next((p for p in result.properties if p.name.lower() in {"d", "i"}), None)
        if signer is not None:
            return f"dkim=pass header.{signer.name}={signer.value}"
    return f"{result.method}={result.result}"


# -- DKIM ---------------------------------------------------------------------------------


class _Errors:
    """A logger for dkimpy that keeps its error lines: they say why a signature failed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def error(self, message: str, *args: object) -> None:
        self.lines.append(message % args if args else message)

    def debug(self, message: str, *args: object) -> None:
        pass

    info = warning = debug


def _by_signature(
    raw: bytes, domain: str, dns: DnsLookup, covered: frozenset[str]
) -> AuthVerdict | str:
    """A verified, whole-body, From-covering signature of ``domain``, or why there is none."""
    errors = _Errors()
    try:
        signer = dkim.DKIM(raw, logger=errors)
    except dkim.DKIMException as exc:
        return f"unreadable message for DKIM ({exc})"
    signatures = [v for n, v in signer.headers if n.lower() == b"dkim-signature"]
    if not signatures:
        return "no DKIM signature"
    reasons = []
    for index, value in enumerate(signatures[:MAX_SIGNATURES]):
        refused = _refused(value, domain, covered)
        if refused:
            reasons.append(refused)
            continue
        errors.lines.clear()
        try:
            verified = signer.verify(idx=index, dnsfunc=dns)
        except dkim.DKIMException as exc:
            verified, errors.lines = False, [str(exc)]
        signed_by = _tag(value, b"d")
        if verified:
            return AuthVerdict(True, f"dkim pass d={signed_by}")
        reasons.append(f"dkim fail d={signed_by} ({'; '.join(errors.lines) or 'bad signature'})")
    return "; ".join(reasons)


def _refused(value: bytes, domain: str, covered: frozenset[str]) -> str | None:
    """Why this signature cannot vouch for ``domain`` whatever its cryptography says."""
    try:
        tags = parse_tag_value(value)
    except InvalidTagValueList:
        return "unreadable DKIM-Signature"
    signed_by = _tag(value, b"d")
    if not _aligned(signed_by, domain):
        return f"dkim d={signed_by} is not the From domain {domain}"
    if b"l" in tags:
        return f"dkim d={signed_by} signs only part of the body (l=)"
    signed = {
        name.strip().lower().decode("ascii", "replace") for name in tags.get(b"h", b"").split(b":")
    }
    missing = sorted(covered - signed)
    if missing:
        return f"dkim d={signed_by} does not sign {', '.join(missing)}"
    return None


def _tag(value: bytes, name: bytes) -> str:
    try:
        found: bytes = parse_tag_value(value).get(name, b"")
        return found.decode("ascii", "replace").lower()
    except InvalidTagValueList:
        return ""
