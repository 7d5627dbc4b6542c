"""Cheap identities of weight files and model folders (output metadata, latent caches)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of (size, first MiB, last MiB): a cheap identity for multi-GB weight files."""
    path = Path(path)
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(chunk))
        if size > 2 * chunk:
            f.seek(size - chunk)
            h.update(f.read(chunk))
        else:
            h.update(f.read())
    return h.hexdigest()


def folder_fingerprint(folder: Path) -> str:
    """Fingerprint of every config and weight file under a model folder."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file() and p.suffix in {".json", ".txt", ".safetensors", ".bin", ".ckpt", ".pt", ".pth"}:
            h.update(str(p.relative_to(folder)).encode())
            h.update(file_fingerprint(p).encode())
    return h.hexdigest()
