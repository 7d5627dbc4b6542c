"""A character's model sheet on one labelled page (PNG).

With an image engine (diffusers): a turnaround (front, three-quarter, side, back) and a row of
expressions, each panel a still rendered through the engine with the character's identity
(library poses, view and expression words added to the prompt). With previz or puppet: the rig
drawn on the reference art and a turnaround of every view the character has art for, then its
expressions, then the pose library on the character.

The expressions are the character's own (``expressions:`` art, shown with ``expression:`` set,
as shots get them: the art on the puppet, the words in its region and the face keypoints in
diffusers); a character without expression art gets the generic list as prompt words
(diffusers) and no expression row (previz, puppet).

Panels are planned as ordinary still shots (the planner does retargeting and framing), so the
sheet shows exactly what shots will get.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinekit.errors import UserError
from cinekit.job import Job
from cinekit.render.interop import portable

VIEWS = (("front", "front view"), ("three_quarter", "three-quarter view"),
         ("side", "side view, profile"), ("back", "back view, from behind"))
EXPRESSIONS = ("neutral", "happy", "sad", "angry", "surprised")
LIBRARY_POSES = ("stand", "idle", "walk_a", "run_a", "wave", "point", "arms_crossed", "reach", "look_back", "t_pose")
RIG_ENGINES = ("previz", "puppet")


@dataclass(frozen=True)
class Panel:
    label: str
    job: Job | None          # None: drawn directly (the rig panel, or a reference's art)
    reference: int | None = None   # the character's reference shown as art (a puppet turnaround view)


def _shot(id_: str, name: str, prompt: str, pose: str, view: str, camera: str, size, steps, model,
          expression: str | None = None):
    from cinekit.spec.models import Shot, ShotCharacter

    return Shot(id=id_, kind="still", prompt=prompt, camera=camera, size=size, steps=steps, model=model,
                characters=[ShotCharacter(name=name, position="center", pose=pose, view=view, expression=expression)])


def sheet_panels(project, name: str, engine: str, *, size=(384, 512), steps: int | None = None,
                 model: str | None = None, seed: int = 0) -> list[list[Panel]]:
    """The sheet's rows of panels (jobs planned like shots of a list named ``sheet``)."""
    from cinekit.render.plan import Planner
    from cinekit.spec.models import ShotList

    if name not in project.characters:
        from cinekit.spec.diagnose import suggest

        raise UserError(f"unknown character {name!r}", hint=suggest(name, project.characters) or "see characters/")
    planner = Planner(project, engine_override=engine)
    list_path = project.root / "shots" / f"sheet-{name}.yaml"
    lib = planner.library

    def plan(id_, prompt, pose, view, camera, expression=None):
        shot = _shot(id_, name, prompt, pose, view, camera, tuple(size), steps, model, expression)
        job = planner.plan_shot(list_path, ShotList(shots=[shot]), shot)
        return Job(**{**{f: getattr(job, f) for f in job.__dataclass_fields__}, "seed": seed})

    spec = project.characters[name][0]
    own = ["neutral", *spec.expressions] if spec.expressions else []
    if engine in RIG_ENGINES:
        # the turnaround is the character's own art per view (the rig, and so the puppet, is on the
        # first reference only: a puppet render of another view would show the front art)
        views = {}
        for k, r in enumerate(spec.references):
            views.setdefault(r.view, k)
        poses = [p for p in LIBRARY_POSES if p in lib] or sorted(lib)[:10]
        rows = [[Panel("rig", None)] + [Panel(v.replace("_", "-"), None, k) for v, k in views.items()]]
        if own:
            rows.append([Panel(e, plan(f"expr-{e}", f"{{{name}}}", "stand", "front", "close_up",
                                       None if e == "neutral" else e)) for e in own])
        for k in range(0, min(len(poses), 10), 5):
            rows.append([Panel(p, plan(f"pose-{p}", f"{{{name}}}", p, "front", "full")) for p in poses[k:k + 5]])
        return rows
    turnaround = [Panel(view.replace("_", "-"),
                        plan(f"turn-{view}", f"{{{name}}}, character model sheet, {words}, full body, plain background",
                             "stand", view, "full"))
                  for view, words in VIEWS]
    if own:   # the character's own: words in its region of the prompt, face keypoints (cinekit.acting)
        expressions = [Panel(e, plan(f"expr-{e}", f"{{{name}}}, close-up portrait, plain background",
                                     "stand", "front", "close_up", None if e == "neutral" else e)) for e in own]
    else:
        expressions = [Panel(e, plan(f"expr-{e}", f"{{{name}}}, close-up portrait, {e} expression, plain background",
                                     "stand", "front", "close_up"))
                       for e in EXPRESSIONS]
    return [turnaround, expressions]


