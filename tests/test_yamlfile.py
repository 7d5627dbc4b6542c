"""The YAML loader: safe_load's data, marks for every key and value, hostile files refused at line:col."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from cinekit.spec.yamlfile import ALIAS_BUDGET, MAX_DEPTH, YamlSyntaxError, load_yaml, parse_yaml
from tests.adversarial.hostile import BOMB


def refused(text: str) -> YamlSyntaxError:
    with pytest.raises(YamlSyntaxError) as info:
        parse_yaml(text)
    return info.value


@pytest.mark.parametrize("text", [
    "a: 1\nb: [1, 2.5, true, null, '3']\nc: {d: e}\n",
    "d: &d {x: 1, y: 2}\ne: {<<: *d, x: 3}\nf: *d\n",
    "a: 2001-12-14\nb: 0x1F\nc: 1_000\nd: .inf\ne: ~\n",
    "- 1\n- - 2\n  - 3\n",
    "",
])
def test_same_data_as_safe_load(text):
    assert parse_yaml(text).data == (yaml.safe_load(text) if text else {})


def test_marks_of_keys_and_values():
    doc = parse_yaml("shots:\n  - id: a\n    size: [1, 2]\n")
    assert doc.values[("shots", 0, "size", 1)] == (3, 15)
    assert doc.keys[("shots", 0, "size")] == (3, 5)
    assert doc.mark(("shots", 0, "missing")) == (2, 5)   # falls back to the nearest ancestor


def test_duplicate_key_located_at_the_second_naming_the_first():
    err = refused("shots:\n  - id: a\n    duration: 2.0\n    prompt: x\n    duration: 90\n")
    assert (err.line, err.col) == (5, 5)
    assert "duplicate key 'duration' (first at line 3)" in err.message


def test_merge_keys_may_be_overridden_but_not_repeated():
    assert parse_yaml("d: &d {x: 1}\ne: {<<: *d, x: 2}\n").data["e"] == {"x": 2}
    assert "duplicate key 'x'" in refused("e: {x: 1, y: 2, x: 3}\n").message


def test_alias_bomb_refused_in_milliseconds_and_little_memory():
    assert len(BOMB.encode()) < 700
    tracemalloc.start()
    start = time.perf_counter()
    err = refused(BOMB)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "alias bomb" in err.message and err.line is not None and err.col is not None
    assert elapsed < 0.2, elapsed
    assert peak < 20 * 2**20, peak


def test_aliases_within_budget_are_fine():
    # a 10-value anchor repeated by 1,000 shots (10,000 values through aliases) loads
    text = "x: &x {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}\nl:\n" + "  - *x\n" * 1000
    assert len(parse_yaml(text).data["l"]) == 1000
    assert 1000 * 11 < ALIAS_BUDGET


def test_recursive_alias_and_depth_refused():
    assert "recursive" in refused("a: &a [1, *a]\n").message
    deep = refused("x: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert "nesting deeper than 64" in deep.message and deep.line == 1
    assert "nesting" in refused("x: " + "[" * 5000 + "]" * 5000).message
    parse_yaml("x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))  # at the limit: fine


def test_control_characters_and_encoding_located(tmp_path):
    err = refused("a: 1\nb: x\x1by\n")
    assert (err.line, err.col) == (2, 5) and "U+001B" in err.message
    p = tmp_path / "latin1.yaml"
    p.write_bytes("a: 1\nb: café\n".encode("latin-1"))
    with pytest.raises(YamlSyntaxError) as info:
        load_yaml(p)
    assert (info.value.line, info.value.col) == (2, 7) and "UTF-8" in info.value.message
    p.write_bytes("\ufeffa: é\n".encode("utf-8"))  # a BOM is fine
    assert load_yaml(p).data == {"a": "é"}


def test_values_python_cannot_build_are_located():
    err = refused("a: 1\nb: " + "9" * 4301 + "\n")
    assert (err.line, err.col) == (2, 4) and "4,301" in err.message
    assert (refused("a: 2021-13-45\n").line, refused("a: 2021-13-45\n").col) == (1, 4)


def test_one_document_per_file():
    assert "single document" in refused("a: 1\n---\nb: 2\n").message


def test_load_is_not_slower_than_pyyaml_c_loader(tmp_path):
    """The loader composes in Python from libyaml events: it must stay within 2x of
    yaml.load(CSafeLoader) (which builds no marks and checks nothing)."""
    text = "shots:\n" + "".join(f"  - id: s{i}\n    prompt: '{{ann}} waves'\n    characters: [{{name: ann, pose: wave}}]\n"
                                 for i in range(1000))
    p = Path(tmp_path / "l.yaml")
    p.write_text(text)
    best_ref = best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        yaml.load(text, Loader=yaml.CSafeLoader)
        best_ref = min(best_ref, time.perf_counter() - t)
        t = time.perf_counter()
        load_yaml(p)
        best = min(best, time.perf_counter() - t)
    assert best < 2.0 * best_ref, (best, best_ref)
