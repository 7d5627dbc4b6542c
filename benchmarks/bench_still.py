"""The diffusers still engine vs a hand-written diffusers loop doing the same work.

Usage: python benchmarks/bench_still.py [--sizes tiny,sd15] [--reps N] [--out bench-results/still.json]
(or ``python -m benchmarks still``).

Both sides run the same models and the same work per image: two characters, ControlNet
openpose, IP-Adapter with cached image embeddings and regional masks, reference attention
(cinekit's processors: the hand loop attaches them too, since diffusers has none), CFG, DDIM,
VAE decode to uint8. The engine side is what ``cinekit still`` runs per shot
(``check_inputs`` + ``render``: identity lookups, control map drawing, region masks, adapter
state, the pipeline call). The hand loop has its inputs prepared once, outside the timing.

Sizes: ``tiny`` (the tiny offline set, from disk through the real loader) and ``sd15``
(SD 1.5-sized UNet / ControlNet / VAE / CLIP-L text encoder with random weights, built in
process and injected into the loader; a ViT-B-sized image encoder), 256x256, 4 steps.
Reported: median seconds per image on each side, their ratio, the median of the per-pair
ratios (the verdict: <= 1.05), whether the two outputs are identical (required), and the share of the output change inside character A's region when
A's reference art is swapped (reported, not gated: random weights mix globally).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

SIZE, STEPS, GUIDANCE = 256, 4, 5.0
from tests.project_factory import RIG  # noqa: E402  (the test figure's COCO-18 rig, 200x400)


# --------------------------------------------------------------------------- project
def _figure(path: Path, colour) -> None:
    im = Image.new("RGBA", (200, 400), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    j = {k: tuple(v) for k, v in RIG.items()}
    for a, b in [("neck", "right_wrist"), ("neck", "left_wrist"), ("right_hip", "right_ankle"),
                 ("left_hip", "left_ankle")]:
        d.line([j[a], j[b]], fill=colour + (255,), width=20)
    d.polygon([j["right_shoulder"], j["left_shoulder"], j["left_hip"], j["right_hip"]], fill=(60, 60, 160, 255))
    d.ellipse([70, 15, 130, 85], fill=(250, 220, 190, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def make_project(root: Path, models: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cinekit.yaml").write_text(yaml.safe_dump({"output": "renders", "models": models}))
    joints = ", ".join(f"{k}: {v}" for k, v in RIG.items())
    for name, colour in (("ann", (220, 40, 40)), ("ann2", (240, 240, 30)), ("bob", (40, 40, 220))):
        _figure(root / "characters" / "refs" / f"{name}.png", colour)
        (root / "characters" / f"{name}.yaml").write_text(
            f"name: {name}\ndescription: {name}\nreferences:\n  - {{image: refs/{name}.png, view: front}}\n"
            f"rig:\n  joints: {{{joints}}}\nidentity: {{ip_adapter: 0.8, reference_attention: 0.8}}\n")
    (root / "shots").mkdir(exist_ok=True)
    (root / "shots" / "ep.yaml").write_text("shots:\n  - id: s1\n    prompt: test\n")
    return root


def make_job(names, model: str, seed: int = 0):
    from cinekit.job import Job, JobCharacter
    from cinekit.pose.skeleton import JOINTS

    rig = np.array([RIG[j] for j in JOINTS], dtype=np.float64)
    xs = [SIZE * 0.28, SIZE * 0.72]
    scale = SIZE * 0.85 / 400
    pose = np.stack([(rig - [100, 0]) * scale + [x, SIZE * 0.05] for x in xs])[None]
    chars = tuple(JobCharacter(name=n, spec_path="", position=x / SIZE) for n, x in zip(names, xs, strict=True))
    return Job(shot_id="s1", shotlist="shots/ep.yaml", kind="still", engine="diffusers", width=SIZE, height=SIZE,
               fps=12.0, frames=1, seed=seed, steps=STEPS, guidance=GUIDANCE, prompt="two heroes on a street",
               negative="", characters=chars, pose=pose, output="ep/s1", model=model)


# --------------------------------------------------------------------------- models
def sd15_components():
    """SD 1.5-sized components with random weights (no download)."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    from cinekit.testing.tiny import ip_adapter_state_dict, tiny_scheduler, write_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
    controlnet = ControlNetModel.from_unet(unet, load_weights_from_unet=False).eval()
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4,
                        sample_size=512).eval()
    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                        num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
                                        projection_dim=768)).eval()
    tok_dir = Path(tempfile.mkdtemp()) / "tokenizer"
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(tok_dir), local_files_only=True)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=768, intermediate_size=3072,
                                                             num_hidden_layers=12, num_attention_heads=12,
                                                             image_size=224, patch_size=32,
                                                             projection_dim=1024)).eval()
    flat = ip_adapter_state_dict(unet, image_embed_dim=1024)
    sd = {"image_proj": {}, "ip_adapter": {}}
    for k, v in flat.items():
        head, _, rest = k.partition(".")
        sd[head][rest] = v
    comps = {"unet": unet, "vae": vae, "text_encoder": text, "tokenizer": tokenizer, "scheduler": tiny_scheduler(),
             "safety_checker": None, "feature_extractor": None, "image_encoder": None}
    ip = {"state_dict": sd, "image_encoder": encoder, "feature_extractor": CLIPImageProcessor(size=224, crop_size=224)}
    return comps, controlnet, ip


