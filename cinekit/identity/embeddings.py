"""Reference encodings of the identity core, computed once and cached on disk.

- IP-Adapter image embeddings of each reference, keyed by (reference sha256, image encoder
  fingerprint, kind), stored as ``.safetensors`` under ``<cache_dir>/ip-embeds``.
- VAE latents of each reference for reference attention, keyed by (reference sha256, VAE
  fingerprint, size), under ``<cache_dir>/ref-latents``.

``runtime.stats["reference_encodings"]`` / ``["reference_latent_encodings"]`` count actual
encoder runs: a second run over the same references counts 0.

With several references (front / three-quarter / side / back), a character's IP embedding is
the average of its references' embeddings weighted by how close each reference's facing is to
the pose's view (``view_weights``); reference attention uses the single nearest view.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from cinekit.identity.core import Identity, Reference

VIEW_ANGLE = {"front": 0.0, "three_quarter": 45.0, "side": 90.0, "back": 180.0}
BACKGROUND = (255, 255, 255)


def view_weights(views: list[str], view: str) -> np.ndarray:
    """Weights (sum 1) of references facing ``views`` for a pose facing ``view``: cos^2 of the angle, clipped at 0."""
    target = VIEW_ANGLE.get(view, 0.0)
    w = np.array([max(math.cos(math.radians(VIEW_ANGLE.get(v, 0.0) - target)), 0.0) ** 2 for v in views])
    w[w < 1e-9] = 0.0
    if w.sum() == 0:  # e.g. only a back view for a front pose: take the nearest facing
        d = [abs(VIEW_ANGLE.get(v, 0.0) - target) for v in views]
        w = np.zeros(len(views))
        w[int(np.argmin(d))] = 1.0
    return w / w.sum()


def reference_image(ref: Reference, size: int | tuple[int, int], background=BACKGROUND, margin: float = 0.08) -> Image.Image:
    """The figure cropped to its mask (plus ``margin``), on ``background``, centred in ``size`` (W, H)."""
    w_out, h_out = (size, size) if isinstance(size, int) else size
    ys, xs = np.nonzero(ref.mask)
    if len(xs) == 0:
        crop = ref.rgba
    else:
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        m = int(round(margin * max(x1 - x0, y1 - y0)))
        crop = ref.rgba[max(y0 - m, 0):y1 + m, max(x0 - m, 0):x1 + m]
    fig = Image.fromarray(crop, "RGBA")
    scale = min(w_out / fig.width, h_out / fig.height)
    fig = fig.resize((max(1, round(fig.width * scale)), max(1, round(fig.height * scale))), Image.LANCZOS)
    canvas = Image.new("RGBA", (w_out, h_out), (*background, 255))
    canvas.alpha_composite(fig, ((w_out - fig.width) // 2, (h_out - fig.height) // 2))
    return canvas.convert("RGB")


def _save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().to("cpu", torch.float32).contiguous() for k, v in tensors.items()}, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path) -> dict[str, torch.Tensor] | None:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception:  # noqa: BLE001 - a broken cache file is recomputed
        return None


class ReferenceEncoder:
    """IP-Adapter image embeddings of references (the image encoder runs once per reference, ever)."""

    def __init__(self, cache_dir: Path | None, image_encoder, feature_extractor, encoder_id: str,
                 hidden_states: bool = False, count: Callable[[str], None] | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.encoder = image_encoder
        self.features = feature_extractor
        self.encoder_id = encoder_id
        self.hidden_states = hidden_states
        self._count = count or (lambda key: None)
        self._memory: dict[str, torch.Tensor] = {}

    @property
    def kind(self) -> str:
        return "hidden" if self.hidden_states else "embeds"

    def _path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / "ip-embeds" / key[:2] / f"{key}.safetensors"

    def _encode(self, image: Image.Image | None) -> torch.Tensor:
        param = next(self.encoder.parameters())
        if image is None:
            size = self.encoder.config.image_size
            pixels = torch.zeros(1, 3, size, size)
        else:
            pixels = self.features(image, return_tensors="pt").pixel_values
        pixels = pixels.to(device=param.device, dtype=param.dtype)
        with torch.no_grad():
            if self.hidden_states:
                out = self.encoder(pixels, output_hidden_states=True).hidden_states[-2]
            else:
                out = self.encoder(pixels).image_embeds
        return out.to("cpu", torch.float32)

    def _cached(self, key: str, compute: Callable[[], torch.Tensor], meta: dict[str, str]) -> torch.Tensor:
        if key in self._memory:
            return self._memory[key]
        path = self._path(key)
        value = None
        if path is not None and path.is_file():
            loaded = _load(path)
            value = loaded.get("embedding") if loaded else None
        if value is None:
            value = compute()
            self._count("reference_encodings")
            if path is not None:
                _save(path, {"embedding": value}, meta)
        self._memory[key] = value
        return value

    def embedding(self, ref: Reference) -> torch.Tensor:
        """``(1, dim)`` image embedding (or ``(1, tokens, dim)`` hidden states for IP-Adapter Plus)."""
        key = hashlib.sha256(f"{ref.sha256}|{self.encoder_id}|{self.kind}".encode()).hexdigest()
        return self._cached(key, lambda: self._encode(reference_image(ref, 224)),
                            {"reference": ref.sha256, "encoder": self.encoder_id, "kind": self.kind,
                             "source": str(ref.path)})

    def unconditional(self) -> torch.Tensor:
        """The negative embedding: zeros (or the encoding of a black image for hidden-state adapters)."""
        if not self.hidden_states:
            dim = self.encoder.config.projection_dim
            return torch.zeros(1, dim)
        key = hashlib.sha256(f"zeros|{self.encoder_id}|{self.kind}".encode()).hexdigest()
        return self._cached(key, lambda: self._encode(None), {"encoder": self.encoder_id, "kind": "uncond"})

    def character(self, identity: Identity, view: str) -> tuple[torch.Tensor, dict[str, float]]:
        """A character's embedding for a pose facing ``view``: view-weighted mean over its references."""
        refs = identity.references
        weights = view_weights([r.view for r in refs], view)
        total = None
        used: dict[str, float] = {}
        for ref, w in zip(refs, weights, strict=True):
            if w <= 0:
                continue
            e = self.embedding(ref) * float(w)
            total = e if total is None else total + e
            used[str(ref.path.name)] = round(float(w), 4)
        return total, used


