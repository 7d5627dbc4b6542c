"""Adapters loaded into a model set's shared modules: IP-Adapter, LoRA, textual inversion.

Split from ``cinekit.engines.loader`` (which keeps ``ModelLoader.ip_adapter`` / ``lora`` /
``textual_inversion`` as the entry points): the state of each adapter lives on the module it
was loaded into (``unet._cinekit_ip``, ``unet._cinekit_loras``, ``tokenizer._cinekit_embeddings``),
so every pipeline built from the same components sees it, and each is loaded once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinekit.engines.fingerprint import file_fingerprint, folder_fingerprint
from cinekit.engines.model_check import ip_adapter_paths, is_pickle
from cinekit.errors import ModelError

if TYPE_CHECKING:
    from cinekit.engines.loader import LoadedSet, ModelLoader


def load_ip_adapter(loader: "ModelLoader", name: str, pipe) -> dict[str, Any]:
    """Load the set's IP-Adapter into ``pipe.unet`` once; return its parts.

    Returns ``{"image_encoder", "feature_extractor", "encoder_id", "processors"}``; the
    processors are diffusers' IP-Adapter attention processors by name (cinekit wraps them).
    """
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    loaded = loader.components(name)
    unet = pipe.unet
    with loaded.lock:
        state = getattr(unet, "_cinekit_ip", None)
        if state is not None:
            return state
        ms = loaded.modelset
        if loaded.ip_state_dict is not None:
            return install_ip(loader, unet, loaded, loaded.ip_state_dict, "in-memory", "in-memory")
        if ms.ip_adapter is None:
            raise ModelError(f"models.{name}.ip_adapter is not configured",
                             hint="add `ip_adapter: {path: ..., subfolder: models, weight: ...}` or set the "
                                  "characters' identity.ip_adapter to 0")
        folder, weight, enc = ip_adapter_paths(ms, loader.root)
        if weight is None or not weight.is_file():
            raise ModelError(f"models.{name}.ip_adapter: weight file {weight} not found")
        if is_pickle(weight) and not loader.allow_pickle:
            raise ModelError(f"models.{name}.ip_adapter: {weight.name} is a pickle file; refused",
                             hint="convert it to .safetensors, or pass --allow-pickle")
        if "image_encoder" not in loaded.components or loaded.components.get("image_encoder") is None:
            if enc is None or not (enc / "config.json").is_file():
                raise ModelError(f"models.{name}.ip_adapter: image encoder folder {enc} not found")
            encoder = CLIPVisionModelWithProjection.from_pretrained(enc, dtype=loader.torch_dtype, local_files_only=True)
            encoder.to(loader.device)
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
        return install_ip(loader, unet, loaded, sd, str(weight), loaded.files.get(str(enc)) or folder_fingerprint(enc))


def install_ip(loader: "ModelLoader", unet, loaded: "LoadedSet", sd: dict[str, Any], weight: str, encoder_id: str) -> dict[str, Any]:
    unet._load_ip_adapter_weights([sd], low_cpu_mem_usage=False)
    unet.to(loader.device)
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


def load_lora(loader: "ModelLoader", pipe, path: Path) -> str:
    """Load a LoRA file into the pipeline's UNet/text encoder once; its adapter name."""
    path = Path(path)
    if is_pickle(path) and not loader.allow_pickle:
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


def load_textual_inversion(loader: "ModelLoader", pipe, path: Path, token: str) -> None:
    """Load a textual-inversion embedding for ``token`` once per tokenizer."""
    path = Path(path)
    if is_pickle(path) and not loader.allow_pickle:
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
