"""Batch rendering as a build system: keys, cached skips, dry-run reasons, manifest, lock,
resume after SIGKILL, reproduce, failures and JUnit."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.engines.previz import PrevizEngine
from tests.project_factory import draw_figure, frame_count, make_project

runner = CliRunner()

SMALL = "output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [128, 96], fps: 8}\n"

SHOTS = """\
    shots:
      - id: s010
        prompt: "{ann} waves"
        characters: [{name: ann, pose: wave}]
      - id: s020
        kind: clip
        duration: 1.0
        prompt: "{ann} and {bob}"
        camera: wide
        characters:
          - {name: ann, position: left, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 1, pose: walk_c}]}}
          - {name: bob, position: right, pose: stand}
      - id: s030
        prompt: "{bob} stands"
        characters: [{name: bob, pose: stand}]
    """


def many_shots(n: int, clip_every: int = 2) -> str:
    """A generated shot list: stills and short clips alternating, both characters."""
    lines = ["shots:"]
    for i in range(n):
        if i % clip_every:
            lines.append(f"  - {{id: s{i:03d}, kind: clip, duration: 0.5, prompt: '{{ann}} and {{bob}}', "
                         "characters: [{name: ann, position: left, pose: {keyframes: [{at: 0, pose: walk_a}, "
                         "{at: 0.5, pose: walk_c}]}}, {name: bob, position: right, pose: stand}]}")
        else:
            lines.append(f"  - {{id: s{i:03d}, prompt: '{{ann}} waves', seed: {i}, "
                         "characters: [{name: ann, pose: wave}]}")
    return "\n".join(lines) + "\n"


def flat(text: str) -> str:
    """Console text with rich's line wrapping undone."""
    return " ".join(text.split())


def render(root: Path, *args: str):
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return runner.invoke(app, ["render", "--ci", *args])
    finally:
        os.chdir(cwd)


def dry_run(root: Path, *args: str) -> dict[str, str]:
    result = render(root, "--dry-run", *args)
    assert result.exit_code == 0, result.output + result.stderr
    out = {}
    for line in result.stdout.splitlines():
        if line.startswith(("render ", "skip ")):
            action, rest = line.split(None, 1)
            out[rest.split()[0]] = f"{action}: {rest.split(': ', 1)[1]}"
    return out


def output_bytes(out_dir: Path) -> dict[str, bytes]:
    """Every output file (not sidecars, manifest or lock) by relative path."""
    files = {}
    for p in sorted(out_dir.rglob("*")):
        if p.is_file() and p.suffix != ".json" and not p.name.startswith("."):
            files[p.relative_to(out_dir).as_posix()] = p.read_bytes()
    return files


# --------------------------------------------------------------------------- cache + dry run
def test_second_run_is_all_cached_and_dry_run_explains_each_job(tmp_path):
    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    assert dry_run(root) == {"ep/s010": "render: new", "ep/s020": "render: new", "ep/s030": "render: new"}
    first = render(root)
    assert first.exit_code == 0, first.output + first.stderr
    assert "3 rendered, 0 cached" in first.stdout
    before = output_bytes(root / "renders")
    second = render(root)
    assert second.exit_code == 0 and "0 rendered, 3 cached" in second.stdout
    assert output_bytes(root / "renders") == before
    assert set(dry_run(root).values()) == {"skip: cached"}

    shots = (root / "shots/ep.yaml").read_text()
    (root / "shots/ep.yaml").write_text(shots.replace("{ann} waves", "{ann} waves hello"))
    draw_figure(root / "characters/refs/bob.png", colour=(10, 200, 10))  # bob's art changes
    (root / "renders/ep/s020.control.mp4").unlink()
    reasons = dry_run(root)
    assert reasons["ep/s010"] == "render: spec changed"
    assert reasons["ep/s020"] == "render: input characters/refs/bob.png changed"
    assert reasons["ep/s030"] == "render: input characters/refs/bob.png changed"
    (root / "renders/ep/s020.control.mp4").write_bytes(b"")  # put back garbage: size differs
    draw_figure(root / "characters/refs/bob.png", colour=(140, 120, 60))  # the original art again
    reasons = dry_run(root)
    assert reasons["ep/s020"] == "render: output changed (s020.control.mp4)"
    assert reasons["ep/s030"] == "skip: cached"
    result = render(root, "--only", "s020")
    assert result.exit_code == 0 and "1 rendered" in result.stdout
    assert frame_count(root / "renders/ep/s020.control.mp4")[0] == 8
    forced = render(root, "--force", "--only", "s030")
    assert "1 rendered, 0 cached" in forced.stdout


