"""Shots of the weight-free engines (previz, puppet) never depend on model files: adding a model
set to ``cinekit.yaml``, editing one, or editing one of its files leaves their rendered outputs
cached, and their jobs carry no model (the executor's pool label is ``engine/-``). A diffusers shot
planning the same shots for the diffusers engine picks the model set up (the control that the set is really there)."""

from __future__ import annotations

from pathlib import Path

from tests.project_factory import CONFIG, make_project

SHOTS = """\
    shots:
      - {id: p1, prompt: "{ann} waves", engine: puppet, characters: [{name: ann, pose: wave}]}
      - {id: v1, kind: clip, duration: 0.5, prompt: "{ann} walks", engine: previz,
         characters: [{name: ann, pose: walk_a}]}
    """

MODELS = """\
models:
  m:
    base: models/base
    controlnet: {openpose: models/cn}
    motion_adapter: models/motion
"""


def plan(root: Path):
    from cinekit.render.plan import Planner
    from cinekit.render.run import plan_batch
    from cinekit.spec.project import load_project

    project = load_project(root)
    return project, plan_batch(project, [p.job for p in Planner(project).plan()], root / "renders")


def test_model_sets_never_reach_weight_free_jobs(tmp_path):
    from cinekit.engines.base import create_engine
    from cinekit.render.cache import engine_version
    from cinekit.render.outputs import write_result
    from cinekit.runtime import Runtime

    root = make_project(tmp_path / "p", SHOTS, characters=("ann",))
    project, tasks = plan(root)
    runtime = Runtime.for_project(project)
    for t in tasks:
        assert t.run and t.reason == "new"
        result = create_engine(t.job.engine, runtime).render(t.job)
        write_result(root / "renders", t.job, result, engine_version=engine_version(t.job.engine), key=t.key)
    assert [t.reason for t in plan(root)[1]] == ["cached", "cached"]

    # a model set appears (the only one, so it is every shot's default), with files on disk
    for rel in ("models/base/unet/model.safetensors", "models/base/model_index.json",
                "models/cn/model.safetensors", "models/motion/model.safetensors"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    (root / "cinekit.yaml").write_text(CONFIG + MODELS)
    _, tasks = plan(root)
    assert [(t.reason, t.job.model) for t in tasks] == [("cached", None), ("cached", None)]
    assert not any(k.startswith("models/") or k.startswith("model:") for t in tasks for k in t.key.parts["inputs"])

    # a model file edited in place, then the set itself edited: still cached
    (root / "models/base/unet/model.safetensors").write_bytes(b"other weights")
    (root / "cinekit.yaml").write_text(CONFIG + MODELS.replace("models/motion", "models/cn"))
    assert [t.reason for t in plan(root)[1]] == ["cached", "cached"]

    # control: the same shots planned for the diffusers engine take the set (and its files) into
    # their keys (planned only: the fake files would not load)
    from cinekit.render.cache import FileDigests, job_key
    from cinekit.render.plan import Planner
    from cinekit.spec.project import load_project

    project = load_project(root)
    for p in Planner(project, engine_override="diffusers").plan():
        info = job_key(project, p.job, "x", "mp4", FileDigests())
        assert p.job.model == "m" and "models/base" in info.parts["inputs"]
