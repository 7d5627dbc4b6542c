"""``renders/manifest.json``: how every output of the folder was made, in one file.

One entry per output stem (``ep01/s010``): key, seed, timings, engine, model, inputs (with
their digests), files (with their sha256). The sidecar next to each output is the commit
point and the source of truth; the manifest is an index over them, rewritten atomically after
each rendered job, so a killed run leaves the previous complete manifest and the next run
brings it up to date from the sidecars.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cinekit import __version__
from cinekit.render import writers

MANIFEST_NAME = "manifest.json"


def entry_from_record(record: dict[str, Any]) -> dict[str, Any]:
    """The manifest entry of one output, from its sidecar record."""
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
    }


class Manifest:
    """The manifest of one output folder: load, update entries, save atomically.

    Built under the folder's lock (it removes temporary files a killed writer left).
    """

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / MANIFEST_NAME
        self.outputs: dict[str, dict[str, Any]] = {}
        self.dirty = False
        for tmp in self.path.parent.glob(f".{MANIFEST_NAME}.*"):  # left by a run killed mid-write
            tmp.unlink(missing_ok=True)
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict) and isinstance(data.get("outputs"), dict):
                self.outputs = data["outputs"]
        except (OSError, ValueError):
            pass  # absent or unreadable: rebuilt from the sidecars as jobs are seen

    def update(self, output: str, record: dict[str, Any]) -> None:
        entry = entry_from_record(record)
        if self.outputs.get(output) != entry:
            self.outputs[output] = entry
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        data = {writers.METADATA_KEY: __version__, "outputs": dict(sorted(self.outputs.items()))}
        writers.write_json(self.path, data)
        self.dirty = False
