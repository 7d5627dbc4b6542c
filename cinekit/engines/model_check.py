"""Model sets checked without loading a weight: where the files are, their formats, their family.

``check_model_set`` (``cinekit models check``, ``cinekit check``, and the loader before its first
load) verifies paths (with a did-you-mean on the sibling names), formats, the architecture of
single files (``arch_detect``, from the safetensors header) and that the parts fit each other;
the path and format helpers here are shared with the loader.
"""

from __future__ import annotations

import difflib
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


def resolve_hub_id(repo_id: str) -> Path | None:
    """The local snapshot folder of a hub repo already in the HF cache, or None."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not available offline"
        return None


def suggest_path(value: str, root: Path) -> str | None:
    """'did you mean ...?' for a missing path: the closest names beside it (difflib)."""
    p = Path(value).expanduser()
    p = p if p.is_absolute() else Path(root) / p
    parent = p.parent
    while not parent.is_dir() and parent != parent.parent:     # a misspelled folder higher up
        p, parent = parent, parent.parent
    if not parent.is_dir():
        return None
    names = [c.name for c in parent.iterdir() if not c.name.startswith(".")]
    close = difflib.get_close_matches(p.name, names, n=3, cutoff=0.6)
    if not close:
        return None
    shown = [str((parent / c).relative_to(root)) if (parent / c).is_relative_to(root) else str(parent / c) for c in close]
    return "did you mean " + " or ".join(repr(x) for x in shown) + "?"


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


def _missing(root: Path, name: str, key: str, value: str) -> Problem:
    hint = suggest_path(value, root)
    if hint is None:
        hint = ("a hub id must already be in the local Hugging Face cache (download it once with network)"
                if HUB_ID.match(value) else "paths are relative to the project root")
    return _problem(root, name, key, f"{value!r} not found", hint)


def _single_file(path: Path, name: str, key: str, root: Path, allow_pickle: bool, want: str):
    """(Arch | None, problems) of one model file that should be a ``want`` (checkpoint, controlnet, ...)."""
    from cinekit.engines.arch_detect import detect, read_shapes
    from cinekit.errors import ModelError

    out = _check_weights_file(path, name, key, root, allow_pickle)
    if out or path.suffix != ".safetensors":
        return None, out            # a refused or allowed pickle: its keys are read only at load time
    try:
        arch = detect(read_shapes(path), path.name)
    except ModelError as e:
        return None, [_problem(root, name, key, e.message, e.hint)]
    if arch.kind != want:
        return None, [_problem(root, name, key, f"{path.name} is {arch.describe()}, not a {want}",
                               f"put it under the model set's {'`' + _KEY_FOR[arch.kind] + '`' if arch.kind in _KEY_FOR else 'matching key'}")]
    return arch, []


_KEY_FOR = {"checkpoint": "base", "controlnet": "controlnet.openpose", "motion": "motion_adapter", "vae": "vae"}


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
    override: Path | None = None
    if modelset.config is not None:
        override, _ = resolve_model_path(modelset.config, root)
        if override is None:
            out.append(_missing(root, name, "config", modelset.config))
        elif not override.is_dir():
            out.append(_problem(root, name, "config", f"{modelset.config!r} is not a folder",
                                "a folder of architecture configs: a diffusers pipeline folder, or the layout "
                                "of cinekit/model_configs"))
            override = None
    if base is None:
        out.append(_missing(root, name, "base", modelset.base))
    elif base.is_dir():
        out += _check_diffusers_folder(base, name, "base", root, allow_pickle)
        unet_cfg = _read_json(base / "unet" / "config.json")
    else:
        arch, problems = _single_file(base, name, "base", root, allow_pickle, "checkpoint")
        out += problems
        if arch is not None:
            from cinekit.engines.single_file import config_dir

            unet_cfg = _read_json(config_dir(arch, override) / "unet" / "config.json") or {}
            unet_cfg["cross_attention_dim"] = arch.context_dim or unet_cfg.get("cross_attention_dim")
            if arch.family != modelset.family:
                out.append(_problem(root, name, "family", f"{base.name} is {arch.describe()}, configured as "
                                    f"{modelset.family}", f"set `family: {arch.family}`"))
            if not arch.has_vae and not modelset.vae:
                out.append(_problem(root, name, "vae", f"{base.name} has no baked VAE (no first_stage_model.* keys)",
                                    "set `vae:` to a VAE file or folder of the same family"))
            if not arch.has_text_encoder:
                out.append(_problem(root, name, "base", f"{base.name} has no text encoder weights",
                                    "use a full checkpoint (UNet + text encoder(s) + VAE)"))

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
            out.append(_missing(root, name, "vae", modelset.vae))
        elif p.is_file():
            out += _single_file(p, name, "vae", root, allow_pickle, "vae")[1]
        elif not (p / "config.json").is_file():
            out.append(_problem(root, name, "vae", f"{p} has no config.json"))

    for kind in CONTROLS:
        value = getattr(modelset.controlnet, kind)
        if value is None:
            continue
        p, _ = resolve_model_path(value, root)
        key = f"controlnet.{kind}"
        if p is None:
            out.append(_missing(root, name, key, value))
            continue
        if p.is_file():
            arch, problems = _single_file(p, name, key, root, allow_pickle, "controlnet")
            out += problems
            if arch is not None and unet_cfg and arch.context_dim not in (None, unet_cfg.get("cross_attention_dim")):
                out.append(_problem(root, name, key, f"{p.name} is {arch.describe()} (cross-attention width "
                                    f"{arch.context_dim}); the base UNet takes {unet_cfg.get('cross_attention_dim')}",
                                    "use a ControlNet trained for this model family"))
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
        if p is None:
            out.append(_missing(root, name, "motion_adapter", modelset.motion_adapter))
        elif p.is_file():
            arch, problems = _single_file(p, name, "motion_adapter", root, allow_pickle, "motion")
            out += problems
            if arch is not None and arch.family != modelset.family:
                out.append(_problem(root, name, "motion_adapter", f"{p.name} is {arch.describe()}; the model set "
                                    f"is {modelset.family}", "use a motion module made for this family"))
        else:
            cfg = _read_json(p / "config.json")
            if cfg is None:
                out.append(_problem(root, name, "motion_adapter", f"{p} has no config.json"))
            elif unet_cfg and list(cfg.get("block_out_channels", [])) != list(unet_cfg.get("block_out_channels", [])):
                out.append(_problem(root, name, "motion_adapter",
                                    f"motion adapter blocks {cfg.get('block_out_channels')} do not match the UNet's "
                                    f"{unet_cfg.get('block_out_channels')}"))

    if modelset.sparsectrl:
        out += _check_sparsectrl(name, modelset.sparsectrl, root, unet_cfg, allow_pickle)

    if modelset.scheduler:
        import diffusers

        if not hasattr(diffusers, modelset.scheduler) or not modelset.scheduler.endswith("Scheduler"):
            out.append(_problem(root, name, "scheduler", f"unknown scheduler {modelset.scheduler!r}",
                                "a diffusers scheduler class name, e.g. DDIMScheduler, EulerAncestralDiscreteScheduler"))
    return out


def _check_sparsectrl(name, value: str, root: Path, unet_cfg, allow_pickle) -> list[Problem]:
    """``sparsectrl:`` is what ``SparseControlNetModel.from_pretrained`` loads for drawn keys
    (cinekit.inbetween.sparsectrl): a folder with its config.json and weights."""
    hint = "a diffusers SparseControlNetModel folder (config.json + weights), e.g. AnimateDiff v3's RGB or scribble model"
    p, _ = resolve_model_path(value, root)
    if p is None:
        return [_missing(root, name, "sparsectrl", value)]
    if not p.is_dir():
        return [_problem(root, name, "sparsectrl", f"{value!r} is not a folder", hint)]
    cfg = _read_json(p / "config.json")
    if cfg is None:
        return [_problem(root, name, "sparsectrl", f"{p} has no config.json", hint)]
    kind = cfg.get("_class_name")
    if kind not in (None, "SparseControlNetModel"):
        return [_problem(root, name, "sparsectrl", f"{p} holds a {kind}, not a SparseControlNetModel", hint)]
    safe, pick = weight_files(p)
    if not safe and pick and not allow_pickle:
        return [_problem(root, name, "sparsectrl", f"{p} holds only pickle weights ({pick[0].name})",
                         "convert to .safetensors, or pass --allow-pickle")]
    if not safe and not pick:
        return [_problem(root, name, "sparsectrl", f"{p} has no weight file", hint)]
    if unet_cfg and cfg.get("cross_attention_dim") not in (None, unet_cfg.get("cross_attention_dim")):
        return [_problem(root, name, "sparsectrl", f"SparseCtrl cross_attention_dim {cfg.get('cross_attention_dim')} "
                         f"does not match the base UNet's {unet_cfg.get('cross_attention_dim')}",
                         "use the SparseCtrl model made for this family (AnimateDiff v3: SD 1.5)")]
    return []


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
        return [_missing(root, name, "ip_adapter.path", modelset.ip_adapter.path)]
    if not weight.is_file():
        return [_problem(root, name, "ip_adapter.weight", f"{weight} not found",
                         suggest_path(str(weight), root) or "the weight file inside <path>/<subfolder>")]
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
