"""Train a LoRA on a character's pool (the UNet's transformer layers, kohya's default targets).

Steps: 1. the model set's components through cinekit's loader (the same offline loading the
engines use); 2. the pool's latents and captions encoded once (kohya's ``cache_latents``: the
VAE and text encoder are frozen); 3. optional prior preservation: class images drawn by the
base model before any adapter exists, encoded the same way; 4. a peft LoRA on the UNet, fp32
trainable weights; 5. ``loop.run_loop`` (resumable); sample grids every K steps; 6. the file in
kohya's layout, written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from cinekit.errors import UserError
from cinekit.train import kohya
from cinekit.train.loop import LoopResult, run_loop
from cinekit.train.plan import Prepared, TrainOptions

ADAPTER = "cinekit_train"


@dataclass
class TrainResult:
    path: Path | None          # None while stopped early
    loop: LoopResult
    samples: list[Path]


@dataclass
class Models:
    unet: object
    vae: object
    text_encoder: object
    tokenizer: object
    scheduler: object
    device: str
    dtype: object
    family: str


def load_models(loader, model: str) -> Models:
    loaded = loader.components(model)
    if loaded.family != "sd15":
        raise UserError(f"model set {model!r} is {loaded.family}: `cinekit train` trains on sd15 model sets for now",
                        hint="add an SD 1.5 model set to cinekit.yaml and pass --model NAME")
    c = loaded.components
    return Models(c["unet"], c["vae"], c["text_encoder"], c["tokenizer"], c["scheduler"], loader.device,
                  loader.torch_dtype, loaded.family)


def encode_images(m: Models, images: np.ndarray, chunk: int = 8):
    """(N, S, S, 3) uint8 -> (N, 4, S/8, S/8) float32 latents (the posterior's mean, scaled)."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(images), chunk):
            x = torch.from_numpy(images[i:i + chunk]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            lat = m.vae.encode(x.to(m.device, m.dtype)).latent_dist.mean * m.vae.config.scaling_factor
            out.append(lat.float().cpu())
    return torch.cat(out) if out else torch.zeros(0)


def token_ids(m: Models, prompts: list[str]):
    return m.tokenizer(prompts, padding="max_length", max_length=m.tokenizer.model_max_length, truncation=True,
                       return_tensors="pt").input_ids


def encode_prompts(m: Models, prompts: list[str]):
    """Unique prompts -> (P, 77, D) text-encoder hidden states and each prompt's row index."""
    import torch

    unique = sorted(set(prompts))
    with torch.no_grad():
        hidden = m.text_encoder(token_ids(m, unique).to(m.device))[0].float().cpu()
    index = torch.tensor([unique.index(p) for p in prompts])
    return hidden, index


def pipeline(loader, model: str):
    import diffusers

    from cinekit.engines.loader import PIPELINES

    return loader.build(model, getattr(diffusers, PIPELINES["sd15"]["txt2img"]))


def class_images(loader, model: str, prompt: str, n: int, size: int, seed: int, steps: int) -> np.ndarray:
    """Prior preservation's class images, drawn by the base model (no adapter yet)."""
    import torch

    pipe = pipeline(loader, model)
    g = torch.Generator("cpu").manual_seed(seed + 1)
    out = pipe([prompt] * n, height=size, width=size, num_inference_steps=steps, generator=g, output_type="np").images
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def diffusion_loss(m: Models, noise_sched, unet, latents, hidden, rng):
    """The denoising loss on a batch: MSE of the UNet's prediction against the noise (or v)."""
    import torch
    import torch.nn.functional as F

    noise = torch.randn(latents.shape, generator=rng)
    t = torch.randint(0, noise_sched.config.num_train_timesteps, (latents.shape[0],), generator=rng)
    noisy = noise_sched.add_noise(latents, noise, t)
    target = noise if noise_sched.config.prediction_type == "epsilon" else noise_sched.get_velocity(latents, noise, t)
    dev, dt = m.device, m.dtype     # not ``unet.dtype``: that property walks every module (~25 ms a step)
    pred = unet(noisy.to(dev, dt), t.to(dev), hidden.to(dev, dt)).sample
    return F.mse_loss(pred.float(), target.to(dev).float())


class Sampler:
    """A grid of images from the training prompts every K steps, seeded (its own generator:
    drawing samples never moves the training RNG). Files: ``<folder>/step_000100.png``."""

    def __init__(self, loader, model: str, prompts: list[str], folder: Path, size: int, steps: int, seed: int,
                 every: int):
        self.loader, self.model, self.prompts, self.folder = loader, model, prompts[:4], folder
        self.size, self.steps, self.seed, self.every = size, steps, seed, every
        self.written: list[Path] = []
        self._pipe = None

    def __call__(self, step: int) -> None:
        if not self.every or step % self.every:
            return
        import torch
        from PIL import Image

        if self._pipe is None:
            self._pipe = pipeline(self.loader, self.model)
        g = torch.Generator("cpu").manual_seed(self.seed)
        with torch.no_grad():
            imgs = self._pipe(self.prompts, height=self.size, width=self.size, num_inference_steps=self.steps,
                              generator=g, output_type="np").images
        grid = (np.clip(np.concatenate(list(imgs), axis=1), 0, 1) * 255).round().astype(np.uint8)
        path = self.folder / f"step_{step:06d}.png"
        kohya.atomic_write(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))
        self.written.append(path)


def train_lora(loader, model: str, prep: Prepared, options: TrainOptions, out: Path, work: Path, *,
               progress: Callable | None = None, stop_after: int | None = None) -> TrainResult:
    import torch
    from diffusers import DDPMScheduler
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    m = load_models(loader, model)                                            # 1
    latents = encode_images(m, prep.pool.images)                              # 2
    hidden, index = encode_prompts(m, prep.pool.captions)
    prior = None
    if options.prior:                                                         # 3
        imgs = class_images(loader, model, prep.class_prompt, options.prior, options.size, options.seed,
                            options.sample_steps)
        prior = (encode_images(m, imgs), encode_prompts(m, [prep.class_prompt])[0])
    torch.manual_seed(options.seed)                                           # 4 (peft's init draws)
    m.unet.requires_grad_(False)
    m.vae.requires_grad_(False)
    m.text_encoder.requires_grad_(False)
    m.unet.add_adapter(LoraConfig(r=options.rank, lora_alpha=options.lora_alpha, init_lora_weights="gaussian",
                                  target_modules=list(options.targets)), adapter_name=ADAPTER)
    params = {n: p for n, p in m.unet.named_parameters() if p.requires_grad}
    for p in params.values():
        p.data = p.data.float()
    if options.grad_checkpointing or (options.grad_checkpointing is None and m.device.startswith("cuda")):
        m.unet.enable_gradient_checkpointing()
    m.unet.train()
    noise_sched = DDPMScheduler.from_config(m.scheduler.config)
    n, b = len(latents), options.batch

    def loss_fn(rng):
        idx = torch.randint(0, n, (b,), generator=rng)
        loss = diffusion_loss(m, noise_sched, m.unet, latents[idx], hidden[index[idx]], rng)
        if prior is not None:
            pidx = torch.randint(0, len(prior[0]), (b,), generator=rng)
            ploss = diffusion_loss(m, noise_sched, m.unet, prior[0][pidx], prior[1].expand(b, -1, -1), rng)
            loss = loss + options.prior_weight * ploss
        return loss

    sampler = Sampler(loader, model, sorted(set(prep.pool.captions)), out.parent / f"{out.stem}.samples",
                      options.size, options.sample_steps, options.seed, options.sample_every)
    try:
        result = run_loop(params=params, loss_fn=loss_fn, steps=options.steps, lr=options.lr, seed=options.seed,   # 5
                          device=m.device, dtype=m.dtype, work=work, fingerprint=prep.fingerprint,
                          checkpoint_every=options.checkpoint_every, progress=progress, after_step=sampler,
                          stop_after=stop_after)
    finally:
        m.unet.eval()
    if result.stopped:
        return TrainResult(None, result, sampler.written)
    state = get_peft_model_state_dict(m.unet, adapter_name=ADAPTER)           # 6
    path = kohya.save_lora(out, state, rank=options.rank, alpha=options.lora_alpha, base=m.family,
                           meta={"character": prep.name, "trigger": prep.trigger, "steps": result.steps,
                                 "seed": options.seed})
    (work / "checkpoint.pt").unlink(missing_ok=True)   # done: a later run starts afresh
    return TrainResult(path, result, sampler.written)
