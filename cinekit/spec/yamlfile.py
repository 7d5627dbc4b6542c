"""YAML loading that remembers where every key and value came from, and refuses hostile files.

One parse per file: libyaml (``CParser``, when PyYAML has it) turns the text into events, this
module composes the events into nodes itself (so it sees every anchor, alias and key with its
mark) and PyYAML's ``SafeConstructor`` builds the data (``safe_load`` semantics). While
composing it refuses, each at ``line:col``:

- a duplicate key in one mapping (YAML says keys are unique; PyYAML keeps the last silently);
- nesting deeper than ``MAX_DEPTH``;
- an alias inside the anchor it names (a recursive structure);
- alias expansion beyond a budget (an "alias bomb": 9 aliases of 9 aliases ... is a few hundred
  bytes that expand to billions of nodes; everything after the loader walks the expanded data).

Before parsing, bytes that are not UTF-8 and control characters are reported at ``line:col``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent, DocumentStartEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent,
    SequenceStartEvent, StreamEndEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

Path_ = tuple[Any, ...]

MAX_DEPTH = 64                  # nested collections; real cinekit files use < 10
MAX_FILE_BYTES = 64 * 2**20     # a shot list of 10,000 shots is ~1 MB
ALIAS_BUDGET = 100_000          # nodes reachable through aliases, plus ALIAS_RATIO per written node
ALIAS_RATIO = 10

# Characters YAML does not allow in a stream (YAML 1.1 printable set; tab, LF, CR are fine).
_FORBIDDEN = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # only its parser is used: libyaml when present


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
    def __init__(self, path: Path, line: int | None, col: int | None, message: str, hint: str | None = None):
        super().__init__(message)
        self.path, self.line, self.col, self.message, self.hint = path, line, col, message, hint


class _Refused(Exception):
    """Raised inside the composer; becomes a YamlSyntaxError with the file's path."""

    def __init__(self, mark, message: str, hint: str | None = None):
        super().__init__(message)
        self.mark, self.message, self.hint = mark, message, hint


