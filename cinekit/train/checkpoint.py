"""Resumable training state: trainable weights, optimizer, step, losses and the RNG.

The RNG state is part of the checkpoint: a run killed after step N and resumed draws the same
batches, noise and timesteps for steps N+1... as a run that never stopped, so both end on the
same weights. Written atomically (``kohya.atomic_write``); read with ``weights_only=True``
(tensors, numbers and dicts only: a checkpoint file cannot run code).
"""

from __future__ import annotations

from pathlib import Path

from cinekit.errors import UserError
from cinekit.train.kohya import atomic_write

NAME = "checkpoint.pt"


def save(folder: Path, *, step: int, trainable: dict, optimizer: dict, rng, losses: list[float],
         fingerprint: str) -> Path:
    import torch

    state = {"step": int(step), "trainable": {k: v.detach().cpu().clone() for k, v in trainable.items()},
             "optimizer": optimizer, "rng": rng.get_state(), "losses": [float(x) for x in losses],
             "fingerprint": fingerprint}
    return atomic_write(Path(folder) / NAME, lambda tmp: torch.save(state, tmp))


def load(folder: Path, fingerprint: str) -> dict | None:
    """The checkpoint in ``folder`` (None when there is none); refused when it belongs to another
    run configuration (``fingerprint``: character, model, options), since resuming it would mix two runs."""
    import torch

    path = Path(folder) / NAME
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a torn or foreign file is the user's to remove
        raise UserError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e})",
                        hint="delete it to start over") from None
    if state.get("fingerprint") != fingerprint:
        raise UserError(f"{path}: checkpoint of a different run (character, model or options changed)",
                        hint="use the same options to resume, --restart to start over, or another --out")
    return state
