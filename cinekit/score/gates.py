"""Score one output and check the scores against the ``gates:`` of cinekit.yaml.

The two stable entry points (the batch renderer calls them for ``render --ci``):

    scores = score_output(path, project=None, character=None)   # -> dict (JSON-safe)
    results = check_gates(scores, project.config.gates)         # -> list[GateResult]

``scores["scores"]`` holds one number per score name (the worst character for per-character
scores); ``scores["characters"][name]`` holds each character's own. ``check_gates`` checks
per-character scores per character, so a report can say which character drifted.

Score names (the keys allowed under ``gates:``):

================== ======== ==================================================== =========
name               better   what                                                 range
================== ======== ==================================================== =========
palette_delta_e    lower    CIEDE2000 of dominant colours, reference vs region    0..~100
identity_cosine    higher   embedding cosine, reference vs region (embedder)      -1..1
identity_cross_shot higher  mean cosine to the same character in other shots      -1..1
flicker            lower    mean abs difference of consecutive frames / 255       0..1
warp_error         lower    flow-warped abs difference (occlusions masked) / 255  0..1
================== ======== ==================================================== =========
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cinekit.errors import UserError

HIGHER_IS_BETTER = {"identity_cosine": True, "identity_cross_shot": True, "palette_delta_e": False,
                    "flicker": False, "warp_error": False}
SCORE_NAMES = tuple(HIGHER_IS_BETTER)
PER_CHARACTER = ("palette_delta_e", "identity_cosine", "identity_cross_shot")
IDENTITY_FRAMES = 4   # sampled frames embedded per clip


# --------------------------------------------------------------------------- helpers
def _hex(lab_centres: np.ndarray) -> list[str]:
    """Lab centres -> '#rrggbb' (for the report's swatches)."""
    lab = np.asarray(lab_centres, dtype=np.float64)
    fy = (lab[:, 0] + 16) / 116
    f = np.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], axis=1)
    eps, kappa = 216 / 24389, 24389 / 27
    xyz = np.where(f ** 3 > eps, f ** 3, (116 * f - 16) / kappa) * np.array([0.95047, 1.0, 1.08883])
    m = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                  [0.0556434, -0.2040259, 1.0572252]])
    lin = np.clip(xyz @ m.T, 0, 1)
    rgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return ["#%02x%02x%02x" % tuple(int(round(v * 255)) for v in row) for row in rgb]


def read_sidecar(output: Path | str) -> dict[str, Any] | None:
    """The cinekit job record written next to an output (``<stem>.json``), or None."""
    from cinekit.score.regions import output_stem

    stem = output_stem(output)
    for candidate in (stem.parent / f"{stem.name}.json", stem.with_suffix(".json")):
        try:
            record = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and "cinekit" in record and "job" in record:
            return record
    return None


def _project(project, path: Path):
    """A loaded Project from ``project`` (a Project, a folder, or None = the project holding ``path``)."""
    from cinekit.spec.project import Project, find_root, load_project

    if isinstance(project, Project):
        return project
    if project is None:
        try:
            find_root(path)
        except UserError:
            return None
        return load_project(path)
    return load_project(Path(project))


