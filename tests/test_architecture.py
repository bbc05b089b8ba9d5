"""The shape of the code, read from its import graph: no import circles (imports inside
functions and under TYPE_CHECKING count), the pure stages import nothing that does I/O,
and no module grows past 400 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Final

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mailticket"

# parsing, deciding, clocks and what they produce: no database, network, process or
# event loop, so that they are tested with literal tables and run anywhere
PURE_FOLDERS: Final = ("parse", "decide")
PURE_MODULES: Final = frozenset({
    "errors", "units",
    "followup.business_calendar", "followup.business_hours", "followup.due_derivation",
    "followup.clocks",
    "outbound.answers", "outbound.agent_files", "outbound.notices", "outbound.outgoing",
})  # fmt: skip
# modules that reach a database, the network, other processes or an event loop
IO_FOLDERS: Final = ("store", "inbound", "runtime")
IO_MODULES: Final = frozenset({
    "intake", "cli", "__main__", "outbound.outbox", "outbound.transport", "followup.sweep",
    "followup.scheduler", "ops.status", "ops.metrics", "ops.report", "ops.report_text",
    "ops.heartbeat", "ops.sd_notify", "ops.explain",
})  # fmt: skip
IO_LIBRARIES: Final = frozenset({
    "sqlalchemy", "sqlmodel", "alembic", "psycopg", "socket", "smtplib", "imaplib",
    "imapclient", "aiosmtpd", "asyncio", "subprocess", "multiprocessing", "dns",
    "prometheus_client", "apscheduler", "urllib.request", "http.client", "http.server",
})  # fmt: skip
MAX_LINES: Final = 400
# modules still over MAX_LINES, at most this long: each only shrinks (issue 19 splits them)
OVERSIZED: Final = {
    "parse.dsn": 448, "store": 533, "intake": 620, "cli": 646,
}  # fmt: skip


@cache
def _modules() -> dict[str, Path]:
    """Every module by its dotted name inside the package (a package by its own name)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if "migrations" in parts:
            continue
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _in(name: str, folders: tuple[str, ...], modules: frozenset[str]) -> bool:
    return name in modules or any(name == f or name.startswith(f"{f}.") for f in folders)


def _pure() -> list[str]:
    return sorted(n for n in _modules() if _in(n, PURE_FOLDERS, PURE_MODULES))


def _does_io_module(name: str) -> bool:
    return _in(name, IO_FOLDERS, IO_MODULES)


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, wherever the import statement is."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mailticket":
                yield from (f"mailticket.{alias.name}" for alias in node.names)
            else:
                yield node.module


@cache
def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Our modules' imports of each other, and of other top-level packages."""
    modules = _modules()
    ours: dict[str, set[str]] = {}
    theirs: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set(_imports(path))
        ours[name] = {
            _owner(m.removeprefix("mailticket."), modules.keys())
            for m in imported
            if m.startswith("mailticket.")
        } - {name, ""}
        theirs[name] = {m for m in imported if not m.startswith("mailticket")}
    return ours, theirs


def _owner(dotted: str, names: Iterable[str]) -> str:
    """The module ``dotted`` names, or the module it is inside (an attribute import)."""
    known = set(names)
    while dotted and dotted not in known:
        dotted = dotted.rpartition(".")[0]
    return dotted


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    ours, _ = _graph()
    assert _circles(ours) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for other in graph[todo.pop()]:
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


@pytest.mark.parametrize("module", _pure())
def test_a_pure_module_reaches_nothing_that_does_io(module: str) -> None:
    ours, theirs = _graph()
    reached = _reach(ours, module) | {module}
    assert sorted(m for m in reached if _does_io_module(m)) == []
    libraries = set().union(*(theirs[m] for m in reached))
    assert sorted(lib for lib in libraries if _does_io(lib)) == []


def _does_io(library: str) -> bool:
    """``library`` is one of IO_LIBRARIES or a module inside one."""
    return any(library == io or library.startswith(f"{io}.") for io in IO_LIBRARIES)


def test_every_module_is_sorted_as_pure_or_io_or_neither_knowingly() -> None:
    """A new module must be placed: pure, I/O, or (composition, config, text) neither."""
    neither = {
        "__init__", "settings", "ops", "ops.logs", "ops.terminal", "decide.yamlsource",
        "outbound", "outbound.dkim_sign", "followup",
    }  # fmt: skip
    pure = set(_pure())
    io = {n for n in _modules() if _does_io_module(n)}
    assert sorted(_modules().keys() - pure - io - neither) == []
    assert sorted(pure & io) == []


def test_the_folders_name_the_flow() -> None:
    """A mail travels inbound -> parse -> decide -> store -> outbound; followup, ops and
    runtime around them: the README's Layout section says where each kind of change goes."""
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert folders == {
        "inbound", "parse", "decide", "store", "outbound", "followup", "ops", "runtime",
    }  # fmt: skip
    flat = {path.stem for path in PACKAGE.glob("*.py")}
    assert flat == {"__init__", "__main__", "cli", "intake", "settings", "errors", "units"}


def test_no_two_types_share_a_name() -> None:
    """A name says which thing it is: one ``Verdict``, one ``Decision``, one ``Window``."""
    where: dict[str, list[str]] = {}
    for name, path in _modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(name)
    assert {kind: found for kind, found in where.items() if len(found) > 1} == {}


def test_no_module_grows_past_400_lines() -> None:
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in _modules().items()
    }
    over = {name: n for name, n in lengths.items() if n > OVERSIZED.get(name, MAX_LINES)}
    assert over == {}, "split them (issue 19), do not raise the limits"
    shrunk = {name for name, most in OVERSIZED.items() if lengths[name] <= MAX_LINES}
    assert shrunk == set(), "under the limit now: take them off OVERSIZED"
