"""Offline model loading shared by the diffusers still and clip engines.

Everything is loaded from local files (``HF_HUB_OFFLINE=1``, ``local_files_only=True``):
a diffusers folder, one ``.safetensors`` file with ``config:`` (a local diffusers folder), or a
hub id already present in the local Hugging Face cache. Pickle formats are refused unless the
run allows them. Components are loaded once per model set; pipelines of any kind are built
from those shared components and cached by ``(model set, kind, controls)``, so N shots on one
model are one load (``runtime.stats["pipeline_loads"]``).

``check_model_set`` verifies paths, formats and family without loading any weight.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinekit.errors import ModelError, Problem, UserError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

if TYPE_CHECKING:
    from cinekit.runtime import Runtime
    from cinekit.spec.models import ModelSet

PICKLE_SUFFIXES = frozenset({".ckpt", ".bin", ".pt", ".pth", ".pkl"})
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CONTROLS = ("openpose", "depth", "canny")

# family -> kind -> diffusers pipeline class name
PIPELINES: dict[str, dict[str, str]] = {
    "sd15": {
        "txt2img": "StableDiffusionPipeline",
        "img2img": "StableDiffusionImg2ImgPipeline",
        "controlnet": "StableDiffusionControlNetPipeline",
        "controlnet_img2img": "StableDiffusionControlNetImg2ImgPipeline",
        "animatediff": "AnimateDiffPipeline",
        "animatediff_controlnet": "AnimateDiffControlNetPipeline",
        "animatediff_v2v": "AnimateDiffVideoToVideoPipeline",
        "animatediff_v2v_controlnet": "AnimateDiffVideoToVideoControlNetPipeline",
    },
    "sdxl": {
        "txt2img": "StableDiffusionXLPipeline",
        "img2img": "StableDiffusionXLImg2ImgPipeline",
        "controlnet": "StableDiffusionXLControlNetPipeline",
        "controlnet_img2img": "StableDiffusionXLControlNetImg2ImgPipeline",
        "animatediff": "AnimateDiffSDXLPipeline",
    },
}


# --------------------------------------------------------------------------- small helpers
def is_pickle(path: Path) -> bool:
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def file_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of (size, first MiB, last MiB): a cheap identity for multi-GB weight files."""
    path = Path(path)
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(chunk))
        if size > 2 * chunk:
            f.seek(size - chunk)
            h.update(f.read(chunk))
        else:
            h.update(f.read())
    return h.hexdigest()


def folder_fingerprint(folder: Path) -> str:
    """Fingerprint of every config and weight file under a model folder."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file() and p.suffix in {".json", ".txt", ".safetensors", ".bin", ".ckpt", ".pt", ".pth"}:
            h.update(str(p.relative_to(folder)).encode())
            h.update(file_fingerprint(p).encode())
    return h.hexdigest()


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


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {device}: CUDA is not available on this machine", hint="use --device cpu")
        if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise UserError("--device mps: MPS is not available on this machine", hint="use --device cpu")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(dtype: str, device: str):
    """CUDA: bf16 where supported, else fp16; MPS: fp16; CPU: fp32. Explicit values are checked."""
    import torch

    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
             "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype != "auto":
        if dtype not in names:
            raise UserError(f"unknown dtype {dtype!r}", hint="auto, float32, float16 or bfloat16")
        if device == "cpu" and names[dtype] == torch.float16:
            raise UserError("float16 does not run on the CPU", hint="use --dtype float32 (or bfloat16)")
        return names[dtype]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


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


# --------------------------------------------------------------------------- loading
@dataclass
class LoadedSet:
    """One model set's loaded components, shared by every pipeline built from it."""

    name: str
    modelset: "ModelSet"
    family: str
    components: dict[str, Any]
    files: dict[str, str]                      # path -> fingerprint (model identity)
    controlnets: dict[str, Any] = field(default_factory=dict)
    vae_id: str = ""                           # fingerprint of the VAE weights (latent caches)
    ip_state_dict: dict[str, Any] | None = None  # an injected IP-Adapter (``register``)
    lock: threading.RLock = field(default_factory=threading.RLock)


