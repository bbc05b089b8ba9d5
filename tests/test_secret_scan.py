"""secret_scan / seed_phrases: private keys and BIP-39 recovery phrases, found and masked.

Every phrase and key here is real: phrases come from the ``mnemonic`` package (the Trezor
reference implementation) fed with seeded entropy, extended keys from its BIP-32 master
key derivation, WIF keys from its base58. Seeds keep every run the same.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mnemonic import Mnemonic
from mnemonic.mnemonic import b58encode

from mailticket.bip39 import checksum_holds
from mailticket.errors import MailRejected
from mailticket.mail import parse
from mailticket.secret_scan import (
    MARKERS,
    Finding,
    SecretReport,
    find_secrets,
    mask_secrets,
    scan_mail,
)

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
def test_english_typos_six_words_apart_are_tolerated(typo: str) -> None:
    ws = [w for w in words("english", 24, seed=5) if len(w) >= 5][:12]
    assert len(ws) == 12
    ws[2], ws[8] = TYPOS[typo](ws[2]), TYPOS[typo](ws[8])
    phrase = " ".join(ws)
    only(f"my words are {phrase} - is that right?", phrase, PHRASE)


@pytest.mark.parametrize("position", [0, 11])
def test_a_typo_in_the_first_or_last_word_is_masked_with_the_phrase(position: int) -> None:
    ws = [w for w in words("english", 24, seed=5) if len(w) >= 5][:12]
    ws[position] = TYPOS["substituted"](ws[position])
    phrase = " ".join(ws)
    only(f"words: {phrase}. thanks", phrase, PHRASE)


def test_a_typo_beside_a_whole_phrase_is_not_masked_with_it() -> None:
    phrase = " ".join(words("english", seed=10))
    only(f"Thanks, {phrase} cheers", phrase, PHRASE)  # each one edit from a list word


def test_a_wrong_word_is_still_masked_no_checksum_is_required() -> None:
    ws = words("english", seed=6)
    ws[5] = "zoo" if ws[5] != "zoo" else "abandon"
    assert not Mnemonic("english").check(" ".join(ws))
    phrase = " ".join(ws)
    only(f"here: {phrase}", phrase, PHRASE)
    zh = words("chinese_simplified", seed=6)
    zh[5] = "的" if zh[5] != "的" else "一"
    spaced = " ".join(zh)
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


# No false positive on real mail


def corpus_texts() -> list[tuple[str, str]]:
    """(file, text) for the subject, text and HTML of every corpus mail."""
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}: it ships only with the workspace")
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    texts: list[tuple[str, str]] = []
    for row in rows:
        name, raw = f"{row['source']}/{row['file']}", (CORPUS / row["source"] / row["file"])
        if row["kind"] == "body-only":
            texts.append((name, raw.read_bytes().decode("utf-8", "replace")))
        elif row["kind"] == "message":
            try:
                mail = parse(raw.read_bytes())
            except MailRejected:  # quarantined (no usable sender, over a limit): never scanned
                continue
            texts += [(name, mail.subject), (name, mail.text), (name, mail.html)]
    return texts


def test_no_secret_in_the_corpus() -> None:
    texts = corpus_texts()
    assert len(texts) > 1000
    found = [
        (name, text[f.span[0] : f.span[1]]) for name, text in texts for f in find_secrets(text)
    ]
    assert found == []
