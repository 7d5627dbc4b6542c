"""Textual inversion: new token vectors for the trigger word, everything else frozen.

The trigger becomes ``vectors`` tokens (``trig``, ``trig_1``, ...: the names diffusers'
``load_textual_inversion`` gives a multi-vector embedding, so a prompt saying ``trig`` expands
the same way at training and at use). The new rows start from the class word's embedding; only
their gradient survives each step (the others are zeroed, and AdamW without weight decay then
leaves them exactly unchanged). The result is an A1111 embedding (``kohya.save_embedding``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from cinekit.errors import UserError
from cinekit.train import kohya
from cinekit.train.loop import run_loop
from cinekit.train.lora_train import TrainResult, diffusion_loss, encode_images, load_models
from cinekit.train.plan import Prepared, TrainOptions


def token_names(trigger: str, vectors: int) -> list[str]:
    return [trigger] + [f"{trigger}_{i}" for i in range(1, vectors)]


def expand(prompt: str, trigger: str, vectors: int) -> str:
    """``"trig, front view"`` -> ``"trig trig_1, front view"`` (diffusers' ``maybe_convert_prompt``)."""
    return prompt.replace(trigger, " ".join(token_names(trigger, vectors)))


def train_embedding(loader, model: str, prep: Prepared, options: TrainOptions, out: Path, work: Path, *,
                    progress: Callable | None = None, stop_after: int | None = None) -> TrainResult:
    import torch
    from diffusers import DDPMScheduler

    m = load_models(loader, model)
    names = token_names(prep.trigger, options.vectors)
    if any(n in m.tokenizer.get_vocab() for n in names):
        raise UserError(f"the tokenizer already has a token {prep.trigger!r}",
                        hint="set the character's `train: {trigger: WORD}` to a word the model does not know")
    init_ids = m.tokenizer(prep.class_prompt, add_special_tokens=False).input_ids or [0]
    m.tokenizer.add_tokens(names)
    ids = m.tokenizer.convert_tokens_to_ids(names)
    m.text_encoder.resize_token_embeddings(len(m.tokenizer))
    table = m.text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        table[ids] = table[init_ids].mean(0).to(table.dtype)
    latents = encode_images(m, prep.pool.images)
    prompts = [expand(c, prep.trigger, options.vectors) for c in prep.pool.captions]
    unique = sorted(set(prompts))
    tokens = m.tokenizer(unique, padding="max_length", max_length=m.tokenizer.model_max_length, truncation=True,
                         return_tensors="pt").input_ids
    index = torch.tensor([unique.index(p) for p in prompts])
    m.unet.requires_grad_(False)
    m.vae.requires_grad_(False)
    m.text_encoder.requires_grad_(False)
    # the trainable tensor: the new rows, in fp32, put in place of the table's rows by a hook
    rows = table[ids].detach().float().clone().requires_grad_(True)
    ids_t = torch.tensor(ids, device=table.device)
    noise_sched = DDPMScheduler.from_config(m.scheduler.config)
    n, b = len(latents), options.batch

    emb = m.text_encoder.get_input_embeddings()

    def substitute(module, inputs, output):
        """The new tokens' rows come from ``rows`` (with grad), every other row from the frozen table."""
        tok = inputs[0]
        hit = tok[..., None] == ids_t                                   # (b, 77, vectors)
        picked = (hit.to(output.dtype) @ rows.to(output.dtype))          # (b, 77, D)
        return torch.where(hit.any(-1, keepdim=True), picked, output)

    def loss_fn(rng):
        idx = torch.randint(0, n, (b,), generator=rng)
        hidden = m.text_encoder(tokens[index[idx]].to(m.device))[0]
        return diffusion_loss(m, noise_sched, m.unet, latents[idx], hidden, rng)

    handle = emb.register_forward_hook(substitute)
    try:
        result = run_loop(params={"emb_params": rows}, loss_fn=loss_fn, steps=options.steps, lr=options.lr,
                          seed=options.seed, device=m.device, dtype=m.dtype, work=work, fingerprint=prep.fingerprint,
                          checkpoint_every=options.checkpoint_every, weight_decay=0.0, progress=progress,
                          stop_after=stop_after)
    finally:
        handle.remove()
    if result.stopped:
        return TrainResult(None, result, [])
    path = kohya.save_embedding(out, rows, token=prep.trigger,
                                meta={"character": prep.name, "steps": result.steps, "seed": options.seed})
    (work / "checkpoint.pt").unlink(missing_ok=True)
    return TrainResult(path, result, [])