class ReferenceLatents:
    """Scaled VAE latents of references for reference attention (encoded once, cached on disk)."""

    def __init__(self, cache_dir: Path | None, vae, vae_id: str, count: Callable[[str], None] | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.vae = vae
        self.vae_id = vae_id
        self._count = count or (lambda key: None)
        self._memory: dict[str, torch.Tensor] = {}

    def latent(self, ref: Reference, size: tuple[int, int]) -> torch.Tensor:
        """``(1, C, H/f, W/f)`` latent of the reference figure centred in ``size`` (W, H) pixels."""
        key = hashlib.sha256(f"{ref.sha256}|{self.vae_id}|{size[0]}x{size[1]}".encode()).hexdigest()
        if key in self._memory:
            return self._memory[key]
        path = self.cache_dir / "ref-latents" / key[:2] / f"{key}.safetensors" if self.cache_dir else None
        value = None
        if path is not None and path.is_file():
            loaded = _load(path)
            value = loaded.get("latent") if loaded else None
        if value is None:
            value = self._encode(reference_image(ref, size))
            self._count("reference_latent_encodings")
            if path is not None:
                _save(path, {"latent": value}, {"reference": ref.sha256, "vae": self.vae_id, "size": f"{size[0]}x{size[1]}"})
        self._memory[key] = value
        return value

    def _encode(self, image: Image.Image) -> torch.Tensor:
        param = next(self.vae.parameters())
        x = torch.from_numpy(np.asarray(image, np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        x = x.to(device=param.device, dtype=param.dtype)
        with torch.no_grad():
            dist = self.vae.encode(x).latent_dist
        z = dist.mean
        cfg: Any = self.vae.config
        shift = getattr(cfg, "shift_factor", None) or 0.0
        return ((z - shift) * cfg.scaling_factor).to("cpu", torch.float32)
