# ruff: noqa: E402, E401, E702, E701, E731
"""Manual check (not collected by pytest; ~5 min, ~9 GB RAM, 2.9 GB of disk on 2 CPU cores):
a real-size SD 1.5 checkpoint and openpose ControlNet (random weights) written as single files in
the original layouts, then loaded by cinekit's loader with only its shipped configs and CLIP
tokenizer (no `config:`, no other file), weights compared, one denoising step run.

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python tests/manual_realsize_single_file.py /tmp/realsize

Measured here (2026-12-02): 1130 tensors written in 165 s; `check_model_set` clean; loaded in
44 s as StableDiffusionControlNetPipeline + PNDMScheduler; weights equal; tokens of "a photo of a
cat" = 49406 320 1125 539 320 2368 49407; a finite 64x64 image; 281 s in all.
"""
import gc
import json
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(2)
DIR = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/realsize")
DIR.mkdir(parents=True, exist_ok=True)
t0 = time.time()
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from cinekit.engines.single_file import SHIPPED
from cinekit.testing import ldm_layout as L


def cfg(p): return json.loads((SHIPPED / p).read_text())
def filled(model, seed):
    g = torch.Generator().manual_seed(seed)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * 0.02)
    return model.half()
sd = {}
with torch.device("meta"):
    unet = UNet2DConditionModel.from_config(cfg("sd15/unet/config.json"))
unet = filled(unet, 1)
probe = {k: v.clone() for k, v in list(unet.state_dict().items())[:5]}
sd.update(L.unet_to_ldm(unet.state_dict(), dict(unet.config))); del unet
with torch.device("meta"):
    vae = AutoencoderKL.from_config(cfg("sd15/vae/config.json"))
vae = filled(vae, 2); sd.update(L.vae_to_ldm(vae.state_dict(), dict(vae.config))); del vae
with torch.device("meta"):
    te = CLIPTextModel(CLIPTextConfig(**cfg("sd15/text_encoder/config.json")))
te = filled(te, 3); sd.update(L.clip_to_ldm(te.state_dict())); del te
save_file({k: v.contiguous() for k, v in sd.items()}, DIR / "real-sd15.safetensors"); n = len(sd); del sd; gc.collect()
with torch.device("meta"):
    cn = ControlNetModel.from_config(cfg("controlnet_sd15/config.json"))
cn = filled(cn, 4)
save_file({k: v.contiguous() for k, v in L.unet_to_ldm(cn.state_dict(), dict(cn.config), prefix="control_model.", controlnet=True).items()},
          DIR / "real-cn.safetensors"); del cn; gc.collect()
print(f"wrote {n} tensors in {time.time()-t0:.0f} s", flush=True)

from cinekit.engines.loader import ModelLoader
from cinekit.engines.model_check import check_model_set
from cinekit.spec.models import ModelSet

ms = ModelSet(base="real-sd15.safetensors", controlnet={"openpose": "real-cn.safetensors"})
print("check:", check_model_set("real", ms, DIR))
t = time.time()
loader = ModelLoader({"real": ms}, DIR, device="cpu")
pipe = loader.pipeline("real", "controlnet")
print(f"loaded in {time.time()-t:.0f} s", type(pipe).__name__, type(pipe.scheduler).__name__, flush=True)
got = pipe.unet.state_dict()
for k, v in probe.items():
    assert torch.equal(got[k], v.float()), k
print("unet weights equal the written ones:", list(probe)[:2])
print("tokens:", pipe.tokenizer("a photo of a cat").input_ids)
from PIL import Image

out = pipe("a photo of a cat", image=Image.new("RGB", (64, 64)), num_inference_steps=1, height=64, width=64,
           output_type="np").images
print("image", out.shape, bool(torch.isfinite(torch.from_numpy(out)).all()), f"total {time.time()-t0:.0f} s")
for f in ("real-sd15.safetensors", "real-cn.safetensors"):
    (DIR / f).unlink()
