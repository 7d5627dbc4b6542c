"""Single-file models loaded offline with no other file than the user's own.

A community checkpoint, ControlNet or motion module is one ``.safetensors`` file without any
config. ``arch_detect`` names its architecture from the key names and shapes; the architecture's
config (and, for checkpoints, the CLIP tokenizer built from the merges cinekit ships) comes from
``cinekit/model_configs/<arch>/``, and diffusers' own single-file converters read the weights.

Where the config comes from (``config_dir``), first match wins:

1. ``<config>/<arch>/`` when the model set's ``config:`` folder holds one (a cinekit config set:
   the layout of ``cinekit/model_configs``; the tiny test set writes one for its tiny shapes);
2. ``<config>`` itself for a checkpoint, when it is a diffusers pipeline folder (model_index.json):
   the way single files were loaded before configs were shipped;
3. ``cinekit/model_configs/<arch>/``: the real SD 1.5 / SDXL / ControlNet / AnimateDiff shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cinekit.engines.arch_detect import Arch, detect, read_shapes
from cinekit.errors import ModelError

SHIPPED = Path(__file__).resolve().parents[1] / "model_configs"
PIPELINE_CLASS = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline"}


def config_dir(arch: Arch, override: Path | None = None) -> Path:
    """The folder holding ``arch``'s config (see the module docstring for the order)."""
    if override is not None:
        override = Path(override)
        if (override / arch.config).is_dir():
            return override / arch.config
        if arch.kind == "checkpoint" and (override / "model_index.json").is_file():
            return override
    folder = SHIPPED / arch.config
    if not folder.is_dir():
        raise ModelError(f"cinekit ships no config for {arch.describe()} ({arch.config})")
    return folder


def inspect_file(path: Path, *, allow_pickle: bool = False) -> Arch:
    """The architecture of one model file (header only for safetensors)."""
    return detect(read_shapes(path, allow_pickle=allow_pickle), Path(path).name)


def load_checkpoint(path: Path, arch: Arch, *, override: Path | None, torch_dtype, vae=None) -> Any:
    """An SD 1.5 / SDXL pipeline from one original-layout checkpoint (diffusers' converters).

    ``vae``: an already loaded VAE (the model set's ``vae:``); required when the file has none."""
    import diffusers

    if arch.kind != "checkpoint":
        raise ModelError(f"{Path(path).name} is {arch.describe()}, not a base checkpoint",
                         hint="`base:` takes a full SD 1.5 / SDXL checkpoint or a diffusers folder")
    if not arch.has_text_encoder:
        raise ModelError(f"{Path(path).name}: the checkpoint has no text encoder weights",
                         hint="use a full checkpoint (UNet + text encoder(s) + VAE)")
    if not arch.has_vae and vae is None:
        raise ModelError(f"{Path(path).name}: the checkpoint has no baked VAE (no first_stage_model.* keys)",
                         hint="set `vae:` in the model set to a VAE file or folder")
    folder = config_dir(arch, override)
    kwargs: dict[str, Any] = dict(config=str(folder), local_files_only=True, torch_dtype=torch_dtype)
    if vae is not None:
        kwargs["vae"] = vae
    kwargs.update(_tokenizers(arch, folder))
    if arch.family == "sd15":
        kwargs.update(safety_checker=None, requires_safety_checker=False, feature_extractor=None, image_encoder=None)
    cls = getattr(diffusers, PIPELINE_CLASS[arch.family])
    return cls.from_single_file(str(path), **kwargs)


def _tokenizers(arch: Arch, folder: Path) -> dict[str, Any]:
    """CLIP tokenizers for the pipeline unless the config folder has its own."""
    from cinekit.engines.clip_tokenizer import clip_tokenizer

    out: dict[str, Any] = {}
    if not (folder / "tokenizer").is_dir():
        out["tokenizer"] = clip_tokenizer()
    if arch.family == "sdxl" and not (folder / "tokenizer_2").is_dir():
        out["tokenizer_2"] = clip_tokenizer(pad_token="!")   # OpenCLIP pads with "!" (id 0)
    return out


def tokenizer_for(arch: Arch, override: Path | None):
    """The (first) tokenizer a checkpoint is loaded with, without loading any weight."""
    from transformers import CLIPTokenizer

    folder = config_dir(arch, override)
    if (folder / "tokenizer").is_dir():
        return CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
    from cinekit.engines.clip_tokenizer import clip_tokenizer

    return clip_tokenizer()


def load_controlnet(path: Path, arch: Arch, *, override: Path | None, torch_dtype):
    """A ``ControlNetModel`` from one file (original ``control_model.*`` or diffusers key names)."""
    import diffusers

    if arch.kind != "controlnet":
        raise ModelError(f"{Path(path).name} is {arch.describe()}, not a ControlNet")
    return diffusers.ControlNetModel.from_single_file(str(path), config=str(config_dir(arch, override)),
                                                      local_files_only=True, torch_dtype=torch_dtype)


def motion_config(path: Path, arch: Arch, override: Path | None = None) -> dict[str, Any]:
    """The motion adapter config for a motion-module file: the shipped one for its version, with the
    frame window and mid block read from the file itself (they vary between releases)."""
    import json

    cfg = json.loads((config_dir(arch, override) / "config.json").read_text())
    if arch.seq_length:
        cfg["motion_max_seq_length"] = arch.seq_length
    cfg["use_motion_mid_block"] = arch.mid_block
    return cfg


def load_motion_adapter(path: Path, arch: Arch, *, override: Path | None, torch_dtype):
    """A ``MotionAdapter`` from one AnimateDiff motion-module file."""
    import diffusers

    if arch.kind != "motion":
        raise ModelError(f"{Path(path).name} is {arch.describe()}, not an AnimateDiff motion module")
    cfg = motion_config(path, arch, override)
    return diffusers.MotionAdapter.from_single_file(
        str(path), config=str(config_dir(arch, override)), local_files_only=True, torch_dtype=torch_dtype,
        motion_max_seq_length=cfg["motion_max_seq_length"], use_motion_mid_block=cfg["use_motion_mid_block"])


def load_vae(path: Path, *, family: str, override: Path | None, torch_dtype):
    """A VAE from one file (e.g. ``vae-ft-mse-840000-ema-pruned.safetensors``), with the family's config."""
    import diffusers

    base = Arch("checkpoint", family, family)
    folder = config_dir(base, override)
    return diffusers.AutoencoderKL.from_single_file(str(path), config=str(folder), subfolder="vae",
                                                    local_files_only=True, torch_dtype=torch_dtype)
