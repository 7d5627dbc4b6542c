"""The engine protocol and the lazy registry.

An engine is diffusers-shaped: components injected at construction, ``check_inputs`` first,
then one ``render`` method. Engines are looked up by name and imported only when used, so
``cinekit --help`` and ``check`` never import torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol

import numpy as np

from cinekit.errors import UserError

if TYPE_CHECKING:
    from cinekit.job import Job
    from cinekit.runtime import Runtime


@dataclass
class RenderResult:
    """What an engine returns: the main frames plus named side outputs (e.g. control maps).

    ``frames`` is ``(frames, height, width, 3)`` uint8. ``extras`` maps a suffix (``"control"``)
    to another such array written next to the main output. ``masks`` optionally gives each
    character's region per frame ``(frames, characters, height, width)`` bool, for scoring.
    """

    frames: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    masks: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


ProgressFn = Callable[[int, int], None]  # (done, total) in the engine's own unit (frames, steps)


@dataclass
class Frame:
    """One output frame as an engine streams it.

    ``image`` (H, W, 3) uint8; ``extras`` one (H, W, 3) uint8 per side output named in the
    stream's ``extras``; ``masks`` (characters, H, W) bool on the frames the writer keeps masks
    for (``FrameStream.mask_frames``), None on the others.
    """

    image: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    masks: np.ndarray | None = None


@dataclass
class FrameStream:
    """What a streaming engine returns: frames produced one at a time, as the writer pulls them.

    The writer encodes each frame as it comes and keeps only the masks of ``mask_frames``, so
    memory does not grow with the clip's length. ``extras``/``masks`` are known before the
    first frame (the writer opens one file per output up front).
    """

    frames: Iterator[Frame]
    extras: tuple[str, ...] = ()
    masks: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def mask_frames(job: "Job") -> frozenset[int]:
    """The frames whose character masks are written next to the output (``score.regions``)."""
    from cinekit.score.regions import subsample

    return frozenset(int(i) for i in subsample(job.frames))


def stream_of(result: RenderResult, keep_masks: Iterable[int] | None = None) -> FrameStream:
    """A whole ``RenderResult`` as a stream (engines that render a clip at once, e.g. diffusion)."""
    keep = None if keep_masks is None else frozenset(keep_masks)

    def frames() -> Iterator[Frame]:
        for f in range(len(result.frames)):
            masks = None
            if result.masks is not None and (keep is None or f in keep):
                masks = result.masks[f]
            yield Frame(result.frames[f], {k: v[f] for k, v in result.extras.items()}, masks)

    return FrameStream(frames(), tuple(result.extras), result.masks is not None, dict(result.info))


def collect(stream: FrameStream, frames: int) -> RenderResult:
    """A stream gathered into a ``RenderResult`` (``frames`` expected; masks needed on every frame)."""
    images, extras, masks = None, {}, None
    n = 0
    for f, frame in enumerate(stream.frames):
        if images is None:
            images = np.empty((frames, *frame.image.shape), np.uint8)
            extras = {k: np.empty((frames, *v.shape), np.uint8) for k, v in frame.extras.items()}
            if stream.masks:
                masks = np.zeros((frames, *frame.masks.shape), bool)
        images[f] = frame.image
        for k, v in frame.extras.items():
            extras[k][f] = v
        if masks is not None and frame.masks is not None:
            masks[f] = frame.masks
        n += 1
    if images is None or n != frames:
        from cinekit.errors import EngineError

        raise EngineError(f"the engine produced {n} frame(s), expected {frames}")
    return RenderResult(images, extras, masks, dict(stream.info))


def open_stream(engine: "Engine", job: "Job", progress: ProgressFn | None = None,
                keep_masks: Iterable[int] | None = None) -> FrameStream:
    """Frames of ``job`` from ``engine``: streamed when it can (``stream``), else rendered whole."""
    keep = mask_frames(job) if keep_masks is None else frozenset(keep_masks)
    if hasattr(engine, "stream"):
        return engine.stream(job, progress=progress, mask_frames=keep)
    return stream_of(engine.render(job, progress=progress), keep)


class Engine(Protocol):
    name: str
    kinds: frozenset[str]  # {"still"}, {"clip"} or both
    version: str           # part of every cache key: bump when output bytes change
    # Optional: ``uses_models = False`` on a weight-free engine (previz, puppet): its jobs get no
    # model set, so their cache keys and labels never depend on the diffusion weights.

    def check_inputs(self, job: "Job") -> None:
        """Raise UserError/EngineError before any heavy work if the job cannot be rendered."""

    def render(self, job: "Job", progress: ProgressFn | None = None) -> RenderResult: ...

    # Optional: ``stream(job, progress=None, mask_frames=frozenset()) -> FrameStream`` yields the
    # frames one at a time (constant memory per frame count); the batch renderer prefers it.


# name -> "module:factory"; a factory takes the Runtime and returns an Engine.
_REGISTRY: dict[str, str] = {
    "previz": "cinekit.engines.previz:PrevizEngine",
    "puppet": "cinekit.engines.puppet:PuppetEngine",
    "diffusers": "cinekit.engines.diffusers_router:DiffusersEngine",
}


def engine_uses_models(name: str) -> bool:
    """Whether an engine reads a model set, from its class's ``uses_models`` (default True: an
    unknown or plugin engine keeps its model in the key rather than risk a stale cached output)."""
    target = _REGISTRY.get(name)
    if target is None:
        return True
    module_name, attr = target.split(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return True
    return bool(getattr(factory, "uses_models", True))


def engine_names() -> list[str]:
    return sorted(_REGISTRY)


def register(name: str, target: str) -> None:
    """Add an engine (``"package.module:Factory"``), e.g. from a plugin or a test."""
    _REGISTRY[name] = target


def create_engine(name: str, runtime: "Runtime") -> Engine:
    """Instantiate an engine by name; the import happens here, not at start-up."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown engine {name!r}", hint=f"choose one of: {', '.join(engine_names())}") from None
    module_name, attr = target.split(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(runtime)
