"""`cinekit train` vs a hand-written peft training loop on the same tiny CPU model.

Usage: python benchmarks/bench_train.py [--steps N] [--reps R] [--out bench-results/train.json]
(or ``python -m benchmarks train``).

Both sides train the same LoRA (rank 4, kohya's default targets, AdamW, batch 1, 64x64) on the
same tiny SD 1.5 folder (written once, loaded from disk by each side). The cinekit side is
``cinekit.train.run.train`` (what the CLI runs: the character's references + puppet views,
augmented, cached latents, its loop with RNG bookkeeping, progress callback and a checkpoint
every 25 steps); its steps/s is the loop's own timing. The hand loop is the diffusers-example
shape: cached latents and text embeddings prepared outside the timing, then randint / randn /
add_noise / UNet / MSE / backward / step. Runs alternate (cinekit, hand, cinekit, hand, ...);
the verdict is the median ratio hand steps/s / cinekit steps/s <= 1.1.

Also reported (not gated): cinekit's end-to-end wall time for the run (pool + load + train +
save), and the FLOP / memory estimate of one SD 1.5 training step at 512x512 (bf16, rank 16)
that ``--dry-run`` prints, counted on the meta device from cinekit's shipped SD 1.5 configs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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

RANK, SIZE, LR = 4, 64, 1e-3


def cinekit_run(root: Path, steps: int, seed: int) -> dict:
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project
    from cinekit.train.plan import TrainOptions
    from cinekit.train.run import train

    shutil.rmtree(root / ".cinekit-cache", ignore_errors=True)
    seen = []
    t = time.perf_counter()
    runtime = Runtime.for_project(load_project(root), device="cpu")
    outcome = train(runtime, "ann", TrainOptions(steps=steps, rank=RANK, size=SIZE, lr=LR, seed=seed, variants=2,
                                                 puppet_poses=2, checkpoint_every=25),
                    progress=lambda step, total, loss: seen.append(loss))
    wall = time.perf_counter() - t
    loop = outcome.result.loop
    return {"steps_per_s": loop.steps_per_s, "end_to_end_s": wall, "final_loss": loop.losses[-1],
            "file": str(outcome.result.path)}


def hand_run(base: Path, images: np.ndarray, captions: list[str], steps: int, seed: int) -> dict:
    """The loop a user would write from the diffusers/peft docs."""
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from peft import LoraConfig

    from cinekit.train.plan import TARGETS

    pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True)
    unet, vae, te, tok = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    for m in (unet, vae, te):
        m.requires_grad_(False)
    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        latents = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
        ids = tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        hidden = te(ids)[0]
    torch.manual_seed(seed)
    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, init_lora_weights="gaussian", target_modules=list(TARGETS)))
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR)
    sched = DDPMScheduler.from_config(pipe.scheduler.config)
    g = torch.Generator().manual_seed(seed)
    unet.train()
    t = time.perf_counter()
    for _ in range(steps):
        i = torch.randint(0, len(latents), (1,), generator=g)
        noise = torch.randn(latents[i].shape, generator=g)
        ts = torch.randint(0, sched.config.num_train_timesteps, (1,), generator=g)
        pred = unet(sched.add_noise(latents[i], noise, ts), ts, hidden[i]).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - t
    return {"steps_per_s": steps / seconds, "final_loss": float(loss.detach())}


def sd15_cost() -> dict:
    from cinekit.train.cost import step_cost
    from cinekit.train.plan import TARGETS

    out = {}
    for ck in (False, True):
        c = step_cost(ROOT / "cinekit" / "model_configs" / "sd15", size=512, batch=1, dtype="bfloat16", rank=16,
                      targets=TARGETS, device="cuda", checkpointing=ck)
        out["checkpointing" if ck else "plain"] = {
            "tflop_per_step": round(c["flops_per_step"] / 1e12, 3),
            "weights_gib": round(c["weights_bytes"] / 2**30, 2), "activations_gib": round(c["activation_bytes"] / 2**30, 2),
            "lora_params": c["trainable"], "total_gib": round(c["total_bytes"] / 2**30, 2)}
    return out


def run(steps: int = 60, reps: int = 3, cost: bool = True) -> dict:
    from tests.train_fixtures import write_tiny_sd15, write_train_project

    torch.set_num_threads(1)        # both sides alike; a shared CPU box is steadier with one thread
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        base = write_tiny_sd15(tmp / "models")
        root = write_train_project(tmp / "proj", base)
        from cinekit.runtime import Runtime
        from cinekit.spec.project import load_project
        from cinekit.train.plan import TrainOptions, prepare

        prep = prepare(Runtime.for_project(load_project(root), device="cpu"), "ann",
                       TrainOptions(size=SIZE, variants=2, puppet_poses=2))
        ours, hand = [], []
        for r in range(reps):
            ours.append(cinekit_run(root, steps, seed=r))
            hand.append(hand_run(base, prep.pool.images, prep.pool.captions, steps, seed=r))
        ratios = [h["steps_per_s"] / o["steps_per_s"] for o, h in zip(ours, hand, strict=True)]
        result = {
            "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                        "load_1min": os.getloadavg()[0]},
            "steps": steps, "reps": reps, "images": len(prep.pool),
            "cinekit_steps_per_s": [round(o["steps_per_s"], 3) for o in ours],
            "hand_steps_per_s": [round(h["steps_per_s"], 3) for h in hand],
            "cinekit_end_to_end_s": [round(o["end_to_end_s"], 2) for o in ours],
            "ratio_hand_over_cinekit": [round(x, 3) for x in ratios],
            "median_ratio": round(statistics.median(ratios), 3),
            "ok": statistics.median(ratios) <= 1.1,
        }
        if cost:
            result["sd15_512_step_estimate"] = sd15_cost()
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-cost", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "train.json"))
    args = ap.parse_args()
    result = run(args.steps, args.reps, cost=not args.no_cost)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
