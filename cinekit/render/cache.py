"""Content-addressed job keys and the "is this output up to date?" check.

A job's key is the sha256 of everything that decides its bytes:

- the resolved job record (``Job.to_record``: sizes, seed, prompt, pose track digest, ...),
  with absolute paths made project-relative so a moved checkout keeps its cache;
- every input file it reads, each by digest: the character files (spec YAML, reference art,
  masks, rig file, LoRA, embeddings), the background image, the motion files named by the
  shot's pose specs, and the files of the job's model set;
- the engine name and ``engine.version``, the cinekit version, and the output format.

File digests (``FileDigests``): files up to ``LARGE_FILE`` bytes are hashed by content (a
project's YAML, art and motion files are small, so this is cheap and exact). Larger files
(model checkpoints: 2-7 GB) are fingerprinted by ``(path, size, mtime_ns)`` instead: hashing
them would cost seconds to minutes per run, and a model file replaced in place with the same
size *and* the same modification time does not happen in practice (``--force`` covers it).
Every digest is memoised per ``(path, size, mtime_ns)``, so a file shared by 100 shots is read
once per run.

Freshness (``check``): an output is up to date when its sidecar (the commit point, written
last) records the same key and every file it lists is still there unchanged. "Unchanged" is
first tested on ``(size, mtime_ns)`` recorded at write time (no read); only when that differs
(a copy, a touch) are the bytes hashed and compared with the recorded sha256. So a re-run of
an unchanged project reads no output file, and a copied render folder is still recognised.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cinekit import __version__
from cinekit.job import Job

LARGE_FILE = 64 * 1024 * 1024  # bytes; above this a file is fingerprinted by (path, size, mtime)
KEY_VERSION = "1"              # bump when the key's recipe changes


class FileDigests:
    """The run's snapshot of its input files: each file's bytes are read once, hashed, and the
    same bytes are handed to whoever reads the file later in the run (``read``).

    So the digest in a job's key is the digest of the bytes the engine drew with, even if the
    file is edited while the batch runs (the edit is seen by the next run). The first
    observation of a path wins for the whole run (memoised by path, not by mtime).

    Files above ``large_file`` (model checkpoints) are fingerprinted by (path, size, mtime) and
    not kept in memory; readers that open files by path themselves (motion files, videos,
    model folders) are checked with ``unchanged`` after reading.
    """

    def __init__(self, large_file: int = LARGE_FILE):
        self.large_file = large_file
        self._memo: dict[str, str] = {}
        self._bytes: dict[str, bytes] = {}
        self._stat: dict[str, tuple[int, int]] = {}
        self.reads = 0  # files actually hashed by content (tests assert on it)

    def read(self, path: Path) -> bytes:
        """The file's bytes as first read in this run (the bytes its digest was taken from)."""
        key = str(Path(path).resolve())
        data = self._bytes.get(key)
        if data is None:
            data = Path(key).read_bytes()
            if len(data) <= self.large_file:
                self._bytes[key] = data
                if key not in self._memo:
                    self._memo[key] = "sha256:" + hashlib.sha256(data).hexdigest()
                    self.reads += 1
        return data

    def digest(self, path: Path) -> str:
        """``sha256:<hex>`` of the bytes, ``stat:<hex>`` for a large file, ``missing`` if absent.

        A folder (a diffusers model folder, a PNG sequence) digests its files' names and digests.
        """
        fast = self._memo.get(str(path))  # the same path string again: no syscalls
        if fast is not None:
            return fast
        path = Path(path)
        try:
            st = path.stat()
        except OSError:
            return "missing"
        if path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                h.update(f.relative_to(path).as_posix().encode() + b"\0" + self.digest(f).encode() + b"\0")
            self._memo[str(path)] = "dir:" + h.hexdigest()
            return self._memo[str(path)]
        key = str(path.resolve())
        if key not in self._memo:
            self._stat[key] = (st.st_size, st.st_mtime_ns)
            if st.st_size > self.large_file:
                text = f"{path}\0{st.st_size}\0{st.st_mtime_ns}".encode()
                self._memo[key] = "stat:" + hashlib.sha256(text).hexdigest()
            else:
                self.read(path)
        if path.is_absolute():
            self._memo[str(path)] = self._memo[key]
        return self._memo[key]

    def unchanged(self, path: Path) -> bool:
        """Is ``path`` still as it was when first digested (size and mtime)? For readers that
        open a file by path after its digest was taken."""
        key = str(Path(path).resolve())
        if key not in self._stat:
            return True
        try:
            st = Path(key).stat()
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == self._stat[key]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- inputs
def _rel(project, path: Path | str) -> str:
    """Project-relative POSIX path (``../`` when outside the project: no record names the
    user's machine layout)."""
    p = Path(path)
    try:
        return p.resolve().relative_to(project.root).as_posix()
    except ValueError:
        from cinekit.render.interop import relpath

        return relpath(p, project.root)


