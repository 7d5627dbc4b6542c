"""The diffusers still engine on tiny offline models: each identity mechanism is asserted.

Strength 0 of IP-Adapter, reference attention and LoRA reproduces the baseline bit for bit,
strength > 0 changes the output; two characters' contributions stay in their regions; the
pipeline loads once for N shots; a second run encodes no reference again.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cinekit.errors import UserError
from tests.diffusers_fixtures import *  # noqa: F403
from tests.diffusers_fixtures import make_runtime, still_job

OFF = {"ip_adapter": 0.0, "reference_attention": 0.0}


def render(engine, job):
    engine.check_inputs(job)
    return engine.render(job)


@pytest.fixture(scope="module")
def baseline(shared_engine):
    """ann alone with every identity mechanism off, rendered before any adapter was loaded."""
    return render(shared_engine, still_job(("ann",), options=OFF)).frames


def test_result_shapes_and_info(shared_engine, baseline):
    res = render(shared_engine, still_job(("ann", "bob")))
    assert res.frames.shape == (1, 64, 128, 3) and res.frames.dtype == np.uint8
    assert res.extras["control"].shape == (1, 64, 128, 3)
    assert res.masks.shape == (1, 2, 64, 128) and not (res.masks[0, 0] & res.masks[0, 1]).any()
    info = res.info
    assert info["model"] == "tiny" and info["scheduler"] == "DDIMScheduler" and info["files"]
    assert info["identity"]["reference_passes"] == 2          # one per denoising step
    assert info["identity"]["ip_adapter"]["scales"] == {"ann": 0.7, "bob": 0.7}


def test_deterministic(shared_engine, baseline):
    again = render(shared_engine, still_job(("ann",), options=OFF)).frames
    assert np.array_equal(baseline, again)


def _under_oracle(shared_engine, monkeypatch, job, kinds):
    """Render ``job`` with every attention layer checked against the oracle (tests/identity_oracle.py)."""
    from tests.identity_oracle import oracle_render, spatial_attention_layers

    engine = shared_engine.engine("still")
    pipe = engine.loader.pipeline("tiny", "controlnet")
    res, oracle, _ = oracle_render(engine, pipe, job, monkeypatch)
    oracle.assert_ok(spatial_attention_layers(pipe.unet), kinds=kinds)
    return res.frames


def test_ip_adapter_zero_is_baseline_and_positive_changes(shared_engine, baseline, monkeypatch):
    """Scale 0: the baseline bit for bit. Scale 1: every attn2 output inside the region is
    diffusers' IP-Adapter at scale 1 (not only "the picture changed")."""
    job = still_job(("ann",), options={"ip_adapter": 1.0, "reference_attention": 0.0})
    on = _under_oracle(shared_engine, monkeypatch, job, ("ip_adapter",))
    assert not np.array_equal(on, baseline)
    # the IP-Adapter is now loaded in the shared UNet: scale 0 must still equal never having loaded it
    off = render(shared_engine, still_job(("ann",), options=OFF)).frames
    assert np.array_equal(off, baseline)


def test_reference_attention_zero_is_baseline_and_positive_changes(shared_engine, baseline, monkeypatch):
    """Strength 0: the baseline bit for bit. Strength 0.8: every attn1 output inside the region
    is attention over the reference's K/V mixed in at 0.8 (conditional) / 0.4 (unconditional)."""
    job = still_job(("ann",), options={"ip_adapter": 0.0, "reference_attention": 0.8})
    on = _under_oracle(shared_engine, monkeypatch, job, ("reference",))
    assert not np.array_equal(on, baseline)
    off = render(shared_engine, still_job(("ann",), options=OFF)).frames
    assert np.array_equal(off, baseline)


