"""The shipped unit and sysusers files, checked by systemd's own tools where installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNIT = ROOT / "systemd" / "mailticket.service"
SYSUSERS = ROOT / "systemd" / "mailticket.sysusers.conf"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


@needs_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    """``verify`` checks every directive; ExecStart points at an existing binary here."""
    unit = tmp_path / "mailticket.service"
    text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", UNIT.read_text("utf-8"))
    unit.write_text(text, encoding="utf-8")
    done = subprocess.run([ANALYZE or "", "verify", str(unit)], capture_output=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, b"")


@needs_analyze
def test_exposure_stays_low() -> None:
    done = subprocess.run(
        [ANALYZE or "", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        timeout=60,
        text=True,
    )
    found = re.search(r"Overall exposure level for mailticket.service: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found[1]) <= 2.0  # 1.4 when written; 10 is an unhardened root service


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_sysusers_creates_the_service_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    [entry] = (tmp_path / "etc" / "passwd").read_text("utf-8").splitlines()
    name, _, _, _, _, home, _ = entry.split(":")
    assert (name, home) == ("mailticket", "/var/lib/mailticket")
    unit = UNIT.read_text("utf-8")
    assert "User=mailticket\n" in unit and "WorkingDirectory=/var/lib/mailticket\n" in unit