def runtime_for(size: str, work: Path):
    from cinekit.engines.loader import ModelLoader
    from cinekit.runtime import Runtime
    from cinekit.spec.models import ModelSet
    from cinekit.spec.project import load_project
    from cinekit.testing.tiny import modelset_dict, write_tiny_models

    if size == "tiny":
        models = write_tiny_models(work / "models", sdxl=False)
        root = make_project(work / "proj", {"m": modelset_dict(models, work / "proj", motion=False)})
        project = load_project(root)
        return Runtime.for_project(project, device="cpu", cache_dir=work / "cache")
    root = make_project(work / "proj", {})
    project = load_project(root)
    rt = Runtime.for_project(project, device="cpu", cache_dir=work / "cache")
    loader = ModelLoader({}, root, device="cpu", stats=rt.stats)
    comps, cn, ip = sd15_components()
    ms = ModelSet(base="<in-memory>", controlnet={"openpose": "<in-memory>"}, ip_adapter={"path": "<in-memory>"})
    loader.register("m", ms, comps, controlnets={"openpose": cn}, ip_adapter=ip, identity="sd15-random")
    rt.loader = loader
    return rt


# --------------------------------------------------------------------------- the hand loop
def prepare_hand(engine, job):
    """Everything the hand loop needs, computed once (with cinekit's helpers, outside the timing)."""
    from cinekit.identity.reference_attention import (
        CharacterAttention,
        IdentityAttention,
        pose_region_masks,
    )
    from cinekit.pose.draw import draw_control_frames

    still = engine.engine("still")
    pipe = still.loader.pipeline(job.model, "controlnet")
    ids = [engine.runtime.identities.get(c.name) for c in job.characters]
    ip = still.loader.ip_adapter(job.model, pipe)
    enc = still._encoder(ip)
    pos = torch.stack([enc.character(i, c.view)[0] for i, c in zip(ids, job.characters, strict=True)], dim=1)
    neg = enc.unconditional().unsqueeze(1).expand_as(pos)
    ref_lat, _ = still._reference_latents(pipe, job, ids, pipe.vae_scale_factor)
    g = torch.Generator("cpu").manual_seed((job.seed + 0x5EED) % (2**63))
    noise = torch.randn(ref_lat.shape, generator=g)
    masks = torch.from_numpy(pose_region_masks(job.pose[:1], job.width, job.height, [0, 0]).astype(np.float32))
    settings = [CharacterAttention(reference=i.spec.identity.reference_attention, style_fidelity=i.spec.identity.style_fidelity,
                                   ip_scale=i.spec.identity.ip_adapter) for i in ids]
    f = pipe.vae_scale_factor

    def controller():
        return IdentityAttention(characters=[CharacterAttention(**vars(s)) for s in settings],
                                 latent_hw=(job.height // f, job.width // f), masks=masks, do_cfg=True,
                                 reference_latents=ref_lat, reference_noise=noise, scheduler=pipe.scheduler,
                                 ip_processors=ip["processors"])

    control = draw_control_frames(job.pose[:1], job.width, job.height)[0]
    return {"pipe": pipe, "embeds": torch.cat([neg, pos]), "controller": controller, "control": control}


@torch.inference_mode()
def hand_loop(prep, job) -> np.ndarray:
    """A plain diffusers denoising loop: prompt encoding, ControlNet, UNet, CFG, DDIM, VAE."""
    pipe = prep["pipe"]
    tok, text_encoder, unet, cn, vae, sched = (pipe.tokenizer, pipe.text_encoder, pipe.unet, pipe.controlnet,
                                               pipe.vae, pipe.scheduler)

    def encode(text):
        ids = tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
        return text_encoder(ids.input_ids)[0]

    context = torch.cat([encode(job.negative), encode(job.prompt)])
    control = torch.from_numpy(prep["control"].astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    control = torch.cat([control, control])
    g = torch.Generator("cpu").manual_seed(job.seed)
    f = pipe.vae_scale_factor
    latents = torch.randn((1, 4, job.height // f, job.width // f), generator=g) * sched.init_noise_sigma
    sched.set_timesteps(job.steps)
    added = {"image_embeds": [prep["embeds"]]}
    with prep["controller"]().attached(unet):
        for t in sched.timesteps:
            x = sched.scale_model_input(torch.cat([latents, latents]), t)
            down, mid = cn(x, t, encoder_hidden_states=context, controlnet_cond=control, conditioning_scale=1.0,
                           return_dict=False)
            eps = unet(x, t, encoder_hidden_states=context, down_block_additional_residuals=down,
                       mid_block_additional_residual=mid, added_cond_kwargs=added, return_dict=False)[0]
            uncond, cond = eps.chunk(2)
            latents = sched.step(uncond + job.guidance * (cond - uncond), t, latents, return_dict=False)[0]
    image = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    image = (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().numpy()
    return (np.clip(image, 0, 1) * 255.0).round().astype(np.uint8)


# --------------------------------------------------------------------------- measuring
def bench_size(size: str, reps: int) -> dict:
    from cinekit.engines.base import create_engine

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rt = runtime_for(size, Path(tmp))
        engine = create_engine("diffusers", rt)
        job = make_job(("ann", "bob"), "m")

        def engine_path():
            engine.check_inputs(job)
            return engine.render(job).frames

        first = engine_path()                    # loads, encodes and caches references
        setup = time.perf_counter() - t0
        prep = prepare_hand(engine, job)
        hand = hand_loop(prep, job)
        t_engine, t_hand = [], []
        for rep in range(reps):                  # alternate the order (ABBA...), so drift hits both alike
            for side in (("engine", "hand") if rep % 2 == 0 else ("hand", "engine")):
                s = time.perf_counter()
                if side == "engine":
                    engine_path()
                    t_engine.append(time.perf_counter() - s)
                else:
                    hand_loop(prep, job)
                    t_hand.append(time.perf_counter() - s)
        other = engine.render(make_job(("ann2", "bob"), "m")).frames
        res = engine.render(job)
        diff = np.abs(res.frames[0].astype(np.int32) - other[0]).sum(-1)
        share = float(diff[res.masks[0, 0]].sum() / max(diff.sum(), 1))
        me, mh = statistics.median(t_engine), statistics.median(t_hand)
        return {
            "size": size, "resolution": [SIZE, SIZE], "steps": STEPS, "characters": 2, "reps": reps,
            "engine_s": round(me, 4), "hand_loop_s": round(mh, 4), "ratio": round(me / mh, 4),
            "paired_ratio_median": round(statistics.median(e / h for e, h in zip(t_engine, t_hand, strict=True)), 4),
            "engine_runs_s": [round(x, 4) for x in t_engine], "hand_runs_s": [round(x, 4) for x in t_hand],
            "identical_output": bool(np.array_equal(first, hand)),
            "identity_ok": bool(np.array_equal(first, hand)),
            "max_abs_diff": int(np.abs(first.astype(np.int32) - hand).max()),
            "region_share_of_change": round(share, 4),
            "region_area_share": round(float(res.masks[0, 0].mean()), 4),
            "setup_s": round(setup, 2), "stats": dict(rt.stats),
        }


def run(sizes=("tiny", "sd15"), reps: int | None = None) -> dict:
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 4)))
    out = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                       "torch": torch.__version__}, "goal": "median paired ratio <= 1.05, identical output",
           "results": {}}
    for size in sizes:
        r = reps or (10 if size == "tiny" else 4)
        res = bench_size(size, r)
        out["results"][size] = res
        print(f"{size:5s} engine {res['engine_s']:.3f} s  hand loop {res['hand_loop_s']:.3f} s  "
              f"ratio {res['ratio']:.3f}  identical {res['identical_output']}  "
              f"A-region share of change {res['region_share_of_change']:.1%} "
              f"(area {res['region_area_share']:.0%})", flush=True)
    # the verdict: the median of back-to-back pair ratios (least moved by other load) and identical bytes
    out["ok"] = all(r["paired_ratio_median"] <= 1.05 and r["identity_ok"] for r in out["results"].values())
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,sd15")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results" / "still.json")
    args = ap.parse_args(argv)
    results = run(tuple(args.sizes.split(",")), args.reps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
