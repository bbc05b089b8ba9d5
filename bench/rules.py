"""Rules benchmark: what routing costs, and that it stays linear in the mail's size.

One run measures, on the same machine and corpus:

  (a) intake rate, in-process ``core.intake.submit(raw, "pipe")`` on a fresh SQLite
      database, with three rule files in interleaved rounds: an empty file, the shipped
      queues without any rule, and the shipped rules.yaml;
  (b) ``RuleSet.route`` alone on every corpus mail (parsed beforehand), shipped rules;
  (c) ``route`` against bodies of 1 KB ... 1 MB that no rule matches (every test scans
      the whole body: the worst case), to show cost per KB stays flat;
  (d) pathological patterns, ``(a+)+$`` against "aaaa...b" and ``(a+)+b`` against
      "aaaa...": RE2 inside ``route`` up to 1 MB, and Python's ``re`` on a few dozen
      characters for comparison.

    .venv/bin/python bench/rules.py --mails 1000 [--rounds 3] [--corpus DIR]

Absolute numbers depend on the machine; compare the ratios. Results: bench/results/.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from mailticket.decide.rules import RuleSet, parse_rules
from mailticket.parse.mail import InboundMail, parse
from mailticket.runtime.core import build_core
from mailticket.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
CORPUS_SCRIPT = ROOT.parent / "shared" / "bench" / "corpus.py"
RESULTS = ROOT / "bench" / "results"
SHIPPED = ROOT / "rules.yaml"
SIZES_KB = (1, 4, 16, 64, 256, 1024)
FILLER = (
    "Hello team, the app shows the balance correctly on my phone and the tablet. "
    "我在手机和平板上看到的余额都是正确的，谢谢你们的工作。 Kind regards from Hangzhou.\n"
)


def corpus_mails(directory: Path | None, count: int, workdir: Path) -> list[bytes]:
    if directory is None:
        directory = workdir / "corpus"
        command = [sys.executable, str(CORPUS_SCRIPT), "--n", str(count), "--out", str(directory)]
        subprocess.run([*command, "--tag-format", "[MT-{n}]"], check=True, capture_output=True)
    files = sorted((directory / "eml").glob("*.eml"))[:count]
    return [f.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for f in files]


def rule_files(workdir: Path) -> dict[str, Path]:
    """empty: an empty file; no-rules: the shipped queues (same answers), no rules; shipped."""
    text = SHIPPED.read_text(encoding="utf-8")
    no_rules = text.split("\nrules:\n")[0] + "\n"
    files = {"empty": "", "no-rules": no_rules, "shipped": text}
    paths = {}
    for name, content in files.items():
        path = workdir / f"rules-{name}.yaml"
        path.write_text(content, encoding="utf-8")
        paths[name] = path
    return paths


def settings_for(workdir: Path, rules: Path) -> Any:
    workdir.mkdir(parents=True)
    config = {
        "database": {"url": f"sqlite:///{workdir / 'mailticket.db'}"},
        "smtp": {"port": 0},
        "outbound": {"maildir": str(workdir / "outbox")},
        "tickets": {
            "support_address": "support@bench.example",
            "rules_file": str(rules),
            "templates_dir": str(ROOT / "templates"),
            "secret": "bench",
            "foreign_reply": "note",  # keeps the corpus's [MT-n] tags on their tickets
        },
    }
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path = workdir / "mailticket.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_settings(path, environ={})


@dataclass(frozen=True)
class IntakeRun:
    rate: float  # mails per wall-clock second
    cpu_ms: float  # CPU time of this process per mail: less disturbed by a busy machine
    outcomes: Counter[str]


def intake_run(workdir: Path, rules: Path, mails: Sequence[bytes]) -> IntakeRun:
    """In-process submit of every mail on a fresh database."""
    core = build_core(settings_for(workdir, rules))
    outcomes: Counter[str] = Counter()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for raw in mails:
            outcomes[core.intake.submit(raw, "pipe").outcome] += 1
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return IntakeRun(len(mails) / wall, cpu * 1e3 / len(mails), outcomes)
    finally:
        core.engine.dispose()


def measure_intake(workdir: Path, mails: Sequence[bytes], rounds: int) -> dict[str, Any]:
    """Interleaved rounds, so drift in a shared machine hits every file alike.

    A run that quarantined mail measured something else than intake: it is reported
    and left out of the medians.
    """
    files = rule_files(workdir)
    intake_run(workdir / "warm-up", files["shipped"], mails[:100])  # imports, templates, caches
    runs: dict[str, list[IntakeRun]] = {name: [] for name in files}
    invalid: list[dict[str, Any]] = []
    for round_ in range(rounds):
        for name, path in files.items():
            run = intake_run(workdir / f"run-{round_}-{name}", path, mails)
            print(
                f"  round {round_ + 1} {name:<9} {run.rate:8.1f} mails/s "
                f"{run.cpu_ms:6.2f} CPU ms/mail  {dict(run.outcomes)}"
            )
            if run.outcomes["quarantined"]:
                invalid.append({"round": round_ + 1, "rules": name, "outcomes": dict(run.outcomes)})
            else:
                runs[name].append(run)
    rate = {n: _median([r.rate for r in v]) for n, v in runs.items()}
    cpu = {n: _median([r.cpu_ms for r in v]) for n, v in runs.items()}
    return {
        "mails": len(mails),
        "rates": {n: [r.rate for r in v] for n, v in runs.items()},
        "cpu_ms_per_mail": {n: [r.cpu_ms for r in v] for n, v in runs.items()},
        "invalid_runs": invalid,
        "median_rate": rate,
        "median_cpu_ms": cpu,
        "rate_shipped_over_empty": rate["shipped"] / rate["empty"],
        "rate_shipped_over_no_rules": rate["shipped"] / rate["no-rules"],
        "cpu_shipped_over_empty": cpu["shipped"] / cpu["empty"],
        "cpu_shipped_over_no_rules": cpu["shipped"] / cpu["no-rules"],
    }


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def best_of(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def measure_route(rules: RuleSet, mails: Sequence[InboundMail]) -> dict[str, Any]:
    timed = sorted(((best_of(lambda m=m: rules.route(m), 3), m) for m in mails), key=lambda t: t[0])
    times = [seconds for seconds, _ in timed]
    slowest = timed[-1][1]
    parse_each = [best_of(lambda raw=m.raw: parse(raw), 1) for m in mails[:200]]
    return {
        "mails": len(mails),
        "route_median_us": statistics.median(times) * 1e6,
        "route_mean_us": statistics.mean(times) * 1e6,
        "route_p99_us": times[int(len(times) * 0.99) - 1] * 1e6,
        "route_max_us": times[-1] * 1e6,
        "slowest_text_kb": len((slowest.subject + slowest.text).encode()) / 1024,
        "parse_mean_us": statistics.mean(parse_each) * 1e6,
    }


def mail_with_body(body: str, subject: str = "Question about my balance") -> InboundMail:
    message = EmailMessage()
    message["From"] = "someone@customer.example"
    message["To"] = "support@bench.example"
    message["Subject"] = subject
    message.set_content(body, charset="utf-8", cte="8bit")
    return parse(message.as_bytes(policy=SMTP.clone(max_line_length=None)))


def measure_sizes(rules: RuleSet) -> list[dict[str, Any]]:
    rows = []
    for size in SIZES_KB:
        target = size * 1024
        body = (
            (FILLER * (target // len(FILLER.encode()) + 1))
            .encode()[:target]
            .decode("utf-8", "ignore")
        )
        mail = mail_with_body(body)
        matched = rules.route(mail).rules
        seconds = best_of(lambda mail=mail: rules.route(mail), 7 if size < 1024 else 3)
        rows.append(
            {
                "kb": size,
                "route_ms": seconds * 1e3,
                "us_per_kb": seconds * 1e6 / size,
                "matched": matched,
            }
        )
        print(
            f"  {size:>5} KB  {seconds * 1e3:9.3f} ms  {seconds * 1e6 / size:7.2f} us/KB  {matched}"
        )
    return rows


PATHOLOGICAL = {
    # end-anchored: RE2 may run it backwards from the end
    "(a+)+$": lambda n: "a" * n + "b",
    # unanchored, no match: RE2 must scan forwards through every 'a'
    "(a+)+b": lambda n: "a" * n,
}


def measure_pathological() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for source, text_of in PATHOLOGICAL.items():
        rules = parse_rules(
            "rules:\n  - name: pathological\n"
            f"    if: {{body: {{matches: '{source}'}}}}\n    then: {{tags: [never]}}\n"
        )
        re2_rows = []
        for size in SIZES_KB:
            mail = mail_with_body(text_of(size * 1024))
            seconds = best_of(lambda mail=mail, rules=rules: rules.route(mail), 3)
            re2_rows.append({"kb": size, "route_ms": seconds * 1e3})
            print(f"  {source}  RE2 route  {size:>5} KB   {seconds * 1e3:9.3f} ms")
        python_rows = []
        pattern = re.compile(source)
        for length in range(16, 40, 2):
            text = text_of(length)
            seconds = best_of(lambda p=pattern, text=text: p.search(text), 1)
            python_rows.append({"chars": len(text_of(length)), "ms": seconds * 1e3})
            print(f"  {source}  Python re  {len(text_of(length)):>5} chars {seconds * 1e3:9.1f} ms")
            if seconds > 1.0:  # two more characters cost 4x: stop before it takes minutes
                break
        found[source] = {"re2_route": re2_rows, "python_re_search": python_rows}
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=None, help="an existing corpus directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        workdir = Path(tmp)
        # one INFO line per mail would be measured too; problems go to a file, not the screen
        logging.basicConfig(level=logging.WARNING, filename=workdir / "mailticket.log")
        raws = corpus_mails(args.corpus, args.mails, workdir)
        print(f"(a) intake, {len(raws)} corpus mails, {args.rounds} interleaved rounds")
        intake = measure_intake(workdir, raws, args.rounds)
    shipped = parse_rules(SHIPPED.read_text(encoding="utf-8"))
    print("(b) route() alone on the corpus, shipped rules")
    route = measure_route(shipped, [parse(raw) for raw in raws])
    print(f"  {json.dumps(route)}")
    print("(c) route() by body size, shipped rules, no rule matching")
    sizes = measure_sizes(shipped)
    print("(d) pathological patterns")
    pathological = measure_pathological()
    results = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "intake": intake,
        "route": route,
        "sizes": sizes,
        "linearity_us_per_kb_1mb_over_64kb": sizes[-1]["us_per_kb"] / sizes[3]["us_per_kb"],
        "pathological": pathological,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"rules-{results['when'].replace(':', '')}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    rate, cpu = intake["median_rate"], intake["median_cpu_ms"]
    print(
        f"\nintake (medians): empty {rate['empty']:.1f} mails/s {cpu['empty']:.2f} CPU ms, "
        f"no rules {rate['no-rules']:.1f} / {cpu['no-rules']:.2f}, "
        f"shipped {rate['shipped']:.1f} / {cpu['shipped']:.2f}\n"
        f"shipped over no rules: rate {intake['rate_shipped_over_no_rules']:.3f}, "
        f"CPU {intake['cpu_shipped_over_no_rules']:.3f}; over empty: rate "
        f"{intake['rate_shipped_over_empty']:.3f}, CPU {intake['cpu_shipped_over_empty']:.3f}\n"
        f"route: {route['route_median_us']:.0f} us/mail median, {route['route_mean_us']:.0f} mean "
        f"(parse {route['parse_mean_us']:.0f} us mean); "
        f"us/KB at 1 MB over 64 KB: {results['linearity_us_per_kb_1mb_over_64kb']:.2f}\n"
        f"written to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
