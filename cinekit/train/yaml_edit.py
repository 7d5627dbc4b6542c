"""Add the trained file to the character's YAML (``--write``) as a minimal text edit.

The file is the user's: its comments, order, quoting and flow style stay as written. The new
entry is one flow-style line (``- {file: ..., weight: 1.0, trigger: ...}``) appended to the
``lora:`` (or ``embeddings:``) list where that list is written, or a new key at the end; the
edited text must still parse as a valid character before it replaces the file (atomically).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from cinekit.errors import UserError
from cinekit.train.kohya import atomic_write


def _flow(entry: dict) -> str:
    return yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, width=10_000).strip()


def _top_value(text: str, key: str):
    """The node of top-level ``key`` (None when absent)."""
    root = yaml.compose(text)
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        raise ValueError("the file is not a mapping")
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def add_entry(text: str, key: str, entry: dict, same=lambda item: False) -> tuple[str, bool]:
    """``text`` with ``entry`` appended to its top-level list ``key``; (new text, changed).

    ``same(item)``: an existing item that already is this entry (nothing is added then)."""
    node = _top_value(text, key)
    flow = _flow(entry)
    if node is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}{key}:\n  - {flow}\n", True
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        s, e = node.start_mark.index, node.end_mark.index
        return text[:s] + f" [{flow}]" + text[e:], True
    if not isinstance(node, yaml.SequenceNode):
        raise ValueError(f"`{key}:` is not a list")
    items = yaml.safe_load(text).get(key) or []
    if any(isinstance(it, dict) and same(it) for it in items):
        return text, False
    if node.flow_style:
        close = node.end_mark.index - 1                  # the ']'
        return text[:close] + (", " if node.value else "") + flow + text[close:], True
    last = node.value[-1].end_mark
    lines = text.splitlines(keepends=True)
    at = last.line if last.column == 0 else last.line + 1
    if last.column == 0:        # a block item ends where the next token starts: not after comments below it
        while at > 0 and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
            at -= 1
    indent = " " * node.start_mark.column
    new = f"{indent}- {flow}\n"
    if at > 0 and at <= len(lines) and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, new)
    return "".join(lines), True


def add_to_character(spec_path: Path, key: str, file: Path, extra: dict) -> bool:
    """Add ``file`` (path written relative to the YAML) under ``key`` (``lora`` or
    ``embeddings``) of the character file; False when it was already listed."""
    from cinekit.spec.models import CharacterSpec

    spec_path = Path(spec_path)
    text = spec_path.read_text(encoding="utf-8")
    rel = os.path.relpath(Path(file).resolve(), spec_path.parent.resolve()).replace(os.sep, "/")

    def same(item: dict) -> bool:
        f = item.get("file")
        return isinstance(f, str) and (spec_path.parent / f).resolve() == Path(file).resolve()

    try:
        new, changed = add_entry(text, key, {"file": rel, **extra}, same)
        CharacterSpec.model_validate(yaml.safe_load(new))
    except (ValueError, yaml.YAMLError) as e:
        raise UserError(f"{spec_path}: cannot add the {key} entry ({e})",
                        hint=f"add `{key}: [{_flow({'file': rel, **extra})}]` by hand") from None
    if changed:
        atomic_write(spec_path, lambda tmp: Path(tmp).write_text(new, encoding="utf-8"))
    return changed
