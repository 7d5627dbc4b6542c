"""The render cache key covers every file a job reads: a property test over a project that uses
every kind of input (reference image, its mask and part label map, a rig file, LoRA, embedding, background
image, an OpenPose motion file, every file of the model set).

The oracle is the project folder itself, not the planner's list: every file under it that is
not the project's own YAML (``cinekit.yaml`` and the shot list, which reach the key through the
resolved job record) is an input of the shot. Editing any of them must make the rendered job
stale, with the reason naming it; putting the bytes back must make it cached again.

The shot is planned for the diffusers engine (a weight-free engine's key leaves the model set
out, ``test_weight_free_keys``); its bytes are drawn by previz here, as the fake model files
would not load, and the key does not depend on which engine drew them.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from tests.project_factory import RIG, draw_figure

CONFIG = """\
    output: renders
    engines: {still: previz, clip: previz}
    defaults: {size: [128, 96], fps: 8}
    models:
      m:
        base: models/base
        vae: models/vae.safetensors
        controlnet: {openpose: models/cn-openpose}
        ip_adapter: {path: models/ip, subfolder: models, weight: ip.safetensors, image_encoder: models/ip/encoder}
        motion_adapter: models/motion
    """


def write_project(root: Path) -> Path:
    from cinekit.pose.skeleton import JOINTS

    (root / "characters" / "refs").mkdir(parents=True)
    (root / "cinekit.yaml").write_text(textwrap.dedent(CONFIG))
    # an opaque scan plus a separate mask file
    draw_figure(root / "characters" / "refs" / "ann.png", colour=(200, 40, 40))
    scan = Image.open(root / "characters" / "refs" / "ann.png")
    Image.alpha_composite(Image.new("RGBA", scan.size, (255, 255, 255, 255)), scan).convert("RGB").save(
        root / "characters" / "refs" / "ann_scan.png")
    scan.getchannel("A").save(root / "characters" / "refs" / "ann_mask.png")
    Image.new("RGB", scan.size, (255, 0, 0)).save(root / "characters" / "refs" / "ann_parts.png")  # puppet parts
    (root / "characters" / "refs" / "ann.png").unlink()
    skeleton = [{"name": {"right_wrist": "right_hand", "left_wrist": "left_hand", "right_ankle": "right_foot",
                          "left_ankle": "left_foot"}.get(j, j), "loc": RIG[j]} for j in RIG
                if j not in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")]
    (root / "characters" / "rig").mkdir()
    (root / "characters" / "rig" / "char_cfg.yaml").write_text(json.dumps({"skeleton": skeleton}))
    from safetensors.numpy import save_file

    # readable safetensors (the loader checks the header), too small to be anything real
    save_file({"lora_unet_down.lora_down.weight": np.zeros((1, 1), np.float32)},
              str(root / "characters" / "ann_lora.safetensors"))
    save_file({"emb_params": np.zeros((1, 4), np.float32)}, str(root / "characters" / "ann_emb.safetensors"))
    (root / "characters" / "ann.yaml").write_text(textwrap.dedent("""\
        name: ann
        description: ann
        references:
          - {image: refs/ann_scan.png, mask: refs/ann_mask.png, parts: refs/ann_parts.png, view: front}
        rig: {from: rig/char_cfg.yaml}
        lora: [{file: ann_lora.safetensors, weight: 0.5}]
        embeddings: [{file: ann_emb.safetensors, token: "<ann>"}]
        """))
    frame = [v for j in JOINTS for v in (*RIG[j], 0.9)]
    (root / "shots" / "motion").mkdir(parents=True)
    Image.new("RGB", (128, 96), (30, 60, 90)).save(root / "shots" / "bg.png")
    (root / "shots" / "motion" / "walk.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": frame}]}))
    (root / "shots" / "ep.yaml").write_text(textwrap.dedent("""\
        shots:
          - id: s1
            prompt: "{ann} stands"
            background: bg.png
            characters: [{name: ann, pose: {openpose: motion/walk.json}}]
        """))
    for rel in ("models/base/unet/model.safetensors", "models/base/model_index.json", "models/vae.safetensors",
                "models/cn-openpose/model.safetensors", "models/ip/models/ip.safetensors",
                "models/ip/encoder/model.safetensors", "models/motion/model.safetensors"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    return root


def inputs_by_folder(root: Path) -> list[Path]:
    """Every file of the project that the shot reads (all but the project's YAML and outputs)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "renders"
                  and p.name not in ("cinekit.yaml", "ep.yaml"))


def plan(root: Path):
    from cinekit.render.plan import Planner
    from cinekit.render.run import plan_batch
    from cinekit.spec.project import load_project

    project = load_project(root)
    jobs = [p.job for p in Planner(project, engine_override="diffusers").plan()]
    return plan_batch(project, jobs, root / "renders")[0]


def test_editing_any_input_file_forces_a_rerender(tmp_path):
    from cinekit.engines.previz import PrevizEngine
    from cinekit.render.outputs import write_result
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    root = write_project(tmp_path / "p")
    first = plan(root)
    assert first.run and first.reason == "new" and first.job.model == "m"
    runtime = Runtime.for_project(load_project(root))
    result = PrevizEngine(runtime).render(first.job)
    write_result(root / "renders", first.job, result, engine_version=PrevizEngine.version, key=first.key)
    assert plan(root).reason == "cached"

    files = inputs_by_folder(root)
    assert len(files) == 16              # 9 project files + 7 model files
    listed = set(first.key.parts["inputs"])
    for path in files:
        rel = path.relative_to(root).as_posix()
        owner = next((name for name in listed if rel == name or rel.startswith(name + "/")), None)
        assert owner is not None, f"{rel} is read by the shot but not part of its cache key"
        original = path.read_bytes()
        path.write_bytes(original + b"\n")           # an edit that keeps every format readable
        try:
            stale = plan(root)
            assert stale.run and stale.reason == f"input {owner} changed", (rel, stale.reason)
            assert stale.key.key != first.key.key
        finally:
            path.write_bytes(original)
        assert plan(root).reason == "cached", rel
