"""YAML with line numbers, so every error in rules.yaml can say ``file:line: what``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# libyaml's composer when PyYAML was built with it (about ten times faster); its nodes
# carry the same marks, so the line numbers are the same
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Located:
    """Plain data plus the line of every mapping key and list item (1-based)."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    name: str = "rules.yaml"

    def line(self, path: Path_) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def where(self, path: Path_) -> str:
        return f"{self.name}:{self.line(path)}"


def load_located(text: str, name: str) -> Located:
    """Parse ``text``; a YAML syntax error becomes ValueError("name:line: problem")."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ValueError(f"{name}:{line}: {exc.problem}") from None
    lines: dict[Path_, int] = {}
    scalars = yaml.constructor.SafeConstructor()  # one per document: a loader is costly
    data = _convert(node, (), lines, scalars) if node is not None else {}
    return Located(data=data, lines=lines, name=name)


def read_file(path: Path) -> bytes:
    """The file's bytes, read once (a version hash and a parse of the same content)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}:1: cannot read: {exc}") from None


def load_bytes(content: bytes, name: str) -> Located:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}:1: cannot read: {exc}") from None
    return load_located(text, name)


def _convert(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], scalars: yaml.constructor.SafeConstructor
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = scalars.construct_object(key_node)
            result[key] = _convert(value_node, (*path, key), lines, scalars)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, index), lines, scalars) for index, item in enumerate(node.value)
        ]
    return scalars.construct_object(node)