def test_key_covers_engine_version_format_and_inputs(tmp_path):
    from cinekit.render.cache import FileDigests, job_key
    from cinekit.render.plan import Planner
    from cinekit.spec.project import load_project

    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    project = load_project(root)
    jobs = {p.job.shot_id: p.job for p in Planner(project).plan()}
    digests = FileDigests()
    base = job_key(project, jobs["s020"], "1", "mp4", digests)
    assert job_key(project, jobs["s020"], "1", "mp4", digests).key == base.key
    assert job_key(project, jobs["s020"], "2", "mp4", digests).key != base.key
    assert job_key(project, jobs["s020"], "1", "gif", digests).key != base.key
    assert job_key(project, jobs["s010"], "1", "mp4", digests).key == job_key(project, jobs["s010"], "1", "gif", digests).key
    assert set(base.parts["inputs"]) == {"characters/ann.yaml", "characters/refs/ann.png",
                                         "characters/bob.yaml", "characters/refs/bob.png"}
    assert digests.reads == 4  # each file hashed once, however many jobs read it
    small = FileDigests(large_file=10)  # every file counts as "large": fingerprinted by stat, not read
    assert small.digest(root / "characters/ann.yaml").startswith("stat:") and small.reads == 0


def test_manifest_and_sidecar_record_how_each_output_was_made(tmp_path):
    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    assert render(root).exit_code == 0
    manifest = json.loads((root / "renders/manifest.json").read_text())["outputs"]
    assert set(manifest) == {"ep/s010", "ep/s020", "ep/s030"}
    entry = manifest["ep/s020"]
    sidecar = json.loads((root / "renders/ep/s020.json").read_text())
    assert entry["key"] == sidecar["key"] and len(entry["key"]) == 64
    assert entry["seed"] == 0 and entry["engine"]["name"] == "previz" and entry["model"] is None
    assert entry["timings"]["render_s"] > 0 and "characters/refs/ann.png" in entry["inputs"]
    assert set(entry["files"]) == {"s020.mp4", "s020.control.mp4", "s020.poster.png", "s020.masks.npz",
                                 "s020.openpose.json"}
    assert not list((root / "renders").rglob(".*"))  # no journal, temp file or lock left behind


# --------------------------------------------------------------------------- commit point
def test_a_job_killed_before_its_sidecar_is_rendered_again(tmp_path, monkeypatch):
    """Files written but no sidecar (killed between the two): next run re-renders, no 'foreign file' error."""
    from cinekit.render import outputs

    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    real = outputs.writers.write_json

    def die_on_sidecar(path, data):
        if path.name == "s020.json":
            raise KeyboardInterrupt  # stands in for SIGKILL: nothing after this line runs
        return real(path, data)

    monkeypatch.setattr(outputs.writers, "write_json", die_on_sidecar)
    assert render(root, "--only", "s020").exit_code != 0
    monkeypatch.setattr(outputs.writers, "write_json", real)
    assert (root / "renders/ep/s020.mp4").is_file() and not (root / "renders/ep/s020.json").exists()
    assert (root / "renders/ep/.s020.pending.json").is_file()
    assert dry_run(root)["ep/s020"] == "render: new"
    result = render(root)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "3 rendered" in result.stdout
    assert not (root / "renders/ep/.s020.pending.json").exists()


class MarkedPreviz:
    """The previz engine, leaving a marker when each job starts (``CINEKIT_TEST_MARKERS``)."""

    name, kinds, version = "previz", PrevizEngine.kinds, PrevizEngine.version

    def __init__(self, runtime):
        self.inner = PrevizEngine(runtime)

    def check_inputs(self, job):
        self.inner.check_inputs(job)

    def render(self, job, progress=None):
        marker = Path(os.environ["CINEKIT_TEST_MARKERS"]) / f"{job.shot_id}.started"
        marker.write_text(job.output)
        return self.inner.render(job, progress)


