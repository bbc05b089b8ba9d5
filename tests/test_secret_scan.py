"""secret_scan / seed_phrases: private keys and BIP-39 recovery phrases, found and masked.

Every phrase and key here is real: phrases come from the ``mnemonic`` package (the Trezor
reference implementation) fed with seeded entropy, extended keys from its BIP-32 master
key derivation, WIF keys from its base58. Seeds keep every run the same.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mnemonic import Mnemonic
from mnemonic.mnemonic import b58encode

from mailticket.decide.bip39 import checksum_holds
from mailticket.decide.secret_scan import (
    MARKERS,
    Finding,
    Kind,
    SecretReport,
    find_secrets,
    mask_secrets,
    scan_inbound,
    scan_mail,
)
from mailticket.errors import MailRejected
from mailticket.parse.mail import parse

KEY = MARKERS["private_key"]
PHRASE = MARKERS["mnemonic"]
LANGUAGES = ("english", "chinese_simplified", "chinese_traditional")
CORPUS = Path(
    os.environ.get("MAILTICKET_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus"
)
HEX = "e9873d79c6d87dc0fb6a5778633389f4453213303da61f20bd67fc233aa33262"
HEX2 = "5c2b5bfb87d9e8b6f26b7ce5d5fa1e2a1dd37be5ae6e7391fbbf7b03c4b7d3c1"


def words(language: str, count: int = 12, seed: int = 0) -> list[str]:
    """A valid phrase of ``count`` words, the same for the same arguments."""
    entropy = random.Random(f"{language}/{count}/{seed}").randbytes(count * 4 // 3)
    return Mnemonic(language).to_mnemonic(entropy).split(" ")


def only(text: str, secret: str, marker: str) -> None:
    """``secret`` is the one thing masked in ``text``; the rest is untouched."""
    assert text.count(secret) == 1
    assert mask_secrets(text) == text.replace(secret, marker)


def wif(compressed: bool, seed: int = 0) -> str:
    key = random.Random(seed).randbytes(32)
    payload = b"\x80" + key + (b"\x01" if compressed else b"")
    return b58encode(payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4])


def extended(testnet: bool) -> str:
    seed = Mnemonic.to_seed(" ".join(words("english")))
    return Mnemonic.to_hd_master_key(seed, testnet=testnet)


def grouped(text: str, size: int, joiner: str, per_line: int = 0) -> str:
    groups = [text[i : i + size] for i in range(0, len(text), size)]
    if not per_line:
        return joiner.join(groups)
    lines = [groups[i : i + per_line] for i in range(0, len(groups), per_line)]
    return "\n".join(joiner.join(line) for line in lines)


# Recovery phrases


LAYOUTS: dict[str, Callable[[list[str]], str]] = {
    "spaces": " ".join,
    "lines": "\n".join,
    "numbered lines": lambda ws: "\n".join(f"{i}. {w}" for i, w in enumerate(ws, 1)),
    "numbered inline": lambda ws: " ".join(f"{i}) {w}" for i, w in enumerate(ws, 1)),
    "commas": ", ".join,
    "rows of four": lambda ws: "\n".join(" ".join(ws[i : i + 4]) for i in range(0, len(ws), 4)),
    "quoted": lambda ws: "\n".join("> " + " ".join(ws[i : i + 6]) for i in range(0, len(ws), 6)),
}
PROSE = {
    "english": ("Hello support,\nmy wallet shows zero. My recovery phrase is:\n", "\nThanks!"),
    "chinese_simplified": ("您好，我的钱包余额变成零了。助记词如下：\n", "\n请尽快处理，谢谢！"),
    "chinese_traditional": ("您好，我的錢包餘額不見了。助記詞如下：\n", "\n請盡快處理，謝謝！"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("count", [12, 24])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_phrase_in_a_mail_is_masked_whole(language: str, count: int, layout: str) -> None:
    ws = words(language, count)
    phrase = LAYOUTS[layout](ws)
    lead = phrase.index(ws[0])  # list numbering or a quote mark before the first word stays
    before, after = PROSE[language]
    text = before + phrase + after
    start = len(before) + lead
    assert find_secrets(text) == (
        Finding("mnemonic", (start, start + len(phrase) - lead), language),
    )
    assert mask_secrets(text) == before + phrase[:lead] + PHRASE + after


@pytest.mark.parametrize("count", [15, 18, 21])
def test_every_phrase_length(count: int) -> None:
    phrase = " ".join(words("english", count))
    only(f"seed: {phrase}.", phrase, PHRASE)


def test_chinese_separated_by_ideographic_commas_and_numbers() -> None:
    ws = words("chinese_simplified", seed=3)
    for phrase in (
        "、".join(ws),
        "，".join(ws),
        " ".join(f"{i}、{w}" for i, w in enumerate(ws, 1)),
    ):
        secret = phrase[phrase.index(ws[0]) :]  # "1、" before the first word stays
        only(f"我的助记词：{phrase}。", secret, PHRASE)


def test_a_run_longer_than_24_words_over_several_lines_is_one_secret() -> None:
    run = words("english", 24) + words("english", 12, seed=1)
    phrase = "\n".join(" ".join(run[i : i + 5]) for i in range(0, len(run), 5))
    text = f"all my wallets:\n{phrase}\n\nregards"
    assert [f.span for f in find_secrets(text)] == [(16, 16 + len(phrase))]
    only(text, phrase, PHRASE)


def test_capitals_count_as_words() -> None:
    ws = words("english", seed=2)
    phrase = " ".join(w.upper() if i % 2 else w.capitalize() for i, w in enumerate(ws))
    only(f"Phrase: {phrase}", phrase, PHRASE)


TYPOS: dict[str, Callable[[str], str]] = {
    "substituted": lambda w: w[:-1] + ("q" if w[-1] != "q" else "x"),
    "dropped": lambda w: w[:-1],
    "doubled": lambda w: w + w[-1],
    "swapped": lambda w: w[:1] + w[2] + w[1] + w[3:],
}


@pytest.mark.parametrize("typo", TYPOS)
def test_english_typos_six_words_apart_are_read_for_the_checksum(typo: str) -> None:
    ws = words("english", seed=0)
    ws[2], ws[8] = TYPOS[typo](ws[2]), TYPOS[typo](ws[8])
    phrase = " ".join(ws)
    only(f"my words are {phrase} - is that right?", phrase, PHRASE)


@pytest.mark.parametrize("position", [0, 11])
def test_a_typo_in_the_first_or_last_word_is_masked_with_the_phrase(position: int) -> None:
    ws = words("english", seed=3)
    ws[position] = TYPOS["substituted"](ws[position])
    phrase = " ".join(ws)
    only(f"words: {phrase}. thanks", phrase, PHRASE)


def test_a_typo_beside_a_whole_phrase_is_not_masked_with_it() -> None:
    phrase = " ".join(words("english", seed=10))
    only(f"Thanks, {phrase} cheers", phrase, PHRASE)  # each one edit from a list word


def test_a_wrong_word_needs_a_keyword_before_the_phrase() -> None:
    """Without its checksum a run is a list of words, unless the requester says what it is."""
    ws = words("english", seed=6)
    ws[5] = "zoo" if ws[5] != "zoo" else "abandon"
    assert not Mnemonic("english").check(" ".join(ws))
    phrase = " ".join(ws)
    assert find_secrets(f"here: {phrase}") == ()
    only(f"my recovery phrase is:\n\n{phrase}", phrase, PHRASE)
    only(f"Seed words (12): {phrase}. Help!", phrase, PHRASE)
    assert find_secrets(f"my seed phrase is safe. {phrase}") == ()  # another sentence
    zh = words("chinese_simplified", seed=6)
    zh[5] = "的" if zh[5] != "的" else "一"
    spaced = " ".join(zh)
    assert find_secrets(f"名单 {spaced}") == ()
    only(f"助记词 {spaced}", spaced, PHRASE)


def test_typos_too_close_together_break_the_run() -> None:
    ws = [w for w in words("english", 24, seed=5) if len(w) >= 5][:12]
    ws[2], ws[4] = ws[2][:-1] + "q", ws[4][:-1] + "q"
    assert find_secrets(" ".join(ws)) == ()


def test_glued_chinese_on_its_own_line_needs_its_checksum_and_rarity() -> None:
    """0.7 % of random 12-word phrases are as common as prose (see GLUED_RARITY)."""
    for language in ("chinese_simplified", "chinese_traditional"):
        found = sum(
            bool(find_secrets(f"请帮忙\n{''.join(words(language, seed=s))}\n谢谢"))
            for s in range(300)
        )
        assert found >= 294, language
        long = [find_secrets("".join(words(language, 24, seed=s))) for s in range(50)]
        assert all(len(f) == 1 for f in long), language


def test_glued_chinese_with_a_broken_checksum_and_no_keyword_is_left() -> None:
    ws = words("chinese_simplified", seed=8)
    ws[0] = ws[1]
    assert not Mnemonic("chinese_simplified").check(" ".join(ws))
    assert find_secrets("".join(ws)) == ()


@pytest.mark.parametrize(
    ("before", "after", "masked"),
    [
        ("我的助记词是", "，请帮我看看", "我的助记词[secret removed: recovery phrase]，请帮我看看"),
        ("助记词：", "\n谢谢", "助记词：[secret removed: recovery phrase]\n谢谢"),
        ("seed phrase: ", "", "seed phrase: [secret removed: recovery phrase]"),
        ("私钥 ", "，请查收", "私钥 [secret removed: recovery phrase]，请查收"),
        ("私钥 ", " 请查收", "私钥 [secret removed: recovery phrase]"),  # to the line's end
        ("助記詞", "", "助記詞[secret removed: recovery phrase]"),
    ],
)
def test_glued_chinese_after_a_keyword_is_masked_even_mistyped(
    before: str, after: str, masked: str
) -> None:
    language = "chinese_traditional" if "記" in before else "chinese_simplified"
    ws = words(language, seed=9)
    ws[3] = ws[4]  # a typo: the checksum no longer holds
    text = before + "".join(ws) + after
    assert mask_secrets(text) == masked


ENGLISH_PROSE = """\
Hi team, I can not open my wallet since the last update. When I try to send any amount
the app says the network fee is too high, but the balance shows the right value. I have
used this wallet for two years and never had an issue. Can you check what happened to
my account? I also want to know how long a withdrawal takes to arrive, because my last
one is still pending after three days. Please let me know if you need more information,
such as the time, the amount, or a screenshot of the error message. Thank you for your
help and have a nice day. PS: my brother says you should add a dark theme, it would be
great for night use. Also the search box on the history page is hard to find.
"""
CHINESE_PROSE = """\
您好，我昨天在你们的平台上提币到另一个钱包，但是到现在还没有到账。交易显示已经成功，
手续费也扣了，可是对方钱包里没有看到这笔钱。请帮我查一下是什么原因，是不是网络拥堵？
另外我想问一下，如果忘记了登录密码，应该怎么找回账户？我已经绑定了手机和邮箱。
我没有泄露我的助记词，但是钱包里的币全部被转走了我很着急，请尽快回复。
我的私钥一直保存在纸上，从来没有拍照或者发给别人，为什么资产会被盗？
謝謝你們的幫助，我會耐心等待你們的回覆。
"""


@pytest.mark.parametrize("text", [ENGLISH_PROSE, CHINESE_PROSE])
def test_ordinary_prose_is_left_alone(text: str) -> None:
    assert find_secrets(text) == ()


def test_checksum_agrees_with_the_reference_implementation() -> None:
    rng = random.Random(7)
    english = Mnemonic("english")
    for _ in range(500):
        indexes = [rng.randrange(2048) for _ in range(rng.choice([12, 15, 18, 21, 24]))]
        assert checksum_holds(indexes) == english.check(
            " ".join(english.wordlist[i] for i in indexes)
        )


# Private keys and transaction hashes


@pytest.mark.parametrize(
    "template",
    [
        "here it is: 0x{h}",
        "{h}",
        "my key={h}.",
        "私钥：0x{h}",
        "密钥 {h} 请保密",
        "({h})",
        "my private key for the transaction: 0x{h}",
        "私钥，不是交易哈希：{h}",
        "tx? no, key:\n\n0x{h}",
    ],
)
def test_unlabelled_64_hex_digits_are_a_private_key(template: str) -> None:
    text = template.format(h=HEX)
    secret = ("0x" if "0x" in template else "") + HEX
    only(text, secret, KEY)


@pytest.mark.parametrize(
    "template",
    [
        "tx: 0x{h}",
        "TxHash 0x{h}",
        "txid={h}",
        "Transaction hash:\n0x{h}",
        "the hash of my transaction is 0x{h}",
        "blockHash {h}",
        "交易哈希：0x{h}",
        "交易ID是 {h}",
        "交易号为：{h}",
        "哈希值 0x{h}",
        "转账记录 {h}",
        "SHA256: {h}",
        "https://etherscan.io/tx/0x{h}",
        "https://bscscan.com/tx/0x{h}#eventlog",
        "https://tronscan.org/#/transaction/{h}",
        "https://www.blockchain.com/explorer/transactions/btc/{h}",
        "https://mempool.space/tx/{h}",
        "https://etherscan.io/search?f=0&q=&hash=0x{h}",
    ],
)
def test_a_labelled_transaction_hash_is_kept(template: str) -> None:
    text = template.format(h=HEX)
    assert find_secrets(text) == ()


def test_hashes_listed_after_one_label_are_kept() -> None:
    text = f"tx hashes: 0x{HEX}, 0x{HEX2} and\n3. 0x{HEX[::-1]}"
    assert find_secrets(text) == ()
    only(f"tx: 0x{HEX}\nand my key 0x{HEX2}", f"0x{HEX2}", KEY)


@pytest.mark.parametrize("length", [40, 63, 65, 128])
def test_other_hex_lengths_are_not_keys(length: int) -> None:
    assert find_secrets(("ab" * 64)[:length] + " and 0x" + ("c3" * 64)[:length]) == ()


@pytest.mark.parametrize(
    "key",
    [wif(compressed=False), wif(compressed=True), extended(False), extended(True)],
    ids=["wif", "compressed wif", "xprv", "tprv"],
)
def test_wif_and_extended_private_keys_are_masked_even_labelled(key: str) -> None:
    assert key[0] in "5KLxt"
    only(f"key: {key}", key, KEY)
    only(f"tx: {key}", key, KEY)


def test_a_64_byte_base58_key_follows_the_transaction_rule() -> None:
    """A Solana secret key and a Solana transaction signature look the same."""
    blob = b58encode(random.Random(4).randbytes(64))
    assert 86 <= len(blob) <= 88
    only(f"phantom export: {blob}", blob, KEY)
    assert find_secrets(f"signature: {blob}") == ()
    assert find_secrets(f"https://solscan.io/tx/{blob}") == ()


# Markers and idempotence


def test_markers_never_match() -> None:
    text = f"{KEY} {PHRASE}\n{PHRASE}{KEY}\ntx: {KEY}"
    assert find_secrets(text) == ()
    assert mask_secrets(text) == text


MIXED = [
    f"tx: 0x{HEX}\n私钥 0x{HEX2}\n{' '.join(words('english'))}",
    f"{' '.join(words('english')[:11])} zoo0x{HEX}",
    f"{' '.join(words('chinese_simplified'))}0x{HEX}",
    f"我的私钥{''.join(words('chinese_simplified', seed=2))}，tx 0x{HEX}",
    f"{' '.join(words('chinese_simplified')[:11])} 词{wif(True)}",
    f"private key {''.join(words('english', seed=3))} transaction: 0x{HEX}",
]


@pytest.mark.parametrize("text", MIXED)
def test_masking_is_idempotent_and_keeps_the_rest(text: str) -> None:
    masked = mask_secrets(text)
    assert mask_secrets(masked) == masked
    _assert_rest_kept(text, find_secrets(text), masked)


def _assert_rest_kept(text: str, findings: tuple[Finding, ...], masked: str) -> None:
    """The findings are ordered and apart, and the text between them is byte for byte."""
    position, out = 0, masked
    for finding in findings:
        start, end = finding.span
        assert position <= start < end <= len(text)
        between = text[position:start]
        assert out.startswith(between + MARKERS[finding.kind])
        out = out[len(between) + len(MARKERS[finding.kind]) :]
        position = end
    assert out == text[position:]


FRAGMENTS = [
    *words("english")[:6],
    "abandn",
    "zoo",
    *words("chinese_simplified", seed=1)[:6],
    *words("chinese_traditional", seed=1)[:3],
    "的",
    "钱包",
    " ",
    "\n",
    ", ",
    "，",
    "、",
    "1. ",
    "12) ",
    "tx: ",
    "交易哈希：",
    "助记词",
    "seed phrase ",
    "private key ",
    "0x",
    HEX,
    HEX[:32],
    "a",
    KEY,
    PHRASE,
    " ".join(words("english", seed=4)),
    "".join(words("chinese_simplified", seed=4)),
    " ".join(words("chinese_simplified", seed=5)),
    wif(True),
    "/",
    "-",
    "> ",
    " help!",
    "\n",
    "recovery phrase: ",
    "Tx Hash (from Etherscan): ",
    "The TxID is ",
    HEX[:32] + "\n",
    HEX[32:],
    grouped(HEX, 4, " "),
    "face ",
    *words("english", seed=12)[:4],
    "/".join(words("english", seed=13)),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40))
def test_masking_is_idempotent_for_any_mix(parts: list[str]) -> None:
    text = "".join(parts)
    masked = mask_secrets(text)
    assert mask_secrets(masked) == masked
    _assert_rest_kept(text, find_secrets(text), masked)


# The helper intake will call


def test_scan_mail_reports_the_kinds_found() -> None:
    phrase = words("english", seed=11)
    html = "<ol>" + "".join(f"<li>{w}</li>" for w in phrase) + "</ol>"
    assert scan_mail("see the attached list", html) == SecretReport(True, ("mnemonic",))
    both = f"key 0x{HEX}\n{' '.join(phrase)}"
    assert scan_mail(both) == SecretReport(True, ("private_key", "mnemonic"))
    assert scan_mail("hi", subject=f"my key {wif(True)}") == SecretReport(True, ("private_key",))
    clean = scan_mail(ENGLISH_PROSE, f"<p>tx: 0x{HEX}</p>", "Re: [MT-12] deposit")
    assert clean == SecretReport(False, ())
    assert not clean
    assert scan_mail(" ".join(phrase))


# Variants: what the guard must find, and the near misses it must leave (issue 16).
# bench/SECRETS.md gives the recall of this table before and after the checksum, split
# keys, HTML attributes and attachments.


@dataclass(frozen=True, slots=True)
class Variant:
    """One mail's parts; ``secret`` is exactly what masking ``text`` must replace."""

    text: str = ""
    html: str = ""
    subject: str = ""
    attachments: tuple[tuple[str, bytes | None], ...] = ()
    secret: str = ""
    kind: Kind = "private_key"


