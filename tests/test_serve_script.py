"""``scripts/serve``: the quick start's first command says what it is doing while it
installs, then hands over to the daemon."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _stub(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def test_serve_says_what_it_does_before_and_after_installing(tmp_path: Path) -> None:
    """A copy of the script in a checkout whose .venv has stand-ins for pip and the
    daemon: each records that it ran, so the order of lines and commands shows."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "serve", tmp_path / "scripts" / "serve")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    _stub(bin_dir / "python", 'echo "pip $*" >&2')
    _stub(
        bin_dir / "mailticket",
        '[ "$1" = --version ] && echo "mailticket, version 9" && exit 0\necho "daemon $*" >&2',
    )
    result = subprocess.run(
        ["sh", str(tmp_path / "scripts" / "serve"), "--flag"],
        capture_output=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    assert [line.split()[0] for line in lines] == [
        "scripts/serve:",
        "pip",
        "scripts/serve:",
        "daemon",
    ]
    assert "installing" in lines[0]
    assert "mailticket, version 9" in lines[2] and "starting the daemon" in lines[2]
    assert lines[3] == "daemon serve --flag"