class ModelLoader:
    """Loads model sets offline, once each, and builds cached pipelines from them."""

    def __init__(self, models: dict[str, "ModelSet"], root: Path, *, device: str = "auto",
                 dtype: str = "auto", allow_pickle: bool = False, low_vram: bool = False,
                 stats: dict[str, int] | None = None):
        self.models = dict(models)
        self.root = Path(root)
        self.device = pick_device(device)
        self.torch_dtype = pick_dtype(dtype, self.device)
        self.allow_pickle = allow_pickle
        self.low_vram = low_vram
        self.stats = stats if stats is not None else {}
        self._sets: dict[str, LoadedSet] = {}
        self._pipes: dict[tuple, Any] = {}
        self._lock = threading.RLock()

    @classmethod
    def for_runtime(cls, runtime: "Runtime") -> "ModelLoader":
        return cls(runtime.project.config.models, runtime.project.root, device=runtime.device,
                   dtype=runtime.dtype, allow_pickle=runtime.allow_pickle, low_vram=runtime.low_vram,
                   stats=runtime.stats)

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def modelset(self, name: str) -> "ModelSet":
        try:
            return self.models[name]
        except KeyError:
            raise UserError(f"unknown model set {name!r}",
                            hint=f"configured in cinekit.yaml: {', '.join(sorted(self.models)) or 'none'}") from None

    def _path(self, name: str, key: str, value: str) -> Path:
        p, _ = resolve_model_path(value, self.root)
        if p is None:
            hint = ("a hub id is used only when already in the local Hugging Face cache (offline)"
                    if HUB_ID.match(value) else f"paths are relative to {self.root}")
            raise ModelError(f"models.{name}.{key}: {value!r} not found", hint=hint)
        if p.is_file() and is_pickle(p) and not self.allow_pickle:
            raise ModelError(f"models.{name}.{key}: {p.name} is a pickle file ({p.suffix}); refused",
                             hint="convert it to .safetensors, or pass --allow-pickle if you trust the file")
        return p

    def register(self, name: str, modelset: "ModelSet", components: dict[str, Any], *,
                 controlnets: dict[str, Any] | None = None, ip_adapter: dict[str, Any] | None = None,
                 identity: str = "in-memory") -> LoadedSet:
        """Inject an in-memory model set (tests, benchmarks): no file is read for it.

        ``ip_adapter``: ``{"state_dict": {"image_proj": ..., "ip_adapter": ...}, "image_encoder": ...,
        "feature_extractor": ...}``, loaded into a pipeline's UNet on first use like a file would be."""
        with self._lock:
            self.models[name] = modelset
            loaded = LoadedSet(name, modelset, detect_family(dict(components["unet"].config)), dict(components),
                               {identity: identity}, dict(controlnets or {}), vae_id=f"{identity}/vae")
            if ip_adapter is not None:
                loaded.components["image_encoder"] = ip_adapter["image_encoder"]
                loaded.components["feature_extractor"] = ip_adapter["feature_extractor"]
                loaded.ip_state_dict = ip_adapter["state_dict"]
            self._sets[name] = loaded
            return loaded

    # ---- components
    def components(self, name: str) -> LoadedSet:
        """The model set's loaded components (vae, text encoder(s), tokenizer(s), unet, scheduler)."""
        with self._lock:
            if name in self._sets:
                return self._sets[name]
            ms = self.modelset(name)
            problems = [p for p in check_model_set(name, ms, self.root, allow_pickle=self.allow_pickle)
                        if p.severity == "error"]
            if problems:
                raise ModelError(f"model set {name!r} cannot be loaded:\n  " + "\n  ".join(p.format() for p in problems),
                                 hint="run `cinekit models check`")
            try:
                loaded = self._load_components(name, ms)
            except ModelError:
                raise
            except Exception as e:  # noqa: BLE001 - any loading failure becomes one clear error
                raise ModelError(f"model set {name!r}: loading failed: {type(e).__name__}: {e}") from e
            self._sets[name] = loaded
            self._count("model_loads")
            return loaded

    def _load_components(self, name: str, ms: "ModelSet") -> LoadedSet:
        import diffusers

        base = self._path(name, "base", ms.base)
        cls_name = "StableDiffusionXLPipeline" if ms.family == "sdxl" else "StableDiffusionPipeline"
        cls = getattr(diffusers, cls_name)
        common = dict(torch_dtype=self.torch_dtype, local_files_only=True)
        extra = {} if ms.family == "sdxl" else dict(safety_checker=None, requires_safety_checker=False)
        files: dict[str, str] = {}
        if base.is_dir():
            pipe = cls.from_pretrained(base, use_safetensors=not self.allow_pickle or None, **common, **extra)
            files[str(base)] = folder_fingerprint(base)
            vae_id = folder_fingerprint(base / "vae") if (base / "vae").is_dir() else files[str(base)]
        else:
            config = self._path(name, "config", ms.config) if ms.config else None
            if config is None:
                raise ModelError(f"models.{name}.base: {base.name} is a single file; `config:` is needed offline",
                                 hint="set `config:` to a local diffusers folder of the same family")
            pipe = cls.from_single_file(str(base), config=str(config), **common, **extra)
            files[str(base)] = file_fingerprint(base)
            vae_id = files[str(base)]
        comps = dict(pipe.components)
        if ms.vae:
            vae_path = self._path(name, "vae", ms.vae)
            if vae_path.is_dir():
                comps["vae"] = diffusers.AutoencoderKL.from_pretrained(vae_path, **common)
                files[str(vae_path)] = folder_fingerprint(vae_path)
            else:
                comps["vae"] = diffusers.AutoencoderKL.from_single_file(str(vae_path), **common)
                files[str(vae_path)] = file_fingerprint(vae_path)
            vae_id = files[str(vae_path)]
        if ms.scheduler:
            comps["scheduler"] = getattr(diffusers, ms.scheduler).from_config(comps["scheduler"].config)
        family = detect_family(dict(comps["unet"].config))
        if family != ms.family:
            raise ModelError(f"models.{name}: the UNet is {family}, configured as {ms.family}",
                             hint=f"set `family: {family}`")
        for comp in comps.values():
            if hasattr(comp, "to") and hasattr(comp, "parameters") and not self.low_vram:
                comp.to(self.device)
        return LoadedSet(name, ms, family, comps, files, vae_id=vae_id)

    def controlnet(self, name: str, kind: str = "openpose"):
        """A configured ControlNet (loaded once per model set)."""
        import diffusers

        loaded = self.components(name)
        with loaded.lock:
            if kind not in loaded.controlnets:
                value = getattr(loaded.modelset.controlnet, kind, None)
                if value is None:
                    raise ModelError(f"models.{name}.controlnet.{kind} is not configured",
                                     hint=f"add `controlnet: {{{kind}: PATH}}` to the model set")
                path = self._path(name, f"controlnet.{kind}", value)
                cn = diffusers.ControlNetModel.from_pretrained(path, torch_dtype=self.torch_dtype, local_files_only=True,
                                                               use_safetensors=not self.allow_pickle or None)
                if not self.low_vram:
                    cn.to(self.device)
                loaded.controlnets[kind] = cn
                loaded.files[str(path)] = folder_fingerprint(path)
            return loaded.controlnets[kind]

    def motion_adapter(self, name: str):
        """The model set's MotionAdapter (AnimateDiff), loaded once."""
        import diffusers

        loaded = self.components(name)
        with loaded.lock:
            if "motion_adapter" not in loaded.components:
                value = loaded.modelset.motion_adapter
                if not value:
                    raise ModelError(f"models.{name}.motion_adapter is not configured",
                                     hint="add `motion_adapter: PATH` (an AnimateDiff MotionAdapter folder)")
                path = self._path(name, "motion_adapter", value)
                ma = diffusers.MotionAdapter.from_pretrained(path, torch_dtype=self.torch_dtype, local_files_only=True,
                                                             use_safetensors=not self.allow_pickle or None)
                loaded.components["motion_adapter"] = ma.to(self.device) if not self.low_vram else ma
                loaded.files[str(path)] = folder_fingerprint(path)
            return loaded.components["motion_adapter"]

    # ---- pipelines
    def pipeline(self, name: str, kind: str = "controlnet", controls: tuple[str, ...] = ("openpose",)):
        """A cached pipeline of ``kind`` (see ``PIPELINES``) built from the set's shared components."""
        import diffusers

        loaded = self.components(name)
        key = (name, kind, tuple(controls) if "controlnet" in kind else ())
        with self._lock:
            if key in self._pipes:
                return self._pipes[key]
            try:
                cls_name = PIPELINES[loaded.family][kind]
            except KeyError:
                raise ModelError(f"no {kind!r} pipeline for the {loaded.family} family",
                                 hint=f"kinds: {', '.join(PIPELINES[loaded.family])}") from None
            overrides: dict[str, Any] = {}
            if "controlnet" in kind:
                cns = [self.controlnet(name, c) for c in controls]
                overrides["controlnet"] = cns[0] if len(cns) == 1 else diffusers.MultiControlNetModel(cns)
            if kind.startswith("animatediff"):
                overrides["motion_adapter"] = self.motion_adapter(name)
            pipe = self.build(name, getattr(diffusers, cls_name), **overrides)
            self._pipes[key] = pipe
            self._count("pipeline_loads")
            return pipe

    def build(self, name: str, cls, **overrides):
        """Instantiate any pipeline class from the set's components (no weight is read again).

        Each pipeline gets its own scheduler instance (schedulers hold per-call state)."""
        loaded = self.components(name)
        params = inspect.signature(cls.__init__).parameters
        kwargs = {k: v for k, v in loaded.components.items() if k in params}
        kwargs["scheduler"] = loaded.components["scheduler"].__class__.from_config(loaded.components["scheduler"].config)
        for opt in ("safety_checker", "feature_extractor", "image_encoder"):
            if opt in params and opt not in kwargs:
                kwargs[opt] = None
        if "requires_safety_checker" in params:
            kwargs["requires_safety_checker"] = False
        kwargs.update(overrides)
        pipe = cls(**kwargs)
        pipe.set_progress_bar_config(disable=True)
        if self.low_vram and self.device.startswith("cuda"):
            pipe.enable_model_cpu_offload()
        elif self.device != "cpu":
            pipe.to(self.device)
        return pipe

    def tokenizer(self, name: str):
        """The model set's (first) tokenizer, read without loading any weight."""
        loaded = self._sets.get(name)
        if loaded is not None:
            return loaded.components["tokenizer"]
        from transformers import CLIPTokenizer

        ms = self.modelset(name)
        base = self._path(name, "base", ms.base)
        folder = base if base.is_dir() else self._path(name, "config", ms.config or ms.base)
        try:
            return CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"models.{name}: cannot read the tokenizer in {folder / 'tokenizer'}: {e}") from e

    # ---- adapters (state lives on the shared modules)
    def ip_adapter(self, name: str, pipe) -> dict[str, Any]:
        """Load the set's IP-Adapter into ``pipe.unet`` once; return its parts.

        Returns ``{"image_encoder", "feature_extractor", "encoder_id", "processors"}``; the
        processors are diffusers' IP-Adapter attention processors by name (cinekit wraps them).
        """
        import torch
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        loaded = self.components(name)
        unet = pipe.unet
        with loaded.lock:
            state = getattr(unet, "_cinekit_ip", None)
            if state is not None:
                return state
            ms = loaded.modelset
            if loaded.ip_state_dict is not None:
                return self._install_ip(unet, loaded, loaded.ip_state_dict, "in-memory", "in-memory")
            if ms.ip_adapter is None:
                raise ModelError(f"models.{name}.ip_adapter is not configured",
                                 hint="add `ip_adapter: {path: ..., subfolder: models, weight: ...}` or set the "
                                      "characters' identity.ip_adapter to 0")
            folder, weight, enc = ip_adapter_paths(ms, self.root)
            if weight is None or not weight.is_file():
                raise ModelError(f"models.{name}.ip_adapter: weight file {weight} not found")
            if is_pickle(weight) and not self.allow_pickle:
                raise ModelError(f"models.{name}.ip_adapter: {weight.name} is a pickle file; refused",
                                 hint="convert it to .safetensors, or pass --allow-pickle")
            if "image_encoder" not in loaded.components or loaded.components.get("image_encoder") is None:
                if enc is None or not (enc / "config.json").is_file():
                    raise ModelError(f"models.{name}.ip_adapter: image encoder folder {enc} not found")
                encoder = CLIPVisionModelWithProjection.from_pretrained(enc, dtype=self.torch_dtype, local_files_only=True)
                encoder.to(self.device)
                size = encoder.config.image_size
                loaded.components["image_encoder"] = encoder
                loaded.components["feature_extractor"] = CLIPImageProcessor(size=size, crop_size=size)
                loaded.files[str(enc)] = folder_fingerprint(enc)
                loaded.files[str(weight)] = file_fingerprint(weight)
            if weight.suffix == ".safetensors":
                from safetensors.torch import load_file

                flat = load_file(str(weight))
            else:
                flat = torch.load(str(weight), map_location="cpu", weights_only=False)  # allowed by --allow-pickle
            sd: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
            if "image_proj" in flat and isinstance(flat["image_proj"], dict):
                sd = flat
            else:
                for k, v in flat.items():
                    head, _, rest = k.partition(".")
                    if head in sd:
                        sd[head][rest] = v
            return self._install_ip(unet, loaded, sd, str(weight), loaded.files.get(str(enc)) or folder_fingerprint(enc))

    def _install_ip(self, unet, loaded: LoadedSet, sd: dict[str, Any], weight: str, encoder_id: str) -> dict[str, Any]:
        unet._load_ip_adapter_weights([sd], low_cpu_mem_usage=False)
        unet.to(self.device)
        procs = {n: p for n, p in unet.attn_processors.items() if type(p).__name__.startswith("IPAdapter")}
        state = {
            "image_encoder": loaded.components["image_encoder"],
            "feature_extractor": loaded.components["feature_extractor"],
            "encoder_id": encoder_id,
            "weight": weight,
            "processors": procs,
            "hidden_states": type(unet.encoder_hid_proj.image_projection_layers[0]).__name__ != "ImageProjection",
        }
        unet._cinekit_ip = state
        return state

    def lora(self, pipe, path: Path) -> str:
        """Load a LoRA file into the pipeline's UNet/text encoder once; its adapter name."""
        path = Path(path)
        if is_pickle(path) and not self.allow_pickle:
            raise ModelError(f"{path.name} is a pickle file ({path.suffix}); refused",
                             hint="convert it to .safetensors, or pass --allow-pickle if you trust the file")
        if not path.is_file():
            raise ModelError(f"LoRA file {path} not found")
        loaded_map = pipe.unet.__dict__.setdefault("_cinekit_loras", {})
        key = str(path.resolve())
        if key not in loaded_map:
            adapter = "cinekit_" + hashlib.sha256(key.encode()).hexdigest()[:12]
            try:
                pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter,
                                       local_files_only=True)
            except Exception as e:  # noqa: BLE001
                raise ModelError(f"LoRA {path.name} cannot be loaded: {type(e).__name__}: {e}") from e
            loaded_map[key] = adapter
        return loaded_map[key]

    def textual_inversion(self, pipe, path: Path, token: str) -> None:
        """Load a textual-inversion embedding for ``token`` once per tokenizer."""
        path = Path(path)
        if is_pickle(path) and not self.allow_pickle:
            raise ModelError(f"{path.name} is a pickle file ({path.suffix}); refused",
                             hint="convert it to .safetensors, or pass --allow-pickle if you trust the file")
        done = pipe.tokenizer.__dict__.setdefault("_cinekit_embeddings", {})
        if token in done:
            if done[token] != str(path.resolve()):
                raise ModelError(f"token {token!r} is bound to {done[token]} and to {path}",
                                 hint="give each embedding its own token")
            return
        if hasattr(pipe, "text_encoder_2"):
            raise ModelError("textual-inversion embeddings are supported on sd15 model sets only")
        try:
            pipe.load_textual_inversion(str(path), token=token, local_files_only=True)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"embedding {path.name} cannot be loaded: {type(e).__name__}: {e}") from e
        done[token] = str(path.resolve())

    def identity(self, name: str) -> dict[str, Any]:
        """What identifies the loaded model set in output metadata."""
        loaded = self.components(name)
        return {"model": name, "family": loaded.family, "files": dict(loaded.files),
                "scheduler": type(loaded.components["scheduler"]).__name__,
                "dtype": str(self.torch_dtype).replace("torch.", ""), "device": self.device}