def character_files(spec, spec_path: Path) -> list[Path]:
    """Every file a character reads (``Identity.files`` without decoding any image)."""
    from cinekit.identity.core import resolve

    out = [Path(spec_path)]
    for ref in spec.references:
        out.append(resolve(spec_path, ref.image))
        if ref.mask:
            out.append(resolve(spec_path, ref.mask))
        if getattr(ref, "parts", None):       # the puppet's part label map
            out.append(resolve(spec_path, ref.parts))
        if getattr(ref, "rig", None) is not None and ref.rig.from_:   # a view's own rig file
            out.append(resolve(spec_path, ref.rig.from_))
    if spec.rig and spec.rig.from_:
        out.append(resolve(spec_path, spec.rig.from_))
    out += [resolve(spec_path, x.file) for x in spec.lora]
    out += [resolve(spec_path, x.file) for x in spec.embeddings]
    from cinekit.acting.face_art import expression_files

    out += expression_files(spec, spec_path)
    return out


def shot_index(project) -> dict[tuple[Path, str], Any]:
    """``{(shot list path, shot id): shot}`` (and ``{job.shotlist: resolved path}``) of the project:
    built once per batch, so finding a job's shot is O(1) (a scan of the list per job made a
    10,000-shot batch quadratic)."""
    index: dict = {}
    for list_path, shot_list in project.shotlists.items():
        resolved = Path(list_path).resolve()
        index[project.rel(resolved)] = resolved  # a job's ``shotlist`` -> the resolved path
        for shot in shot_list.shots:
            if shot is not None:
                index[(resolved, shot.id)] = shot
    return index


def motion_files(project, job: Job, shots: dict | None = None) -> list[Path]:
    """Motion files (BVH, OpenPose JSON, videos) named by the pose specs of the job's shot."""
    from cinekit.spec.models import PoseSpec

    if shots is None:
        shots = shot_index(project)
    list_path = shots.get(job.shotlist)  # resolved once per list (``shot_index``)
    if list_path is None:
        list_path = (project.root / job.shotlist).resolve()
    shot = shots.get((list_path, job.shot_id))
    if shot is None:
        return []
    out = []
    for ch in shot.characters:
        if isinstance(ch.pose, PoseSpec) and ch.pose.source in ("bvh", "openpose", "video", "detect"):
            out.append((list_path.parent / getattr(ch.pose, ch.pose.source)).resolve())
    from cinekit.acting.plan import acting_files  # the audio and footage that move the faces

    return out + acting_files(shot, list_path)


def model_files(project, job: Job) -> dict[str, str]:
    """``{label: path or hub id}`` of the job's model set (diffusers engines); {} otherwise."""
    if not job.model or job.model not in project.config.models:
        return {}
    ms = project.config.models[job.model]
    named: dict[str, str | None] = {"base": ms.base, "config": ms.config, "vae": ms.vae,
                                    "motion_adapter": ms.motion_adapter, "sparsectrl": ms.sparsectrl}
    for name, value in ms.controlnet.model_dump().items():
        named[f"controlnet.{name}"] = value
    if ms.ip_adapter is not None:
        named["ip_adapter"] = str(Path(ms.ip_adapter.path) / ms.ip_adapter.subfolder / ms.ip_adapter.weight)
        named["ip_adapter.image_encoder"] = ms.ip_adapter.image_encoder
    return {k: v for k, v in named.items() if v}


