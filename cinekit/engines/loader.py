"""Offline model loading shared by the diffusers still and clip engines.

Everything is loaded from local files (``HF_HUB_OFFLINE=1``, ``local_files_only=True``):
a diffusers folder, one community ``.safetensors`` file (checkpoint, ControlNet, motion module,
VAE: architecture detected from its keys, configs and tokenizer shipped with cinekit, see
``cinekit.engines.single_file``), or a hub id already present in the local Hugging Face cache. Pickle formats are refused unless the
run allows them. Components are loaded once per model set; pipelines of any kind are built
from those shared components and cached by ``(model set, kind, controls)``, so N shots on one
model are one load (``runtime.stats["pipeline_loads"]``).

``check_model_set`` (``cinekit.engines.model_check``) verifies paths, formats and family
without loading any weight. Split by responsibility: the device and dtype
(``cinekit.engines.devices``), file identities (``cinekit.engines.fingerprint``), adapters
loaded into the shared modules (``cinekit.engines.adapters``); this module loads the
components and builds the pipelines.
"""

from __future__ import annotations

import inspect
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinekit.engines import adapters, single_file
from cinekit.engines.devices import pick_device, pick_dtype
from cinekit.engines.fingerprint import file_fingerprint, folder_fingerprint
from cinekit.engines.model_check import (
    HUB_ID,
    check_model_set,
    detect_family,
    is_pickle,
    resolve_model_path,
)
from cinekit.errors import ModelError, UserError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

if TYPE_CHECKING:
    from cinekit.runtime import Runtime
    from cinekit.spec.models import ModelSet


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

    def _override(self, name: str) -> Path | None:
        """The model set's ``config:`` folder (architecture configs for its single files), if any."""
        ms = self.modelset(name)
        return self._path(name, "config", ms.config) if ms.config else None

    def _arch(self, name: str, key: str, path: Path):
        try:
            return single_file.inspect_file(path, allow_pickle=self.allow_pickle)
        except ModelError as e:
            raise ModelError(f"models.{name}.{key}: {e.message}", hint=e.hint) from None

    def _load_components(self, name: str, ms: "ModelSet") -> LoadedSet:
        import diffusers

        base = self._path(name, "base", ms.base)
        cls_name = "StableDiffusionXLPipeline" if ms.family == "sdxl" else "StableDiffusionPipeline"
        cls = getattr(diffusers, cls_name)
        common = dict(torch_dtype=self.torch_dtype, local_files_only=True)
        extra = {} if ms.family == "sdxl" else dict(safety_checker=None, requires_safety_checker=False)
        files: dict[str, str] = {}
        vae = vae_id = None
        if ms.vae:      # loaded first: a checkpoint without a baked VAE needs it to build its pipeline
            vae_path = self._path(name, "vae", ms.vae)
            if vae_path.is_dir():
                vae = diffusers.AutoencoderKL.from_pretrained(vae_path, **common)
                files[str(vae_path)] = folder_fingerprint(vae_path)
            else:
                vae = single_file.load_vae(vae_path, family=ms.family, override=self._override(name),
                                           torch_dtype=self.torch_dtype)
                files[str(vae_path)] = file_fingerprint(vae_path)
            vae_id = files[str(vae_path)]
        if base.is_dir():
            pipe = cls.from_pretrained(base, use_safetensors=not self.allow_pickle or None, **common, **extra)
            files[str(base)] = folder_fingerprint(base)
            vae_id = vae_id or (folder_fingerprint(base / "vae") if (base / "vae").is_dir() else files[str(base)])
        else:
            arch = self._arch(name, "base", base)
            pipe = single_file.load_checkpoint(base, arch, override=self._override(name),
                                               torch_dtype=self.torch_dtype, vae=vae)
            files[str(base)] = file_fingerprint(base)
            vae_id = vae_id or files[str(base)]
        comps = dict(pipe.components)
        if vae is not None:
            comps["vae"] = vae
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
                if path.is_file():      # one community file: config chosen from its keys
                    arch = self._arch(name, f"controlnet.{kind}", path)
                    cn = single_file.load_controlnet(path, arch, override=self._override(name),
                                                     torch_dtype=self.torch_dtype)
                    loaded.files[str(path)] = file_fingerprint(path)
                else:
                    cn = diffusers.ControlNetModel.from_pretrained(path, torch_dtype=self.torch_dtype, local_files_only=True,
                                                                   use_safetensors=not self.allow_pickle or None)
                    loaded.files[str(path)] = folder_fingerprint(path)
                if not self.low_vram:
                    cn.to(self.device)
                loaded.controlnets[kind] = cn
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
                                     hint="add `motion_adapter: PATH` (an AnimateDiff motion module file or folder)")
                path = self._path(name, "motion_adapter", value)
                if path.is_file():      # mm_sd_v15_v2.safetensors & co: version read from its keys
                    arch = self._arch(name, "motion_adapter", path)
                    ma = single_file.load_motion_adapter(path, arch, override=self._override(name),
                                                         torch_dtype=self.torch_dtype)
                    loaded.files[str(path)] = file_fingerprint(path)
                else:
                    ma = diffusers.MotionAdapter.from_pretrained(path, torch_dtype=self.torch_dtype, local_files_only=True,
                                                                 use_safetensors=not self.allow_pickle or None)
                    loaded.files[str(path)] = folder_fingerprint(path)
                loaded.components["motion_adapter"] = ma.to(self.device) if not self.low_vram else ma
            return loaded.components["motion_adapter"]

    def motion_config(self, name: str) -> dict[str, Any]:
        """The motion adapter's config (frame window ``motion_max_seq_length`` ...) without loading it."""
        import json

        value = self.modelset(name).motion_adapter
        if not value:
            raise ModelError(f"models.{name}.motion_adapter is not configured")
        path = self._path(name, "motion_adapter", value)
        if path.is_file():
            return single_file.motion_config(path, self._arch(name, "motion_adapter", path), self._override(name))
        try:
            return json.loads((path / "config.json").read_text())
        except (OSError, ValueError) as e:
            raise ModelError(f"models.{name}.motion_adapter: cannot read its config.json ({e})") from e

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
        if base.is_file():      # a single-file checkpoint: the tokenizer it is loaded with
            return single_file.tokenizer_for(self._arch(name, "base", base), self._override(name))
        try:
            return CLIPTokenizer.from_pretrained(base / "tokenizer", local_files_only=True)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"models.{name}: cannot read the tokenizer in {base / 'tokenizer'}: {e}") from e

    # ---- adapters (state lives on the shared modules; cinekit.engines.adapters)
    def ip_adapter(self, name: str, pipe) -> dict[str, Any]:
        """Load the set's IP-Adapter into ``pipe.unet`` once; return its parts
        (``{"image_encoder", "feature_extractor", "encoder_id", "processors"}``)."""
        return adapters.load_ip_adapter(self, name, pipe)

    def lora(self, pipe, path: Path) -> str:
        """Load a LoRA file into the pipeline's UNet/text encoder once; its adapter name."""
        return adapters.load_lora(self, pipe, path)

    def textual_inversion(self, pipe, path: Path, token: str) -> None:
        """Load a textual-inversion embedding for ``token`` once per tokenizer."""
        adapters.load_textual_inversion(self, pipe, path, token)

    def identity(self, name: str) -> dict[str, Any]:
        """What identifies the loaded model set in output metadata."""
        loaded = self.components(name)
        return {"model": name, "family": loaded.family, "files": dict(loaded.files),
                "scheduler": type(loaded.components["scheduler"]).__name__,
                "dtype": str(self.torch_dtype).replace("torch.", ""), "device": self.device}
