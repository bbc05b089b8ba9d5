from __future__ import annotations

from collections.abc import Sequence

import pytest

from mailticket.decide.threads import (
    MessageIdSigner,
    clean_subject,
    find_tag,
    find_thread,
    mentioned_numbers,
    with_tag,
)

SIGNER = MessageIdSigner(secret=b"s3cret", prefix="MT", host="example.org")


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("[MT-123] Cannot log in", 123),
        ("Re: [MT-7] hello", 7),
        ("RE: Fwd: AW: [mt-42] case-insensitive", 42),
        ("回复: [MT-9] 账户被盗", 9),
        ("答复：转发: [MT-10] 全角冒号", 10),
        ("tag at the end [MT-55]", 55),
        ("[ MT-56 ] spaced", 56),
        ("MT-123 without brackets", None),
        ("[MTX-123] other prefix", None),
        ("[XMT-123]", None),
        ("no tag", None),
    ],
)
def test_find_tag(subject: str, number: int | None) -> None:
    assert find_tag(subject, "MT") == number


def test_find_tag_escapes_the_prefix() -> None:
    assert find_tag("[A.B-5] x", "A.B") == 5
    assert find_tag("[AxB-5] x", "A.B") is None


@pytest.mark.parametrize(
    ("subject", "cleaned"),
    [
        ("Re: Re: [MT-1] Hello", "Hello"),
        ("Fwd: AW: WG: Hello  world", "Hello world"),
        ("回复：转发: 我的问题", "我的问题"),
        ("Re[2]: Hello", "Hello"),
        ("Regarding the invoice", "Regarding the invoice"),
    ],
)
def test_clean_subject(subject: str, cleaned: str) -> None:
    assert clean_subject(subject, "MT") == cleaned


def test_with_tag_adds_the_tag_once() -> None:
    assert with_tag("Hello", "MT", 5) == "[MT-5] Hello"
    assert with_tag("[MT-5] Hello", "MT", 5) == "[MT-5] Hello"
    assert with_tag("Re: [MT-4] Hello", "MT", 5) == "[MT-5] Hello"


def test_signed_message_ids_round_trip_and_are_unique() -> None:
    first, second = SIGNER.new(123), SIGNER.new(123)
    assert first != second
    assert first.startswith("<MT-123.") and first.endswith("@example.org>")
    assert SIGNER.verify(first) == 123


@pytest.mark.parametrize(
    "forged",
    [
        "<MT-124.{token}@example.org>",  # number changed
        "<MT-123.{token}x@example.org>",  # token changed
        "<MT-123.000000000000000000000000000@example.org>",
        "<random@example.org>",
    ],
)
def test_forged_message_ids_are_refused(forged: str) -> None:
    genuine = SIGNER.new(123)
    token = genuine.split(".", 1)[1].split("@")[0]
    assert SIGNER.verify(forged.format(token=token)) is None


def test_another_secret_does_not_verify() -> None:
    other = MessageIdSigner(secret=b"other", prefix="MT", host="example.org")
    assert other.verify(SIGNER.new(5)) is None


def test_the_status_list_id_names_no_ticket() -> None:
    """The ``status`` answer is signed for ticket 0: a reply to it is a new mail, never
    "ticket 0" (which does not exist: the requester would be told so)."""
    status_list = SIGNER.new(0, "bob@example.org")
    assert status_list.startswith("<MT-0.")
    assert SIGNER.verify(status_list) is None
    assert SIGNER.sent_to(status_list, "bob@example.org") is None
    reply = find_thread(
        "Re: Your tickets", [status_list], prefix="MT", signer=SIGNER, lookup=lambda ids: None
    )
    assert reply.ticket is None
    assert "signed" not in reply.evidence


def _lookup(table: dict[str, int]) -> object:
    def lookup(ids: Sequence[str]) -> int | None:
        return next((table[i] for i in ids if i in table), None)

    return lookup


def test_thread_evidence_order() -> None:
    signed = SIGNER.new(8)
    lookup = _lookup({"<theirs@x>": 3})
    by_signature = find_thread("[MT-5] x", [signed], prefix="MT", signer=SIGNER, lookup=lookup)  # type: ignore[arg-type]
    assert (by_signature.ticket, "signed" in by_signature.evidence) == (8, True)
    by_tag = find_thread("[MT-5] x", ["<theirs@x>"], prefix="MT", signer=SIGNER, lookup=lookup)  # type: ignore[arg-type]
    assert (by_tag.ticket, "tag" in by_tag.evidence) == (5, True)
    by_reference = find_thread("x", ["<theirs@x>"], prefix="MT", signer=SIGNER, lookup=lookup)  # type: ignore[arg-type]
    assert by_reference.ticket == 3
    nothing = find_thread("x", ["<unknown@x>"], prefix="MT", signer=SIGNER, lookup=lookup)  # type: ignore[arg-type]
    assert nothing.ticket is None


def test_mentioned_numbers() -> None:
    text = "See MT-12 and [MT-13], not XMT-14 nor MT-15a; again mt-12"
    assert mentioned_numbers(text, "MT") == (12, 13)


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("【MT-41】 付款问题", 41),  # lenticular brackets, as Chinese input methods type them
        ("回复：［MT-41］ 付款问题", 41),  # full-width square brackets
        ("〔MT－４１〕 full-width hyphen and digits", 41),
        ("答复: 「MT-41」", 41),
        ("Re: [mt - 41] spaced", 41),
        ("【MT-41 x】 not a tag", None),
        ("MT-41 without brackets", None),
        ("【MT-41] mixed brackets are still a tag", 41),
    ],
)
def test_tags_in_other_brackets(subject: str, number: int | None) -> None:
    assert find_tag(subject, "MT") == number
    if number is not None:
        assert "41" not in clean_subject(subject, "MT")
