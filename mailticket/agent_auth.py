"""Is a mail that claims an agent's From really from that agent? (DNS comes in as a function.)

Anyone can write any From. With ``agents.require_authenticated`` an agent's mail counts only
when one of these vouches for its From domain:

1. the ``Authentication-Results`` header our own server added (authserv-id equal to
   ``agents.trusted_authserv_id``) saying ``dkim=pass`` for that domain, or ``dmarc=pass``
   with ``header.from`` that domain. Only the topmost header with that id is read: our
   server adds its header on top, and any below it came with the mail, written by the
   sender. (Checked first: it costs no DNS lookup.)
2. a DKIM signature of that domain that dkimpy verifies. A signature that covers only part
   of the body (``l=``) or not the From header proves nothing about what an attacker could
   add, and is refused.

"Of that domain" is relaxed alignment: ``d=`` is the From domain or a parent of it (whoever
publishes keys under ``_domainkey.example.com`` runs ``example.com``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Final

import authres
import dkim
from dkim.dnsplug import get_txt
from dkim.util import InvalidTagValueList, parse_tag_value

from mailticket.mail import InboundMail

DnsLookup = Callable[..., bytes | None]  # dkimpy's dnsfunc: (name: bytes, timeout=5) -> TXT
MAX_SIGNATURES: Final = 5  # each costs a DNS lookup and an RSA verification
_COMMENT: Final = re.compile(r"\([^()]*\)")


@dataclass(frozen=True, slots=True)
class Verdict:
    authenticated: bool
    method: str  # for the event log: "dkim pass d=example.com", "not authenticated: …"


def authenticate(
    mail: InboundMail, trusted_authserv_id: str | None, dns: DnsLookup = get_txt
) -> Verdict:
    """How, if at all, the mail's From domain vouches for it."""
    domain, problem = _from_domain(mail)
    if domain is None:
        return Verdict(False, f"not authenticated: {problem}")
    reasons: list[str] = []
    if trusted_authserv_id:
        verdict = _by_results(mail.header("authentication-results"), trusted_authserv_id, domain)
        if isinstance(verdict, Verdict):
            return verdict
        reasons.append(verdict)
    verdict = _by_signature(mail.raw, domain, dns)
    if isinstance(verdict, Verdict):
        return verdict
    reasons.append(verdict)
    return Verdict(False, "not authenticated: " + "; ".join(reasons))


def _from_domain(mail: InboundMail) -> tuple[str | None, str]:
    """The From domain, when the mail has exactly one From naming exactly one address."""
    values = mail.header("from")
    if len(values) != 1:
        return None, f"{len(values)} From headers"
    addresses = [address for _, address in getaddresses(values) if address]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None, f"From names {len(addresses)} addresses"
    return addresses[0].rpartition("@")[2].lower().rstrip("."), ""


def _aligned(signer: str, domain: str) -> bool:
    signer = signer.lower().rstrip(".")
    return signer == domain or ("." in signer and domain.endswith("." + signer))


# -- Authentication-Results -----------------------------------------------------------------


def _by_results(values: tuple[str, ...], trusted: str, domain: str) -> Verdict | str:
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
                return Verdict(True, f"authentication-results {trusted}: {_describe(result)}")
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


def _by_signature(raw: bytes, domain: str, dns: DnsLookup) -> Verdict | str:
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
        refused = _refused(value, domain)
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
            return Verdict(True, f"dkim pass d={signed_by}")
        reasons.append(f"dkim fail d={signed_by} ({'; '.join(errors.lines) or 'bad signature'})")
    return "; ".join(reasons)


def _refused(value: bytes, domain: str) -> str | None:
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
    if b"from" not in {name.strip().lower() for name in tags.get(b"h", b"").split(b":")}:
        return f"dkim d={signed_by} does not sign the From header"
    return None


def _tag(value: bytes, name: bytes) -> str:
    try:
        found: bytes = parse_tag_value(value).get(name, b"")
        return found.decode("ascii", "replace").lower()
    except InvalidTagValueList:
        return ""
