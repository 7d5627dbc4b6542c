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

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

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


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_MAP_TAGS = {None, "!", "tag:yaml.org,2002:map"}
_SEQ_TAGS = {None, "!", "tag:yaml.org,2002:seq"}
# Scalar tags built by SafeConstructor (safe_load's own); collections other than plain
# mappings and lists (!!set, !!omap, !!pairs, custom tags) are refused.
_SCALAR_TAGS = {_STR, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
                "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}


class _Scalars(yaml.constructor.SafeConstructor):
    """safe_load's scalar constructors; a value Python cannot build (a 5,000-digit integer,
    2021-13-45) becomes a located error instead of a bare ValueError."""

    def scalar(self, tag: str, value: str, mark):
        if tag not in _SCALAR_TAGS:
            raise _Refused(mark, f"unsupported tag {tag!r}", "remove the tag (cinekit files use plain YAML values)")
        node = ScalarNode(tag, value, mark, mark)
        try:
            return self.yaml_constructors[tag](self, node)
        except yaml.MarkedYAMLError:
            raise
        except (ValueError, OverflowError, TypeError) as exc:
            if len(value) > 60:
                message = f"a value of {len(value):,} characters cannot be read as {tag.rsplit(':', 1)[-1]}"
            else:
                message = f"cannot read {value!r}: {exc}"
            raise _Refused(mark, message, "quote it if you mean text") from None


class _Frame:
    """An open collection while composing: its value, data path and running counts."""

    __slots__ = ("value", "loc", "is_map", "size", "anchor", "key", "key_mark", "seen", "merges", "mark")

    def __init__(self, value, loc, is_map, anchor, mark):
        self.value, self.loc, self.is_map, self.anchor, self.mark = value, loc, is_map, anchor, mark
        self.size, self.key, self.key_mark, self.seen, self.merges = 1, _NO_KEY, None, {}, None


_NO_KEY = object()


class _Composer:
    """Events -> Python data (as safe_load) with the checks above and a table of marks.

    One loop over libyaml's events, no node tree, no recursion: the loader's cost is close to
    ``yaml.load(CSafeLoader)`` while it sees every anchor, alias and key with its mark.
    """

    def __init__(self, parser, doc: YamlDoc):
        self.parser = parser
        self.doc = doc
        self.resolver = yaml.resolver.Resolver()
        self.scalars = _Scalars()

    def compose(self):  # noqa: C901 - one event loop, kept in one place for speed
        get = self.parser.get_event
        resolve = self.resolver.resolve
        values, keys = self.doc.values, self.doc.keys
        anchors: dict[str, Any] = {}        # anchor -> value
        sizes: dict[str, int] = {}          # anchor -> expanded value count
        open_anchors: set[str] = set()
        tags: dict[str, str] = {}          # plain scalar text -> resolved tag (the same words repeat)
        stack: list[_Frame] = []
        root = None
        written = expanded = documents = 0
        while True:
            ev = get()
            cls = type(ev)
            if cls is ScalarEvent or cls is AliasEvent or cls is SequenceStartEvent or cls is MappingStartEvent:
                mark = ev.start_mark
                top = stack[-1] if stack else None
                # Where does this value go? (a key, a mapping value, a list item or the root)
                if top is None:
                    loc, is_key = (), False
                elif top.is_map:
                    is_key = top.key is _NO_KEY
                    loc = None if is_key or top.loc is None or top.key_mark is None else top.loc + (top.key,)
                else:
                    is_key = False
                    loc = None if top.loc is None else top.loc + (len(top.value),)
                if cls is AliasEvent:
                    anchor = ev.anchor
                    if anchor in open_anchors:
                        raise _Refused(mark, f"alias *{anchor} is inside the anchor it names (a recursive structure)",
                                       "an alias can only repeat a value that is complete")
                    if anchor not in anchors:
                        raise _Refused(mark, f"unknown alias *{anchor}", "define the anchor (&name) before using it")
                    value, size = anchors[anchor], sizes[anchor]
                    expanded += size
                    if expanded > ALIAS_BUDGET + ALIAS_RATIO * written:
                        raise _Refused(mark, f"aliases expand to more than {expanded:,} values "
                                       f"(the file writes {written:,}): refused as an alias bomb",
                                       "repeat the values themselves, or use fewer nested aliases")
                    if loc is not None:
                        values.setdefault(loc, (mark.line + 1, mark.column + 1))
                    tag = None
                else:
                    written += 1
                    if loc is not None:
                        values[loc] = (mark.line + 1, mark.column + 1)
                    tag = ev.tag
                    if cls is ScalarEvent:
                        if tag is None or tag == "!":
                            if ev.implicit[0]:  # a plain scalar: its tag depends on its text only
                                tag = tags.get(ev.value)
                                if tag is None:
                                    tag = resolve(ScalarNode, ev.value, ev.implicit)
                                    if len(tags) < 50_000:
                                        tags[ev.value] = tag
                            else:
                                tag = _STR
                        value = ev.value if tag == _STR else (None if tag == _MERGE else self.scalars.scalar(tag, ev.value, mark))
                        size = 1
                        if ev.anchor is not None:
                            anchors[ev.anchor], sizes[ev.anchor] = value, 1
                    else:
                        if len(stack) >= MAX_DEPTH:
                            raise _Refused(mark, f"nesting deeper than {MAX_DEPTH} levels", "flatten the structure")
                        is_map = cls is MappingStartEvent
                        if tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                            raise _Refused(mark, f"unsupported tag {tag!r}", "remove the tag (cinekit files use plain YAML values)")
                        if ev.anchor is not None:
                            open_anchors.add(ev.anchor)
                        stack.append(_Frame({} if is_map else [], None if is_key else loc, is_map, ev.anchor, mark))
                        continue
            elif cls is SequenceEndEvent or cls is MappingEndEvent:
                frame = stack.pop()
                value, size, mark, tag = frame.value, frame.size, frame.mark, None
                if frame.merges is not None:
                    merged: dict = {}
                    for m in reversed(frame.merges):  # the first mapping of a merge list wins
                        merged.update(m)
                    merged.update(value)               # keys written in the mapping win
                    value = merged
                if frame.anchor is not None:
                    open_anchors.discard(frame.anchor)
                    anchors[frame.anchor], sizes[frame.anchor] = value, size
                top = stack[-1] if stack else None
                is_key = top is not None and top.is_map and top.key is _NO_KEY
            elif cls is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Refused(ev.start_mark, "expected a single document, found another one",
                                   "remove the `---` line (one file holds one document)")
                continue
            elif cls is StreamEndEvent:
                return root
            else:  # StreamStart, DocumentEnd
                continue

            # A finished value: put it into the collection that is open (or make it the root).
            if not stack:
                root = value
                continue
            top = stack[-1]
            top.size += size
            if not top.is_map:
                top.value.append(value)
            elif is_key:
                if tag == _MERGE:
                    top.key, top.key_mark = _MERGE, None
                    continue
                try:
                    hash(value)
                except TypeError:
                    raise _Refused(mark, "a mapping key must be a plain value, not a list or mapping",
                                   "quote the key") from None
                first = top.seen.get(value)
                if first is not None:
                    raise _Refused(mark, f"duplicate key {short_key(value)} (first at line {first})",
                                   "each key may appear once in a mapping; remove one of them")
                top.seen[value] = mark.line + 1
                top.key, top.key_mark = value, mark
                if top.loc is not None:
                    keys[top.loc + (value,)] = (mark.line + 1, mark.column + 1)
            else:
                if top.key is _MERGE and top.key_mark is None:
                    merges = value if isinstance(value, list) else [value]
                    if not all(isinstance(m, dict) for m in merges):
                        raise _Refused(mark, "a merge key (<<) takes a mapping or a list of mappings",
                                       "write `<<: *anchor` where the anchor names a mapping")
                    top.merges = (top.merges or []) + merges
                else:
                    top.value[top.key] = value
                top.key = _NO_KEY


def short_key(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:55] + "…"


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
        # (f.read(limit) would allocate the whole limit up front: size first, then read)
        too_big = os.fstat(f.fileno()).st_size > MAX_FILE_BYTES
        raw = b"" if too_big else f.read()
    if too_big:
        raise YamlSyntaxError(path, None, None, f"file is larger than {MAX_FILE_BYTES // 2**20} MB",
                              "split it into several files")
    return parse_yaml(_decode(raw, path), path)


def parse_yaml(text: str, path: Path = Path("<string>")) -> YamlDoc:
    """The document in ``text`` as a YamlDoc (see the module docstring for what is refused)."""
    doc = YamlDoc(Path(path), None)
    _check_characters(text, Path(path))
    parser = _Parser(text)
    composer = _Composer(parser, doc)
    try:
        try:
            data = composer.compose()
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