def _at(mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _Constructor(yaml.constructor.SafeConstructor):
    """safe_load's constructor; a value Python cannot build (a 5,000-digit integer, 2021-13-45)
    becomes a located error instead of a bare ValueError."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            if isinstance(node, ScalarNode) and len(node.value) > 60:
                message = f"a value of {len(node.value):,} characters cannot be read as {node.tag.rsplit(':', 1)[-1]}"
            else:
                message = f"cannot read {node.value!r}: {exc}" if isinstance(node, ScalarNode) else f"cannot read this value: {exc}"
            raise _Refused(node.start_mark, message, "quote it if you mean text") from None


class _Frame:
    """An open collection while composing: its node, data path and running counts."""

    __slots__ = ("node", "loc", "is_map", "size", "anchor", "key", "seen", "index")

    def __init__(self, node, loc, is_map, anchor):
        self.node, self.loc, self.is_map, self.anchor = node, loc, is_map, anchor
        self.size, self.key, self.seen, self.index = 1, None, {}, 0


class _Composer:
    """Events -> nodes (as PyYAML's Composer, without recursion) with the checks above and a
    table of marks. One loop over the events: no per-event peeking, no Python recursion."""

    def __init__(self, parser, doc: YamlDoc):
        self.parser = parser
        self.doc = doc
        self.anchors: dict[str, Any] = {}
        self.sizes: dict[int, int] = {}   # id(node) -> expanded node count (nodes behind an anchor)
        self.written = 0
        self.expanded = 0                 # nodes reached through aliases so far

    def compose(self):
        get = self.parser.get_event
        resolve = self.resolver.resolve
        values, keys = self.doc.values, self.doc.keys
        stack: list[_Frame] = []
        root = None
        open_anchors: set[str] = set()
        documents = 0
        while True:
            ev = get()
            cls = type(ev)
            if cls is ScalarEvent or cls is AliasEvent or cls is SequenceStartEvent or cls is MappingStartEvent:
                # Where does this node go? (a key, a mapping value, a list item or the root)
                top = stack[-1] if stack else None
                if top is None:
                    loc, is_key = (), False
                elif top.is_map:
                    is_key = top.key is None
                    if is_key or top.loc is None or not isinstance(top.key, ScalarNode):
                        loc = None
                    else:
                        loc = top.loc + (_key_value(top.key),)
                else:
                    is_key = False
                    loc = None if top.loc is None else top.loc + (top.index,)
                if cls is AliasEvent:
                    anchor = ev.anchor
                    if anchor not in self.anchors:
                        raise _Refused(ev.start_mark, f"unknown alias *{anchor}", "define the anchor (&name) before using it")
                    if anchor in open_anchors:
                        raise _Refused(ev.start_mark, f"alias *{anchor} is inside the anchor it names (a recursive structure)",
                                       "an alias can only repeat a value that is complete")
                    node = self.anchors[anchor]
                    self.expanded += self.sizes[id(node)]
                    if self.expanded > ALIAS_BUDGET + ALIAS_RATIO * self.written:
                        raise _Refused(ev.start_mark, f"aliases expand to more than {self.expanded:,} values "
                                       f"(the file writes {self.written:,}): refused as an alias bomb",
                                       "repeat the values themselves, or use fewer nested aliases")
                    if loc is not None:
                        values.setdefault(loc, (ev.start_mark.line + 1, ev.start_mark.column + 1))
                    size = self.sizes[id(node)]
                else:
                    self.written += 1
                    if loc is not None:
                        values[loc] = (ev.start_mark.line + 1, ev.start_mark.column + 1)
                    tag = ev.tag
                    if cls is ScalarEvent:
                        if tag is None or tag == "!":
                            tag = resolve(ScalarNode, ev.value, ev.implicit)
                        node = ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style)
                        size = 1
                        if ev.anchor is not None:
                            self.anchors[ev.anchor] = node
                            self.sizes[id(node)] = 1
                    else:
                        if len(stack) >= MAX_DEPTH:
                            raise _Refused(ev.start_mark, f"nesting deeper than {MAX_DEPTH} levels", "flatten the structure")
                        is_map = cls is MappingStartEvent
                        kind = MappingNode if is_map else SequenceNode
                        if tag is None or tag == "!":
                            tag = resolve(kind, None, ev.implicit)
                        node = kind(tag, [], ev.start_mark, None, flow_style=ev.flow_style)
                        if ev.anchor is not None:
                            self.anchors[ev.anchor] = node
                            open_anchors.add(ev.anchor)
                        stack.append(_Frame(node, None if is_key else loc, is_map, ev.anchor))
                        continue
                self._attach(stack, node, size, is_key, ev.start_mark, keys)
                if not stack:
                    root = node
            elif cls is SequenceEndEvent or cls is MappingEndEvent:
                frame = stack.pop()
                node = frame.node
                node.end_mark = ev.end_mark
                if frame.anchor is not None:
                    open_anchors.discard(frame.anchor)
                    self.sizes[id(node)] = frame.size
                top = stack[-1] if stack else None
                self._attach(stack, node, frame.size, top is not None and top.is_map and top.key is None,
                             node.start_mark, keys)
                if not stack:
                    root = node
            elif cls is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Refused(ev.start_mark, "expected a single document, found another one",
                                   "remove the `---` line (one file holds one document)")
            elif cls is StreamEndEvent:
                return root
            # StreamStart / DocumentEnd: nothing to do

    def _attach(self, stack, node, size, is_key, mark, keys):
        """Put a finished node into the collection that is open (if any)."""
        if not stack:
            return
        top = stack[-1]
        top.size += size
        if not top.is_map:
            top.node.value.append(node)
            top.index += 1
        elif is_key:
            if isinstance(node, ScalarNode):
                ident = (node.tag, node.value)
                first = top.seen.get(ident)
                if first is not None:
                    raise _Refused(mark, f"duplicate key {node.value!r} (first at line {first})",
                                   "each key may appear once in a mapping; remove one of them")
                top.seen[ident] = mark.line + 1
                if top.loc is not None:
                    keys[top.loc + (_key_value(node),)] = (mark.line + 1, mark.column + 1)
            top.key = node
        else:
            top.node.value.append((top.key, node))
            top.key = None


_DECIMAL = re.compile(r"^[-+]?(0|[1-9][0-9_]{0,18})$")


def _key_value(node: ScalarNode):
    """The data key a scalar key node becomes (plain decimal ints stay ints, so marks match
    pydantic's locs; other exotic keys fall back to their parent's mark)."""
    if node.tag == "tag:yaml.org,2002:int" and _DECIMAL.match(node.value):
        return int(node.value.replace("_", ""))
    return node.value


def _decode(raw: bytes, path: Path) -> str:
    """UTF-8 text (a BOM is dropped) or a located error at the first bad byte / control char."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise YamlSyntaxError(path, line, col, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                              "save the file as UTF-8") from None
    return text


def _check_characters(text: str, path: Path) -> None:
    bad = _FORBIDDEN.search(text)
    if bad:
        before = text[: bad.start()]
        line = before.count("\n") + 1
        col = bad.start() - (before.rfind("\n") + 1) + 1
        raise YamlSyntaxError(path, line, col, f"control character U+{ord(bad.group()):04X} is not allowed in YAML",
                              "remove it (write it as an escape such as \"\\x07\" inside double quotes if you mean it)")


def load_yaml(path: Path) -> YamlDoc:
    """Parse one YAML file safely, with marks. Raises YamlSyntaxError with a location."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise YamlSyntaxError(path, None, None, f"file is larger than {MAX_FILE_BYTES // 2**20} MB",
                              "split it into several files")
    return parse_yaml(_decode(raw, path), path)


def parse_yaml(text: str, path: Path = Path("<string>")) -> YamlDoc:
    """The document in ``text`` as a YamlDoc (see the module docstring for what is refused)."""
    doc = YamlDoc(Path(path), None)
    _check_characters(text, Path(path))
    parser = _Parser(text)
    composer = _Composer(parser, doc)
    composer.resolver = yaml.resolver.Resolver()
    try:
        try:
            node = composer.compose()
            data = _Constructor().construct_document(node) if node is not None else None
        finally:
            if hasattr(parser, "dispose"):
                parser.dispose()
    except _Refused as exc:
        line, col = _at(exc.mark) if exc.mark is not None else (None, None)
        raise YamlSyntaxError(Path(path), line, col, exc.message, exc.hint) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _at(mark) if mark else (None, None)
        if "nesting depth" in str(exc.problem):  # libyaml's own limit (1000), met while scanning ahead
            raise YamlSyntaxError(Path(path), line, col, f"nesting deeper than {MAX_DEPTH} levels",
                                  "flatten the structure") from None
        raise YamlSyntaxError(Path(path), line, col, f"invalid YAML: {exc.problem or exc}",
                              "check indentation and quoting around that line") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Path(path), None, None, f"invalid YAML: {exc}") from None
    doc.data = data if data is not None else {}
    doc.values.setdefault((), (1, 1))
    return doc
