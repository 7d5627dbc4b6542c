"""The Runtime: what a run shares (project, identities, device, caches, model loader).

Built once by the CLI and passed down; there is no global state. Tests build their own
Runtime with an injected loader (tiny offline pipelines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinekit.identity.core import IdentityStore

if TYPE_CHECKING:
    from cinekit.spec.project import Project


@dataclass
class Runtime:
    project: "Project"
    identities: IdentityStore
    device: str = "auto"              # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"               # auto | float32 | float16 | bfloat16
    cache_dir: Path | None = None     # embeddings, reference latents; default <project>/.cinekit-cache
    allow_pickle: bool = False        # load .ckpt/.bin/.pt model files (unsafe: pickle)
    low_vram: bool = False            # CPU offload on CUDA
    loader: Any = None                # model loader (cinekit.engines.loader), injected in tests
    stats: dict[str, int] = field(default_factory=dict)  # counters tests assert on (loads, encodings)
    out_dir: Path | None = None       # the run's output folder (engines read earlier shots from it)
    debug: bool = False               # CINEKIT_DEBUG=1: let unexpected exceptions propagate
    files: Any = None                 # the run's input snapshot (cinekit.render.cache.FileDigests)

    @classmethod
    def for_project(cls, project: "Project", **kwargs) -> "Runtime":
        """A Runtime whose identities read their files through one input snapshot (``files``):
        the bytes hashed into the cache keys are the bytes the engines draw with."""
        from cinekit.render.cache import FileDigests

        files = kwargs.pop("files", None) or FileDigests()
        rt = cls(project=project, identities=IdentityStore(project.characters, read=files.read), files=files,
                 **kwargs)
        if rt.cache_dir is None:
            rt.cache_dir = project.root / ".cinekit-cache"
        return rt

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n
