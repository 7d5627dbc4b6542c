"""How much host memory one job needs, estimated before rendering (``limits.max_memory``).

A rough, deliberately simple model of what a render holds at once, in bytes:

- the clip's frames, ``frames * width * height * 3`` (uint8 RGB): engines return a whole clip
  and the writer receives it whole;
- working buffers of one frame: float32 RGBA canvases, one per character plus two;
- for the diffusers engines, the decoded clip in float32 (the VAE output before conversion),
  four times the uint8 frames, plus latents (1/64 of the pixels, 4 channels, float32).

Model weights are not counted (they are shared by every job and sit on the accelerator).
"""

from __future__ import annotations


def job_memory(kind: str, engine: str, frames: int, width: int, height: int, characters: int) -> int:
    """Estimated peak host bytes of one job (see the module docstring for the model)."""
    pixels = int(width) * int(height)
    frames = int(frames) if kind == "clip" else 1
    total = frames * pixels * 3 + (characters + 2) * pixels * 16
    if engine == "diffusers":
        total += frames * pixels * 3 * 4 + frames * (pixels // 64) * 4 * 4
    return total


def human(n: int) -> str:
    """1234567890 -> '1.1 GiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover
