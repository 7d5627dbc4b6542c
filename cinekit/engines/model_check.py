"""Model sets checked without loading a weight: where the files are, their formats, their family.

``check_model_set`` (``cinekit models check``, and the loader before its first load) verifies
paths, formats and family from configs and safetensors headers only; the path and format
helpers here are shared with the loader.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinekit.errors import Problem

if TYPE_CHECKING:
    from cinekit.spec.models import ModelSet


PICKLE_SUFFIXES = frozenset({".ckpt", ".bin", ".pt", ".pth", ".pkl"})
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CONTROLS = ("openpose", "depth", "canny")


# --------------------------------------------------------------------------- files and formats
def is_pickle(path: Path) -> bool:
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def weight_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(safetensors files, pickle files) directly in ``folder``."""
    files = [p for p in Path(folder).iterdir() if p.is_file()] if Path(folder).is_dir() else []
    return ([p for p in files if p.suffix == ".safetensors"],
            [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES])


def detect_family(unet_config: dict[str, Any]) -> str:
    """'sdxl' | 'sd15' | 'sd2' from a UNet config (cross-attention width, added time embeddings)."""
    if unet_config.get("addition_embed_type") == "text_time" or unet_config.get("cross_attention_dim") == 2048:
        return "sdxl"
    if unet_config.get("cross_attention_dim") == 1024:
        return "sd2"
    return "sd15"


def family_from_single_file(path: Path) -> str | None:
    """Family from an original-format checkpoint's key names (safetensors header only)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
    if any(k.startswith("conditioner.embedders.1") or ".add_embedding." in k or k.startswith("add_embedding") for k in keys):
        return "sdxl"
    if any(k.startswith("model.diffusion_model") or k.startswith("cond_stage_model") for k in keys):
        return "sd15"
    return None


def resolve_hub_id(repo_id: str) -> Path | None:
    """The local snapshot folder of a hub repo already in the HF cache, or None."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not available offline"
        return None


def resolve_model_path(value: str, root: Path) -> tuple[Path | None, str]:
    """(local path, how) for a configured model path: 'path', 'hub' or 'missing'."""
    p = Path(value).expanduser()
    p = p if p.is_absolute() else (Path(root) / p)
    if p.exists():
        return p.resolve(), "path"
    if HUB_ID.match(value):
        cached = resolve_hub_id(value)
        if cached is not None:
            return cached, "hub"
    return None, "missing"


# --------------------------------------------------------------------------- checking
def _problem(root: Path, name: str, key: str, message: str, hint: str | None = None,
             severity: str = "error") -> Problem:
    return Problem(str(Path(root) / "cinekit.yaml"), None, None, f"models.{name}.{key}", message, hint, severity)


def _check_diffusers_folder(folder: Path, name: str, key: str, root: Path, allow_pickle: bool,
                            subfolders: tuple[str, ...] = ("unet", "vae", "text_encoder")) -> list[Problem]:
    out: list[Problem] = []
    if not (folder / "model_index.json").is_file():
        out.append(_problem(root, name, key, f"{folder} has no model_index.json",
                            "give a diffusers pipeline folder (save_pretrained) or one .safetensors file with `config:`"))
        return out
    for sub in subfolders:
        d = folder / sub
        if not (d / "config.json").is_file():
            out.append(_problem(root, name, key, f"{d} has no config.json"))
            continue
        safe, pick = weight_files(d)
        if not safe and pick and not allow_pickle:
            out.append(_problem(root, name, key, f"{d} holds only pickle weights ({pick[0].name})",
                                "convert to .safetensors, or pass --allow-pickle if you trust the file"))
        elif not safe and not pick:
            out.append(_problem(root, name, key, f"{d} has no weight file"))
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _check_weights_file(path: Path, name: str, key: str, root: Path, allow_pickle: bool) -> list[Problem]:
    if is_pickle(path) and not allow_pickle:
        return [_problem(root, name, key, f"{path.name} is a pickle file ({path.suffix}): refused",
                         "convert it to .safetensors, or pass --allow-pickle if you trust the file")]
    if path.suffix not in (".safetensors",) and not is_pickle(path):
        return [_problem(root, name, key, f"{path.name}: unknown weight format {path.suffix!r}",
                         "use .safetensors")]
    return []


def check_model_set(name: str, modelset: "ModelSet", root: Path, *, allow_pickle: bool = False) -> list[Problem]:
    """Every problem of one configured model set, without loading a weight (headers and configs only)."""
    root = Path(root)
    out: list[Problem] = []
    unet_cfg: dict[str, Any] | None = None

    base, how = resolve_model_path(modelset.base, root)
    if base is None:
        hint = ("a hub id must already be in the local Hugging Face cache (download it once with network)"
                if HUB_ID.match(modelset.base) else "paths are relative to the project root")
        out.append(_problem(root, name, "base", f"{modelset.base!r} not found", hint))
    elif base.is_dir():
        out += _check_diffusers_folder(base, name, "base", root, allow_pickle)
        unet_cfg = _read_json(base / "unet" / "config.json")
    else:
        out += _check_weights_file(base, name, "base", root, allow_pickle)
        if modelset.config is None:
            out.append(_problem(root, name, "config", f"{base.name} is a single file: `config:` is needed to load it offline",
                                "set `config:` to a local diffusers folder of the same family (its model_index.json and configs)"))
        else:
            cfg, _ = resolve_model_path(modelset.config, root)
            if cfg is None or not cfg.is_dir():
                out.append(_problem(root, name, "config", f"{modelset.config!r} is not a local folder"))
            else:
                if not (cfg / "model_index.json").is_file():
                    out.append(_problem(root, name, "config", f"{cfg} has no model_index.json"))
                unet_cfg = _read_json(cfg / "unet" / "config.json")
        if base.suffix == ".safetensors":
            try:
                fam = family_from_single_file(base)
            except Exception as e:  # noqa: BLE001 - a broken header is a problem to report
                out.append(_problem(root, name, "base", f"{base.name}: not a readable safetensors file ({e})"))
                fam = None
            if fam and fam != modelset.family:
                out.append(_problem(root, name, "family", f"{base.name} looks like {fam}, configured as {modelset.family}"))

    if unet_cfg is not None:
        fam = detect_family(unet_cfg)
        if fam == "sd2":
            out.append(_problem(root, name, "family", "SD 2.x models (cross_attention_dim 1024) are not supported",
                                "use an SD 1.5 or SDXL model"))
        elif fam != modelset.family:
            out.append(_problem(root, name, "family",
                                f"the UNet is {fam} (cross_attention_dim {unet_cfg.get('cross_attention_dim')}), "
                                f"configured as {modelset.family}", f"set `family: {fam}`"))

    if modelset.vae:
        p, _ = resolve_model_path(modelset.vae, root)
        if p is None:
            out.append(_problem(root, name, "vae", f"{modelset.vae!r} not found"))
        elif p.is_file():
            out += _check_weights_file(p, name, "vae", root, allow_pickle)
        elif not (p / "config.json").is_file():
            out.append(_problem(root, name, "vae", f"{p} has no config.json"))

    for kind in CONTROLS:
        value = getattr(modelset.controlnet, kind)
        if value is None:
            continue
        p, _ = resolve_model_path(value, root)
        key = f"controlnet.{kind}"
        if p is None:
            out.append(_problem(root, name, key, f"{value!r} not found"))
            continue
        if p.is_file():
            out += _check_weights_file(p, name, key, root, allow_pickle)
            out.append(_problem(root, name, key, "single-file ControlNets need their config: give the diffusers folder",
                                "a ControlNet folder holds config.json + diffusion_pytorch_model.safetensors"))
            continue
        cfg = _read_json(p / "config.json")
        if cfg is None:
            out.append(_problem(root, name, key, f"{p} has no config.json"))
            continue
        safe, pick = weight_files(p)
        if not safe and pick and not allow_pickle:
            out.append(_problem(root, name, key, f"{p} holds only pickle weights ({pick[0].name})",
                                "convert to .safetensors, or pass --allow-pickle"))
        elif not safe and not pick:
            out.append(_problem(root, name, key, f"{p} has no weight file"))
        if unet_cfg and cfg.get("cross_attention_dim") != unet_cfg.get("cross_attention_dim"):
            out.append(_problem(root, name, key, f"ControlNet cross_attention_dim {cfg.get('cross_attention_dim')} "
                                f"does not match the base UNet's {unet_cfg.get('cross_attention_dim')}",
                                "use a ControlNet trained for this model family"))

    if modelset.ip_adapter is not None:
        out += _check_ip_adapter(name, modelset, root, unet_cfg, allow_pickle)

    if modelset.motion_adapter:
        p, _ = resolve_model_path(modelset.motion_adapter, root)
        if p is None or not p.is_dir():
            out.append(_problem(root, name, "motion_adapter", f"{modelset.motion_adapter!r} is not a local folder"))
        else:
            cfg = _read_json(p / "config.json")
            if cfg is None:
                out.append(_problem(root, name, "motion_adapter", f"{p} has no config.json"))
            elif unet_cfg and list(cfg.get("block_out_channels", [])) != list(unet_cfg.get("block_out_channels", [])):
                out.append(_problem(root, name, "motion_adapter",
                                    f"motion adapter blocks {cfg.get('block_out_channels')} do not match the UNet's "
                                    f"{unet_cfg.get('block_out_channels')}"))

    if modelset.scheduler:
        import diffusers

        if not hasattr(diffusers, modelset.scheduler) or not modelset.scheduler.endswith("Scheduler"):
            out.append(_problem(root, name, "scheduler", f"unknown scheduler {modelset.scheduler!r}",
                                "a diffusers scheduler class name, e.g. DDIMScheduler, EulerAncestralDiscreteScheduler"))
    return out


def ip_adapter_paths(modelset: "ModelSet", root: Path) -> tuple[Path | None, Path | None, Path | None]:
    """(folder, weight file, image encoder folder) of a model set's IP-Adapter."""
    spec = modelset.ip_adapter
    if spec is None:
        return None, None, None
    folder, _ = resolve_model_path(spec.path, root)
    if folder is None:
        return None, None, None
    weight = folder / spec.subfolder / spec.weight
    if spec.image_encoder:
        enc, _ = resolve_model_path(spec.image_encoder, root)
    else:
        enc = folder / spec.subfolder / "image_encoder"
    return folder, weight, enc


def _check_ip_adapter(name, modelset, root, unet_cfg, allow_pickle) -> list[Problem]:
    out: list[Problem] = []
    folder, weight, enc = ip_adapter_paths(modelset, root)
    if folder is None:
        return [_problem(root, name, "ip_adapter.path", f"{modelset.ip_adapter.path!r} not found")]
    if not weight.is_file():
        return [_problem(root, name, "ip_adapter.weight", f"{weight} not found")]
    out += _check_weights_file(weight, name, "ip_adapter.weight", root, allow_pickle)
    if weight.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(weight), framework="pt") as f:
                keys = list(f.keys())
                proj = f.get_slice("image_proj.proj.weight").get_shape() if "image_proj.proj.weight" in keys else None
        except Exception as e:  # noqa: BLE001
            return out + [_problem(root, name, "ip_adapter.weight", f"{weight.name}: unreadable ({e})")]
        if not any(k.startswith("image_proj.") for k in keys) or not any(k.startswith("ip_adapter.") for k in keys):
            out.append(_problem(root, name, "ip_adapter.weight", f"{weight.name} has no image_proj.*/ip_adapter.* keys",
                                "this is not an IP-Adapter weight file"))
        elif proj is not None and unet_cfg and proj[0] // 4 != unet_cfg.get("cross_attention_dim"):
            out.append(_problem(root, name, "ip_adapter.weight",
                                f"{weight.name} is for cross_attention_dim {proj[0] // 4}, the UNet has "
                                f"{unet_cfg.get('cross_attention_dim')}", "use the IP-Adapter made for this family"))
    if enc is None or not (enc / "config.json").is_file():
        out.append(_problem(root, name, "ip_adapter.image_encoder", f"image encoder folder {enc} not found",
                            "a CLIPVisionModelWithProjection folder (config.json + model.safetensors)"))
    return out