def forwarded(body: str, *, html: bool = False, subject: str = "Fwd: wallet") -> bytes:
    """A forwarded mail as an .eml attachment holds it: base64, as clients send it."""
    inner = EmailMessage()
    inner["From"] = "bob@customer.example"
    inner["Subject"] = subject
    inner.set_content(body, subtype="html" if html else "plain", cte="base64")
    return inner.as_bytes()


def forwarding(attachment: bytes, filename: str = "wallet.eml") -> bytes:
    """A mail that carries ``attachment`` as a forwarded message."""
    outer = EmailMessage()
    outer["From"] = "carol@customer.example"
    outer["Subject"] = "Fwd: Fwd: wallet"
    outer.set_content("see attached")
    outer.add_attachment(attachment, maintype="message", subtype="rfc822", filename=filename)
    return outer.as_bytes()


EN = words("english", seed=20)
EN24 = words("english", 24, seed=21)
ZH = words("chinese_simplified", seed=22)
TW = words("chinese_traditional", seed=23)
SOLANA = b58encode(random.Random(4).randbytes(64))
NUMBERED = " ".join(f"{i}. {w}" for i, w in enumerate(EN, 1))


def phrase_in(text: str, secret: str) -> Variant:
    return Variant(text.format(p=secret), secret=secret, kind="mnemonic")


