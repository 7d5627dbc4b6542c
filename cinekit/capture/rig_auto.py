"""``cinekit rig NAME --auto``: propose a character's rig from its first reference image.

BlazePose (``capture.body``) on the reference finds the COCO-18 joints of a photographed or
realistically drawn body. It is trained on photos: on flat stylised art (chibi proportions,
no shading) it often finds nothing, or a body missing most limbs; then the proposal is refused
with a clear message instead of writing a rig the user would have to undo.

The proposal is written into the character's YAML with minimal edits: the value of each joint
the file already has is replaced in place (its key, comments and the rest of the file are
untouched); joints it lacks are added after its last joint; a file without ``rig:`` gets a
block appended. Joints not found are left as they were (and reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from cinekit.errors import UserError
from cinekit.pose.skeleton import INDEX, JOINTS

BODY = ("neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
        "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle")
MIN_BODY_JOINTS = 7   # fewer of BODY found: "no body" (a face, or a detector fooled by stylised art)

# Bone length / torso length (neck to hip) a body can have, generous enough for stylised but
# humanoid art (measured: 0.17-0.67 on the two real-refs photos and the example's mika; a
# children's drawing that fooled the detector, animated-drawings char3, had shoulders of 0.15
# and an eye 0.02 from the nose).
PLAUSIBLE: dict[tuple[str, str], tuple[float, float]] = {
    ("neck", "right_shoulder"): (0.2, 0.6), ("neck", "left_shoulder"): (0.2, 0.6),
    ("right_shoulder", "right_elbow"): (0.3, 1.0), ("left_shoulder", "left_elbow"): (0.3, 1.0),
    ("right_elbow", "right_wrist"): (0.25, 1.0), ("left_elbow", "left_wrist"): (0.25, 1.0),
    ("right_hip", "right_knee"): (0.45, 1.4), ("left_hip", "left_knee"): (0.45, 1.4),
    ("right_knee", "right_ankle"): (0.45, 1.4), ("left_knee", "left_ankle"): (0.45, 1.4),
    ("neck", "nose"): (0.12, 0.8), ("nose", "right_eye"): (0.03, 0.3), ("nose", "left_eye"): (0.03, 0.3),
}


@dataclass(frozen=True)
class RigProposal:
    joints: np.ndarray          # (18, 2) pixels on the image, NaN = not found
    width: int
    height: int

    @property
    def found(self) -> list[str]:
        return [j for j in JOINTS if np.isfinite(self.joints[INDEX[j]]).all()]

    @property
    def missing(self) -> list[str]:
        return [j for j in JOINTS if j not in self.found]

    @property
    def has_body(self) -> bool:
        return sum(j in self.found for j in BODY) >= MIN_BODY_JOINTS

    def implausible(self) -> list[str]:
        """Bones whose length no body has, relative to the torso (``PLAUSIBLE``), as sentences."""
        p = lambda name: self.joints[INDEX[name]]  # noqa: E731
        torso = np.nanmean([np.linalg.norm(p("neck") - p(h)) for h in ("right_hip", "left_hip")]) \
            if any(np.isfinite(p(h)).all() for h in ("right_hip", "left_hip")) and np.isfinite(p("neck")).all() \
            else np.nan
        if not np.isfinite(torso) or torso <= 0:
            return []
        out = []
        for (a, b), (lo, hi) in PLAUSIBLE.items():
            r = np.linalg.norm(p(a) - p(b)) / torso
            if np.isfinite(r) and not lo <= r <= hi:
                out.append(f"{a}-{b} is {r:.2f} x the torso (a body: {lo:g}-{hi:g})")
        return out


def propose(image: Path) -> RigProposal:
    """The rig BlazePose finds on ``image`` (RGBA art is laid on white first, as it is drawn)."""
    from cinekit.capture.body import detect_image

    rgb = _rgb_on_white(image)
    return RigProposal(detect_image(rgb), rgb.shape[1], rgb.shape[0])


def _rgb_on_white(image: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"{image}: cannot read this image: {exc}") from None
    alpha = rgba[..., 3:4] / 255.0
    return np.clip(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- the picture
def draw_over(image: Path, proposal: RigProposal, out: Path) -> Path:
    """The art with the proposed rig drawn over it (OpenPose colours, labelled joints) -> PNG."""
    import cv2

    from cinekit.pose.draw import draw_control_map
    from cinekit.render.writers import write_png

    art = _rgb_on_white(image)
    h, w = art.shape[:2]
    stick = max(2, round(min(h, w) / 120))
    bones = draw_control_map(proposal.joints, w, h, stickwidth=stick)
    drawn = bones.max(axis=-1, keepdims=True) > 0
    canvas = np.where(drawn, (0.35 * art + 0.65 * bones).astype(np.uint8), (0.75 * art + 64).astype(np.uint8))
    canvas = np.ascontiguousarray(canvas)
    for name in proposal.found:
        x, y = (int(round(v)) for v in proposal.joints[INDEX[name]])
        cv2.putText(canvas, name, (x + 4, y - 4), cv2.FONT_HERSHEY_SIMPLEX, max(0.3, min(h, w) / 1600), (0, 0, 0), 1,
                    cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_png(out, canvas, {"rig": "proposed by cinekit rig --auto"})
    return out


# --------------------------------------------------------------------------- the YAML edit
def _xy(point: np.ndarray) -> str:
    return f"[{int(round(point[0]))}, {int(round(point[1]))}]"


def _node(mapping: yaml.MappingNode, key: str):
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None, None


def write_rig(path: Path, proposal: RigProposal, note: str) -> tuple[list[str], list[str]]:
    """Write ``proposal`` into the character file ``path`` (minimal edits; see the module
    docstring) -> ``(joints replaced, joints added)``. ``note``: the comment of a new block."""
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: cannot parse this YAML: {exc}") from None
    if not isinstance(root, yaml.MappingNode):
        raise UserError(f"{path}: a character file is a mapping (name:, references:, ...)")
    found = proposal.found
    _key, rig = _node(root, "rig")
    if rig is None:
        lines = [f"rig:\n  joints:    # {note}\n"] + [f"    {j}: {_xy(proposal.joints[INDEX[j]])}\n" for j in found]
        sep = "" if text.endswith("\n") or not text else "\n"
        path.write_text(text + sep + "".join(lines), encoding="utf-8")
        return [], found
    if not isinstance(rig, yaml.MappingNode) or _node(rig, "from")[1] is not None:
        raise UserError(f"{path}: rig: is read from a file (`from:`); --auto writes `joints:`",
                        hint="delete the rig: block (or its from:/map:) and run `cinekit rig NAME --auto` again")
    _jk, joints = _node(rig, "joints")
    if not isinstance(joints, yaml.MappingNode):
        raise UserError(f"{path}: rig: has no `joints:` mapping to fill", hint="delete the rig: block and run again")
    edits: list[tuple[int, int, str]] = []     # (start, end, replacement) character spans
    replaced = []
    for k, v in joints.value:
        if isinstance(k, yaml.ScalarNode) and k.value in found:
            edits.append((v.start_mark.index, v.end_mark.index, _xy(proposal.joints[INDEX[k.value]])))
            replaced.append(k.value)
    added = [j for j in found if j not in replaced]
    if added:
        if joints.flow_style:
            at = joints.end_mark.index - 1            # before the closing brace
            edits.append((at, at, "".join(f", {j}: {_xy(proposal.joints[INDEX[j]])}" for j in added)))
        else:
            last = joints.value[-1][1] if joints.value else None
            indent = " " * (joints.value[0][0].start_mark.column if joints.value else rig.start_mark.column + 2)
            at = text.index("\n", last.end_mark.index) + 1 if last is not None and "\n" in text[
                last.end_mark.index:] else len(text)
            block = "".join(f"{indent}{j}: {_xy(proposal.joints[INDEX[j]])}\n" for j in added)
            edits.append((at, at, ("" if text[:at].endswith("\n") else "\n") + block))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    path.write_text(text, encoding="utf-8")
    return replaced, added
