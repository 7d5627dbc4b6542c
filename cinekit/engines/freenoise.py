"""FreeNoise context windows for long AnimateDiff shots: planning, engaging, observing.

AnimateDiff's motion module was trained on 16-frame windows. FreeNoise (Qiu et al. 2023,
"FreeNoise: Tuning-Free Longer Video Diffusion via Noise Rescheduling") runs the temporal
attention of every motion-module transformer block over overlapping windows of
``context_length`` frames, ``context_stride`` apart, and averages the overlapping outputs
with a (pyramid) weight, so a long shot is denoised as one clip rather than as stitched
pieces. diffusers implements it in ``FreeNoiseTransformerBlock``; this module adds what an
engine needs around it:

- ``plan_windows``: the windows diffusers will run for ``frames`` (including the closing
  window it appends when the stride does not land on the end) and ``uncovered`` to assert
  that every frame lies in some window;
- ``engage``: switch a cached pipeline's FreeNoise on (long shot) or off (short shot), and make
  its blocks accept clips shorter than one window (a reference-attention pass runs the UNet on
  one-frame "videos");
- ``WindowRecorder``: hooks that record the windows each motion block actually ran (tests,
  ``info``).

Pure functions first (no torch), then the torch-side helpers.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONTEXT_LENGTH = 16   # AnimateDiff v1/v2/v3 motion modules are trained on 16 frames
DEFAULT_CONTEXT_STRIDE = 4


# --------------------------------------------------------------------------- planning (pure)
def plan_windows(frames: int, length: int = DEFAULT_CONTEXT_LENGTH,
                 stride: int = DEFAULT_CONTEXT_STRIDE) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` frame windows FreeNoise runs over ``frames`` frames.

    Same rule as diffusers' ``FreeNoiseTransformerBlock``: starts at ``0, stride, 2*stride, ...``
    while a whole window fits, then one more window ending on the last frame if the last start
    did not reach it. ``frames <= length`` is a single window.
    """
    if frames < 1 or length < 1 or stride < 1:
        raise ValueError(f"frames, length and stride must be >= 1 (got {frames}, {length}, {stride})")
    if frames <= length:
        return [(0, frames)]
    windows = [(s, s + length) for s in range(0, frames - length + 1, stride)]
    if windows[-1][1] != frames:
        windows.append((frames - length, frames))
    return windows


def uncovered(frames: int, windows: list[tuple[int, int]]) -> list[int]:
    """Frames in ``range(frames)`` that no window contains (empty = full coverage)."""
    seen = [False] * frames
    for start, end in windows:
        for f in range(max(start, 0), min(end, frames)):
            seen[f] = True
    return [f for f, ok in enumerate(seen) if not ok]


@dataclass(frozen=True)
class WindowPlan:
    """What a clip job resolves to: frames, the window, and whether FreeNoise is engaged."""

    frames: int
    context_length: int
    context_stride: int
    free_noise: bool
    windows: tuple[tuple[int, int], ...]

    def record(self) -> dict[str, Any]:
        return {"frames": self.frames, "context_length": self.context_length, "context_stride": self.context_stride,
                "free_noise": self.free_noise, "windows": [list(w) for w in self.windows]}


def resolve_plan(frames: int, options: dict[str, Any], max_seq_length: int) -> WindowPlan:
    """The window plan of a job: FreeNoise past ``context_length`` frames (option ``free_noise``
    ``"auto"``/true/false, ``context_length``, ``context_stride``). Raises ValueError with the reason."""
    length = int(options.get("context_length") or min(DEFAULT_CONTEXT_LENGTH, max_seq_length))
    stride = int(options.get("context_stride") or DEFAULT_CONTEXT_STRIDE)
    mode = options.get("free_noise", "auto")
    if length < 2 or length > max_seq_length:
        raise ValueError(f"context_length {length} must lie in 2..{max_seq_length} (the motion module's positions)")
    if stride < 1 or stride > length:
        raise ValueError(f"context_stride {stride} must lie in 1..context_length ({length})")
    if mode not in ("auto", True, False):
        raise ValueError(f"free_noise must be auto, true or false (got {mode!r})")
    free_noise = frames > length if mode == "auto" else bool(mode) and frames > length
    if not free_noise and frames > max_seq_length:
        raise ValueError(f"{frames} frames exceed the motion module's {max_seq_length} positions without FreeNoise")
    windows = plan_windows(frames, length, stride) if free_noise else [(0, frames)]
    return WindowPlan(frames, length, stride, free_noise, tuple(windows))


# --------------------------------------------------------------------------- torch side
def _motion_blocks(unet):
    """Every transformer block of every motion module of an ``UNetMotionModel``."""
    for name, module in unet.named_modules():
        if "motion_modules" in name and type(module).__name__ in ("FreeNoiseTransformerBlock", "BasicTransformerBlock") \
                and name.rsplit(".", 2)[-2] == "transformer_blocks":
            yield name, module


def free_noise_blocks(unet) -> list[tuple[str, Any]]:
    return [(n, m) for n, m in _motion_blocks(unet) if type(m).__name__ == "FreeNoiseTransformerBlock"]


def _short_clip_forward(block):
    """Wrap a FreeNoise block so clips shorter than its window run as one window of their length."""
    if getattr(block, "_cinekit_short_clip", False):
        return
    inner = block.forward

    def forward(*args, **kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        frames = hidden.size(1)
        if frames >= block.context_length:
            return inner(*args, **kwargs)
        saved = block.context_length
        block.context_length = frames
        try:
            return inner(*args, **kwargs)
        finally:
            block.context_length = saved

    block.forward = forward
    block._cinekit_short_clip = True


def engage(pipe, plan: WindowPlan, weighting: str = "pyramid", noise_type: str = "shuffle_context") -> None:
    """Turn the (cached) pipeline's FreeNoise on with ``plan``'s window, or off for a short shot."""
    if plan.free_noise:
        pipe.enable_free_noise(context_length=plan.context_length, context_stride=plan.context_stride,
                               weighting_scheme=weighting, noise_type=noise_type)
        for _name, block in free_noise_blocks(pipe.unet):
            _short_clip_forward(block)
    elif getattr(pipe, "free_noise_enabled", False):
        pipe.disable_free_noise()


@dataclass
class WindowRecorder:
    """Records, per FreeNoise block and call, the frame count and the windows it ran.

    A forward pre-hook on each block notes the clip length; a pre-hook on the block's ``norm1``
    (applied once per window, to that window's slice) counts the windows and their lengths.
    """

    calls: list[dict[str, Any]] = field(default_factory=list)
    _handles: list[Any] = field(default_factory=list)

    def attach(self, unet) -> "WindowRecorder":
        for name, block in free_noise_blocks(unet):
            self._handles.append(block.register_forward_pre_hook(self._start(name, block), with_kwargs=True))
            self._handles.append(block.norm1.register_forward_pre_hook(self._window(name)))
        return self

    def _start(self, name, block):
        def hook(_module, args, kwargs):
            hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            frames = int(hidden.size(1))
            self.calls.append({"block": name, "frames": frames, "context_length": block.context_length,
                               "context_stride": block.context_stride, "window_lengths": []})
        return hook

    def _window(self, name):
        def hook(_module, args):
            if self.calls and self.calls[-1]["block"] == name:
                self.calls[-1]["window_lengths"].append(int(args[0].size(1)))
        return hook

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @contextmanager
    def attached(self, unet):
        self.attach(unet)
        try:
            yield self
        finally:
            self.detach()