def job_inputs(project, job: Job, digests: FileDigests, shots: dict | None = None,
               memo: dict | None = None) -> dict[str, str]:
    """``{project-relative path: digest}`` of every input file the job reads (sorted keys).

    ``memo`` (one dict per batch) keeps each character's entries, so 10,000 jobs of one
    character resolve its paths once.
    """
    memo = {} if memo is None else memo
    paths: list[Path] = []
    out: dict[str, str] = {}
    for ch in job.characters:
        if ("character", ch.name) not in memo:
            spec, spec_path = project.characters[ch.name]
            memo[("character", ch.name)] = {_rel(project, p): digests.digest(p) for p in character_files(spec, spec_path)}
        out.update(memo[("character", ch.name)])
    if isinstance(job.background, str):
        paths.append(Path(job.background))
    paths += motion_files(project, job, shots)
    out.update({_rel(project, p): digests.digest(p) for p in paths})
    for label, value in model_files(project, job).items():
        path = (project.root / value).resolve()
        if path.exists():
            out[_rel(project, path)] = digests.digest(path)
        else:  # a hub id from the local cache: its name stands for it
            out[f"model:{label}"] = f"id:{value}"
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- keys
def portable_record(project, job: Job, memo: dict | None = None) -> dict[str, Any]:
    """The job record with absolute paths inside the project made relative."""
    memo = {} if memo is None else memo
    rec = job.to_record()
    for ch in rec["characters"]:
        if ("rel", ch["spec_path"]) not in memo:
            memo[("rel", ch["spec_path"])] = _rel(project, ch["spec_path"])
        ch["spec_path"] = memo[("rel", ch["spec_path"])]
    if isinstance(rec["background"], str):
        rec["background"] = _rel(project, rec["background"])
    return rec


