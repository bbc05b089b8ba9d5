"""YAML with line numbers, so every error in rules.yaml can say ``file:line: what``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ValueError(f"{name}:{line}: {exc.problem}") from None
    lines: dict[Path_, int] = {}
    data = _convert(node, (), lines) if node is not None else {}
    return Located(data=data, lines=lines, name=name)


def load_file(path: Path) -> Located:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}:1: cannot read: {exc}") from None
    return load_located(text, str(path))


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(" ").construct_object(key_node)
            result[key] = _convert(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, index), lines) for index, item in enumerate(node.value)]
    return yaml.SafeLoader(" ").construct_object(node)
