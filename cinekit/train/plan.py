"""What a `cinekit train` run will do, before any weight is loaded (``--dry-run`` prints it).

``TrainOptions`` are the run's settings; ``prepare`` reads the character (references, masks,
rig), renders its puppet views and builds the augmented pool; ``TrainPlan`` adds the model's
cost (``cost``) and formats the plan. No torch import here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cinekit.errors import UserError
from cinekit.train.augment import AugmentSettings
from cinekit.train.captions import class_prompt, trigger_word
from cinekit.train.dataset import Pool, build_pool, puppet_sources, reference_sources

# kohya's default LoRA targets on an SD UNet: the Linear / 1x1 layers of every transformer block.
TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
# kohya's LoCon extension (``conv_dim``): the ResNet convolutions and the UNet's first/last conv.
CONV_TARGETS = ("conv1", "conv2", "conv_in", "conv_out")


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 1000
    rank: int = 16
    alpha: float | None = None          # None: = rank (scale 1)
    lr: float = 1e-4
    batch: int = 1
    size: int = 512
    seed: int = 0
    variants: int = 8                   # augmented images per source image
    puppet_poses: int = 6               # puppet renders in new poses (extra views)
    checkpoint_every: int = 100
    sample_every: int = 0               # K: a sample grid every K steps (0: never)
    sample_steps: int = 20
    prior: int = 0                      # class images for prior preservation (0: off)
    prior_weight: float = 1.0
    embedding: bool = False             # textual inversion instead of a LoRA
    vectors: int = 2                    # embedding vectors per token
    grad_checkpointing: bool | None = None   # None: on for CUDA
    targets: tuple[str, ...] = TARGETS

    @property
    def lora_alpha(self) -> float:
        return float(self.alpha if self.alpha is not None else self.rank)

    def fingerprint(self, *extra: str) -> str:
        """What a checkpoint must match to be resumed (not the step count's progress)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("checkpoint_every", "sample_every", "sample_steps")}
        return hashlib.sha256(json.dumps([d, *extra], sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(eq=False)
class Prepared:
    name: str
    trigger: str
    description: str
    class_prompt: str
    pool: Pool
    sources: list[str]
    symmetric: bool
    spec_path: Path
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)


def prepare(runtime, name: str, options: TrainOptions) -> Prepared:
    """The character's training pool (references + puppet views, augmented, seeded)."""
    project = runtime.project
    if name not in project.characters:
        raise UserError(f"unknown character {name!r}",
                        hint=f"characters: {', '.join(sorted(project.characters)) or 'none'}")
    spec, spec_path = project.characters[name]
    identity = runtime.identities.get(name)
    sources = reference_sources(identity) + puppet_sources(runtime, name, options.puppet_poses)
    trigger = trigger_word(name, spec.train.trigger)
    pool = build_pool(sources, size=options.size, variants=options.variants, seed=options.seed, trigger=trigger,
                      description=spec.description, settings=AugmentSettings(flip=spec.train.symmetric))
    digest = hashlib.sha256(pool.images.tobytes())
    digest.update("\n".join(pool.captions).encode())
    return Prepared(name, trigger, spec.description, class_prompt(spec.description, spec.train.class_word), pool,
                    [s.label for s in sources], spec.train.symmetric, Path(spec_path),
                    options.fingerprint(name, digest.hexdigest()))


def format_plan(prep: Prepared, options: TrainOptions, model: str, out: Path, cost: dict | None,
                preview: Path | None = None) -> str:
    """The dry-run text: images, captions, steps, memory and time estimates."""
    kind = f"textual inversion ({options.vectors} vectors)" if options.embedding else \
        f"LoRA rank {options.rank}, alpha {options.lora_alpha:g}"
    lines = [f"train {prep.name} on model set {model!r}: {kind}",
             f"  output: {out}",
             f"  trigger word: {prep.trigger}   flips: {'yes (symmetric)' if prep.symmetric else 'no'}",
             f"  source images ({len(prep.sources)}): {', '.join(prep.sources)}",
             f"  training images: {len(prep.pool)} ({options.variants} augmented variants each, "
             f"{options.size}x{options.size})"]
    shown = sorted(set(prep.pool.captions))
    lines.append(f"  captions ({len(shown)}):")
    lines += [f"    {c}" for c in shown]
    lines.append(f"  steps: {options.steps} x batch {options.batch} (lr {options.lr:g}, seed {options.seed}); "
                 f"checkpoint every {options.checkpoint_every}; samples "
                 + (f"every {options.sample_every}" if options.sample_every else "off"))
    if options.prior:
        lines.append(f"  prior preservation: {options.prior} class images of {prep.class_prompt!r}, "
                     f"weight {options.prior_weight:g}")
    if cost:
        lines.append(f"  memory estimate ({cost['device']}, {cost['dtype']}): {_size(cost['total_bytes'])} = "
                     f"weights {_size(cost['weights_bytes'])} + trainable+Adam {_size(cost['optimizer_bytes'])} + "
                     f"activations {_size(cost['activation_bytes'])}"
                     + (" (gradient checkpointing)" if cost.get("checkpointing") else "")
                     + "; plus allocator slack and the CUDA context")
        lines.append(f"  compute: {_flops(cost['flops_per_step'])} per step (UNet forward + backward, counted on the "
                     f"meta device); {_flops(cost['flops_per_step'] * options.steps)} for {options.steps} steps")
    if preview:
        lines.append(f"  training images preview: {preview}")
    return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return ""


def _flops(n: float) -> str:
    for unit, scale in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} FLOP"


def write_preview(pool: Pool, path: Path, columns: int = 8) -> Path:
    """A contact sheet of the augmented training images (what the model will see)."""
    import numpy as np
    from PIL import Image

    from cinekit.train.kohya import atomic_write

    n = len(pool)
    rows = -(-n // columns)
    s = pool.images.shape[1]
    sheet = np.full((rows * s, min(n, columns) * s, 3), 255, np.uint8)
    for i, img in enumerate(pool.images):
        r, c = divmod(i, columns)
        sheet[r * s:(r + 1) * s, c * s:(c + 1) * s] = img
    return atomic_write(path, lambda tmp: Image.fromarray(sheet).save(tmp, format="PNG"))