def _reference_image(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    with Image.open(path) as im:
        rgba = np.asarray(im.convert("RGBA")).copy()
    mask = rgba[..., 3] > 127
    if not mask.any() or mask.all():
        mask = np.ones(mask.shape, bool)
    return rgba, mask


# --------------------------------------------------------------------------- scoring
def score_output(path: Path | str, project=None, character: str | None = None, *,
                 mask: Path | str | None = None, reference: Path | str | None = None,
                 embedder=None, temporal: bool = True) -> dict[str, Any]:
    """Every score of one output (PNG, GIF, MP4, PNG-frame folder; cinekit's or not) as a JSON-safe dict.

    - ``project``: a ``Project``, a project folder, or None (the project holding ``path``, if any).
    - ``character``: score only this character (default: every character of the job record).
    - ``mask``: a mask image for the region (default: ``<id>.masks.npz``, else the whole frame).
    - ``reference``: a reference image (RGBA; alpha = figure) for outputs outside a project.
    - ``embedder``: an ``Embedder``, a model folder, or None (``embedder:`` of cinekit.yaml; no
      identity score when neither is set).
    - ``temporal``: compute flicker / warping error for clips.

    Returns ``{"path", "kind", "frames", "fps", "size", "shot", "scores", "characters",
    "pairs", "warnings"}``; ``scores`` maps score names to floats (missing = not computed).
    """
    from cinekit.score.palette import palette_delta_e
    from cinekit.score.regions import character_region, crop
    from cinekit.score.temporal import load_frames, temporal_scores

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file", hint="give a rendered PNG, GIF, MP4 or frame folder")
    try:
        frames, fps = load_frames(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read it as an image or video ({exc})") from None
    n, h, w = frames.shape[:3]
    record = read_sidecar(path)
    job = (record or {}).get("job", {})
    fps = float(job.get("fps") or fps or 0) or None
    warnings: list[str] = []
    result: dict[str, Any] = {
        "path": str(path), "kind": "clip" if n > 1 else "still", "frames": n, "fps": fps, "size": [w, h],
        "shot": job.get("shot_id"), "shotlist": job.get("shotlist"), "engine": job.get("engine"),
        "scores": {}, "characters": {}, "pairs": {}, "warnings": warnings,
    }

    # Temporal scores on the whole frame (or the user's mask): a property of the clip.
    if temporal and n > 1:
        region_mask = None
        if mask is not None:
            region_mask = character_region(path, n, (w, h), mask_file=mask).masks[0]
        ts = temporal_scores(frames, region_mask)
        result["scores"].update(flicker=ts.flicker, warp_error=ts.warp_error)
        result["pairs"] = {"flicker": ts.flicker_pairs, "warp_error": ts.warp_pairs, "occluded": ts.occluded}

    # Which characters, with which reference art.
    proj = _project(project, path) if (project is not None or reference is None) else None
    job_chars = {c["name"]: c for c in job.get("characters", [])}
    refs: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
    if reference is not None:
        rgba, ref_mask = _reference_image(Path(reference))
        refs[character or "reference"] = (rgba, ref_mask, False)
    else:
        names = [character] if character else list(job_chars)
        if names and proj is None:
            warnings.append("no project found: palette and identity scores need a character's reference "
                            "(run inside the project, or pass a reference image)")
            names = []
        for name in names:
            if name not in proj.characters:
                raise UserError(f"unknown character {name!r}",
                                hint=f"characters in the project: {', '.join(sorted(proj.characters)) or 'none'}")
            from cinekit.identity.core import load_identity

            spec, spec_path = proj.characters[name]
            ident = load_identity(spec, spec_path)
            ref = ident.reference_for(job_chars.get(name, {}).get("view", "front"))
            refs[name] = (ref.rgba, ref.mask, bool(job_chars.get(name, {}).get("mirror", False)))

    if embedder is None and proj is not None and proj.config.embedder:
        embedder = (proj.root / proj.config.embedder).resolve()
    if embedder is not None and not hasattr(embedder, "embed"):
        from cinekit.score.identity import Embedder

        embedder = Embedder(embedder)
    if refs and embedder is None:
        warnings.append("no embedder configured: identity_cosine not computed (set `embedder:` in cinekit.yaml)")

    for name, (rgba, ref_mask, mirror) in refs.items():
        key = None if name == "reference" else name
        region = character_region(path, n, (w, h), key, mask_file=mask)
        if region.source == "whole frame" and len(job_chars) > 1:
            warnings.append(f"{name}: no masks file next to the output; the region is the whole frame")
        entry: dict[str, Any] = {"region": region.source}
        if region.empty:
            warnings.append(f"{name}: the character is not visible in the sampled frames")
            result["characters"][name] = entry
            continue
        match = palette_delta_e(rgba, ref_mask, frames[region.frames], region.masks)
        entry["palette_delta_e"] = match.delta_e
        entry["palette"] = {"reference": _hex(match.reference), "reference_shares": match.reference_shares.tolist(),
                            "output": _hex(match.output), "output_shares": match.output_shares.tolist()}
        if embedder is not None:
            from cinekit.score.identity import identity_cosine

            ref_crop = crop(rgba[..., :3], ref_mask)
            if mirror:
                ref_crop = ref_crop[:, ::-1]
            pick = np.unique(np.linspace(0, len(region.frames) - 1, IDENTITY_FRAMES).round().astype(int))
            crops = [crop(frames[region.frames[i]], region.masks[i]) for i in pick if region.masks[i].any()]
            entry["identity_cosine"] = identity_cosine(embedder, ref_crop, crops)
        result["characters"][name] = entry

    for score in PER_CHARACTER:
        values = [c[score] for c in result["characters"].values() if score in c]
        if values:
            result["scores"][score] = max(values) if not HIGHER_IS_BETTER[score] else min(values)
    return result


# --------------------------------------------------------------------------- gates
@dataclass(frozen=True)
class GateResult:
    """One gate checked against one score (of one character, for per-character scores)."""

    name: str                     # score name, e.g. "palette_delta_e"
    status: str                   # "pass" | "fail" | "skip" (score not computed for this output)
    value: float | None
    min: float | None
    max: float | None
    margin: float | None          # distance to the nearest bound: > 0 headroom, < 0 by how much it fails
    character: str | None = None
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bounds(gate) -> tuple[float | None, float | None]:
    if isinstance(gate, Mapping):
        return gate.get("min"), gate.get("max")
    return getattr(gate, "min", None), getattr(gate, "max", None)


def validate_gates(gates: Mapping[str, Any]) -> None:
    """Raise UserError for an unknown score name (with a suggestion) or a gate with no bound."""
    for name, gate in gates.items():
        if name not in HIGHER_IS_BETTER:
            close = difflib.get_close_matches(name, SCORE_NAMES, n=1)
            raise UserError(f"gates: unknown score {name!r}",
                            hint=(f"did you mean {close[0]!r}? " if close else "") + f"scores: {', '.join(SCORE_NAMES)}")
        lo, hi = _bounds(gate)
        if lo is None and hi is None:
            raise UserError(f"gates: {name}: give `min`, `max` or both")


def check_value(name: str, value: float | None, gate, character: str | None = None) -> GateResult:
    """One score against one gate ``{min, max}``."""
    lo, hi = _bounds(gate)
    who = f"{character}: " if character else ""
    if value is None:
        return GateResult(name, "skip", None, lo, hi, None, character, f"{who}{name} not computed for this output")
    margins = []
    if hi is not None:
        margins.append(("max", hi, hi - value))
    if lo is not None:
        margins.append(("min", lo, value - lo))
    kind, bound, margin = min(margins, key=lambda m: m[2])
    ok = margin >= 0
    if ok:
        msg = f"{who}{name} {value:.4g} within {kind} {bound:g} (margin {margin:.4g})"
    else:
        op = ">" if kind == "max" else "<"
        msg = f"{who}{name} {value:.4g} {op} {kind} {bound:g} (by {-margin:.4g})"
    return GateResult(name, "pass" if ok else "fail", float(value), lo, hi, float(margin), character, msg)


def check_gates(scores: Mapping[str, Any], gates: Mapping[str, Any]) -> list[GateResult]:
    """Check scores against gates; one result per gate (per character for per-character scores).

    ``scores``: what ``score_output`` returns, or a flat ``{score name: value}`` mapping.
    ``gates``: ``ProjectConfig.gates`` (``{name: Gate}``) or plain ``{name: {"min":..,"max":..}}``.
    A gate whose score was not computed (flicker on a still, identity without an embedder)
    gives status ``"skip"``; only ``"fail"`` should fail a shot.
    """
    validate_gates(gates)
    flat = scores.get("scores", scores) if isinstance(scores.get("scores"), Mapping) else scores
    characters = scores.get("characters") if isinstance(scores.get("characters"), Mapping) else {}
    results = []
    for name, gate in gates.items():
        if name in PER_CHARACTER and characters:
            for char, entry in characters.items():
                results.append(check_value(name, entry.get(name), gate, char))
        else:
            value = flat.get(name)
            results.append(check_value(name, None if value is None else float(value), gate))
    return results