def attached(name: str, content: bytes, kind: Kind = "mnemonic") -> Variant:
    return Variant(attachments=((name, content),), kind=kind)


def key_in(text: str, secret: str) -> Variant:
    return Variant(text.format(k=secret), secret=secret)


POSITIVES: dict[str, Variant] = {
    # private keys
    "hex key": key_in("here it is: {k}", HEX),
    "0x hex key": key_in("my key {k} is this right", f"0x{HEX}"),
    "key beside help!": key_in("key: {k} help!", f"0x{HEX}"),
    "key over two lines": key_in("My private key is\n{k}\nplease help", f"{HEX[:32]}\n{HEX[32:]}"),
    "key wrapped by the client": key_in(
        "Please restore my wallet, the key MetaMask exported is {k} thanks",
        f"{HEX[:20]}\n{HEX[20:]}",
    ),
    "0x key wrapped in a quote": key_in("> key: {k}\n> thanks", f"0x{HEX[:40]}\n> {HEX[40:]}"),
    "key over three lines": key_in("{k}\n", f"{HEX[:22]}\n{HEX[22:44]}\n{HEX[44:]}"),
    "groups of 4, spaces": key_in("key {k}, help!", grouped(HEX, 4, " ")),
    "groups of 4, dashes": key_in("key: {k}", grouped(HEX, 4, "-")),
    "groups of 4, 0x": key_in("key: {k}.", "0x" + grouped(HEX, 4, " ")),
    "groups of 4 on four lines": key_in("my key\n{k}\nbye", grouped(HEX, 4, " ", 4)),
    "groups of 4 then 'face'": key_in("key {k} face id", grouped(HEX2, 4, " ")),
    "groups of 8": key_in("priv: {k}", grouped(HEX, 8, " ")),
    "WIF": key_in("key: {k}", wif(compressed=False)),
    "compressed WIF": key_in("{k}", wif(compressed=True, seed=1)),
    "xprv": key_in("backup: {k}", extended(testnet=False)),
    "Solana export": key_in("phantom: {k}", SOLANA),
    "private key for a transaction": key_in("my private key for the tx: {k}", f"0x{HEX}"),
    "key in the subject": Variant(subject=f"my key {wif(compressed=True)}"),
    "key only in an href": Variant(
        "My wallet: open", f'<p>My wallet: <a href="https://w.example/import?pk={HEX}">open</a>'
    ),
    "key split by <br>": Variant(html=f"<div>{HEX[:32]}<br>{HEX[32:]}</div>"),
    # recovery phrases
    "phrase, spaces": phrase_in("Hi, my words: {p}. Thanks", " ".join(EN)),
    "phrase, slashes": phrase_in("{p}", "/".join(EN)),
    "phrase, spaced slashes": phrase_in("words {p}", " / ".join(EN)),
    "phrase, commas": phrase_in("{p}", ",".join(EN)),
    "phrase, dashes": phrase_in("{p}", "-".join(EN)),
    "phrase, lines": phrase_in("phrase:\n{p}\n", "\n".join(EN)),
    "phrase, numbered": phrase_in("1. {p}", NUMBERED[3:]),
    "phrase, numbered lines": phrase_in(
        "1) {p}", "\n".join(f"{i}) {w}" for i, w in enumerate(EN, 1))[3:]
    ),
    "phrase, quoted list": phrase_in('["{p}"]', '", "'.join(EN)),
    "phrase, capitals": phrase_in("{p}", " ".join(w.upper() for w in EN)),
    "24 words in rows": phrase_in(
        "{p}", "\n".join(" ".join(EN24[i : i + 6]) for i in range(0, 24, 6))
    ),
    "phrase then help!": phrase_in("{p} help!", " ".join(EN)),
    "phrase then thanks on lines": phrase_in("Hi,\n{p}\nThank you\nBest regards", " ".join(EN)),
    "a phrase, then one in rows": phrase_in(
        "{p}\nthank you",
        " ".join(EN) + "\n" + "\n".join(" ".join(EN24[i : i + 6]) for i in range(0, 24, 6)),
    ),
    "phrase with a typo": phrase_in("{p}", " ".join([EN[0][:-1] + "q", *EN[1:]])),
    "mistyped phrase announced": phrase_in("my recovery phrase: {p}", " ".join([*EN[:11], "zoo"])),
    "Chinese spaced": phrase_in("助记词如下：{p}，谢谢", " ".join(ZH)),
    "Chinese slashes": phrase_in("我的 {p} 谢谢", "/".join(ZH)),
    "traditional Chinese, 、": phrase_in("{p}", "、".join(TW)),
    "Chinese glued line": phrase_in("请帮忙\n{p}\n谢谢", "".join(ZH)),
    "phrase in an HTML list": Variant(
        html="<ol>" + "".join(f"<li>{w}</li>" for w in EN) + "</ol>", kind="mnemonic"
    ),
    # attachments
    "phrase in a .txt": attached("seed.txt", " ".join(EN).encode()),
    "key in a .txt, UTF-16": attached(
        "key.txt", f"private key: {HEX}".encode("utf-16"), "private_key"
    ),
    "phrase in a .csv": attached(
        "words.csv", "\n".join(f"{i},{w}" for i, w in enumerate(EN, 1)).encode()
    ),
    "key in a .json": attached(
        "wallet.json", f'{{"privateKey":"0x{HEX}"}}'.encode(), "private_key"
    ),
    "phrase in a .log": attached("app.log", f"restore {' '.join(EN)}\n".encode()),
    "phrase in a file without extension": attached("backup", "\n".join(EN).encode()),
    "phrase in a forwarded .eml": attached("message.eml", forwarded(f"words: {' '.join(EN)}")),
    "key in a forwarded HTML href": attached(
        "Fwd.eml", forwarded(f'<a href="x:{HEX}">key</a>', html=True), "private_key"
    ),
    "key in a forwarded subject": attached(
        "message.eml", forwarded("hi", subject=f"key {wif(True)}"), "private_key"
    ),
    "phrase two forwards down": attached("fwd.eml", forwarding(forwarded(" ".join(ZH)))),
    "Chinese phrase in a .txt": attached("助记词.txt", " ".join(TW).encode("big5")),
}


