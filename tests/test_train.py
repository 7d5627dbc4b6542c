"""`cinekit train` on tiny models: the loss falls, the file loads in cinekit and in diffusers and
changes the picture, a stopped run resumes to the same weights, the keys are kohya's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.train_fixtures import write_tiny_sd15, write_train_project

torch = pytest.importorskip("torch")

FAST = dict(rank=4, size=64, variants=2, puppet_poses=2, sample_steps=2)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return write_tiny_sd15(tmp_path_factory.mktemp("tiny-sd15"))


def _runtime(root: Path):
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    return Runtime.for_project(load_project(root), device="cpu")


def _train(root: Path, options, **kwargs):
    from cinekit.train.run import train

    return train(_runtime(root), "ann", options, **kwargs)


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory):
    """One LoRA run (LoCon targets, 16 steps, sample grids every 8, --write)."""
    from cinekit.train.plan import CONV_TARGETS, TARGETS, TrainOptions

    root = write_train_project(tmp_path_factory.mktemp("train") / "proj", base)
    options = TrainOptions(steps=16, batch=2, lr=5e-2, sample_every=8, targets=TARGETS + CONV_TARGETS, **FAST)
    outcome = _train(root, options, write=True)
    return root, options, outcome


def _image(pipe, prompt: str = "ann, front view, 1girl") -> np.ndarray:
    g = torch.Generator("cpu").manual_seed(3)
    return pipe(prompt, height=64, width=64, num_inference_steps=2, generator=g, output_type="np").images[0]


def _pipe(base: Path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_loss_falls_over_training(trained):
    losses = trained[2].result.loop.losses
    assert len(losses) == 16
    # measured: last/first 0.69-0.73 over seeds 0, 1 and lr 3e-2, 5e-2
    first, last = np.mean(losses[:4]), np.mean(losses[-4:])
    assert last < 0.8 * first, (first, last)


def test_file_has_kohya_keys_for_every_trained_layer(trained):
    from safetensors import safe_open

    root, options, outcome = trained
    path = outcome.result.path
    assert path == root / "loras" / "ann.safetensors"
    with safe_open(str(path), "pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
        alphas = {k: float(f.get_tensor(k)) for k in keys if k.endswith(".alpha")}
    pattern = re.compile(r"^lora_unet_[a-z0-9_]+\.(lora_down\.weight|lora_up\.weight|alpha)$")
    assert keys and all(pattern.match(k) for k in keys), sorted(keys)[:5]
    modules = {k.rsplit(".", 2)[0] if not k.endswith(".alpha") else k[:-6] for k in keys}
    for m in modules:
        assert {f"{m}.lora_down.weight", f"{m}.lora_up.weight", f"{m}.alpha"} <= keys
    assert set(alphas.values()) == {4.0}
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q" in modules
    assert "lora_unet_down_blocks_0_resnets_0_conv1" in modules            # LoCon targets
    assert meta["ss_network_dim"] == "4" and meta["ss_network_module"] == "networks.lora"
    assert not list(path.parent.glob(".*.tmp"))                          # the atomic write left nothing


def test_diffusers_loads_the_file_as_trained_and_it_changes_the_output(trained, base):
    """diffusers' kohya reader must recover exactly the trained update: fused W - W0 = alpha/r * up @ down."""
    from safetensors.torch import load_file

    root, options, outcome = trained
    sd = load_file(str(outcome.result.path))
    pipe = _pipe(base)
    before = _image(pipe)
    w0 = {n: m.weight.detach().clone() for n, m in pipe.unet.named_modules() if hasattr(m, "weight")
          and isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
    pipe.load_lora_weights(str(outcome.result.path.parent), weight_name=outcome.result.path.name, adapter_name="t")
    after = _image(pipe)
    assert np.abs(after - before).max() > 1e-3
    pipe.fuse_lora(lora_scale=1.0)
    checked = 0
    for name, w in w0.items():
        key = "lora_unet_" + name.replace(".base_layer", "").replace(".", "_")
        if f"{key}.lora_down.weight" not in sd:
            continue
        down, up = sd[f"{key}.lora_down.weight"], sd[f"{key}.lora_up.weight"]
        # the training's own scale alpha / rank (not the file's alpha: that is what is checked)
        delta = (up.flatten(1) @ down.flatten(1)).reshape(w.shape) * (options.lora_alpha / down.shape[0])
        fused = dict(pipe.unet.named_modules())[name.replace(".base_layer", "")]
        fused_w = getattr(fused, "base_layer", fused).weight
        torch.testing.assert_close(fused_w - w, delta, atol=1e-5, rtol=1e-4)
        checked += 1
    assert checked == len({k[:-6] for k in sd if k.endswith(".alpha")})


def test_written_yaml_loads_through_cinekits_lora_path(trained, base):
    """--write added the file to `lora:` (comments kept); the engines' own LoRA path loads it and
    draws what diffusers draws with it."""
    from cinekit.engines.diffusers_common import apply_identity_weights
    from cinekit.engines.loader import ModelLoader

    root, options, outcome = trained
    text = (root / "characters" / "ann.yaml").read_text()
    assert text.startswith("# ann: the test character (this comment must survive")
    assert "# front art" in text
    assert text.rstrip().endswith("- {file: ../loras/ann.safetensors, weight: 1.0, trigger: ann}")
    assert outcome.written_to_yaml
    runtime = _runtime(root)
    identity = runtime.identities.get("ann")
    assert [s.file for s in identity.spec.lora] == ["../loras/ann.safetensors"]
    loader = ModelLoader.for_runtime(runtime)
    from diffusers import StableDiffusionPipeline

    pipe = loader.build("tiny", StableDiffusionPipeline)
    before = _image(pipe)
    shown = apply_identity_weights(loader, pipe, [identity])
    assert shown == {"ann.safetensors": 1.0}
    ours = _image(pipe)
    assert np.abs(ours - before).max() > 1e-3
    direct = _pipe(base)
    direct.load_lora_weights(str(outcome.result.path.parent), weight_name="ann.safetensors")
    np.testing.assert_allclose(ours, _image(direct), atol=1e-5)


def test_sample_grids_every_k_steps(trained):
    from PIL import Image

    samples = trained[2].result.samples
    assert [p.name for p in samples] == ["step_000008.png", "step_000016.png"]
    a, b = (np.asarray(Image.open(p)) for p in samples)
    assert a.shape == (64, 64 * 2, 3)             # one column per caption (front, side)
    assert np.abs(a.astype(int) - b.astype(int)).max() > 0     # the LoRA moved between the two


def test_stopped_run_resumes_to_the_same_weights(base, tmp_path):
    """A run stopped after 3 of 6 steps (state on disk, a fresh process's worth of objects) and
    resumed ends on the same tensors as an uninterrupted run; prior preservation on."""
    from safetensors.torch import load_file

    from cinekit.train.plan import TrainOptions

    root = write_train_project(tmp_path / "proj", base)
    options = TrainOptions(steps=6, batch=1, lr=1e-2, prior=1, **{**FAST, "puppet_poses": 0, "variants": 1})
    whole = _train(root, options, out=root / "loras" / "whole.safetensors")
    stopped = _train(root, options, out=root / "loras" / "resumed.safetensors", stop_after=3)
    assert stopped.result.path is None and stopped.result.loop.steps == 3
    assert (root / ".cinekit-cache" / "train" / "ann-lora" / "checkpoint.pt").is_file()
    resumed = _train(root, options, out=root / "loras" / "resumed.safetensors")
    assert resumed.result.loop.resumed_from == 3 and resumed.result.loop.steps_run == 3
    assert resumed.result.loop.losses == whole.result.loop.losses
    a, b = load_file(str(whole.result.path)), load_file(str(resumed.result.path))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not (root / ".cinekit-cache" / "train" / "ann-lora" / "checkpoint.pt").exists()


def test_checkpoint_of_other_options_is_refused(tmp_path):
    from cinekit.errors import UserError
    from cinekit.train import checkpoint

    p = torch.zeros(3, requires_grad=True)
    opt = torch.optim.AdamW([p])
    checkpoint.save(tmp_path, step=2, trainable={"p": p}, optimizer=opt.state_dict(),
                    rng=torch.Generator().manual_seed(0), losses=[1.0, 0.5], fingerprint="aaa")
    assert checkpoint.load(tmp_path, "aaa")["step"] == 2
    with pytest.raises(UserError, match="checkpoint of a different run"):
        checkpoint.load(tmp_path, "bbb")
    assert checkpoint.load(tmp_path / "none", "aaa") is None


def test_embedding_is_an_a1111_file_that_loads_as_trained(base, tmp_path):
    """Through the command line: --embedding --write, plain progress lines (--ci)."""
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from cinekit.cli import app
    from cinekit.engines.loader import ModelLoader

    root = write_train_project(tmp_path / "proj", base)
    r = CliRunner().invoke(app, ["train", "ann", "--project", str(root), "--embedding", "--steps", "3", "--lr", "5e-2",
                                 "--vectors", "2", "--variants", "2", "--poses", "2", "--write", "--ci",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    path = root / "embeddings" / "ann.safetensors"
    assert f"wrote {path} (3 steps" in r.output.replace("\n", "")
    assert "step 3/3  loss" in r.output and "ann.yaml: added to `embeddings:`" in r.output
    sd = load_file(str(path))
    assert list(sd) == ["emb_params"] and sd["emb_params"].shape == (2, 32)
    assert "- {file: ../embeddings/ann.safetensors, token: ann}" in (root / "characters" / "ann.yaml").read_text()
    runtime = _runtime(root)
    loader = ModelLoader.for_runtime(runtime)
    from diffusers import StableDiffusionPipeline

    pipe = loader.build("tiny", StableDiffusionPipeline)
    init = pipe.text_encoder.get_input_embeddings().weight[[ord("a"), ord("n")]].clone()  # untouched rows
    loader.textual_inversion(pipe, path, "ann")
    ids = pipe.tokenizer.convert_tokens_to_ids(["ann", "ann_1"])
    table = pipe.text_encoder.get_input_embeddings().weight
    torch.testing.assert_close(table[ids], sd["emb_params"])
    assert torch.equal(table[[ord("a"), ord("n")]], init)
    # trained away from its start (the class word's embedding) by the loss
    start = table[pipe.tokenizer("1girl", add_special_tokens=False).input_ids].mean(0)
    assert (sd["emb_params"] - start).abs().max() > 1e-3


def test_dry_run_prints_the_plan(base, tmp_path):
    from typer.testing import CliRunner

    from cinekit.cli import app

    root = write_train_project(tmp_path / "proj", base, extra="train: {symmetric: true, trigger: annx}\n")
    r = CliRunner().invoke(app, ["train", "ann", "--project", str(root), "--dry-run", "--steps", "500",
                                 "--variants", "3", "--poses", "2", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "source images (4): ann.png, ann_side.png, puppet:wave, puppet:cheer" in out
    assert "training images: 12 (3 augmented variants each, 64x64)" in out     # size: the tiny UNet's native
    assert "annx, front view, 1girl, red arms, blue dress" in out and "annx, side view" in out
    assert "flips: yes (symmetric)" in out
    assert "steps: 500 x batch 1" in out and "memory estimate (cpu, float32)" in out and "FLOP per step" in out
    assert not (root / "loras").exists()
    bad = CliRunner().invoke(app, ["train", "nobody", "--project", str(root), "--dry-run"])
    assert bad.exit_code == 1 and "unknown character 'nobody'" in bad.output


def test_flips_only_for_symmetric_designs():
    """An asymmetric figure (red left half, blue right half) keeps its sides unless flips are allowed."""
    from cinekit.train.augment import AugmentSettings, augment

    rgb = np.zeros((40, 20, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)
    rgb[:, 10:] = (0, 0, 255)
    mask = np.ones((40, 20), bool)

    def red_on_left(img) -> bool:
        # pure red / blue: backgrounds are drawn from 30..245 a channel, so never match
        red = np.argwhere((img[..., 0] > 250) & (img[..., 2] < 5))[:, 1].mean()
        blue = np.argwhere((img[..., 2] > 250) & (img[..., 0] < 5))[:, 1].mean()
        return red < blue

    for flip, expect_flips in ((False, False), (True, True)):
        rng = np.random.default_rng(0)
        sides = [red_on_left(augment(rgb, mask, 64, rng, AugmentSettings(flip=flip, backgrounds=1))[0])
                 for _ in range(12)]
        assert (not all(sides)) == expect_flips, sides


@pytest.mark.parametrize("text, expected", [
    ("name: a\n", "name: a\nlora:\n  - {file: n.safetensors, weight: 1.0}\n"),
    ("name: a\nlora: []  # none yet\n", "name: a\nlora: [{file: n.safetensors, weight: 1.0}]  # none yet\n"),
    ("name: a\nlora:\n  - file: b.safetensors   # old\n    weight: 0.5\n\n# next: identity\nidentity: {}\n",
     "name: a\nlora:\n  - file: b.safetensors   # old\n    weight: 0.5\n  - {file: n.safetensors, weight: 1.0}\n"
     "\n# next: identity\nidentity: {}\n"),
])
def test_yaml_edit_adds_one_line_and_keeps_the_rest(text, expected):
    import yaml

    from cinekit.train.yaml_edit import add_entry

    entry = {"file": "n.safetensors", "weight": 1.0}
    new, changed = add_entry(text, "lora", entry, same=lambda it: it.get("file") == "n.safetensors")
    assert changed and new == expected
    assert yaml.safe_load(new)["lora"][-1] == entry
    assert add_entry(new, "lora", entry, same=lambda it: it.get("file") == "n.safetensors") == (new, False)


def _checkpoint_step(root: Path) -> int:
    return int(torch.load(root / ".cinekit-cache" / "train" / "ann-lora" / "checkpoint.pt", weights_only=True)["step"])


def test_ctrl_c_saves_the_finished_step_and_resumes_to_the_same_weights(base, tmp_path):
    """A real `cinekit train` process gets SIGINT after its first logged step: it saves the step it
    finished (--checkpoint-every 100 would have saved nothing), says how to resume, exits 130 with
    no traceback; the same command again ends bit-identical to an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys

    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from cinekit.cli import app

    root = write_train_project(tmp_path / "proj", base)
    args = ["train", "ann", "--project", str(root), "--steps", "8", "--lr", "1e-2", "--rank", "4", "--size", "64",
            "--variants", "1", "--poses", "0", "--ci", "--device", "cpu"]
    whole = CliRunner().invoke(app, args + ["--out", str(root / "loras" / "whole.safetensors")])
    assert whole.exit_code == 0, whole.output
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "cinekit", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("step 1/8"):
            proc.send_signal(signal.SIGINT)
            break
    out = " ".join(("".join(seen) + proc.stdout.read()).split())
    assert proc.wait(timeout=120) == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    m = re.search(r"interrupted \(SIGINT\): saved a checkpoint at step (\d+)/8; run the same command again to resume",
                  out)
    assert m, out
    saved = int(m.group(1))
    assert 1 <= saved < 8 and _checkpoint_step(root) == saved
    assert not (root / "loras" / "ann.safetensors").exists()
    resumed = CliRunner().invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed at {saved}" in resumed.output
    a, b = load_file(str(root / "loras" / "whole.safetensors")), load_file(str(root / "loras" / "ann.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sigterm_mid_step_finishes_saves_and_resumes_exactly(tmp_path):
    """SIGTERM (a scheduler stopping the job) arriving inside step 3's forward pass: the step is
    finished and saved, the loop returns interrupted; resumed, it ends where an unstopped run ends."""
    import os
    import signal

    from cinekit.train.interrupt import exit_code
    from cinekit.train.loop import run_loop

    def run(work: Path, kill_at: int | None = None):
        w = torch.zeros(3, requires_grad=True)
        calls = [0]

        def loss_fn(rng):
            calls[0] += 1
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGTERM)      # handled at once: sets the flag
            return ((w - torch.randn(3, generator=rng)) ** 2).sum()

        r = run_loop(params={"w": w}, loss_fn=loss_fn, steps=6, lr=0.1, seed=1, device="cpu", dtype=torch.float32,
                     work=work, fingerprint="f", checkpoint_every=100)
        return r, w.detach().clone()

    before = signal.getsignal(signal.SIGTERM)     # not always SIG_DFL: an earlier test may have set one (Ray)
    whole, w_whole = run(tmp_path / "a")
    stopped, _ = run(tmp_path / "b", kill_at=3)
    assert stopped.interrupted == signal.SIGTERM and stopped.stopped and stopped.steps == 3
    assert signal.getsignal(signal.SIGTERM) == before                  # handlers restored
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 3
    resumed, w_resumed = run(tmp_path / "b")
    assert resumed.resumed_from == 3 and resumed.interrupted is None
    assert resumed.losses == whole.losses and torch.equal(w_resumed, w_whole)
    assert exit_code(signal.SIGTERM) == 143 and exit_code(signal.SIGINT) == 130
