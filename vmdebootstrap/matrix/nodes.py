"""Reading the matrix file as YAML nodes, which know their line (``yaml.compose``).

``Reader`` turns nodes into Python values and records what does not fit in its
``Problems`` with the node's line and the key's dotted path (``exclude[0].arch``,
``overrides[0].options.boot-test``).  A YAML mapping with the same key twice is a
problem here, not the silent "last one wins" of ``yaml.safe_load``.
"""

from __future__ import annotations

import dataclasses

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .problems import Problems


@dataclasses.dataclass(frozen=True)
class Entry:
    """One key of a mapping: its name, its dotted path, and its value's node."""

    name: str
    path: str
    key: Node
    value: Node

    @property
    def line(self) -> int:
        return line(self.key)


def line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class Reader:
    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def compose(self, text: str) -> Node | None:
        """The document's root node; None (and a problem) when it is no YAML or empty."""
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            cause = getattr(exc, "problem", None) or str(exc)
            self.problems.add(int(mark.line) + 1 if mark is not None else 1, "yaml", f"not valid YAML: {cause}")
            return None
        if root is None:
            self.problems.add(1, "matrix", "the file is empty")
        return root

    def problem(self, node: Node, path: str, cause: str) -> None:
        self.problems.add(line(node), path, cause)

    def mapping(self, node: Node, path: str) -> list[Entry] | None:
        """The keys of a mapping node, in the file's order; None when it is not one."""
        if not isinstance(node, MappingNode):
            self.problem(node, path or "matrix", "not a mapping")
            return None
        entries: list[Entry] = []
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag != "tag:yaml.org,2002:str":
                self.problem(key, path or "matrix", "a key must be a plain name")
                continue
            name = str(key.value)
            if name in seen:
                self.problem(key, join(path, name), "given twice")
                continue
            seen.add(name)
            entries.append(Entry(name, join(path, name), key, value))
        return entries

    def sequence(self, node: Node, path: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.problem(node, path, "not a list")
            return None
        return list(node.value)

    def value(self, node: Node) -> object:
        """The Python value of a node (SafeLoader's types)."""
        return SafeConstructor().construct_object(node, deep=True)

    def text(self, node: Node, path: str) -> str | None:
        """A scalar as a string (a number too: 2 -> "2"); None for a mapping, list, null or bool."""
        value = self.value(node) if isinstance(node, ScalarNode) else None
        if value is None or isinstance(value, bool) or isinstance(value, (list, dict)):
            self.problem(node, path, "not a plain value")
            return None
        return str(value)

    def strings(self, node: Node, path: str) -> list[tuple[str, Node]] | None:
        """A list of plain values, each with its node."""
        items = self.sequence(node, path)
        if items is None:
            return None
        found = []
        for index, item in enumerate(items):
            text = self.text(item, f"{path}[{index}]")
            if text is not None:
                found.append((text, item))
        return found
