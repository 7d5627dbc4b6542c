"""Turn pydantic validation errors into located, human problems with hints.

pydantic reports union branches as extra path segments (``'str'``, ``'function-after[...]'``);
we drop the branches that do not match the kind of value the user wrote, so a mapping given
for ``pose`` gets the mapping's errors, not "should be a string".
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from cinekit.errors import Problem
from cinekit.spec.yamlfile import YamlDoc

_SCALAR_TYPES = {
    "string_type", "int_type", "int_parsing", "float_type", "float_parsing", "bool_type",
    "bool_parsing", "literal_error", "tuple_type", "list_type", "string_pattern_mismatch",
}
_MAPPING_TYPES = {"model_type", "dict_type", "model_attributes_type"}


def field_name(loc: tuple[Any, ...]) -> str:
    """("shots", 0, "characters", 1, "pose") -> "shots[0].characters[1].pose"."""
    out = ""
    for part in loc:
        part = part if isinstance(part, int) else (str(part) if len(str(part)) <= 40 else str(part)[:36] + "…")
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def suggest(word: str, choices: typing.Iterable[str]) -> str | None:
    """A "did you mean" hint, or None when nothing is close."""
    if len(str(word)) > 64:  # difflib is quadratic; a long word is not a typo of a short name
        return None
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _unwrap_models(annotation: Any) -> list[type[BaseModel]]:
    """Every BaseModel class reachable through Optional/Union/list/dict/Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _unwrap_models(arg)
    return found


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (None if not a model)."""
    current: list[type[BaseModel]] = [root]
    annotation: Any = root
    for part in loc:
        if isinstance(part, int):
            continue  # list items: the element type is already in ``annotation``'s args
        nxt = []
        for model in current:
            info = model.model_fields.get(part)
            if info is None:
                alias_match = [f for f in model.model_fields.values() if f.alias == part]
                info = alias_match[0] if alias_match else None
            if info is not None:
                annotation = info.annotation
                nxt += _unwrap_models(annotation)
        current = nxt
        if not current:
            return None
    return current[0] if current else None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _split_loc(doc: YamlDoc, loc: tuple[Any, ...], etype: str) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """Separate the data path from a union-branch tag; returns (path, path where the tag was)."""
    clean: list[Any] = []
    node = doc.data
    tag_at = None
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            clean.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            clean.append(part)
            node = node[part]
        elif tag_at is None and isinstance(part, str) and not (last and etype == "missing"):
            tag_at = tuple(clean)  # a union branch name such as 'str' or 'function-after[...]'
        else:
            clean.append(part)
    return tuple(clean), tag_at


def problems_from_validation(doc: YamlDoc, error: ValidationError, root: type[BaseModel],
                             prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """Located problems for every pydantic error of one YAML document."""
    kept = []
    dropped: dict[tuple, list] = {}
    for err in error.errors(include_url=False):
        loc, tag_at = _split_loc(doc, prefix + tuple(err["loc"]), err["type"])
        if tag_at is not None and loc == tag_at:
            # An error about the value itself in one branch of a union: drop the branches
            # that expect another kind of value than the one written.
            value = doc.get(loc)
            if (isinstance(value, (dict, list)) and err["type"] in _SCALAR_TYPES) or \
                    (not isinstance(value, dict) and err["type"] in _MAPPING_TYPES):
                dropped.setdefault(loc, []).append(err)
                continue
        kept.append((loc, tag_at, err))
    # A value no branch accepts, all of whose errors were dropped above (a mapping where only
    # plain values are allowed: `position: {x: 0.5}`): still one error, never none.
    reported = {loc for loc, _, _ in kept}
    for loc, errs in dropped.items():
        if not any(r[: len(loc)] == loc for r in reported):
            kept.append((loc, None, {"type": "no_branch", "loc": loc, "msg": "", "alternatives": errs}))

    problems: list[Problem] = []
    merged: dict[tuple, list] = {}
    for loc, tag_at, err in kept:
        merged.setdefault(loc, []).append((tag_at, err))
    for loc, group in merged.items():
        alternatives = [e for tag_at, e in group if tag_at == loc]
        if len(alternatives) > 1:
            # One value, several accepted forms (e.g. a preset name or a number): one message.
            problems.append(_union_problem(doc, loc, alternatives))
            group = [(t, e) for t, e in group if t != loc]
        for _, err in group:
            problems.append(_problem(doc, loc, err, root, prefix))
    return sorted(problems, key=lambda p: (p.line or 0, p.col or 0))


def _union_problem(doc: YamlDoc, loc, errs) -> Problem:
    line, col = doc.mark(loc)
    names: list[str] = []
    kinds: list[str] = []
    for e in errs:
        if e["type"] == "literal_error":
            names += [x.strip().strip("'") for x in e["ctx"]["expected"].replace(" or ", ", ").split(",")]
        elif e["type"] in _SCALAR_TYPES:
            kinds.append("a " + e["type"].split("_")[0])
        else:
            kinds.append(f"a number: {e['msg'].lower()}" if "than" in e["msg"] else e["msg"])
    value = doc.get(loc)
    expected = ", ".join(repr(n) for n in names)
    if kinds:
        expected = (expected + " or " if expected else "") + " or ".join(dict.fromkeys(kinds))
    hint = suggest(value, names) if isinstance(value, str) else None
    return Problem(str(doc.path), line, col, field_name(loc), f"{short(value)} is not valid; expected {expected}", hint)


def printable(text: str | None) -> str | None:
    """``text`` with every non-printable character escaped (a key holding a newline or a lone
    surrogate must not split an error line or make the terminal's encoder fail)."""
    if text is None or text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def printable_problem(p: Problem) -> Problem:
    import dataclasses

    return dataclasses.replace(p, path=printable(p.path), field=printable(p.field),
                               message=printable(p.message), hint=printable(p.hint))


def short(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 4,000-digit number is not a message)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def _kind_of(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return short(value)


def _problem(doc: YamlDoc, loc, err, root, prefix) -> Problem:
    etype = err["type"]
    fld = field_name(loc)
    if etype == "no_branch":
        written = _union_problem(doc, loc, err["alternatives"])
        expected = written.message.split("; expected ", 1)[-1]
        return Problem(str(doc.path), written.line, written.col, fld,
                       f"{_kind_of(doc.get(loc))} is not valid here; expected {expected}", written.hint)
    if etype == "extra_forbidden":
        key = loc[-1]
        line, col = doc.mark(loc, key=True)
        model = model_at(root, tuple(loc[len(prefix):-1]))
        hint = suggest(key, _field_names(model)) if model else None
        if hint is None and model:
            hint = "allowed keys: " + ", ".join(_field_names(model))
        return Problem(str(doc.path), line, col, fld, f"unknown key {short(key)}", hint)
    if etype == "missing":
        line, col = doc.mark(loc[:-1])
        return Problem(str(doc.path), line, col, fld, f"missing required key {loc[-1]!r}")
    line, col = doc.mark(loc)
    msg = err["msg"]
    if etype == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif etype == "literal_error":
        value = err.get("input")
        expected = [x.strip().strip("'") for x in err["ctx"]["expected"].replace(" or ", ", ").split(",")]
        return Problem(str(doc.path), line, col, fld, f"{short(value)} is not one of: {', '.join(expected)}",
                       suggest(value, expected) if isinstance(value, str) else None)
    elif "input" in err and not isinstance(err["input"], (dict, list)):
        msg = f"{msg} (got {short(err['input'])})"
    return Problem(str(doc.path), line, col, fld, msg)