def test_style_fidelity_weights_the_unconditional_branch(shared_engine, monkeypatch):
    """Fidelity 0: both guidance branches get the reference at full strength; fidelity 1: only
    the conditional one (the oracle checks the weight per half of the batch at every layer)."""
    opts = {"ip_adapter": 0.0, "reference_attention": 1.0}
    a = _under_oracle(shared_engine, monkeypatch, still_job(("ann",), options={**opts, "style_fidelity": 0.0}),
                      ("reference",))
    b = _under_oracle(shared_engine, monkeypatch, still_job(("ann",), options={**opts, "style_fidelity": 1.0}),
                      ("reference",))
    assert not np.array_equal(a, b)


def test_lora_weight_zero_is_no_lora(shared_engine, baseline):
    w1 = render(shared_engine, still_job(("lw1",), options=OFF))
    assert not np.array_equal(w1.frames, baseline)
    assert w1.info["loras"] == {"tiny_lora.safetensors": 1.0}
    w0 = render(shared_engine, still_job(("lw0",), options=OFF)).frames
    assert np.array_equal(w0, baseline)
    # and a job without LoRA after LoRA jobs is the baseline again (adapters switched off)
    assert np.array_equal(render(shared_engine, still_job(("ann",), options=OFF)).frames, baseline)


def test_textual_inversion_token(shared_engine, tiny_models):
    token = tiny_models.embedding_token
    with_tok = render(shared_engine, still_job(("emb",), prompt=f"{token} waves", options=OFF)).frames
    tokenizer = shared_engine.engine("still").loader.components("tiny").components["tokenizer"]
    assert token in tokenizer.get_vocab()
    plain = render(shared_engine, still_job(("emb",), prompt="x waves", options=OFF)).frames
    assert not np.array_equal(with_tok, plain)
    # the vectors the text encoder uses for the token are the file's, in order
    from safetensors.torch import load_file

    vectors = next(iter(load_file(str(tiny_models.embedding)).values()))
    encoder = shared_engine.engine("still").loader.components("tiny").components["text_encoder"]
    table = encoder.get_input_embeddings().weight
    ids = tokenizer.convert_tokens_to_ids([token] + [f"{token}_{i}" for i in range(1, len(vectors))])
    assert torch.equal(table[ids].detach().float(), vectors.float().reshape(len(ids), -1))


def test_long_prompt_chunked_or_rejected(shared_engine):
    # the tiny tokenizer has no merges: one token per character
    long = render(shared_engine, still_job(("ann",), prompt="a" * 100, options=OFF)).frames
    short = render(shared_engine, still_job(("ann",), prompt="a" * 70, options=OFF)).frames
    assert long.shape == short.shape and not np.array_equal(long, short)
    with pytest.raises(UserError, match="tokens"):
        shared_engine.check_inputs(still_job(("ann",), prompt="a" * 700))


def test_two_characters_contributions_stay_in_their_regions(shared_engine):
    """A hook on the processors: at every attention layer each character's IP-Adapter and
    reference-attention contribution is exactly zero outside its region, non-zero inside."""
    seen: dict[tuple[str, str, int], bool] = {}

    def hook(info):
        contribution, mask = info["contribution"], info["mask"]           # (B, N, D), (B, N, 1)
        outside = contribution * (1 - mask)
        assert outside.abs().max().item() == 0.0
        inside = (contribution.abs().sum(-1, keepdim=True) * mask).sum().item()
        seen[(info["kind"], info["layer"], info["character"])] = inside > 0
        if info["kind"] == "reference":
            assert info["k_ref"].shape[0] == 1 and info["k_ref"].shape[-1] == info["k_self"].shape[-1]

    engine = shared_engine.engine("still")
    engine.hooks.append(hook)
    try:
        render(shared_engine, still_job(("ann", "bob"), options={"ip_adapter": 1.0, "reference_attention": 1.0}))
    finally:
        engine.hooks.remove(hook)
    unet = engine.loader.components("tiny").components["unet"]
    attn1 = [n for n in unet.attn_processors if n.endswith("attn1.processor")]
    attn2 = [n for n in unet.attn_processors if n.endswith("attn2.processor")]
    for kind, layers in (("reference", attn1), ("ip_adapter", attn2)):
        for layer in layers:
            for c in (0, 1):
                assert seen.get((kind, layer, c)) is True, (kind, layer, c)