def _digest_json(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class KeyInfo:
    """A job's key and the parts it was made of (kept in the sidecar to explain a re-render)."""

    key: str
    parts: dict[str, Any] = field(default_factory=dict)


def job_key(project, job: Job, engine_version: str, fmt: str, digests: FileDigests,
            shots: dict | None = None, memo: dict | None = None) -> KeyInfo:
    fmt = fmt if job.kind == "clip" else "png"
    memo = {} if memo is None else memo
    parts = {
        "key_version": KEY_VERSION,
        "job": _digest_json(portable_record(project, job, memo)),
        "inputs": job_inputs(project, job, digests, shots, memo),
        "engine": {"name": job.engine, "version": engine_version},
        "cinekit": __version__,
        "format": fmt,
    }
    return KeyInfo(_digest_json(parts), parts)


def engine_version(name: str) -> str:
    """An engine's ``version`` read from its class (no instance, no model load)."""
    import importlib

    from cinekit.engines.base import _REGISTRY

    target = _REGISTRY.get(name)
    if target is None:
        return "?"
    module_name, attr = target.split(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return "?"
    return str(getattr(factory, "version", "?"))


# --------------------------------------------------------------------------- freshness
def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar record, or None when absent or unreadable (an uncommitted job)."""
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "key" in record and "files" in record else None


def stat_signature(path: Path) -> list[int] | None:
    """``[size, mtime_ns]`` of a file; for a folder, of its newest file and the total size."""
    import stat as stat_

    try:
        st = os.stat(path)  # one syscall for the common case (a file)
        if stat_.S_ISDIR(st.st_mode):
            sts = [f.stat() for f in Path(path).iterdir() if f.is_file()]
            return [sum(s.st_size for s in sts), max((s.st_mtime_ns for s in sts), default=0), len(sts)]
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def output_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's files (names and bytes), as the sidecar records it."""
    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(path.iterdir()):
            h.update(f.name.encode())
            h.update(f.read_bytes())
        return h.hexdigest()
    return file_sha256(path)


def _explain(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Why a recorded key differs from the current one, in the words of ``--dry-run``."""
    if not old:
        return "key changed"
    if old.get("engine") != new.get("engine"):
        return f"engine changed ({(old.get('engine') or {}).get('version')} -> {new['engine']['version']})"
    if old.get("format") != new.get("format"):
        return "format changed"
    old_in, new_in = old.get("inputs", {}), new.get("inputs", {})
    for name in new_in:
        if name not in old_in:
            return f"input {name} added"
        if old_in[name] != new_in[name]:
            return f"input {name} changed"
    for name in old_in:
        if name not in new_in:
            return f"input {name} removed"
    if old.get("job") != new.get("job"):
        return "spec changed"
    if old.get("cinekit") != new.get("cinekit"):
        return f"cinekit changed ({old.get('cinekit')} -> {new.get('cinekit')})"
    return "key changed"


@dataclass
class Freshness:
    fresh: bool
    reason: str          # "cached" | "new" | "spec changed" | "input X changed" | "output missing" | ...
    record: dict[str, Any] | None = None  # the sidecar record, when it was read
    sidecar_stat: list[int] | None = None  # the sidecar's stat, taken before it was read
    entry: dict[str, Any] | None = None    # the manifest entry that decided "cached" (sidecar not read)


def _file_stats_match(entry: dict[str, Any], folder: str) -> bool:
    stats, files = entry.get("stat"), entry.get("files")
    if not isinstance(stats, dict) or not isinstance(files, dict) or not files:
        return False
    for name in files:
        recorded = stats.get(name)
        if recorded is None or stat_signature(os.path.join(folder, name)) != recorded:
            return False
    return True


def check_entry(sidecar: Path | str, info: KeyInfo, entry: dict[str, Any] | None) -> Freshness | None:
    """"cached" from the manifest entry and ``os.stat`` alone, or None when that cannot be
    decided without reading the sidecar (no entry, another key, any stat that differs).

    Safe because the sidecar is the commit point: an entry's ``sidecar_stat`` was taken when it
    was written (or before it was read), so the same size and mtime_ns mean the same record,
    and the outputs' stats are those the record holds. Anything else falls back to ``check``.
    """
    if not entry or entry.get("key") != info.key or not entry.get("sidecar_stat"):
        return None
    sidecar = os.fspath(sidecar)
    if stat_signature(sidecar) != entry["sidecar_stat"] or not _file_stats_match(entry, os.path.dirname(sidecar)):
        return None
    return Freshness(True, "cached", None, entry["sidecar_stat"], entry)


def check(sidecar: Path, info: KeyInfo, entry: dict[str, Any] | None = None) -> Freshness:
    """Is the output committed by ``sidecar`` up to date for ``info``? Reads no output bytes
    unless a file's size or mtime changed since it was written; reads no sidecar when the
    manifest ``entry`` and the files' stats vouch for it (``check_entry``)."""
    quick = check_entry(sidecar, info, entry)
    if quick is not None:
        return quick
    before = stat_signature(sidecar)  # before the read: a later edit then shows as a stat change
    record = read_sidecar(sidecar)
    if record is None:
        return Freshness(False, "damaged record" if Path(sidecar).exists() else "new")
    if record.get("key") != info.key:
        return Freshness(False, _explain(record.get("key_parts") or {}, info.parts))
    folder = os.path.dirname(sidecar)
    stats = record.get("stat", {})
    current, moved = {}, False
    for name, sha in record["files"].items():
        path = os.path.join(folder, name)
        now = current[name] = stat_signature(path)
        if now is None:
            return Freshness(False, f"output missing ({name})")
        if stats.get(name) is not None and now == stats[name]:
            continue
        if output_sha256(path) != sha:
            return Freshness(False, f"output changed ({name})")
        moved = True
    if moved:  # same bytes, new stats (a copied folder): the manifest entry keeps the stats seen now
        record = {**record, "stat": current}
    return Freshness(True, "cached", record, before)


def pending_path(sidecar: Path) -> Path:
    """The journal written before a job's files and removed after its sidecar."""
    sidecar = Path(sidecar)
    return sidecar.with_name(f".{sidecar.stem}.pending.json")


def clear_pending(sidecar: Path | str) -> None:
    """Remove a journal left by a run killed between the sidecar and the journal's removal."""
    folder, name = os.path.split(os.fspath(sidecar))  # strings: this runs once per cached job
    try:
        os.unlink(os.path.join(folder, f".{name[:-5] if name.endswith('.json') else name}.pending.json"))
    except FileNotFoundError:
        pass