def rig_panel(identity, width: int, height: int, reference: int | None = None) -> np.ndarray:
    """The first reference with its rig joints and bones drawn on it (or reference number
    ``reference`` as it is), fitted into ``width`` x ``height``."""
    from PIL import Image, ImageDraw

    from cinekit.pose.skeleton import BONES

    ref = identity.references[reference or 0]
    art = Image.fromarray(ref.rgba, "RGBA")
    canvas = Image.new("RGBA", art.size, (245, 245, 245, 255))
    canvas.alpha_composite(art)
    draw = ImageDraw.Draw(canvas)
    rig = identity.rig if reference is None else None
    if rig is not None:
        r = max(3, art.width // 45)
        for a, b in BONES:
            if np.isfinite(rig[[a, b]]).all():
                draw.line([tuple(rig[a]), tuple(rig[b])], fill=(20, 120, 255, 255), width=max(2, r // 2))
        for x, y in rig[np.isfinite(rig).all(axis=1)]:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 60, 40, 255))
        for x, y in identity.rig_extra.values():
            draw.ellipse([x - r, y - r, x + r, y + r], outline=(255, 160, 0, 255))
    scale = min(width / canvas.width, height / canvas.height)
    small = canvas.convert("RGB").resize((max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale))))
    page = Image.new("RGB", (width, height), (245, 245, 245))
    page.paste(small, ((width - small.width) // 2, (height - small.height) // 2))
    return np.asarray(page)


def compose(title: str, rows: list[list[tuple[str, np.ndarray]]], pad: int = 12, label_h: int = 22) -> np.ndarray:
    """Lay labelled panels out in rows under a title: ``(H, W, 3)`` uint8."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=16)
        big = ImageFont.load_default(size=24)
    except TypeError:  # old Pillow
        font = big = ImageFont.load_default()
    pw = max(img.shape[1] for row in rows for _, img in row)
    ph = max(img.shape[0] for row in rows for _, img in row)
    cols = max(len(row) for row in rows)
    title_h = 44
    width = pad + cols * (pw + pad)
    height = title_h + len(rows) * (ph + label_h + pad) + pad
    page = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.text((pad, 10), title, fill=(20, 20, 20), font=big)
    for r, row in enumerate(rows):
        y = title_h + r * (ph + label_h + pad)
        for c, (label, img) in enumerate(row):
            x = pad + c * (pw + pad)
            page.paste(Image.fromarray(img), (x + (pw - img.shape[1]) // 2, y + (ph - img.shape[0]) // 2))
            draw.text((x, y + ph + 3), label, fill=(60, 60, 60), font=font)
    return np.asarray(page)


def render_sheet(runtime, name: str, engine_name: str, out: Path, *, size=(384, 512), steps: int | None = None,
                 model: str | None = None, seed: int = 0, progress=None) -> Path:
    """Render every panel through ``engine_name`` and write the labelled page to ``out`` (PNG)."""
    from cinekit.engines.base import create_engine
    from cinekit.render.writers import write_png

    project = runtime.project
    rows = sheet_panels(project, name, engine_name, size=size, steps=steps, model=model, seed=seed)
    engine = create_engine(engine_name, runtime)
    identity = runtime.identities.get(name)
    done, total = 0, sum(len(r) for r in rows)
    images: list[list[tuple[str, np.ndarray]]] = []
    jobs = []
    for row in rows:
        out_row = []
        for panel in row:
            if panel.job is None:
                img = rig_panel(identity, *size, reference=panel.reference)
            else:
                engine.check_inputs(panel.job)
                img = engine.render(panel.job).frames[0]
                jobs.append(portable(panel.job.to_record(), project.root))  # no absolute paths in the PNG
            out_row.append((panel.label, img))
            done += 1
            if progress:
                progress(done, total)
        images.append(out_row)
    what = "rig, turnaround, expressions and poses" if engine_name in RIG_ENGINES else "turnaround and expressions"
    page = compose(f"{name}: model sheet ({what}, {engine_name})", images)
    record = {"sheet": name, "engine": engine_name, "engine_version": engine.version, "panels": jobs}
    return write_png(out, page, record)
