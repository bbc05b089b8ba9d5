"""mailticket.example.toml cannot go stale: it loads, its active values are the defaults,
and with its examples uncommented it names every settings key, each under a comment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel

from mailticket.settings import ImapAccount, Settings, load_settings, rooted
from tests.conftest import ROOT

EXAMPLE = ROOT / "mailticket.example.toml"
COMMENTED_OUT = re.compile(r"^# (?=\[\[imap\]\]$|# |\w+ = )")  # "# key = ...", "# [[imap]]"


def uncommented() -> str:
    """The example with its commented-out keys (and the [[imap]] table) switched on."""
    return "".join(
        COMMENTED_OUT.sub("", line) for line in EXAMPLE.read_text("utf-8").splitlines(True)
    )


def test_loads_and_every_active_value_is_the_default() -> None:
    assert load_settings(EXAMPLE, environ={}) == rooted(Settings(), EXAMPLE.parent)


def test_every_key_is_there(tmp_path: Path) -> None:
    full = tmp_path / "full.toml"
    # the examples are valid values too (password and password_file are alternatives)
    full.write_text(uncommented().replace('password = "app-password"\n', ""), encoding="utf-8")
    settings = load_settings(full, environ={})
    assert settings.imap[0].host == "imap.example.com"
    data = tomllib.loads(uncommented())
    assert set(data) == set(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        section = data[name][0] if name == "imap" else data[name]
        model = ImapAccount if name == "imap" else field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        assert set(section) == set(model.model_fields), name


def test_every_key_has_a_comment_above_it() -> None:
    lines = uncommented().splitlines()
    keys = [i for i, line in enumerate(lines) if re.match(r"\w+ = ", line)]
    assert len(keys) > 50
    undocumented = [lines[i] for i in keys if not lines[i - 1].startswith("#")]
    assert undocumented == []
