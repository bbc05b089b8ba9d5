"""The MTA's spam verdict: header blocks as SpamAssassin, amavis, rspamd, OpenDMARC, Gmail and
Microsoft write them, read through mailticket.parse.mail.parse as intake reads them."""

from __future__ import annotations

import pytest

from mailticket.decide.spam_verdict import spam_verdict
from mailticket.parse.mail import parse
from mailticket.settings import SpamSettings

MX = "mx.example.com"
DEFAULTS = SpamSettings()

# -- samples ----------------------------------------------------------------------------------

SA_SPAM = """\
X-Spam-Checker-Version: SpamAssassin 3.4.6 (2021-04-09) on mx.example.com
X-Spam-Flag: YES
X-Spam-Level: *******
X-Spam-Status: Yes, score=7.1 required=5.0 tests=BAYES_99,BAYES_999,
\tRDNS_NONE,URIBL_ABUSE_SURBL,URIBL_BLACK autolearn=no autolearn_force=no
\tversion=3.4.6
"""
SA_HAM = """\
X-Spam-Checker-Version: SpamAssassin 3.4.6 (2021-04-09) on mx.example.com
X-Spam-Level:
X-Spam-Status: No, score=-0.1 required=5.0 tests=DKIM_SIGNED,DKIM_VALID,
\tDKIM_VALID_AU,SPF_HELO_NONE,SPF_PASS autolearn=ham autolearn_force=no
\tversion=3.4.6
"""
AMAVIS_SPAM = """\
X-Spam-Flag: YES
X-Spam-Score: 8.123
X-Spam-Level: ********
X-Spam-Status: Yes, score=8.123 tag=-999 tag2=6.31 kill=6.31
\ttests=[BAYES_99=3.5, RCVD_IN_SBL=2.596, URIBL_DBL_SPAM=2.5] autolearn=no
"""
RSPAMD_SPAM = """\
X-Spamd-Result: default: False [12.30 / 15.00];
\tBAYES_SPAM(5.10)[99.99%]; R_SPF_FAIL(1.00)[-all]; MIME_GOOD(-0.10)[text/plain];
\tDMARC_POLICY_REJECT(2.00)[example.com : No valid SPF, No valid DKIM,reject]
X-Rspamd-Server: mx.example.com
X-Rspamd-Queue-Id: 4P8Srv1GG5zBS
X-Spamd-Bar: ++++++++++++
X-Spam: Yes
"""
RSPAMD_HAM = """\
X-Spamd-Result: default: False [-0.50 / 15.00]; MIME_GOOD(-0.10)[text/plain];
\tR_DKIM_ALLOW(-0.20)[example.org:s=mail]; DMARC_POLICY_ALLOW(-0.50)[example.org,reject]
X-Spamd-Bar: /
"""
OPENDMARC_REJECT = (
    f"Authentication-Results: {MX}; dmarc=fail (p=reject dis=none) header.from=example.com\n"
)
OPENDMARC_RFC9989 = (
    f"Authentication-Results: {MX};"
    " dmarc=fail (p=reject dis=none) header.from=example.com policy.dmarc=reject\n"
)
OPENDMARC_NONE = (
    f"Authentication-Results: {MX}; dmarc=fail (p=none dis=none) header.from=example.com\n"
)
RSPAMD_AR = f"""\
Authentication-Results: {MX};
\tdkim=none;
\tdmarc=fail reason="No valid SPF, No valid DKIM" header.from=example.com (policy=reject);
\tspf=fail (mx.example.com: domain of x@example.com does not designate 192.0.2.1 as
\tpermitted sender) smtp.mailfrom=x@example.com
"""
RSPAMD_AR_SOFTFAIL = f"""\
Authentication-Results: {MX};
\tdmarc=fail reason="No valid SPF" header.from=example.com (policy=none);
\tspf=softfail smtp.mailfrom=x@example.com
"""
GMAIL_QUARANTINE = f"""\
Authentication-Results: {MX};
       dkim=fail header.i=@example.com header.s=s1 header.b=abc;
       spf=fail (google.com: domain of x@example.com does not designate 192.0.2.1 as
 permitted sender) smtp.mailfrom=x@example.com;
       dmarc=fail (p=QUARANTINE sp=NONE dis=QUARANTINE) header.from=example.com
"""
MICROSOFT_OREJECT = f"""\
Authentication-Results: {MX}; spf=fail (sender IP is 192.0.2.1)
 smtp.mailfrom=example.com; dkim=none (message not signed) header.d=none;
 dmarc=fail action=oreject header.from=example.com;compauth=fail reason=000
"""
DMARC_PASS = f"Authentication-Results: {MX}; dkim=pass header.d=example.com; dmarc=pass (p=reject dis=none) header.from=example.com\n"