def test_region_share_of_change_when_perturbing_a(shared_engine, record_property):
    """End to end: swap A's reference art; most of the output change lies inside A's region."""
    opts = {"ip_adapter": 1.0, "reference_attention": 1.0}
    a = render(shared_engine, still_job(("ann", "bob"), options=opts, steps=3))
    b = render(shared_engine, still_job(("ann2", "bob"), options=opts, steps=3))
    diff = np.abs(a.frames[0].astype(np.int32) - b.frames[0]).sum(-1)
    assert diff.sum() > 0
    share = float(diff[a.masks[0, 0]].sum() / diff.sum())
    area = float(a.masks[0, 0].mean())
    record_property("region_share", share)
    print(f"share of the change inside A's region: {share:.1%} (A's region is {area:.0%} of the frame)")
    # A's identity acts only inside A's region; the rest of the frame moves only through the
    # UNet's spatial mixing. Measured: 52 % for a 23 % region; 21 % (below the area share) when
    # the IP-Adapter contribution is added unmasked. Bound: well above the area share.
    assert share >= 1.5 * area, (share, area)


def test_view_weights_reach_the_embedding(shared_engine):
    res = render(shared_engine, still_job(("ann",), views={"ann": "three_quarter"},
                                          options={"ip_adapter": 1.0, "reference_attention": 0.5}))
    assert res.info["identity"]["ip_adapter"]["weights"]["ann"] == {"ann.png": 0.5, "ann_side.png": 0.5}
    assert res.info["identity"]["references"]["ann"]["view"] in ("front", "side")
    side = render(shared_engine, still_job(("ann",), views={"ann": "side"}, options={"ip_adapter": 1.0}))
    assert side.info["identity"]["ip_adapter"]["weights"]["ann"] == {"ann_side.png": 1.0}
    assert side.info["identity"]["references"]["ann"]["reference"] == "ann_side.png"


def test_second_run_encodes_nothing_and_n_shots_load_once(shared_project, tmp_path):
    from cinekit.engines.base import create_engine

    jobs = [still_job(("ann", "bob"), seed=s) for s in range(3)]
    rt1 = make_runtime(shared_project, cache_dir=tmp_path / "cache")
    e1 = create_engine("diffusers", rt1)
    for j in jobs:
        render(e1, j)
    assert rt1.stats["pipeline_loads"] == 1 and rt1.stats["model_loads"] == 1
    assert rt1.stats["reference_encodings"] == 2            # ann + bob, once each for 3 shots
    assert rt1.stats["reference_latent_encodings"] == 2
    rt2 = make_runtime(shared_project, cache_dir=tmp_path / "cache")
    e2 = create_engine("diffusers", rt2)
    render(e2, jobs[0])
    assert rt2.stats.get("reference_encodings", 0) == 0
    assert rt2.stats.get("reference_latent_encodings", 0) == 0
    assert rt2.stats["pipeline_loads"] == 1


def test_refine_over_the_puppet_render(shared_engine):
    res = render(shared_engine, still_job(("ann",), refine=0.6, steps=3))
    assert res.frames.shape == (1, 64, 128, 3)
    assert res.info["kind"] == "controlnet_img2img"
    loader = shared_engine.engine("still").loader
    # the img2img pipeline shares the already loaded components
    assert loader.pipeline("tiny", "controlnet_img2img").unet is loader.pipeline("tiny", "controlnet").unet


def test_check_inputs_rejects_clearly(shared_engine):
    with pytest.raises(UserError, match="model"):
        shared_engine.check_inputs(still_job(("ann",), model=None))
    with pytest.raises(UserError, match="unknown model set"):
        shared_engine.check_inputs(still_job(("ann",), model="nope"))
    with pytest.raises(UserError, match="multiple of 8"):
        shared_engine.check_inputs(still_job(("ann",), width=100))


