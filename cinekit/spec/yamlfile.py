"""YAML loading that remembers where every key and value came from (line, column).

``yaml.safe_load`` builds the data; ``yaml.compose`` gives the node tree whose marks we map
to data paths like ``("shots", 0, "characters", 1, "pose")``. Both use the safe loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[Any, ...]


@dataclass
class YamlDoc:
    path: Path
    data: Any
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # value start (1-based line, col)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)    # key start for mapping entries

    def mark(self, loc: Path_, key: bool = False) -> tuple[int | None, int | None]:
        """Nearest known position of ``loc`` (falls back to the closest ancestor)."""
        table = self.keys if key else self.values
        loc = tuple(loc)
        if loc in table:
            return table[loc]
        while loc:
            if loc in self.keys:
                return self.keys[loc]
            loc = loc[:-1]
            if loc in self.values:
                return self.values[loc]
        return self.values.get((), (1, 1))

    def get(self, loc: Path_, default: Any = None) -> Any:
        node = self.data
        for part in loc:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node


class YamlSyntaxError(Exception):
    def __init__(self, path: Path, line: int | None, col: int | None, message: str):
        super().__init__(message)
        self.path, self.line, self.col, self.message = path, line, col, message


def _walk(node: yaml.Node, loc: Path_, doc: YamlDoc) -> None:
    doc.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            doc.keys[loc + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, loc + (key,), doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, loc + (i,), doc)


def load_yaml(path: Path) -> YamlDoc:
    """Parse one YAML file safely, with marks. Raises YamlSyntaxError with a location."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise YamlSyntaxError(Path(path), line, col, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Path(path), None, None, f"invalid YAML: {exc}") from None
    doc = YamlDoc(Path(path), data if data is not None else {})
    if node is not None:
        _walk(node, (), doc)
    return doc