def headers(block: str) -> tuple[tuple[str, str], ...]:
    raw = block + "From: x@example.com\nTo: support@example.net\nSubject: hi\n\nhello\n"
    return parse(raw.encode()).headers


# -- the verdicts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (SA_SPAM, "X-Spam-Flag: YES"),
        (AMAVIS_SPAM, "X-Spam-Flag: YES"),
        (RSPAMD_SPAM, "X-Spam: Yes"),
        ("X-Spam-Status: Yes, score=5.5 required=5.0 tests=BAYES_99\n", "X-Spam-Status: Yes"),
        ("X-Spam-Status: Yes, score=12.00\n", "X-Spam-Status: Yes"),  # rspamd's x-spam-status
        ("X-Spam-Flag: yes\n", "X-Spam-Flag: yes"),
        # scores, against spam.score_threshold (6.0)
        (RSPAMD_SPAM.replace("X-Spam: Yes\n", ""), "X-Spamd-Result score 12.3 >= 6.0"),
        ("X-Spamd-Result: default: True [16.00 / 15.00]\n", "X-Spamd-Result score 16.0 >= 6.0"),
        ("X-Spam-Score: 8.123\n", "X-Spam-Score score 8.123 >= 6.0"),
        # SpamAssassin's own "No" stands by default (X-Spam-Status is read as a flag)
        ("X-Spam-Status: No, score=7.1 required=8.0 tests=NONE\n", None),
        # our server's Authentication-Results
        (OPENDMARC_REJECT, f"dmarc=fail (p=reject) for example.com by {MX}"),
        (OPENDMARC_RFC9989, f"dmarc=fail (policy.dmarc=reject) for example.com by {MX}"),
        (RSPAMD_AR, f"dmarc=fail (policy=reject) for example.com by {MX}"),
        (GMAIL_QUARANTINE, f"dmarc=fail (p=quarantine) for example.com by {MX}"),
        (MICROSOFT_OREJECT, f"dmarc=fail (action=oreject) for example.com by {MX}"),
        # the MTA's verdict on top; a sender's own copy below counts for nothing
        ("X-Spam-Flag: YES\nX-Spam-Flag: NO\n", "X-Spam-Flag: YES"),
        (
            f"{OPENDMARC_REJECT}Authentication-Results: {MX}; dmarc=pass header.from=example.com\n",
            f"dmarc=fail (p=reject) for example.com by {MX}",
        ),
        # another server's header on top is not ours: ours below is read
        (
            f"Authentication-Results: relay.example.org; dmarc=pass\n{OPENDMARC_REJECT}",
            f"dmarc=fail (p=reject) for example.com by {MX}",
        ),
        (
            f"Authentication-Results: MX.Example.COM; {OPENDMARC_REJECT.partition('; ')[2]}",
            f"dmarc=fail (p=reject) for example.com by {MX}",
        ),
    ],
)
def test_spam(block: str, reason: str) -> None:
    assert spam_verdict(headers(block), DEFAULTS, MX) == reason


