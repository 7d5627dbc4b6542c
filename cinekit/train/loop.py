"""The optimisation loop both trainers share: batches, noise, timesteps, loss, checkpoints.

Everything random comes from one CPU ``torch.Generator`` seeded by the run's seed, and its state
is saved with each checkpoint: a run stopped after step N and resumed continues with the very
draws an uninterrupted run makes at step N+1 (see ``checkpoint``). On CUDA the step runs under
autocast (bf16, or fp16 with a gradient scaler) with fp32 trainable weights; the optimizer is
bitsandbytes' 8-bit AdamW when that package imports, else torch's AdamW.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cinekit.train import checkpoint
from cinekit.train.interrupt import StopSignals


@dataclass
class LoopResult:
    losses: list[float]
    steps: int                       # steps done in total (incl. before a resume)
    resumed_from: int = 0
    stopped: bool = False            # stopped early (``stop_after`` or a signal): resumable
    interrupted: int | None = None   # the signal (SIGINT / SIGTERM) that stopped it, saved at ``steps``
    loop_seconds: float = 0.0        # wall time of the steps run in this process
    steps_run: int = 0
    optimizer: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def steps_per_s(self) -> float:
        return self.steps_run / self.loop_seconds if self.loop_seconds > 0 else 0.0


def make_optimizer(params: list, lr: float, device: str, weight_decay: float = 1e-2):
    import torch

    if device.startswith("cuda"):
        try:
            import bitsandbytes as bnb  # optional: ~1/4 of Adam's state memory

            return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=weight_decay), "AdamW8bit"
        except ImportError:
            pass
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay), "AdamW"


def run_loop(*, params: dict, loss_fn: Callable, steps: int, lr: float, seed: int, device: str, dtype,
             work: Path, fingerprint: str, checkpoint_every: int = 100, weight_decay: float = 1e-2,
             progress: Callable[[int, int, float], None] | None = None,
             after_step: Callable[[int], None] | None = None, after_update: Callable[[], None] | None = None,
             stop_after: int | None = None) -> LoopResult:
    """Minimise ``loss_fn(rng)`` over ``params`` (name -> fp32 tensor requiring grad) for ``steps``.

    ``after_update`` runs after each optimizer step (textual inversion restores frozen rows);
    ``after_step(step)`` after each step's bookkeeping (sample grids); ``stop_after``: save a
    checkpoint and return after that many steps in this process (a simulated kill). SIGINT /
    SIGTERM during the loop: the step in progress is finished, saved, and the loop returns with
    ``interrupted`` set (``interrupt.StopSignals``); on the last step the run just completes."""
    import torch

    rng = torch.Generator("cpu").manual_seed(seed)
    opt, opt_name = make_optimizer(list(params.values()), lr, device, weight_decay)
    losses: list[float] = []
    start = 0
    state = checkpoint.load(work, fingerprint)
    if state is not None:
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(state["trainable"][k].to(p.device, p.dtype))
        opt.load_state_dict(state["optimizer"])
        rng.set_state(state["rng"])
        losses, start = list(state["losses"]), int(state["step"])
    autocast = device.startswith("cuda") and dtype in (torch.float16, torch.bfloat16)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast and dtype == torch.float16)

    def save(step: int) -> None:
        checkpoint.save(work, step=step, trainable=params, optimizer=opt.state_dict(), rng=rng, losses=losses,
                        fingerprint=fingerprint)

    result = LoopResult(losses, start, resumed_from=start, optimizer=opt_name)
    t0 = time.perf_counter()
    with StopSignals() as signals:
        for step in range(start + 1, steps + 1):
            with torch.autocast("cuda", dtype=dtype, enabled=autocast):
                loss = loss_fn(rng)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            if after_update is not None:
                after_update()
            losses.append(float(loss.detach()))
            result.steps, result.steps_run = step, result.steps_run + 1
            if progress is not None:
                progress(step, steps, losses[-1])
            if after_step is not None:
                after_step(step)
            stopping = step < steps and (signals.signum is not None
                                         or (stop_after is not None and result.steps_run >= stop_after))
            if stopping or (checkpoint_every and step % checkpoint_every == 0 and step < steps):
                save(step)
            if stopping:
                result.stopped, result.interrupted = True, signals.signum
                break
    result.loop_seconds = time.perf_counter() - t0
    return result
