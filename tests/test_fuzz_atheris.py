"""The coverage-guided fuzzer (fuzz/parse_fuzz.py) for a bounded time; a crash fails.

Seeds: tests/mails, and the shared corpus when it is here (read in place). What the
fuzzer learns goes to a temporary folder. On a crash, the input libFuzzer wrote is named
in the failure: minimise it and keep it in tests/mails/fuzz/ (see its README.md).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_corpus import CORPUS

pytest.importorskip(
    "atheris", reason="atheris is not installed (pip install atheris: Linux x86-64/arm64 wheels)"
)

ROOT = Path(__file__).resolve().parents[1]
FUZZ_SECONDS = 30


def test_parse_fuzzer_finds_no_crash(tmp_path: Path) -> None:
    learned, artifacts = tmp_path / "learned", tmp_path / "artifacts"
    learned.mkdir()
    artifacts.mkdir()
    seeds = [ROOT / "tests" / "mails", *([CORPUS] if CORPUS.is_dir() else [])]
    command = [
        sys.executable,
        str(ROOT / "fuzz" / "parse_fuzz.py"),
        f"-max_total_time={FUZZ_SECONDS}",
        "-timeout=20",  # seconds for one input: intake's own bound is tickets.max_processing_time
        "-max_len=16384",  # longer seeds are cut: a mail's structure shows in its first 16 KiB
        "-rss_limit_mb=2048",
        f"-artifact_prefix={artifacts}/",
        str(learned),
        *map(str, seeds),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=FUZZ_SECONDS * 6)
    crashes = sorted(artifacts.iterdir())
    done = re.search(r"Done (\d+) runs in (\d+) second", run.stderr)
    print(f"atheris: {done[1] if done else '?'} runs in {done[2] if done else '?'} s")
    assert run.returncode == 0 and not crashes, (
        f"fuzzer exit {run.returncode}, inputs {[str(c) for c in crashes]}\n{run.stderr[-4000:]}"
    )
    assert done is not None, run.stderr[-2000:]
