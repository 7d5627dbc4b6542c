"""Identity scores through a tiny CLIP vision / DINOv2 model made in-process and reloaded offline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.project_factory import draw_figure, make_project

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def tiny_clip(folder, with_processor: bool = True):
    torch.manual_seed(0)
    config = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                           num_attention_heads=4, image_size=32, patch_size=8, projection_dim=16)
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(folder)
    if with_processor:
        transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def tiny_dinov2(folder):
    torch.manual_seed(0)
    config = transformers.Dinov2Config(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                       num_attention_heads=4, image_size=32, patch_size=8)
    transformers.Dinov2Model(config).save_pretrained(folder)
    return folder


def figure(tmp_path, colour) -> np.ndarray:
    draw_figure(tmp_path / f"fig{colour}.png", colour=colour)
    return np.asarray(Image.open(tmp_path / f"fig{colour}.png").convert("RGB"))


@pytest.mark.parametrize("maker", ["clip", "clip_no_processor", "dinov2"])
def test_embedder_loads_offline_and_embeds(tmp_path, maker, monkeypatch):
    from cinekit.score.identity import Embedder, cosine, cross_shot, identity_cosine

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / maker
    if maker == "dinov2":
        tiny_dinov2(folder)
    else:
        tiny_clip(folder, with_processor=maker == "clip")
    emb = Embedder(folder)
    a, b = figure(tmp_path, (200, 60, 60)), figure(tmp_path, (20, 200, 240))
    noise = np.random.default_rng(0).integers(0, 255, (120, 80, 3), dtype=np.uint8)
    vecs = emb.embed([a, a, b, noise])
    assert vecs.shape[0] == 4 and vecs.shape[1] in (16, 32)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    sim = cosine(vecs, vecs)
    assert sim[0, 1] == pytest.approx(1, abs=1e-5)
    assert sim[0, 3] < sim[0, 1]
    assert identity_cosine(emb, a, [a, a]) == pytest.approx(1, abs=1e-5)
    shots = cross_shot({"s1": vecs[0], "s2": vecs[1], "s3": vecs[3]})
    assert shots["s1"] > shots["s3"]


def test_unknown_model_type_and_missing_folder_are_model_errors(tmp_path):
    from cinekit.errors import ModelError
    from cinekit.score.identity import Embedder

    with pytest.raises(ModelError):
        Embedder(tmp_path / "nowhere")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelError, match="not a supported embedder"):
        Embedder(tmp_path / "bert").embed([np.zeros((8, 8, 3), np.uint8)])


def test_score_output_uses_the_project_embedder(tmp_path):
    """`embedder:` in cinekit.yaml (a folder relative to the project) gives identity_cosine."""
    from cinekit.score import check_gates, score_output

    tiny_clip(tmp_path / "proj" / "models" / "clip")
    root = make_project(tmp_path / "proj", "shots:\n  - {id: s1}\n",
                        config="output: renders\nembedder: models/clip\n"
                               "gates: {identity_cosine: {min: 0.5}, palette_delta_e: {max: 8}}\n")
    ref = np.asarray(Image.open(root / "characters" / "refs" / "ann.png"))
    panel = np.full((400, 200, 3), 255, np.uint8)
    alpha = ref[..., 3] > 127
    panel[alpha] = ref[..., :3][alpha]
    Image.fromarray(panel).save(tmp_path / "panel.png")
    scores = score_output(tmp_path / "panel.png", project=root, character="ann")
    ann = scores["characters"]["ann"]
    assert ann["identity_cosine"] > 0.9
    assert scores["scores"]["identity_cosine"] == ann["identity_cosine"]
    assert {g.status for g in check_gates(scores, {"identity_cosine": {"min": 0.5}})} == {"pass"}


def test_importing_scores_does_not_import_torch():
    code = ("import sys, cinekit.score, cinekit.score.identity, cinekit.score.report, cinekit.cli; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