def test_clip_jobs_go_to_the_video_engine(shared_engine):
    from cinekit.engines.diffusers_clip import DiffusersClipEngine
    from cinekit.engines.diffusers_still import DiffusersStillEngine

    assert isinstance(shared_engine.engine("clip"), DiffusersClipEngine)
    assert isinstance(shared_engine.engine("still"), DiffusersStillEngine)
    assert shared_engine.engine("clip") is shared_engine.engine("clip")  # built once


def test_cinekit_still_on_the_example_project_with_tiny_models(tmp_path, tiny_models):
    """`cinekit still --engine diffusers` on the example project (tiny models) writes every panel."""
    import yaml
    from typer.testing import CliRunner

    from cinekit.cli import app
    from cinekit.testing.tiny import modelset_dict
    from tests.conftest import copy_example

    root = copy_example(tmp_path / "example")
    config = yaml.safe_load((root / "cinekit.yaml").read_text())
    config["models"] = {"tiny": modelset_dict(tiny_models, root)}
    config["defaults"]["steps"] = 2
    config.pop("gates", None)  # random tiny weights cannot meet the example's palette gates
    (root / "cinekit.yaml").write_text(yaml.safe_dump(config))
    for shots in (root / "shots").glob("*.yaml"):
        shots.write_text(shots.read_text().replace("size: [768, 512]", "size: [96, 64]"))
    stills = sum(s.get("kind", "still") == "still"
                 for f in (root / "shots").glob("*.yaml") for s in yaml.safe_load(f.read_text())["shots"])
    res = CliRunner().invoke(app, ["still", str(root), "--engine", "diffusers", "--ci", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    pngs = [p for p in (root / "renders").rglob("*.png") if "control" not in p.name]
    assert stills >= 1 and len(pngs) >= stills, (res.output, pngs)


# --------------------------------------------------------------------------- oracles on the values used
MIXED = {"ip_adapter": {"ann": 1.0, "bob": 0.5}, "reference_attention": {"ann": 0.5, "bob": 1.0},
         "style_fidelity": {"ann": 0.25, "bob": 0.5}}


def test_identity_attention_output_is_what_each_character_asked_for(shared_engine, monkeypatch):
    """At every spatial attention layer, on the hidden states the processor returned: inside
    each character's region, diffusers' IP-Adapter at that character's scale with that
    character's image tokens (attn2), and self-attention over that character's reference K/V at
    its strength (attn1); outside every region, exactly the output without any contribution.
    Scales 0.5 and 1 both occur (linearity/calibration), two distinguishable references (routing)."""
    from tests.identity_oracle import check_image_tokens, oracle_render, spatial_attention_layers

    engine = shared_engine.engine("still")
    pipe = engine.loader.pipeline("tiny", "controlnet")
    res, oracle, _ = oracle_render(engine, pipe, still_job(("ann", "bob"), options=MIXED), monkeypatch)
    oracle.assert_ok(spatial_attention_layers(pipe.unet))
    check_image_tokens(engine, pipe, still_job(("ann", "bob"), options=MIXED), oracle)
    assert len(oracle.passes) == 2 and res.info["identity"]["reference_passes"] == 2
    print("worst relative error per layer:", {k: f"{v:.1e}" for k, v in oracle.worst.items()})


def test_reference_latent_noise_level_per_step(shared_engine, monkeypatch):
    """The reference pass of each step sees each character's reference latent noised to that
    step's timestep (fitted a, b of ``a x0 + b n`` against the scheduler's sqrt(alpha_bar))."""
    from tests.identity_oracle import check_reference_noise, oracle_render

    engine = shared_engine.engine("still")
    pipe = engine.loader.pipeline("tiny", "controlnet")
    job = still_job(("ann", "bob"), steps=3, options={"ip_adapter": 0.0, "reference_attention": 1.0})
    _, oracle, ctl = oracle_render(engine, pipe, job, monkeypatch)
    levels = check_reference_noise(engine, pipe, job, oracle, ctl)
    print("reference noise per step (t, signal, noise):", [(int(t), round(a, 4), round(b, 4)) for t, a, b in levels])
    assert len({round(b, 4) for _, _, b in levels}) == 3          # a different level at each step
