"""Identity similarity: image embeddings (CLIP vision or DINOv2 from a local folder), cosine scores.

The embedding model is the ``embedder:`` folder of cinekit.yaml, loaded offline
(``local_files_only``) through transformers: ``CLIPVisionModelWithProjection`` for a CLIP
(vision) folder (``image_embeds``), ``AutoModel`` for DINOv2 (the pooled CLS token).
torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from cinekit.errors import ModelError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _model_type(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: not a transformers model folder (config.json: {exc})",
                         hint="`embedder:` must name a local CLIP vision or DINOv2 folder") from None
    return str(config.get("model_type", ""))


class Embedder:
    """One loaded embedding model; ``embed(images)`` -> L2-normalised ``(N, D)`` float32 rows."""

    def __init__(self, folder: Path | str, device: str = "cpu"):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ModelError(f"embedder folder not found: {self.folder}",
                             hint="set `embedder:` in cinekit.yaml to a local CLIP vision or DINOv2 folder")
        self.device = device
        self.kind = _model_type(self.folder)
        self._model = None
        self._processor = None

    def _load(self):
        if self._model is not None:
            return
        import transformers

        try:
            if self.kind.startswith("clip"):
                model = transformers.CLIPVisionModelWithProjection.from_pretrained(self.folder, local_files_only=True)
            elif self.kind == "dinov2":
                model = transformers.AutoModel.from_pretrained(self.folder, local_files_only=True)
            else:
                raise ModelError(f"{self.folder}: model type {self.kind!r} is not a supported embedder",
                                 hint="use a CLIP (vision) or DINOv2 model folder")
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the embedder from {self.folder}: {exc}") from None
        self._model = model.eval().to(self.device)
        try:
            self._processor = transformers.AutoImageProcessor.from_pretrained(self.folder, local_files_only=True)
        except (OSError, ValueError):
            self._processor = None  # no preprocessor_config.json: resize + normalise ourselves

    def _pixels(self, images: Sequence[np.ndarray]):
        import torch

        if self._processor is not None:
            return self._processor(images=[np.array(np.asarray(i)[..., :3]) for i in images], return_tensors="pt")["pixel_values"]
        from PIL import Image

        size = int(getattr(self._model.config, "image_size", 224))
        mean, std = (CLIP_MEAN, CLIP_STD) if self.kind.startswith("clip") else (IMAGENET_MEAN, IMAGENET_STD)
        batch = []
        for img in images:
            im = Image.fromarray(np.ascontiguousarray(np.asarray(img)[..., :3], dtype=np.uint8))
            arr = np.asarray(im.resize((size, size), Image.BICUBIC), np.float32) / 255.0
            batch.append((arr - np.array(mean, np.float32)) / np.array(std, np.float32))
        return torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous()

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """``images``: RGB ``(H, W, 3)`` uint8 arrays (any size) -> ``(N, D)`` unit vectors."""
        import torch

        self._load()
        pixels = self._pixels(images).to(self.device, dtype=next(self._model.parameters()).dtype)
        with torch.inference_mode():
            out = self._model(pixel_values=pixels)
            vec = out.image_embeds if hasattr(out, "image_embeds") else out.pooler_output
        vec = vec.float().cpu().numpy()
        return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of rows: ``(N, D) x (M, D) -> (N, M)``."""
    a = np.atleast_2d(a).astype(np.float64)
    b = np.atleast_2d(b).astype(np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def identity_cosine(embedder: Embedder, reference: np.ndarray, crops: Sequence[np.ndarray]) -> float:
    """Mean cosine between the reference crop's embedding and each output crop's (sampled frames)."""
    vecs = embedder.embed([reference, *crops])
    return float(cosine(vecs[:1], vecs[1:]).mean())


def cross_shot(embeddings: dict[str, np.ndarray]) -> dict[str, float]:
    """For each shot, the mean cosine of its (mean) embedding to every other shot's; needs two shots."""
    keys = list(embeddings)
    if len(keys) < 2:
        return {}
    mat = cosine(np.stack([np.atleast_2d(embeddings[k]).mean(axis=0) for k in keys]),
                 np.stack([np.atleast_2d(embeddings[k]).mean(axis=0) for k in keys]))
    n = len(keys)
    return {k: float((mat[i].sum() - mat[i, i]) / (n - 1)) for i, k in enumerate(keys)}
