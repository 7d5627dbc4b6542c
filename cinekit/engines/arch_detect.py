"""What a model file is, from its tensor names and shapes alone (no weight is read).

Community files carry no config: an SD 1.5 or SDXL checkpoint, a ControlNet, an AnimateDiff
motion module, a LoRA or an embedding are told apart by their key names, and the family by
the width of the cross-attention input (768 SD 1.5 / CLIP-L, 1024 SD 2.x, 2048 SDXL = CLIP-L +
OpenCLIP-bigG). The rules follow the original (ldm / A1111 / AnimateDiff / kohya) layouts that
diffusers' single-file and LoRA converters read; ``Arch.config`` names the folder of
``cinekit/model_configs`` that describes the architecture.

A ``.safetensors`` header is parsed directly (8-byte length + JSON), so ``cinekit check`` reads
shapes of multi-GB files in microseconds and never imports torch.
"""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cinekit.errors import ModelError

Shapes = dict[str, tuple[int, ...]]

CONTEXT_FAMILY = {768: "sd15", 1024: "sd2", 2048: "sdxl"}
FAMILY_NAMES = {"sd15": "SD 1.5", "sd2": "SD 2.x", "sdxl": "SDXL", "sdxl_refiner": "SDXL refiner"}
UNSUPPORTED = {"sd2": "SD 2.x models are not supported (use an SD 1.5 or SDXL model)",
               "sdxl_refiner": "the SDXL refiner is not a base model (use an SDXL base checkpoint)"}
_ATTN2_K = re.compile(r"attn2[._]to_k(?:\.weight|\.lora_down\.weight|\.lora_A\.weight|\.lora\.down\.weight)$")


class UnknownArchitecture(ModelError):
    """A file that is none of the architectures cinekit can load."""


@dataclass(frozen=True)
class Arch:
    """One detected architecture. ``config``: the folder name under ``cinekit/model_configs``."""

    kind: str                   # checkpoint | controlnet | motion | vae
    family: str                 # sd15 | sdxl (| sd2 | sdxl_refiner: detected, refused)
    config: str                 # sd15 | sdxl | controlnet_sd15 | controlnet_sdxl | motion_v1 | ...
    layout: str = "ldm"         # ldm (original) | diffusers (already converted key names)
    has_vae: bool = False       # checkpoint: a baked VAE (first_stage_model.*)
    has_text_encoder: bool = False
    context_dim: int | None = None
    seq_length: int | None = None   # motion: positional-encoding length (frames per window)
    mid_block: bool = False         # motion: has a mid-block motion module (v2)

    def describe(self) -> str:
        fam = FAMILY_NAMES.get(self.family, self.family)
        if self.kind == "checkpoint":
            return f"an {fam} checkpoint ({'with' if self.has_vae else 'without'} a baked VAE)"
        if self.kind == "controlnet":
            return f"an {fam} ControlNet"
        if self.kind == "motion":
            return f"an AnimateDiff motion module {self.config.removeprefix('motion_')} ({fam})"
        return f"an {fam} VAE"


