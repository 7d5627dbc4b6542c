"""``cinekit render --reproduce OUTPUT``: render a job again from its sidecar record alone.

The sidecar holds the resolved job (``Job.to_record``) and its pose track (lossless), so the
job is rebuilt without re-planning: a shot list edited since then does not change what is
reproduced. The input files are read from where the record says; any that changed since the
output was made are listed (the bytes cannot match then). The reproduction is written into a
scratch folder (or ``keep``) and compared file by file with the recorded sha256.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cinekit.errors import UserError
from cinekit.job import Job, JobCharacter
from cinekit.render import cache


@dataclass
class Reproduction:
    output: Path
    sidecar: Path
    files: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (recorded sha, new sha)
    changed_inputs: list[str] = field(default_factory=list)
    folder: Path | None = None

    @property
    def identical(self) -> bool:
        return bool(self.files) and all(a == b for a, b in self.files.values())


def find_sidecar(output: Path) -> Path:
    """The sidecar of an output file (main file, extra, poster, frame folder, or the sidecar itself)."""
    output = Path(output)
    candidates = [output] if output.suffix == ".json" else []
    candidates += [output.with_suffix(".json"), output.parent / (output.name.split(".")[0] + ".json")]
    for c in candidates:
        record = cache.read_sidecar(c)
        if record is not None:
            return c
    raise UserError(f"{output}: no cinekit sidecar record next to it",
                    hint="--reproduce takes a file written by `cinekit render` (its <id>.json must be there)")


def job_from_record(record: dict[str, Any], root: Path | None = None) -> Job:
    """Rebuild the Job a sidecar records (the pose track included, checked against its digest);
    the record's project-relative paths are made absolute again under ``root``."""
    from cinekit.render.interop import absolute
    from cinekit.render.run import decode_pose

    rec = dict(record["job"])
    if "pose_track" not in record:
        raise UserError("this sidecar has no pose track (written by an older cinekit)",
                        hint="render it again with `cinekit render --force` to record one")
    pose = decode_pose(record["pose_track"])
    digest = hashlib.sha256(np.ascontiguousarray(pose, dtype=np.float64).tobytes()).hexdigest()
    if digest != rec["pose"]["sha256"]:
        raise UserError("the sidecar's pose track does not match its recorded digest (edited by hand?)")
    rec["pose"] = pose
    if "depth" in rec:       # the puppet's layer depths: recorded beside the pose track
        if "depth_track" not in record:
            raise UserError("this sidecar records a depth digest but no depth track")
        rec["depth"] = decode_pose(record["depth_track"])
    rec["characters"] = tuple(JobCharacter(**{**c, "spec_path": absolute(c["spec_path"], root),
                                              "views": tuple(tuple(v) for v in c.get("views", ()))})
                              for c in rec["characters"])
    if rec.pop("acting", None) is not None:
        from cinekit.acting.timeline import decode_acting

        if "acting_track" not in record:
            raise UserError("this sidecar has no face track", hint="render it again with `cinekit render --force`")
        rec["acting"] = decode_acting(record["acting_track"], decode_pose, rec["fps"])
    if isinstance(rec.get("background"), list):
        rec["background"] = tuple(rec["background"])
    elif isinstance(rec.get("background"), str):
        rec["background"] = absolute(rec["background"], root)
    return Job(**rec)


def reproduce(runtime, output: Path, keep: Path | None = None) -> Reproduction:
    """Render ``output``'s recorded job again (locally) and compare the bytes."""
    from cinekit.engines.base import create_engine
    from cinekit.render.executors import render_one
    from cinekit.render.outputs import write_result

    sidecar = find_sidecar(output)
    record = cache.read_sidecar(sidecar)
    root = runtime.project.root
    job = job_from_record(record, root)
    rep = Reproduction(Path(output), sidecar)
    parts = record.get("key_parts") or {}
    now = cache.job_inputs(runtime.project, job, cache.FileDigests()) if all(
        c.name in runtime.project.characters for c in job.characters) else {}
    for name, digest in (parts.get("inputs") or {}).items():
        if now.get(name) != digest:
            rep.changed_inputs.append(name)
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="cinekit-reproduce-"))
    engine = create_engine(job.engine, runtime)
    result = render_one(engine, job)
    key = cache.KeyInfo(record["key"], parts) if record.get("key") else None
    from cinekit.render.interop import model_hash

    new = write_result(folder, job, result, record.get("format", "mp4"), engine_version=str(engine.version),
                       key=key, force=True, root=root,
                       model_hash=model_hash(runtime.project, job, parts.get("inputs") or {}))
    for name, sha in record["files"].items():
        rep.files[name] = (sha, new["files"].get(name, "missing"))
    if keep:
        rep.folder = folder
    else:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return rep
