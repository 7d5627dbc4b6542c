"""A tiny SD 1.5 folder (UNet, VAE, CLIP text encoder, byte tokenizer: no ControlNet, adapters or
motion module, ~1 s to write) and a one-character project on it, for the `cinekit train` tests."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.project_factory import RIG, draw_figure  # noqa: E402


def write_tiny_sd15(folder: Path) -> Path:
    from diffusers import StableDiffusionPipeline

    from cinekit.testing.tiny import (
        make_tokenizer,
        tiny_scheduler,
        tiny_text_encoder,
        tiny_unet,
        tiny_vae,
    )

    tokenizer, vocab = make_tokenizer(folder / "_tok", "bytes")
    pipe = StableDiffusionPipeline(vae=tiny_vae(), text_encoder=tiny_text_encoder(vocab=vocab), tokenizer=tokenizer,
                                   unet=tiny_unet(), scheduler=tiny_scheduler(), safety_checker=None,
                                   feature_extractor=None, image_encoder=None, requires_safety_checker=False)
    pipe.save_pretrained(folder / "sd15", safe_serialization=True)
    return folder / "sd15"


CHARACTER = """\
# ann: the test character (this comment must survive `cinekit train --write`)
name: ann
description: "1girl, red arms, blue dress"
references:
  - {image: refs/ann.png, view: front}   # front art
  - {image: refs/ann_side.png, view: side}
rig:
  joints: {JOINTS}
identity: {ip_adapter: 0.0, reference_attention: 0.0}
"""


def write_train_project(root: Path, base: Path, *, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cinekit.yaml").write_text(
        "output: renders\ndefaults: {size: [64, 64]}\n"
        f"models:\n  tiny: {{family: sd15, base: {os.path.relpath(base, root)}}}\n")
    draw_figure(root / "characters" / "refs" / "ann.png", colour=(220, 40, 40))
    draw_figure(root / "characters" / "refs" / "ann_side.png", colour=(200, 60, 40))
    joints = "{" + ", ".join(f"{k}: {v}" for k, v in RIG.items()) + "}"
    (root / "characters" / "ann.yaml").write_text(CHARACTER.replace("{JOINTS}", joints) + extra)
    (root / "shots").mkdir(exist_ok=True)
    (root / "shots" / "ep.yaml").write_text("shots:\n  - id: s1\n    prompt: test\n")
    return root