def killable_render(out: str) -> None:
    """``cinekit render --ci --out OUT`` with job-start markers (entry point of the kill test's
    child processes). With ``CINEKIT_TEST_SLOW_WRITE`` set, every PNG reaches its file in two
    halves 0.5 s apart, with a ``writing`` marker in between: a disk slow enough to be killed on."""
    import io

    from PIL import Image

    from cinekit.engines import base

    markers = Path(os.environ["CINEKIT_TEST_MARKERS"])
    base._REGISTRY["previz"] = "tests.test_batch:MarkedPreviz"
    if os.environ.get("CINEKIT_TEST_SLOW_WRITE"):
        real = Image.Image.save

        def slow_save(self, fp, format=None, **params):
            if not isinstance(fp, (str, Path)) or (format or Path(fp).suffix.lstrip(".")).upper() != "PNG":
                return real(self, fp, format, **params)
            buf = io.BytesIO()
            real(self, buf, "PNG", **params)
            data = buf.getvalue()
            with open(fp, "wb") as fh:
                fh.write(data[: len(data) // 2])
                fh.flush()
                (markers / "writing").write_text(str(fp))
                time.sleep(0.5)
                fh.write(data[len(data) // 2:])

        Image.Image.save = slow_save
    app(["render", "--ci", "--out", out], standalone_mode=False)


def _start(root: Path, out: str, markers: Path, slow_write: bool = False) -> subprocess.Popen:
    markers.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CINEKIT_TEST_MARKERS": str(markers),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    if slow_write:
        env["CINEKIT_TEST_SLOW_WRITE"] = "1"
    return subprocess.Popen([sys.executable, "-c", f"from tests.test_batch import killable_render; killable_render({out!r})"],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(predicate, proc, timeout: float = 60.0) -> None:
    end = time.perf_counter() + timeout
    while not predicate():
        assert proc.poll() is None, f"the render ended before the kill point: {proc.stderr.read()[-2000:]!r}"
        assert time.perf_counter() < end, "kill point never reached"
        time.sleep(0.005)


def test_sigkill_mid_job_then_resume_gives_identical_outputs(tmp_path):
    """Kills that provably land inside a job (its start marker written, its sidecar not yet):
    one while a file is being written (half of it on disk), two at random moments inside a job.
    After each kill every file at a final path is absent or complete (identical to an
    uninterrupted run); the resumed run gives byte-identical outputs."""
    root = make_project(tmp_path / "p", many_shots(8), config=SMALL)
    ref = _start(root, "ref", tmp_path / "m-ref")
    assert ref.wait(timeout=120) == 0, ref.stderr.read()[-2000:]
    reference = output_bytes(root / "ref")
    rng = random.Random(6)
    for i, when in enumerate(("writing", "in job", "in job")):
        markers = tmp_path / f"m{i}"
        proc = _start(root, "run", markers, slow_write=when == "writing")
        if when == "writing":
            _wait_for(lambda m=markers: (m / "writing").exists(), proc)
        else:   # the (i+1)-th job this run starts, then a random moment inside it
            _wait_for(lambda m=markers, n=1 + i: len(list(m.glob("*.started"))) >= n, proc)
            time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        started = {p.stem: p.read_text() for p in markers.glob("*.started")}
        in_flight = [sid for sid, output in started.items() if not (root / "run" / f"{output}.json").exists()]
        assert in_flight, f"kill {i} ({when}) landed between jobs, not inside one"
        for rel, data in output_bytes(root / "run").items():
            assert data == reference[rel], f"kill {i} ({when}): {rel} is at its final path but incomplete"
    final = _start(root, "run", tmp_path / "m-final")
    assert final.wait(timeout=120) == 0, final.stderr.read()[-2000:]
    final.stderr.close()
    run = output_bytes(root / "run")
    assert run.keys() == reference.keys() and len(reference) == 4 * 3 + 4 * 4  # stills: png+control+masks; clips: +poster
    assert all(run[k] == reference[k] for k in reference)
    assert not [p for p in (root / "run").rglob(".*")]
    for mp4 in (root / "run").rglob("*.mp4"):
        assert frame_count(mp4)[0] == 4


# --------------------------------------------------------------------------- lock
def test_second_render_of_a_locked_folder_fails_naming_the_pid_or_waits(tmp_path):
    from cinekit.render.lock import FolderLock

    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    out = root / "renders"
    with FolderLock(out):
        result = render(root)
        assert result.exit_code == 1
        assert f"locked by another render: PID {os.getpid()}" in flat(result.stderr)
        assert "--wait" in result.stderr
    holder = FolderLock(out).acquire()
    threading.Timer(0.5, holder.release).start()
    start = time.perf_counter()
    result = render(root, "--wait")
    assert result.exit_code == 0 and time.perf_counter() - start >= 0.4
    assert "waiting: the output folder is locked by PID" in flat(result.stderr)


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (root / "renders").mkdir()
    (root / "renders/.cinekit.lock").write_text(json.dumps({"pid": dead.pid, "host": "h", "started": 0,
                                                            "command": "cinekit render"}))
    result = render(root)
    assert result.exit_code == 0, result.stderr
    assert f"took over the lock left by PID {dead.pid}" in flat(result.stderr)
    assert not (root / "renders/.cinekit.lock").exists()


# --------------------------------------------------------------------------- failures, CI, reproduce
class FailOnS020:
    """The previz engine, except shot s020 fails (same version: its other outputs stay cached)."""

    name, kinds, version = "previz", PrevizEngine.kinds, PrevizEngine.version

    def __init__(self, runtime):
        self.inner = PrevizEngine(runtime)

    def check_inputs(self, job):
        self.inner.check_inputs(job)

    def render(self, job, progress=None):
        from cinekit.errors import EngineError

        if job.shot_id == "s020":
            raise EngineError("out of memory (simulated)")
        return self.inner.render(job, progress)


def test_failures_are_listed_with_cause_in_the_log_and_the_junit_report(tmp_path, monkeypatch):
    from cinekit.engines import base

    monkeypatch.setitem(base._REGISTRY, "previz", "tests.test_batch:FailOnS020")
    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    result = render(root, "--junit", str(tmp_path / "report.xml"))
    assert result.exit_code == 3
    assert "1 shot(s) failed: shots/ep.yaml: s020: out of memory (simulated)" in flat(result.stderr)
    suite = ET.parse(tmp_path / "report.xml").getroot().find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["s020"].find("failure").get("message") == "out of memory (simulated)"
    assert cases["s010"].find("failure") is None and cases["s010"].get("classname") == "shots/ep.yaml"
    assert not (root / "renders/ep/s020.json").exists()
    monkeypatch.setitem(base._REGISTRY, "previz", "cinekit.engines.previz:PrevizEngine")
    assert dry_run(root) == {"ep/s010": "skip: cached", "ep/s020": "render: new", "ep/s030": "skip: cached"}
    # --fail-fast stops at the first failure: s010 renders, s020 fails, s030 never starts
    monkeypatch.setitem(base._REGISTRY, "previz", "tests.test_batch:FailOnS020")
    result = render(root, "--fail-fast", "--force")
    assert result.exit_code == 3 and "1 rendered" in result.stdout


def test_reproduce_rerenders_from_the_sidecar_and_compares_bytes(tmp_path):
    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    assert render(root).exit_code == 0
    # the shot list changes after the render: --reproduce still renders what was recorded
    shots = (root / "shots/ep.yaml").read_text()
    (root / "shots/ep.yaml").write_text(shots.replace("duration: 1.0", "duration: 2.0"))
    result = render(root, "--reproduce", "renders/ep/s020.mp4")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "identical: s020.mp4" in result.stdout and "byte-identical" in result.stdout
    (root / "characters/ann.yaml").write_text((root / "characters/ann.yaml").read_text() + "# edited\n")
    result = render(root, "--reproduce", "renders/ep/s010.png")
    assert "input characters/ann.yaml changed" in flat(result.stderr)


def test_jobs_are_grouped_by_engine_and_each_engine_is_built_once(tmp_path, monkeypatch):
    from cinekit.engines import base
    from cinekit.render.executors import LocalExecutor
    from cinekit.render.plan import Planner
    from cinekit.render.run import Progress, render_batch
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    built, order = [], []
    real = base.create_engine

    def counting(name, runtime):
        built.append(name)
        return real(name, runtime)

    monkeypatch.setattr("cinekit.render.executors.create_engine", counting)
    shots = "shots:\n" + "".join(
        f"  - {{id: s{i}, engine: {'puppet' if i % 2 else 'previz'}, prompt: '{{ann}}', "
        "characters: [{name: ann, pose: wave}]}\n" for i in range(6))
    root = make_project(tmp_path / "p", shots, config=SMALL)
    project = load_project(root)
    runtime = Runtime.for_project(project)

    class Order(Progress):
        def job_started(self, job, index, total):
            order.append(job.engine)

    report = render_batch(runtime, [p.job for p in Planner(project).plan()], root / "renders",
                          progress=Order(), executor=LocalExecutor(runtime))
    assert report.count("rendered") == 6
    assert sorted(built) == ["previz", "puppet"] and order == ["previz"] * 3 + ["puppet"] * 3
    assert [o.job.shot_id for o in report.outcomes] == [f"s{i}" for i in range(6)]  # reported in list order
    assert base.create_engine is real
