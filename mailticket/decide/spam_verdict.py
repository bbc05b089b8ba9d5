"""Did the MTA in front call this mail spam? (pure)

Spam with a forged From must not make the support address write to a stranger, so intake
honours the verdict of the server that received the mail, on mail from a trusted relay or
account only (the caller decides that). Read, in this order, as ``[spam]`` configures:

- flag headers (``X-Spam-Flag: YES``, rspamd's ``X-Spam: Yes``, SpamAssassin's
  ``X-Spam-Status: Yes, score=7.1 required=5.0 …``): spam when the first word is yes/true;
- score headers (rspamd's ``X-Spamd-Result: default: False [12.30 / 15.00]; …``, a
  ``score=``/``hits=`` in ``X-Spam-Status``, a bare ``X-Spam-Score: 7.1``): spam at or above
  ``spam.score_threshold``; a value without a readable score is ignored, not spam;
- the ``Authentication-Results`` of ``agents.trusted_authserv_id``: ``dmarc=fail`` under a
  ``reject`` or ``quarantine`` policy (OpenDMARC's and Gmail's ``(p=reject dis=none)``,
  rspamd's ``(policy=reject)``, RFC 9989's ``policy.dmarc=reject``, Microsoft's
  ``action=oreject``), and ``spf=fail`` when ``spam.spf_fail``.

Only the topmost instance of each header counts, and of ``Authentication-Results`` only the
topmost one with our authserv-id: the MTA adds its own on top, a sender's copies come below
(and the MTA should strip them: docs/postfix.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

import authres

from mailticket.decide.agent_auth import _authserv_id
from mailticket.settings import SpamSettings

Headers = Sequence[tuple[str, str]]  # (lower-case name, decoded value), topmost first

_FLAG: Final = re.compile(r"\s*(?:[\w-]+:\s*)?(yes|true)\b", re.I)  # rspamd: "default: True"
_NUMBER: Final = r"([-+]?\d+(?:\.\d+)?)"
_SCORES: Final = (
    re.compile(rf"\[\s*{_NUMBER}\s*/\s*[-+]?\d+(?:\.\d+)?\s*\]"),  # rspamd [score / reject]
    re.compile(rf"(?<![\w.-])(?:score|hits)\s*=\s*{_NUMBER}", re.I),  # SpamAssassin, amavis
)
_BARE_SCORE: Final = re.compile(rf"\s*{_NUMBER}\s*")  # X-Spam-Score: 7.1
_POLICY: Final = re.compile(r"(?<![\w.-])(p|dis|policy|policy\.dmarc|action)\s*=\s*([\w.-]+)", re.I)
_ENFORCED: Final = ("reject", "quarantine")  # also Microsoft's oreject, pct.quarantine…


def spam_verdict(headers: Headers, settings: SpamSettings, authserv_id: str | None) -> str | None:
    """Why the MTA in front says ``headers``' mail is spam, or None when it does not."""
    if not settings.enabled:
        return None
    topmost: dict[str, str] = {}
    for name, value in headers:
        topmost.setdefault(name.lower(), " ".join(value.split()))
    return (
        _flagged(topmost, settings.flag_headers)
        or _scored(topmost, settings.score_headers, settings.score_threshold)
        or _authentication_results(headers, settings, authserv_id)
    )


def _display(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


# -- the spam filter's own headers ------------------------------------------------------------


def _flagged(topmost: Mapping[str, str], names: Sequence[str]) -> str | None:
    for name in names:
        found = _FLAG.match(topmost.get(name.lower(), ""))
        if found:
            return f"{_display(name.lower())}: {found.group(1)}"
    return None


def _scored(topmost: Mapping[str, str], names: Sequence[str], threshold: float) -> str | None:
    for name in names:
        score = _score(topmost.get(name.lower(), ""))
        if score is not None and score >= threshold:
            return f"{_display(name.lower())} score {score} >= {float(threshold)}"
    return None


def _score(value: str) -> float | None:
    """The score a spam filter wrote in ``value``, None when there is none to read."""
    found = next(filter(None, (pattern.search(value) for pattern in _SCORES)), None)
    found = found or _BARE_SCORE.fullmatch(value)
    return float(found.group(1)) if found else None


# -- Authentication-Results -------------------------------------------------------------------


def _authentication_results(
    headers: Headers, settings: SpamSettings, authserv_id: str | None
) -> str | None:
    """A DMARC failure under an enforced policy (or an SPF failure) in our server's header."""
    if not authserv_id or not (settings.dmarc_fail or settings.spf_fail):
        return None
    ours = authserv_id.lower()
    values = (" ".join(v.split()) for n, v in headers if n.lower() == "authentication-results")
    value = next((v for v in values if _authserv_id(v) == ours), None)
    if value is None:
        return None
    try:
        header = authres.AuthenticationResultsHeader.parse_value(value)
    except (authres.AuthResError, RecursionError):  # RecursionError: comments nested deep
        return None
    resinfos = _resinfos(value)
    if len(resinfos) != len(header.results):  # cannot tell which comment is whose
        resinfos = [""] * len(header.results)
    for result, text in zip(header.results, resinfos, strict=True):
        method, outcome = result.method.lower(), result.result.lower()
        if method == "dmarc" and outcome == "fail" and settings.dmarc_fail:
            policy = _enforced_policy(text, result)
            if policy:
                return f"dmarc=fail ({policy}){_for(result, 'header', 'from')} by {authserv_id}"
        if method == "spf" and outcome == "fail" and settings.spf_fail:
            identity = _for(result, "smtp", "mailfrom") or _for(result, "smtp", "helo")
            return f"spf=fail{identity} by {authserv_id}"
    return None


def _enforced_policy(text: str, result: authres.AuthenticationResult) -> str | None:
    """``p=reject`` (or the like) when the DMARC policy is reject or quarantine."""
    found = [(p.type + "." + p.name, str(p.value)) for p in result.properties]
    found += [(key, value) for key, value in _POLICY.findall(text)]
    for key, value in found:
        key, value = key.lower(), value.lower()
        if key in {"p", "dis", "policy", "policy.dmarc", "action"} and value.endswith(_ENFORCED):
            return f"{key}={value}"
    return None


def _for(result: authres.AuthenticationResult, ptype: str, name: str) -> str:
    for found in result.properties:
        if (found.type.lower(), found.name.lower()) == (ptype, name) and found.value:
            return f" for {found.value}"
    return ""


def _resinfos(value: str) -> list[str]:
    """The text of each result after the authserv-id (split at the ``;`` outside quotes and
    comments), quoted strings left out: a reason="…" names no policy."""
    parts = [""]
    for piece, top_level_semicolon in _pieces(value):
        if top_level_semicolon:
            parts.append("")
        else:
            parts[-1] += piece
    return [part for part in parts[1:] if part.strip() and part.strip().lower() != "none"]


def _pieces(value: str) -> Iterator[tuple[str, bool]]:
    """Each character of ``value`` outside quoted strings, and whether it ends a result."""
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"' and depth == 0:
            quoted = True
        else:
            depth += {"(": 1, ")": -1 if depth else 0}.get(char, 0)
            yield (" " if char in "()" else char), (char == ";" and depth == 0)
