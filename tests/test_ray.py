"""The Ray executor on a local cluster (started once per session): same bytes as the local
executor, engines kept loaded in actors, crashed workers retried, engine errors reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.diffusers_fixtures import tiny_models  # noqa: F401 (session fixture)
from tests.project_factory import make_project
from tests.test_batch import SMALL, output_bytes

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[1]

SHOTS = """\
    defaults: {engine: previz}
    shots:
      - id: s010
        prompt: "{ann} waves"
        characters: [{name: ann, pose: wave}]
      - id: s020
        kind: clip
        duration: 0.5
        prompt: "{ann} and {bob}"
        characters:
          - {name: ann, position: left, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 0.5, pose: walk_c}]}}
          - {name: bob, position: right, pose: stand}
      - {id: p010, engine: puppet, prompt: "{bob}", characters: [{name: bob, pose: wave}]}
      - id: p020
        engine: puppet
        kind: clip
        duration: 0.5
        prompt: "{ann} and {bob}"
        characters:
          - {name: ann, position: left, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 0.5, pose: walk_c}]}}
          - {name: bob, position: right, pose: stand, mirror: true}
    """


@pytest.fixture(scope="session")
def ray_cluster():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    yield ray
    ray.shutdown()


def _batch(root: Path, out: str, executor: str, engines=None):
    from cinekit.render.executors import make_executor
    from cinekit.render.plan import Planner
    from cinekit.render.run import render_batch
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    project = load_project(root)
    jobs = [p.job for p in Planner(project).plan()]
    runtime = Runtime.for_project(project, device="cpu")
    return render_batch(runtime, jobs, root / out, "mp4", executor=make_executor(executor, runtime))


def _engines_available() -> list[str]:
    try:
        import cinekit.engines.puppet  # noqa: F401
    except ImportError:
        return ["previz"]
    return ["previz", "puppet"]


def test_ray_and_local_write_identical_files(ray_cluster, tmp_path):
    shots = SHOTS if "puppet" in _engines_available() else SHOTS.split("      - {id: p010")[0]
    root = make_project(tmp_path / "p", shots, config=SMALL)
    local = _batch(root, "local", "local")
    remote = _batch(root, "ray", "ray")
    assert [o.status for o in local.outcomes] == ["rendered"] * len(local.outcomes)
    assert [o.status for o in remote.outcomes] == ["rendered"] * len(local.outcomes), [o.error for o in remote.outcomes]
    a, b = output_bytes(root / "local"), output_bytes(root / "ray")
    assert a.keys() == b.keys() and len(a) >= 5
    if "puppet" in _engines_available():
        assert {"ep/p010.png", "ep/p020.mp4"} <= a.keys()
    assert [k for k in a if a[k] != b[k]] == []
    assert [o.record["key"] for o in local.outcomes] == [o.record["key"] for o in remote.outcomes]
    again = _batch(root, "ray", "ray")  # up-to-date outputs are skipped whatever the executor
    assert {o.status for o in again.outcomes} == {"cached"}


class CrashOnce:
    """Previz, but the worker process dies on its first job (a stand-in for OOM / a lost node)."""

    from cinekit.engines.previz import PrevizEngine as _P

    name, kinds, version = "previz", _P.kinds, _P.version

    def __init__(self, runtime):
        self.inner = self._P(runtime)

    def check_inputs(self, job):
        self.inner.check_inputs(job)

    def render(self, job, progress=None):
        from cinekit.errors import EngineError

        if job.shot_id == "bad":
            raise EngineError("no such lens")
        marker = Path(job.options["marker"])
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return self.inner.render(job, progress)


def test_crashed_worker_is_restarted_and_its_job_retried_engine_errors_are_not(ray_cluster, tmp_path, monkeypatch):
    from cinekit.engines import base

    marker = tmp_path / "crashed"
    shots = f"""\
        shots:
          - {{id: s010, prompt: "{{ann}}", characters: [{{name: ann, pose: wave}}], options: {{marker: "{marker}"}}}}
          - {{id: bad, prompt: "{{ann}}", characters: [{{name: ann, pose: wave}}], options: {{marker: "{marker}"}}}}
        """
    root = make_project(tmp_path / "p", shots, config=SMALL)
    monkeypatch.setitem(base._REGISTRY, "previz", "tests.test_ray:CrashOnce")  # shipped to the actors
    report = _batch(root, "ray", "ray")
    status = {o.job.shot_id: o for o in report.outcomes}
    assert marker.exists(), "the worker never crashed"
    assert status["s010"].status == "rendered", status["s010"].error
    assert status["bad"].status == "failed" and "no such lens" in status["bad"].error
    assert status["bad"].exit_code == 3
    assert (root / "ray/ep/s010.png").is_file() and not (root / "ray/ep/bad.png").exists()


def test_tiny_diffusers_on_ray_gives_the_same_files_within_one_level(ray_cluster, tmp_path, tiny_models):  # noqa: F811
    """Real loading code, tiny offline models: a GPU-less cluster runs the diffusers actor on CPU.

    Worker thread counts may differ from the driver's, so pixels may differ by 1/255 at most.
    """
    pytest.importorskip("diffusers")
    import numpy as np
    from PIL import Image

    from tests.diffusers_fixtures import write_tiny_project

    root = write_tiny_project(tmp_path / "proj", tiny_models)
    (root / "shots/ep.yaml").write_text(
        "defaults: {engine: diffusers, model: tiny, steps: 2}\n"
        "shots:\n"
        "  - {id: d020, prompt: '{ann} and {bob}', seed: 3, characters: [{name: ann, position: left},"
        " {name: bob, position: right, pose: wave}]}\n")
    local = _batch(root, "local", "local")
    remote = _batch(root, "ray", "ray")
    assert {o.status for o in local.outcomes} == {"rendered"}, [o.error for o in local.outcomes]
    assert {o.status for o in remote.outcomes} == {"rendered"}, [o.error for o in remote.outcomes]
    a, b = output_bytes(root / "local"), output_bytes(root / "ray")
    assert a.keys() == b.keys() and {"ep/d020.png", "ep/d020.control.png"} <= a.keys()
    for name in a:
        if name.endswith(".masks.npz"):  # character regions come from the pose track: identical
            assert a[name] == b[name], name
            continue
        x = np.asarray(Image.open(root / "local" / name).convert("RGB"), dtype=np.int16)
        y = np.asarray(Image.open(root / "ray" / name).convert("RGB"), dtype=np.int16)
        assert x.shape == y.shape and np.abs(x - y).max() <= 1, name
