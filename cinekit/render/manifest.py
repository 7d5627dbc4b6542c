"""``renders/manifest.json``: how every output of the folder was made, in one file.

One entry per output stem (``ep01/s010``): key, seed, timings, engine, model, inputs (with
their digests), files (with their sha256). The sidecar next to each output is the commit
point and the source of truth; the manifest is an index over them.

Updating it costs O(1) per job: each rendered job appends one line to ``.manifest.journal``
(append-only JSON lines, flushed, not fsynced: the sidecars are the truth), and ``compact``
folds the journal into ``manifest.json`` once at the end of the batch (one atomic rewrite).
A run killed mid-batch leaves ``manifest.json`` plus a journal; the next run replays the
journal (a torn last line is skipped) and brings the rest up to date from the sidecars.

Each entry also records ``sidecar_stat`` (the sidecar's ``[size, mtime_ns]`` when the entry was
made) and the outputs' ``stat``: a re-run decides that a job is cached from the entry plus
``os.stat`` alone (``cache.check_entry``), without opening 10,000 sidecars. A sidecar whose stat
differs (rewritten with scores, damaged, copied) is read as before and its entry refreshed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cinekit import __version__
from cinekit.render import writers

MANIFEST_NAME = "manifest.json"
JOURNAL_NAME = ".manifest.journal"


def entry_from_record(record: dict[str, Any], sidecar_stat: list[int] | None = None) -> dict[str, Any]:
    """The manifest entry of one output, from its sidecar record (``sidecar_stat``: the
    sidecar's stat signature taken before it was read, or right after it was written)."""
    job = record.get("job", {})
    parts = record.get("key_parts", {})
    return {
        "key": record.get("key"),
        "shotlist": job.get("shotlist"),
        "shot_id": job.get("shot_id"),
        "kind": job.get("kind"),
        "seed": job.get("seed"),
        "engine": record.get("engine"),
        "model": job.get("model"),
        "format": record.get("format"),
        "inputs": parts.get("inputs", {}),
        "files": record.get("files", {}),
        "timings": record.get("timings", {}),
        "rendered_at": record.get("rendered_at"),
        "stat": record.get("stat", {}),
        "outputs": record.get("outputs", {}),
        "scores": record.get("scores"),
        "sidecar_stat": sidecar_stat,
    }


class Manifest:
    """The manifest of one output folder: load (+ replay the journal), update, compact.

    Built under the folder's lock (it removes temporary files a killed writer left).
    """

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / MANIFEST_NAME
        self.journal_path = Path(out_dir) / JOURNAL_NAME
        self.outputs: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self._journal = None
        for tmp in self.path.parent.glob(f".{MANIFEST_NAME}.*"):  # left by a run killed mid-write
            tmp.unlink(missing_ok=True)
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict) and isinstance(data.get("outputs"), dict):
                self.outputs = data["outputs"]
        except (OSError, ValueError):
            pass  # absent or unreadable: rebuilt from the sidecars as jobs are seen
        self._replay()

    def _replay(self) -> None:
        try:
            lines = self.journal_path.read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            return
        for line in lines:
            try:
                item = json.loads(line)
                self.outputs[item["output"]] = item["entry"]
                self.dirty = True
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a kill

    def files_of(self, output: str) -> set[str]:
        """File names the manifest records for ``output`` (cinekit's, even if their sidecar is damaged)."""
        entry = self.outputs.get(output)
        files = entry.get("files") if isinstance(entry, dict) else None
        return set(files) if isinstance(files, dict) else set()

    def entry(self, output: str) -> dict[str, Any] | None:
        entry = self.outputs.get(output)
        return entry if isinstance(entry, dict) else None

    def update(self, output: str, record: dict[str, Any], sidecar_stat: list[int] | None = None) -> None:
        """Record an output in memory (cached jobs: ``compact`` writes them once)."""
        entry = entry_from_record(record, sidecar_stat)
        if self.outputs.get(output) != entry:
            self.outputs[output] = entry
            self.dirty = True

    def append(self, output: str, record: dict[str, Any], sidecar_stat: list[int] | None = None) -> None:
        """Record a rendered output: in memory and one journal line (O(1), survives a kill)."""
        entry = entry_from_record(record, sidecar_stat)
        self.outputs[output] = entry
        self.dirty = True
        if self._journal is None:
            self._journal = open(self.journal_path, "a", encoding="utf-8")
        self._journal.write(json.dumps({"output": output, "entry": entry}, sort_keys=True) + "\n")
        self._journal.flush()

    def compact(self) -> None:
        """Fold everything into ``manifest.json`` (one atomic write) and drop the journal."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self.dirty:
            data = {writers.METADATA_KEY: __version__, "outputs": dict(sorted(self.outputs.items()))}
            writers.write_json(self.path, data)
            self.dirty = False
        try:
            os.unlink(self.journal_path)
        except FileNotFoundError:
            pass

    save = compact  # the name earlier callers use