# --------------------------------------------------------------------------- headers
def read_shapes(path: Path, *, allow_pickle: bool = False) -> Shapes:
    """``{tensor name: shape}`` of a weight file. safetensors: header only; pickle only when allowed."""
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            with path.open("rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                if n > 100_000_000:
                    raise ValueError(f"header length {n}")
                header = json.loads(f.read(n))
        except (OSError, ValueError, struct.error) as e:
            raise ModelError(f"{path.name}: not a readable safetensors file ({e})") from None
        return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    if not allow_pickle:
        raise ModelError(f"{path.name} is a pickle file ({path.suffix}); refused",
                         hint="convert it to .safetensors, or pass --allow-pickle if you trust the file")
    import torch

    obj = torch.load(str(path), map_location="cpu", weights_only=False, mmap=True)  # allowed by --allow-pickle
    obj = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    return {k: tuple(v.shape) for k, v in obj.items() if hasattr(v, "shape")}


def prefix_summary(shapes: Shapes, top: int = 4) -> str:
    """The commonest two-part key prefixes: what a user is told an unknown file contains."""
    counts = Counter(".".join(k.split(".")[:2]) for k in shapes)
    parts = [f"{p}.* ({n})" for p, n in counts.most_common(top)]
    more = len(counts) - top
    return f"{len(shapes)} tensors: " + ", ".join(parts) + (f", ... {more} more prefixes" if more > 0 else "")


def context_dim(shapes: Shapes, prefix: str = "") -> int | None:
    """Width of the cross-attention input (the text embedding) from any ``attn2.to_k`` weight."""
    for k, shape in shapes.items():
        if k.startswith(prefix) and _ATTN2_K.search(k) and len(shape) == 2:
            return int(shape[1])
    return None


# --------------------------------------------------------------------------- detection
def detect(shapes: Shapes, name: str = "the file") -> Arch:
    """The architecture of a full checkpoint, ControlNet, motion module or VAE; else a clear error."""
    keys = shapes.keys()
    has = lambda p: any(k.startswith(p) for k in keys)  # noqa: E731

    if has("model.diffusion_model."):
        return _checkpoint(shapes, name)
    if any(".motion_modules." in k for k in keys):
        return _motion(shapes, name)
    cn_prefix = next((p for p in ("control_model.", "") if f"{p}input_hint_block.0.weight" in shapes), None)
    if cn_prefix is not None or "controlnet_cond_embedding.conv_in.weight" in shapes:
        layout = "ldm" if cn_prefix is not None else "diffusers"
        ctx = context_dim(shapes)
        # SDXL ControlNets carry the added time/size embedding; SD 2.x ones are 1024 wide
        xl = has((cn_prefix or "") + "label_emb.") or has("add_embedding.") or ctx == 2048
        family = "sdxl" if xl else "sd2" if ctx == 1024 else "sd15"
        _supported(family, name, "ControlNet")
        return Arch("controlnet", family, f"controlnet_{family}", layout, context_dim=ctx)
    if has("encoder.conv_in.") and has("decoder.conv_in."):
        return Arch("vae", "any", "vae", "ldm" if has("encoder.down.") else "diffusers")
    raise UnknownArchitecture(
        f"{name} is not a model cinekit can load: {prefix_summary(shapes)}",
        hint="expected an SD 1.5 / SDXL checkpoint (model.diffusion_model.*), a ControlNet "
             "(control_model.* / controlnet_cond_embedding.*) or an AnimateDiff motion module (*.motion_modules.*)")


def _supported(family: str, name: str, what: str) -> None:
    if family in UNSUPPORTED:
        raise UnknownArchitecture(f"{name} is {'an' if family[0] == 's' else 'a'} {FAMILY_NAMES[family]} {what}: "
                                  f"{UNSUPPORTED[family]}")
    if family not in ("sd15", "sdxl"):
        raise UnknownArchitecture(f"{name}: a {what} of an unknown family")


def _checkpoint(shapes: Shapes, name: str) -> Arch:
    keys = shapes.keys()
    ctx = context_dim(shapes, "model.diffusion_model.")
    # the text encoders' key layouts name the family; the width is the fallback
    if any(k.startswith("conditioner.embedders.0.model.") for k in keys) and not any(
            k.startswith("conditioner.embedders.1.") for k in keys):
        family = "sdxl_refiner"
    elif "model.diffusion_model.label_emb.0.0.weight" in shapes or any(
            k.startswith("conditioner.embedders.1.") for k in keys):
        family = "sdxl"
    elif any(k.startswith("cond_stage_model.model.") for k in keys):
        family = "sd2"                                   # OpenCLIP-H text encoder
    elif any(k.startswith("cond_stage_model.transformer.") for k in keys):
        family = "sd15"                                  # CLIP-L text encoder
    else:
        family = CONTEXT_FAMILY.get(ctx or 0, "unknown")
    _supported(family, name, "checkpoint")
    conv_in = shapes.get("model.diffusion_model.input_blocks.0.0.weight")
    if conv_in is not None and conv_in[1] != 4:
        raise UnknownArchitecture(f"{name}: the UNet takes {conv_in[1]} input channels (an inpainting or "
                                  "instruct model); cinekit loads text-to-image checkpoints (4 channels)")
    text = ("cond_stage_model.transformer.", ) if family == "sd15" else (
        "conditioner.embedders.0.transformer.", "conditioner.embedders.1.model.")
    has_text = all(any(k.startswith(p) for k in keys) for p in text)
    has_vae = any(k.startswith(("first_stage_model.", "vae.")) for k in keys)
    return Arch("checkpoint", family, family, "ldm", has_vae=has_vae, has_text_encoder=has_text, context_dim=ctx)


def _motion(shapes: Shapes, name: str) -> Arch:
    """AnimateDiff v1 (24-frame positional encoding), v2 (a mid-block module), v3 (32 frames, no
    mid block), SDXL beta (320 channels at up_blocks.2): the rules of diffusers' own detection."""
    keys = shapes.keys()
    original = any(".temporal_transformer." in k for k in keys)
    pe = next((s for k, s in shapes.items() if k.endswith("pos_encoder.pe")), None)
    mid = any(k.startswith("mid_block.motion_modules.") for k in keys)
    up2 = next((s for k, s in shapes.items() if k.startswith("up_blocks.2.motion_modules.0.")
                and k.endswith(".norm.weight") and "transformer_blocks" not in k), None)
    if any(k.startswith(("controlnet_cond_embedding.", "conv_in.")) for k in keys):
        raise UnknownArchitecture(f"{name} is an AnimateDiff SparseCtrl / RGB-conditioned module, not a motion module")
    if up2 is not None and up2[0] == 320:
        variant, family = "sdxl", "sdxl"
    elif mid:
        variant, family = "v2", "sd15"
    elif pe is not None and pe[1] == 24:
        variant, family = "v1", "sd15"
    else:
        variant, family = "v3", "sd15"
    return Arch("motion", family, f"motion_{variant}", "ldm" if original else "diffusers",
                seq_length=int(pe[1]) if pe is not None else None, mid_block=mid)


# --------------------------------------------------------------------------- adapters
def lora_context_dim(shapes: Shapes) -> int | None:
    """Cross-attention input width a LoRA was trained for (its ``attn2.to_k`` down projection)."""
    return context_dim(shapes)


def lora_family(shapes: Shapes) -> str | None:
    """'sd15' | 'sdxl' | 'sd2' from a LoRA's keys (kohya ``lora_te2_``, peft ``text_encoder_2``) or widths."""
    ctx = lora_context_dim(shapes)
    if ctx in CONTEXT_FAMILY:
        return CONTEXT_FAMILY[ctx]
    if any(k.startswith(("lora_te2_", "text_encoder_2.", "te2.")) for k in shapes):
        return "sdxl"
    return None


def is_lora(shapes: Shapes) -> bool:
    return any(("lora_down" in k or "lora_A" in k or "lora.down" in k) for k in shapes)


def embedding_widths(shapes: Shapes) -> dict[str, int]:
    """Text-encoder widths a textual-inversion file holds vectors for: ``{'clip_l': 768}`` (A1111
    ``emb_params`` / ``string_to_param``), ``{'clip_l': 768, 'clip_g': 1280}`` (SDXL)."""
    if "clip_l" in shapes or "clip_g" in shapes:
        return {k: int(shapes[k][-1]) for k in ("clip_l", "clip_g") if k in shapes}
    for s in shapes.values():
        if len(s) in (1, 2):
            return {"clip_l": int(s[-1])}
    return {}
