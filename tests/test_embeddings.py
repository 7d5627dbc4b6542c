"""The identity core's reference encodings: view weights, on-disk cache keyed by hash + encoder."""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.identity.embeddings import (
    ReferenceEncoder,
    ReferenceLatents,
    reference_image,
    view_weights,
)
from tests.diffusers_fixtures import *  # noqa: F403
from tests.diffusers_fixtures import make_runtime


@pytest.mark.parametrize("views,view,expected", [
    (["front", "side"], "front", [1.0, 0.0]),
    (["front", "side"], "three_quarter", [0.5, 0.5]),
    (["front", "side"], "side", [0.0, 1.0]),
    (["front", "three_quarter", "side"], "front", [2 / 3, 1 / 3, 0.0]),
    (["back"], "front", [1.0]),                        # nothing faces the right way: the nearest
    (["front", "back"], "back", [0.0, 1.0]),
    (["side", "back"], "front", [1.0, 0.0]),
])
def test_view_weights(views, view, expected):
    assert view_weights(views, view).tolist() == pytest.approx(expected)


@pytest.fixture(scope="module")
def encoder_parts(tiny_models):
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    enc = CLIPVisionModelWithProjection.from_pretrained(tiny_models.image_encoder, local_files_only=True)
    return enc, CLIPImageProcessor(size=32, crop_size=32)


def test_reference_image_is_the_figure_on_white(tiny_project):
    ann = make_runtime(tiny_project).identities.get("ann").references[0]
    img = np.asarray(reference_image(ann, (64, 48)))
    assert img.shape == (48, 64, 3)
    assert (img[0, 0] == 255).all()                         # background
    assert (img != 255).any(axis=-1).mean() > 0.1            # the figure fills the frame


def test_embeddings_cached_on_disk_by_hash_and_encoder(tiny_project, encoder_parts, tmp_path):
    rt = make_runtime(tiny_project)
    ann = rt.identities.get("ann")
    enc, fx = encoder_parts
    counts: dict[str, int] = {}

    def count(key):
        counts[key] = counts.get(key, 0) + 1

    first = ReferenceEncoder(tmp_path, enc, fx, "enc-A", count=count)
    e_front = first.embedding(ann.references[0])
    first.embedding(ann.references[0])                       # memory hit
    assert counts == {"reference_encodings": 1} and e_front.shape == (1, 32)
    files = list((tmp_path / "ip-embeds").rglob("*.safetensors"))
    assert len(files) == 1
    # a new encoder object (next run) reads the file: no encoding, same values
    second = ReferenceEncoder(tmp_path, enc, fx, "enc-A", count=count)
    assert np.array_equal(second.embedding(ann.references[0]).numpy(), e_front.numpy())
    assert counts == {"reference_encodings": 1}
    # another image encoder identity is another key
    ReferenceEncoder(tmp_path, enc, fx, "enc-B", count=count).embedding(ann.references[0])
    assert counts == {"reference_encodings": 2}


def test_character_embedding_is_view_weighted(tiny_project, encoder_parts, tmp_path):
    ann = make_runtime(tiny_project).identities.get("ann")
    enc, fx = encoder_parts
    e = ReferenceEncoder(tmp_path, enc, fx, "enc")
    front, side = e.embedding(ann.references[0]), e.embedding(ann.references[1])
    mixed, used = e.character(ann, "three_quarter")
    assert used == {"ann.png": 0.5, "ann_side.png": 0.5}
    assert np.allclose(mixed.numpy(), (0.5 * front + 0.5 * side).numpy())
    only_front, used = e.character(ann, "front")
    assert used == {"ann.png": 1.0} and np.array_equal(only_front.numpy(), front.numpy())


def test_reference_latents_cached(tiny_project, tiny_models, tmp_path):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(tiny_models.base / "vae", local_files_only=True)
    ann = make_runtime(tiny_project).identities.get("ann").references[0]
    counts: dict[str, int] = {}

    def count(key):
        counts[key] = counts.get(key, 0) + 1

    z = ReferenceLatents(tmp_path, vae, "vae-1", count).latent(ann, (64, 64))
    assert z.shape == (1, 4, 8, 8)
    again = ReferenceLatents(tmp_path, vae, "vae-1", count).latent(ann, (64, 64))
    assert counts == {"reference_latent_encodings": 1} and np.array_equal(z.numpy(), again.numpy())
    ReferenceLatents(tmp_path, vae, "vae-1", count).latent(ann, (128, 64))
    assert counts == {"reference_latent_encodings": 2}


def test_an_edited_reference_is_encoded_again(tiny_project, encoder_parts, tmp_path):
    """The cache is keyed by the reference's content: new bytes at the same path are encoded
    again (no stale embedding served), on disk and in memory, and the value is the new art's."""
    import torch

    from tests.project_factory import draw_figure

    enc, fx = encoder_parts
    counts: dict[str, int] = {}

    def count(key):
        counts[key] = counts.get(key, 0) + 1

    before = make_runtime(tiny_project).identities.get("ann").references[0]
    same_run = ReferenceEncoder(tmp_path, enc, fx, "enc", count=count)
    old = same_run.embedding(before)
    draw_figure(before.path, colour=(30, 200, 200))                 # the artist edits the reference
    after = make_runtime(tiny_project).identities.get("ann").references[0]
    assert after.path == before.path
    next_run = ReferenceEncoder(tmp_path, enc, fx, "enc", count=count).embedding(after)
    in_memory = same_run.embedding(after)
    assert counts == {"reference_encodings": 2}                     # old art, new art (then read from disk)
    fresh = ReferenceEncoder(None, enc, fx, "enc").embedding(after)  # no cache at all
    assert torch.equal(next_run, fresh) and torch.equal(in_memory, fresh)
    assert not torch.allclose(fresh, old, atol=1e-4)                 # the art change reaches the embedding
