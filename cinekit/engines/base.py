"""The engine protocol and the lazy registry.

An engine is diffusers-shaped: components injected at construction, ``check_inputs`` first,
then one ``render`` method. Engines are looked up by name and imported only when used, so
``cinekit --help`` and ``check`` never import torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

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


class Engine(Protocol):
    name: str
    kinds: frozenset[str]  # {"still"}, {"clip"} or both
    version: str           # part of every cache key: bump when output bytes change

    def check_inputs(self, job: "Job") -> None:
        """Raise UserError/EngineError before any heavy work if the job cannot be rendered."""

    def render(self, job: "Job", progress: ProgressFn | None = None) -> RenderResult: ...


# name -> "module:factory"; a factory takes the Runtime and returns an Engine.
_REGISTRY: dict[str, str] = {
    "previz": "cinekit.engines.previz:PrevizEngine",
    "puppet": "cinekit.engines.puppet:PuppetEngine",
    "diffusers": "cinekit.engines.diffusers_router:DiffusersEngine",
}


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
