"""Pydantic models: the only schema of cinekit's YAML files.

Every model forbids unknown keys (the loader turns that into a "did you mean" hint) and is
frozen. Cross-file checks (unknown characters, missing files, duplicate ids) live in
``spec.validate``; this module only states the shape and ranges of each file.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
ShotId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=64)]  # names files: no dots
Size = tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
View = Literal["front", "three_quarter", "side", "back"]
CameraPreset = Literal["close_up", "medium", "full", "wide"]
Ease = Literal["linear", "ease_in", "ease_out", "ease_in_out", "hold"]
PositionName = Literal["far_left", "left", "center", "right", "far_right"]
Limb = Literal["right_arm", "left_arm", "right_leg", "left_leg"]

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]   # what torch.Generator.manual_seed takes


class Strict(BaseModel):
    # allow_inf_nan=False: `fps: .inf` or `duration: .nan` is a typo, never a value to render
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def parse_color(value: Any) -> tuple[int, int, int] | None:
    """'#rrggbb' or [r, g, b] -> (r, g, b); anything else -> None."""
    if isinstance(value, str) and _HEX.match(value):
        return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in value):
        return tuple(value)  # type: ignore[return-value]
    return None


# --------------------------------------------------------------------------- cinekit.yaml
class EngineDefaults(Strict):
    still: str = "previz"
    clip: str = "previz"


class Defaults(Strict):
    size: Size = (768, 512)
    fps: Annotated[float, Field(gt=0)] = 12
    seed: Seed = 0
    steps: Annotated[int, Field(ge=1, le=1000)] = 25
    guidance: Annotated[float, Field(ge=0, le=50)] = 7.0
    background: str | list[int] = "#ebebf0"


class Limits(Strict):
    """Sanity limits; a shot outside them is an error (raise them here if you mean it)."""

    max_duration: Annotated[float, Field(gt=0)] = 120.0
    max_fps: Annotated[float, Field(gt=0)] = 60.0
    min_size: Annotated[int, Field(ge=8)] = 64
    max_size: Annotated[int, Field(ge=8)] = 4096
    max_characters: Annotated[int, Field(ge=1)] = 8
    # Host memory one job may need (frames held + working buffers; see spec.budget), e.g. "16 GiB".
    max_memory: Annotated[ByteSize, Field(gt=0)] = ByteSize(16 * 2**30)


class ControlNets(Strict):
    openpose: str | None = None
    depth: str | None = None
    canny: str | None = None


class IPAdapterSpec(Strict):
    path: str
    subfolder: str = "models"
    weight: str = "ip-adapter_sd15.safetensors"
    image_encoder: str | None = None  # folder; default <path>/<subfolder>/image_encoder


class ModelSet(Strict):
    """A named set of local model files (diffusers engines)."""

    family: Literal["sd15", "sdxl"] = "sd15"
    base: str                                     # diffusers folder, one .safetensors file, or a cached hub id
    config: str | None = None                     # local diffusers folder for single-file loading
    vae: str | None = None
    controlnet: ControlNets = ControlNets()
    ip_adapter: IPAdapterSpec | None = None
    motion_adapter: str | None = None
    sparsectrl: str | None = None                 # SparseControlNetModel folder: drawn keys in clips (cinekit.inbetween)
    scheduler: str | None = None                  # diffusers scheduler class name


class Gate(Strict):
    min: float | None = None
    max: float | None = None


class ProjectConfig(Strict):
    output: str = "renders"
    engines: EngineDefaults = EngineDefaults()
    defaults: Defaults = Defaults()
    limits: Limits = Limits()
    models: dict[Name, ModelSet] = {}
    annotators: str | None = None       # controlnet-aux annotator folder (pose detection)
    embedder: str | None = None         # CLIP vision / DINOv2 folder (identity scores)
    gates: dict[str, Gate] = {}


# --------------------------------------------------------------------------- characters
class RigSpec(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    joints: dict[str, tuple[float, float]] | None = None
    from_: str | None = Field(default=None, alias="from")   # AnimatedDrawings char_cfg.yaml
    # rig joint -> COCO body joint it plays, or "rigid" (cinekit.pose.rig_map); with a map,
    # joints it does not name follow their parent rigidly
    map: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "RigSpec":
        if (self.joints is None) == (self.from_ is None):
            raise ValueError("give either 'joints' or 'from', not both and not neither")
        return self


class ReferenceSpec(Strict):
    image: str
    view: View = "front"
    mask: str | None = None
    mask_cleanup: bool = True   # drop backdrop-coloured gaps between limbs from the mask (identity.masks)
    parts: str | None = None            # puppet part label map (colours: cinekit.puppet.part_map.PART_COLOURS)
    # this reference's own rig (a side or back drawing): the puppet draws the view with it;
    # the character's `rig:` is the first reference's
    rig: RigSpec | None = None


class LoraSpec(Strict):
    file: str
    weight: Annotated[float, Field(ge=-4, le=4)] = 1.0
    trigger: str | None = None


class EmbeddingSpec(Strict):
    file: str
    token: Annotated[str, Field(min_length=1)]


class IdentitySettings(Strict):
    ip_adapter: Annotated[float, Field(ge=0, le=2)] = 0.7
    reference_attention: Unit = 0.6
    style_fidelity: Unit = 0.5


class TrainSettings(Strict):
    """How `cinekit train` treats the character (cinekit.train): identity-preserving choices."""

    symmetric: bool = False     # mirrored art is still this character (no asymmetric hair/marks): flips allowed
    trigger: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] | None = None   # default: the name
    class_word: str | None = None   # prior preservation's class prompt (default: the description's first tag)


class ExpressionArt(Strict):
    """One expression's art: a face crop (pasted into the face region) or a whole reference
    (the face region cut from it); ``face`` is that region on the reference, in its pixels
    (default: found from the rig's head joints, ``cinekit.acting.face_art``)."""

    image: str
    face: tuple[float, float, float, float] | None = None   # x0, y0, x1, y1 on references[0]
    words: str | None = None            # its prompt words (diffusers engines; default from the name)

    @model_validator(mode="after")
    def _box(self) -> "ExpressionArt":
        if self.face is not None:
            x0, y0, x1, y1 = self.face
            if x1 - x0 < 4 or y1 - y0 < 4 or min(self.face) < 0:
                raise ValueError("face: give [x0, y0, x1, y1] with x1 > x0 and y1 > y0 (reference pixels, >= 0)")
        return self


class CharacterSpec(Strict):
    name: Name
    description: str = ""
    negative: str = ""
    references: Annotated[list[ReferenceSpec], Field(min_length=1)]
    rig: RigSpec | None = None
    palette: list[str] | None = None    # '#rrggbb' colours overriding the ones read from the art
    lora: list[LoraSpec] = []
    embeddings: list[EmbeddingSpec] = []
    identity: IdentitySettings = IdentitySettings()
    train: TrainSettings = TrainSettings()
    # expression name -> art (``smile: refs/smile.png``); ``blink`` and ``mouth_open`` are the
    # eye and mouth art of blinks and mouth flaps (cinekit.acting); ``neutral`` is the reference
    expressions: dict[Name, str | ExpressionArt] = {}

    @field_validator("palette")
    @classmethod
    def _hex_colours(cls, value):
        for c in value or []:
            if not _HEX.match(c):
                raise ValueError(f"{c!r} is not a '#rrggbb' colour")
        return value


# --------------------------------------------------------------------------- shot lists
class Keyframe(Strict):
    at: Annotated[float, Field(ge=0)]
    pose: str
    ease: Ease = "linear"
    position: PositionName | Unit | None = None   # move the character across the frame (walks, runs)
    # draw a limb in front of / behind the body from this key on (the puppet's layer order)
    depth: dict[Limb, Literal["front", "behind", "auto"]] | None = None
    expression: Name | None = None      # the face from this key on (cross-faded by ``ease``; cinekit.acting)


class PoseSpec(Strict):
    """A pose source other than a plain library name: exactly one of the source keys."""

    keyframes: Annotated[list[Keyframe], Field(min_length=1)] | None = None
    bvh: str | None = None
    openpose: str | None = None
    video: str | None = None
    detect: str | None = None
    motion: str | None = None           # a motion stored in poses/, else a sentence (docs/text-motion.md)
    start: Annotated[float, Field(ge=0)] | None = None
    end: Annotated[float, Field(gt=0)] | None = None
    speed: Annotated[float, Field(gt=0, le=20)] = 1.0
    loop: bool = False
    view: Literal["front", "side", "auto"] = "auto"
    person: Annotated[int, Field(ge=0, le=999)] = 0

    @property
    def source(self) -> str:
        return next(k for k in SOURCES if getattr(self, k) is not None)

    @model_validator(mode="after")
    def _one_source(self) -> "PoseSpec":
        given = [k for k in SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(SOURCES)} (got {', '.join(given) or 'none'})")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self


SOURCES = ("keyframes", "bvh", "openpose", "video", "detect", "motion")


class CameraSpec(Strict):
    center: tuple[Unit, Unit] = (0.5, 0.5)
    scale: Annotated[float, Field(gt=0, le=20)] = 1.0


class ShotCharacter(Strict):
    name: Name
    position: PositionName | Unit = "center"
    pose: str | PoseSpec = "stand"
    mirror: bool = False
    scale: Annotated[float, Field(gt=0, le=10)] = 1.0
    view: View | None = None
    z: Annotated[int, Field(ge=-1000, le=1000)] = 0
    expression: Name | None = None      # the face (a name of the character's `expressions:`; cinekit.acting)
    blinks: bool = True                 # automatic blinks in clips (seeded)
    performance: str | None = None      # footage of a face whose mouth and blinks this character plays


class DialogueLine(Strict):
    """One spoken line: the speaker's mouth moves from ``at`` to ``end`` (seconds into the shot)."""

    character: Name
    at: Annotated[float, Field(ge=0)]
    end: Annotated[float, Field(gt=0)]
    line: str = ""

    @model_validator(mode="after")
    def _order(self) -> "DialogueLine":
        if self.end <= self.at:
            raise ValueError("'end' must be after 'at'")
        return self


class KeyDrawing(Strict):
    """A drawn key frame of a shot (cinekit.inbetween): the image is the whole frame at ``at``."""

    at: Annotated[float, Field(ge=0)]
    image: str                          # relative to the shot list; the shot's size
    character: Name | None = None       # which of the shot's characters it poses (default: the only one)
    pose: str | None = None             # a library pose for that character instead of fitting the rig


class ShotDefaults(Strict):
    """Settings a shot list's ``defaults:`` gives every shot; each shot may override them."""

    size: Size | None = None
    fps: Annotated[float, Field(gt=0)] | None = None
    seed: Seed | None = None
    steps: Annotated[int, Field(ge=1, le=1000)] | None = None
    guidance: Annotated[float, Field(ge=0, le=50)] | None = None
    engine: str | None = None
    model: str | None = None
    background: str | list[int] | None = None
    camera: CameraPreset | CameraSpec | None = None


class Shot(ShotDefaults):
    """One shot: its own keys plus every ShotDefaults key as a per-shot override."""

    id: ShotId
    kind: Literal["still", "clip"] = "still"
    duration: Annotated[float, Field(gt=0)] | None = None
    prompt: str = ""
    negative: str = ""
    characters: list[ShotCharacter] = []
    refine: Unit | None = None
    continue_from: str | None = None
    keys: list[KeyDrawing] = []         # drawn key frames to in-between (cinekit.inbetween)
    options: dict[str, Any] = {}
    # studio hand-off (cinekit.studio): sound under the shot in the animatic, board notes
    audio: str | None = None            # audio file, relative to the shot list; plays from the shot's start
    action: str = ""                    # what happens (storyboard notes)
    dialogue: str | list[DialogueLine] = ""   # who says what: notes, or timed lines (mouth flaps)

    @property
    def dialogue_text(self) -> str:
        """The dialogue as board notes (timed lines as ``name: line``, one a line)."""
        if isinstance(self.dialogue, str):
            return self.dialogue
        return "\n".join(f"{d.character}: {d.line}" if d.line else d.character for d in self.dialogue)

    @model_validator(mode="after")
    def _clip_needs_duration(self) -> "Shot":
        if self.kind == "clip" and self.duration is None:
            raise ValueError("a clip needs 'duration' (seconds)")
        if self.kind == "still" and self.duration is not None:
            raise ValueError("a still has no 'duration' (use kind: clip)")
        return self


class ShotList(Strict):
    defaults: ShotDefaults = ShotDefaults()
    audio: str | None = None            # the episode's soundtrack, relative to the list; plays from the start
    shots: Annotated[list[Shot], Field(min_length=1)]
