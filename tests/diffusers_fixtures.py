"""Fixtures for the diffusers engine tests: tiny offline models (built once per session),
a project using them, and still jobs. Import with ``from tests.diffusers_fixtures import *``.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.project_factory import RIG, draw_figure  # noqa: E402

__all__ = ["tiny_models", "tiny_project", "make_runtime", "still_job", "pose_at", "write_tiny_project",
           "shared_project", "shared_engine"]

W, H = 128, 64


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    import torch

    from cinekit.testing.tiny import write_tiny_models

    torch.set_num_threads(1)
    # byte-level tokenizer: the long-prompt tests count one token per character (the CLIP BPE
    # tokenizer, the default of `cinekit models tiny`, is covered by tests/test_single_file.py)
    return write_tiny_models(tmp_path_factory.mktemp("tiny-models"), tokenizer="bytes")


def write_tiny_project(root: Path, models, *, ann_extra: str = "", bob_extra: str = "",
                       ip_adapter: bool = True, side_view: bool = True) -> Path:
    """A project with two characters (ann: front + side references; bob: front) on the tiny models."""
    import yaml

    from cinekit.testing.tiny import modelset_dict

    root.mkdir(parents=True, exist_ok=True)
    config = {"output": "renders", "defaults": {"size": [W, H]},
              "models": {"tiny": modelset_dict(models, root, ip_adapter=ip_adapter)}}
    (root / "cinekit.yaml").write_text(yaml.safe_dump(config))
    refs = root / "characters" / "refs"
    draw_figure(refs / "ann.png", colour=(220, 40, 40))
    draw_figure(refs / "ann_side.png", colour=(40, 200, 40))
    draw_figure(refs / "bob.png", colour=(40, 40, 220))
    joints = ", ".join(f"{k}: {v}" for k, v in RIG.items())
    side = "\n  - {image: refs/ann_side.png, view: side}" if side_view else ""
    for name, extra, ref_lines in (("ann", ann_extra, f"\n  - {{image: refs/ann.png, view: front}}{side}"),
                                   ("bob", bob_extra, "\n  - {image: refs/bob.png, view: front}")):
        text = f"name: {name}\ndescription: {name} the tester\nreferences:{ref_lines}\nrig:\n  joints: {{{joints}}}\n"
        (root / "characters" / f"{name}.yaml").write_text(text + textwrap.dedent(extra))
    (root / "shots").mkdir(exist_ok=True)
    (root / "shots" / "ep.yaml").write_text("shots:\n  - id: s1\n    prompt: test\n")
    return root


EXTRA_CHARACTERS = {
    # same art as ann, plus a LoRA at weight 0 / 1, or a textual-inversion embedding
    "lw0": "lora:\n  - {{file: {lora}, weight: 0.0, trigger: lwz}}\n",
    "lw1": "lora:\n  - {{file: {lora}, weight: 1.0, trigger: lwz}}\n",
    "emb": "embeddings:\n  - {{file: {emb}, token: \"{token}\"}}\n",
}


@pytest.fixture(scope="session")
def shared_project(tmp_path_factory, tiny_models) -> Path:
    """The tiny project plus characters lw0, lw1 (LoRA), emb (embedding), ann2 (ann with other art)."""
    import shutil

    root = write_tiny_project(tmp_path_factory.mktemp("shared") / "proj", tiny_models)
    chars = root / "characters"
    (chars / "adapters").mkdir()
    shutil.copy(tiny_models.lora, chars / "adapters" / tiny_models.lora.name)
    shutil.copy(tiny_models.embedding, chars / "adapters" / tiny_models.embedding.name)
    ann = (chars / "ann.yaml").read_text()
    for name, extra in EXTRA_CHARACTERS.items():
        text = extra.format(lora=f"adapters/{tiny_models.lora.name}", emb=f"adapters/{tiny_models.embedding.name}",
                            token=tiny_models.embedding_token)
        (chars / f"{name}.yaml").write_text(ann.replace("name: ann", f"name: {name}") + text)
    draw_figure(chars / "refs" / "ann2.png", colour=(240, 240, 30))
    (chars / "ann2.yaml").write_text(ann.replace("name: ann", "name: ann2").replace("refs/ann.png", "refs/ann2.png"))
    return root


@pytest.fixture(scope="session")
def shared_engine(shared_project):
    """One runtime + diffusers engine for the session (the pipeline loads once)."""
    from cinekit.engines.base import create_engine

    runtime = make_runtime(shared_project)
    return create_engine("diffusers", runtime)


@pytest.fixture
def tiny_project(tmp_path, tiny_models) -> Path:
    return write_tiny_project(tmp_path / "proj", tiny_models)


def make_runtime(root: Path, **kwargs):
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    project = load_project(root)
    return Runtime.for_project(project, device="cpu", **kwargs)


def pose_at(cx: float, width: int = W, height: int = H) -> np.ndarray:
    """The RIG figure scaled to the frame height, centred at ``cx`` pixels: ``(18, 2)``."""
    from cinekit.pose.skeleton import JOINTS

    rig = np.array([RIG[j] for j in JOINTS], dtype=np.float64)
    scale = (height * 0.85) / 400.0
    pts = (rig - [100, 0]) * scale
    return pts + [cx, height * 0.05]


def still_job(names=("ann",), *, prompt: str = "a hero", seed: int = 0, steps: int = 2, options=None,
              views=None, refine=None, model: str = "tiny", width: int = W, height: int = H, guidance: float = 5.0):
    from cinekit.job import Job, JobCharacter

    n = len(names)
    xs = [width * (i + 0.5) / n for i in range(n)]
    chars = tuple(JobCharacter(name=nm, spec_path="", position=x / width, view=(views or {}).get(nm, "front"))
                  for nm, x in zip(names, xs, strict=True))
    pose = np.stack([pose_at(x, width, height) for x in xs])[None] if n else np.zeros((1, 0, 18, 2))
    return Job(shot_id="s1", shotlist="shots/ep.yaml", kind="still", engine="diffusers", width=width, height=height,
               fps=12.0, frames=1, seed=seed, steps=steps, guidance=guidance, prompt=prompt, negative="",
               characters=chars, pose=pose, output="ep/s1", model=model, refine=refine, options=dict(options or {}))