@pytest.mark.parametrize(
    "block",
    [
        "",
        SA_HAM,
        RSPAMD_HAM,
        "X-Spam-Flag: NO\n",
        "X-Spam: No\n",
        "X-Spam-Status: No, score=5.9 required=5.0\n",  # below the threshold
        "X-Spamd-Result: default: False [5.99 / 15.00]\n",
        "X-Spam-Score: -3.2\n",
        # unreadable scores are ignored, not spam
        "X-Spam-Score: lots\n",
        "X-Spam-Score: 7.1 points\n",
        "X-Spam-Score: 1e400\n",
        "X-Spam-Score: nan\n",
        "X-Spamd-Result: default: False [twelve / 15.00]\n",
        "X-Spam-Status: perhaps, score=\n",
        "X-Spam-Flag: yesterday\n",
        "X-Spam-Level: ******************\n",  # not a header [spam] reads
        # DMARC fails without an enforced policy, or passes; SPF is off by default
        OPENDMARC_NONE,
        RSPAMD_AR_SOFTFAIL,
        DMARC_PASS,
        f"Authentication-Results: {MX}; dmarc=fail header.from=example.com\n",  # no policy said
        f"Authentication-Results: {MX}; spf=fail smtp.mailfrom=x@example.com\n",
        f'Authentication-Results: {MX}; dmarc=none reason="p=reject" header.from=example.com\n',
        # a forged verdict below the MTA's counts for nothing
        "X-Spam-Flag: NO\nX-Spam-Flag: YES\n",
        "X-Spam-Status: No, score=0.3 required=5.0\nX-Spam-Status: Yes, score=99 required=5.0\n",
        f"Authentication-Results: {MX}; dmarc=pass header.from=example.com\n{OPENDMARC_REJECT}",
        # a header from another server, or one that is not ours
        OPENDMARC_REJECT.replace(MX, "mx.evil.example"),
        OPENDMARC_REJECT.replace(MX, f"{MX}.evil.example"),
        # malformed: our header cannot be read, the next one down is not trusted instead
        f"Authentication-Results: {MX}; dmarc fail (p=reject\n{OPENDMARC_REJECT}",
        f"Authentication-Results: {MX}; dmarc=fail {'(' * 3000}\n",
    ],
)
def test_not_spam(block: str) -> None:
    assert spam_verdict(headers(block), DEFAULTS, MX) is None


def test_a_quoted_reason_names_no_policy() -> None:
    block = f'Authentication-Results: {MX}; dmarc=fail reason="p=reject" header.from=example.com\n'
    assert spam_verdict(headers(block), DEFAULTS, MX) is None


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "authserv_id", "block", "reason"),
    [
        (SpamSettings(enabled=False), MX, SA_SPAM + OPENDMARC_REJECT, None),
        (SpamSettings(score_threshold=13), MX, RSPAMD_SPAM.replace("X-Spam: Yes\n", ""), None),
        (
            SpamSettings(score_threshold=5, score_headers=("x-spam-status",)),
            MX,
            "X-Spam-Status: No, score=5.0 required=8.0\n",
            "X-Spam-Status score 5.0 >= 5.0",
        ),
        (SpamSettings(flag_headers=()), MX, "X-Spam-Flag: YES\n", None),
        (SpamSettings(flag_headers=("X-Spam-Flag",)), MX, "X-Spam: Yes\n", None),
        (SpamSettings(flag_headers=("X-Spam-Flag",)), MX, "X-Spam-Flag: YES\n", "X-Spam-Flag: YES"),
        (
            SpamSettings(flag_headers=("x-spamd-result",)),
            MX,
            "X-Spamd-Result: default: True [16.00 / 15.00]\n",
            "X-Spamd-Result: True",
        ),
        (
            SpamSettings(flag_headers=(), score_headers=("x-rspamd-score",)),
            MX,
            "X-Rspamd-Score: 12.314971\nX-Spam-Flag: YES\n",
            "X-Rspamd-Score score 12.314971 >= 6.0",
        ),
        (SpamSettings(score_headers=()), MX, "X-Spam-Score: 99\n", None),
        (SpamSettings(dmarc_fail=False), MX, OPENDMARC_REJECT, None),
        (DEFAULTS, None, OPENDMARC_REJECT, None),  # no trusted authserv-id: none is read
        (
            SpamSettings(spf_fail=True),
            MX,
            RSPAMD_AR,
            f"dmarc=fail (policy=reject) for example.com by {MX}",
        ),
        (
            SpamSettings(spf_fail=True, dmarc_fail=False),
            MX,
            RSPAMD_AR,
            f"spf=fail for x@example.com by {MX}",
        ),
        (SpamSettings(spf_fail=True), MX, RSPAMD_AR_SOFTFAIL, None),
        (
            SpamSettings(spf_fail=True),
            MX,
            f"Authentication-Results: {MX}; spf=fail smtp.helo=bad.example\n",
            f"spf=fail for bad.example by {MX}",
        ),
    ],
)
def test_settings(
    settings: SpamSettings, authserv_id: str | None, block: str, reason: str | None
) -> None:
    assert spam_verdict(headers(block), settings, authserv_id) == reason


def test_flags_come_first_then_scores_then_authentication() -> None:
    both = "X-Spam-Score: 9.0\n" + OPENDMARC_REJECT
    assert spam_verdict(headers(both), DEFAULTS, MX) == "X-Spam-Score score 9.0 >= 6.0"
    assert spam_verdict(headers(SA_SPAM + both), DEFAULTS, MX) == "X-Spam-Flag: YES"