def _interests() -> str:
    listed = "music, video, game, movie, travel, dance, photo, garden, nature, sport, art"
    return f"About me. Interests: {listed}, food, wine, family, coffee"


NEGATIVES: dict[str, Variant] = {
    "TxID of my withdrawal": Variant(f"The TxID of my withdrawal is 0x{HEX}, still pending."),
    "Tx Hash (from Etherscan)": Variant(f"Tx Hash (from Etherscan): 0x{HEX}"),
    "transaction hash": Variant(f"transaction hash 0x{HEX}"),
    "txhash": Variant(f"txhash: 0x{HEX}"),
    "hash:": Variant(f"hash: 0x{HEX}"),
    "hash as follows": Variant(f"I paid yesterday, the hash is as follows:\n0x{HEX}"),
    "交易哈希": Variant(f"交易哈希：0x{HEX}"),
    "交易ID": Variant(f"你好，交易ID：0x{HEX}，一直没到账"),
    "explorer link": Variant(f"https://etherscan.io/tx/0x{HEX}"),
    "explorer href": Variant("see link", f'<a href="https://bscscan.com/tx/0x{HEX}">tx</a>'),
    "csv of withdrawals": Variant(
        attachments=(("w.csv", f"date,tx_hash\n2024-01-02,0x{HEX}".encode()),)
    ),
    "interests": Variant(_interests()),
    "tags with slashes": Variant(
        "Tags: news sport music movie video game travel food art photo fashion design".replace(
            " ", "/"
        )
    ),
    "word list one a line": Variant(
        "Shopping list: apple banana bread butter cheese coffee milk salt sugar lemon tomato "
        "orange egg".replace(" ", "\n")
    ),
    "Chinese list without checksum": Variant("名单：" + " ".join([ZH[1], ZH[0], *ZH[2:]])),
    "ETH address": Variant(f"send to 0x{HEX[:40]}"),
    "two UUIDs": Variant(f"{uuid.UUID(HEX[:32])} {uuid.UUID(HEX[32:])}"),
    "certificate fingerprint": Variant("SHA256 Fingerprint=" + grouped(HEX.upper(), 2, ":")),
    "PGP fingerprint": Variant("Key fingerprint = " + grouped(HEX[:40].upper(), 4, " ")),
    "card-like number": Variant("card 4111 1111 1111 1111, order 2024-0001"),
    "63 hex digits": Variant(f"id {HEX[:63]}"),
    "128 hex digits": Variant(f"sig {HEX}{HEX2}"),
    "commit ids on two lines": Variant(f"{HEX[:40]}\n{HEX2[:40]}"),
    "MD5 list": Variant(f"MD5 (a.zip) = {HEX[:32]}\nMD5 (b.zip) = {HEX[32:]}"),
    "inline image": Variant(
        html='<img src="data:image/png;base64,'
        + base64.b64encode(random.Random(5).randbytes(3000)).decode()
        + '">'
    ),
    "binary attachment": Variant(attachments=(("photo.jpg", f"{HEX} {' '.join(EN)}".encode()),)),
    "attachment not kept": Variant(attachments=(("big.txt", None),)),
    "English prose": Variant(ENGLISH_PROSE),
    "Chinese prose": Variant(CHINESE_PROSE),
}


