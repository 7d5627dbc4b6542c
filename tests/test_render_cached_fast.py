"""A fully cached re-render decides freshness from manifest.json plus ``os.stat``: it opens no
sidecar unless a stat differs, and a damaged output or sidecar is still found and repaired.
(The 10,000-shot figure: ``benchmarks/bench_scale.py``.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.project_factory import make_project
from tests.test_render_scale import SMALL, render, stills


def _count_sidecar_reads(monkeypatch) -> list[str]:
    from cinekit.render import cache

    reads, real = [], cache.read_sidecar
    monkeypatch.setattr(cache, "read_sidecar", lambda path: reads.append(Path(path).name) or real(path))
    return reads


def _counts(result) -> str:
    return " ".join(result.stdout.split())


def test_a_cached_rerender_opens_no_sidecar_and_a_changed_stat_falls_back_to_it(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", stills(6), characters=("ann",), config=SMALL)
    assert render(root).exit_code == 0
    out = root / "renders/ep"
    entry = json.loads((root / "renders/manifest.json").read_text())["outputs"]["ep/s001"]
    st = os.stat(out / "s001.json")
    assert entry["sidecar_stat"] == [st.st_size, st.st_mtime_ns]  # taken after the sidecar was written

    reads = _count_sidecar_reads(monkeypatch)
    result = render(root)
    assert result.exit_code == 0 and "0 rendered, 6 cached" in _counts(result), result.stdout
    assert reads == []  # 6 cached jobs, not one sidecar opened

    # A damaged output (other bytes, other mtime): its stat differs -> its sidecar is read,
    # the recorded sha256 does not match -> re-rendered; the others stay on the fast path.
    png = out / "s002.png"
    good = png.read_bytes()
    png.write_bytes(good[:-40] + b"\0" * 40)
    result = render(root)
    assert result.exit_code == 0 and "1 rendered, 5 cached" in _counts(result), result.stdout
    assert reads == ["s002.json"] and png.read_bytes() == good

    # A damaged sidecar is re-rendered too (not refused, not served as cached).
    reads.clear()
    (out / "s004.json").write_text("{ not json")
    result = render(root)
    assert result.exit_code == 0 and "1 rendered, 5 cached" in _counts(result), result.stdout
    assert reads == ["s004.json"] and json.loads((out / "s004.json").read_text())["key"]

    reads.clear()
    assert "0 rendered, 6 cached" in _counts(render(root)) and reads == []  # entries refreshed

    # Same bytes, new mtimes (a copied folder): read and hashed once, then the entries hold the
    # new stats and the next run is back on the fast path.
    for f in out.iterdir():
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert "0 rendered, 6 cached" in _counts(render(root)) and len(reads) == 6
    reads.clear()
    assert "0 rendered, 6 cached" in _counts(render(root)) and reads == []


def test_a_manifest_entry_of_another_key_is_not_trusted(tmp_path, monkeypatch):
    """An edit of the shot list changes the key: the entry no longer vouches, the job re-renders."""
    root = make_project(tmp_path / "p", stills(3), characters=("ann",), config=SMALL)
    assert render(root).exit_code == 0
    target = root / "shots/ep.yaml"
    target.write_text(target.read_text().replace("seed: 1,", "seed: 11,"))
    result = render(root)
    assert result.exit_code == 0 and "1 rendered, 2 cached" in _counts(result), result.stdout