def _scan(variant: Variant) -> SecretReport:
    return scan_mail(variant.text, variant.html, variant.subject, attachments=variant.attachments)


@pytest.mark.parametrize("name", POSITIVES)
def test_every_variant_is_found_and_masked_exactly(name: str) -> None:
    variant = POSITIVES[name]
    assert _scan(variant).kinds == (variant.kind,)
    if variant.secret:
        only(variant.text, variant.secret, MARKERS[variant.kind])


@pytest.mark.parametrize("name", NEGATIVES)
def test_no_near_miss_is_found(name: str) -> None:
    variant = NEGATIVES[name]
    assert _scan(variant) == SecretReport(False, ())
    assert mask_secrets(variant.text) == variant.text


def test_the_table_is_large_enough() -> None:
    assert len(POSITIVES) >= 30 and len(NEGATIVES) >= 20


@pytest.mark.parametrize(("count", "at_most"), [(12, 0.08), (15, 0.3), (24, 0.08)])
def test_random_word_lists_pass_the_checksum_as_seldom_as_expected(
    count: int, at_most: float
) -> None:
    """12 words pass once in 16 (4 checksum bits); 15 have four 12-word windows and one
    of 15; 24 pass as one phrase, as two, or as 21 words with 3 beside (bip39.phrases)."""
    english = Mnemonic("english").wordlist
    rng = random.Random(9)
    lists = [", ".join(rng.choices(english, k=count)) for _ in range(2000)]
    assert sum(bool(find_secrets(text)) for text in lists) / len(lists) <= at_most


# No false positive on real mail


def corpus_reports() -> dict[str, SecretReport]:
    """What the guard reports for every corpus file intake would scan: each parsed mail
    with its attachments (forwarded mails, bounces' originals, text files), each bare body
    as text, each TNEF blob as an attachment (not read: binary)."""
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}: it ships only with the workspace")
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    reports: dict[str, SecretReport] = {}
    for row in rows:
        name, data = f"{row['source']}/{row['file']}", (CORPUS / row["source"] / row["file"])
        if row["kind"] == "body-only":
            reports[name] = scan_mail(data.read_bytes().decode("utf-8", "replace"))
        elif row["kind"] == "tnef-blob":
            reports[name] = scan_mail("", attachments=[(row["file"], data.read_bytes())])
        else:
            try:
                mail = parse(data.read_bytes())
            except MailRejected:  # quarantined (no usable sender, over a limit): never scanned
                continue
            reports[name] = scan_inbound(mail)
    return reports


def test_no_secret_in_the_corpus() -> None:
    """A false positive is a mail the guard reports: none of the corpus (bench/SECRETS.md)."""
    reports = corpus_reports()
    assert len(reports) > 1000
    assert [name for name, report in reports.items() if report] == []
