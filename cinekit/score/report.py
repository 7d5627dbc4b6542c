"""`cinekit report`: a static review page of the whole project, plus a contact sheet per shot list.

The page (``cinekit.score.review_html``) shows, per shot list in order, each shot's panel or
clip, id, prompt, duration and engine, its scores coloured against the project's gates, a
failing shot's card flagged; two renders of a shot (another engine, or another output folder
given with ``--compare``) side by side under an A/B slider; then a gallery per character with
its reference art; then the warnings, each with its kind and what it means.

The page reads any output folder (``--out DIR``, default ``output:`` of cinekit.yaml).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cinekit.errors import CinekitError
from cinekit.score.gates import check_gates

# What each kind of warning means (the page and `cinekit report` print it beside the warning).
WARNING_KINDS = {
    "project": "the project check found this (cinekit check shows it with file:line)",
    "not rendered": "the shot has no render in this output folder: run cinekit render",
    "stale": "the shot's prompt or kind changed since it was rendered: render it again",
    "missing": "a sidecar names an output file that is gone: render it again with --force",
    "gate failed": "a score is outside the gates: of cinekit.yaml: look at the shot",
    "cannot score": "this output could not be scored (read the message)",
    "score": "a score was computed with less than it needs (read the message)",
    "no embedder": "identity scores need an image embedder: set embedder: in cinekit.yaml",
}


class ReportWarning(str):
    """A warning's text plus ``kind`` (a key of ``WARNING_KINDS``)."""

    kind: str

    def __new__(cls, text: str, kind: str):
        obj = super().__new__(cls, text)
        obj.kind = kind
        return obj

    @property
    def meaning(self) -> str:
        return WARNING_KINDS.get(self.kind, "")


@dataclass
class Alternative:
    """Another render of a shot (another engine, or another output folder): the A/B compare's B."""

    label: str
    shot_id: str
    kind: str
    main: Path
    poster: Path | None
    record: dict[str, Any]


@dataclass
class ShotEntry:
    shotlist: str
    shot_id: str
    kind: str
    prompt: str
    duration: float | None
    engine: str
    characters: list[str]
    main: Path | None = None           # the main output (file or frame folder)
    poster: Path | None = None         # a still image standing for the shot (panel or clip poster)
    record: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None
    gates: list = field(default_factory=list)
    thumbs: dict[str, np.ndarray] = field(default_factory=dict)   # character -> crop (H, W, 3)
    label: str = ""                    # what the A side of a compare is (engine, folder)
    alternatives: list[Alternative] = field(default_factory=list)


@dataclass
class Report:
    html: Path
    contact_sheets: list[Path]
    shots: list[ShotEntry]
    warnings: list[ReportWarning]

    @property
    def failed_gates(self) -> list:
        return [g for s in self.shots for g in s.gates if g.status == "fail"]

    @property
    def failing_shots(self) -> list[ShotEntry]:
        return [s for s in self.shots if any(g.status == "fail" for g in s.gates)]


# --------------------------------------------------------------------------- collecting
def index_renders(out_dir: Path) -> dict[tuple[str, str], list[tuple[Path, dict]]]:
    """``(shotlist, shot id) -> [(sidecar, record), ...]`` newest first, for every render under ``out_dir``."""
    found: dict[tuple[str, str], list[tuple[Path, dict]]] = {}
    if not out_dir.is_dir():
        return found
    for path in sorted(out_dir.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(out_dir).parts):
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not (isinstance(record, dict) and "cinekit" in record and isinstance(record.get("job"), dict)
                and isinstance(record.get("outputs"), dict)):
            continue   # the manifest, OpenPose JSON: not a render's sidecar
        job = record["job"]
        found.setdefault((str(job.get("shotlist")), str(job.get("shot_id"))), []).append((path, record))
    for hits in found.values():
        hits.sort(key=lambda h: -h[0].stat().st_mtime_ns)
    return found


def index_sidecars(out_dir: Path) -> dict[tuple[str, str], tuple[Path, dict]]:
    """``(shotlist, shot id) -> (sidecar, record)`` of the newest render of every shot under ``out_dir``."""
    return {k: v[0] for k, v in index_renders(out_dir).items()}


def _files_of(side: Path, record: dict, kind: str) -> tuple[Path | None, Path | None]:
    outputs = record.get("outputs", {})
    main = side.parent / outputs["main"] if "main" in outputs else None
    poster = outputs.get("poster") or (outputs.get("main") if kind == "still" else None)
    return main, (side.parent / poster if poster else None)


def _exists(path: Path | None) -> bool:
    return path is not None and path.exists()


def _label(record: dict, folder: str = "") -> str:
    engine = record.get("job", {}).get("engine", "?")
    return f"{folder}: {engine}" if folder else engine


def collect(project, out_dir: Path | None = None,
            compare: tuple[Path, ...] = ()) -> tuple[list[tuple[str, list[ShotEntry]]], list[ReportWarning]]:
    """The shots of every list in order, each joined with its own engine's newest render in ``out_dir`` and,
    as alternatives for the A/B compare, its other renders there and its renders in ``compare``."""
    out_dir = Path(out_dir) if out_dir is not None else project.output_dir
    warnings = [ReportWarning(p.format(), "project") for p in project.warnings]
    renders = index_renders(out_dir)
    others = [(Path(d).name, index_renders(Path(d))) for d in compare]
    lists = []
    for list_path, shot_list in project.shotlists.items():
        rel = project.rel(list_path)
        entries = []
        for shot in shot_list.shots:
            if shot is None:
                continue
            engine = shot.engine or shot_list.defaults.engine or getattr(project.config.engines, shot.kind)
            entry = ShotEntry(rel, shot.id, shot.kind, shot.prompt, shot.duration, engine,
                              [c.name for c in shot.characters])
            # A is the shot's own engine's newest render (what `cinekit render` makes); renders by
            # other engines (`render --engine X`, newer or not) are the B side of the compare
            every = sorted(renders.get((rel, shot.id), []),
                           key=lambda h: h[1].get("job", {}).get("engine") != engine)
            hits = [h for h in every if _exists(_files_of(*h, shot.kind)[0])] or every   # newest that is there
            if not hits:
                warnings.append(ReportWarning(f"{rel}: {shot.id}: not rendered yet (no output in {project.rel(out_dir)})",
                                        "not rendered"))
            else:
                side, record = hits[0]
                entry.record = record
                entry.engine = record.get("job", {}).get("engine", engine)
                entry.main, entry.poster = _files_of(side, record, shot.kind)
                entry.label = _label(record, out_dir.name if compare else "")
                if entry.main is None or not entry.main.exists():
                    warnings.append(ReportWarning(f"{rel}: {shot.id}: the sidecar names an output that is missing", "missing"))
                    entry.main = None
                job = record.get("job", {})
                if job.get("raw_prompt") not in (None, "", shot.prompt) or job.get("kind") != shot.kind:
                    warnings.append(ReportWarning(f"{rel}: {shot.id}: the shot changed since it was rendered "
                                            "(render it again)", "stale"))
                candidates = [(h, "") for h in hits[1:]] + [(h, name) for name, idx in others
                                                            for h in idx.get((rel, shot.id), [])]
                for (side_b, rec_b), folder in candidates:
                    main_b, poster_b = _files_of(side_b, rec_b, shot.kind)
                    if _exists(main_b):
                        entry.alternatives.append(Alternative(_label(rec_b, folder), shot.id, shot.kind, main_b,
                                                              poster_b, rec_b))
            entries.append(entry)
        lists.append((rel, entries))
    return lists, warnings


def reference_art(project, names, height: int = 160) -> dict[str, np.ndarray]:
    """Each character's first reference image (RGBA, ``height`` px high), for its gallery."""
    from PIL import Image

    from cinekit.identity.core import resolve

    out = {}
    for name in names:
        if name not in project.characters:
            continue
        spec, spec_path = project.characters[name]
        if not spec.references:
            continue
        try:
            with Image.open(resolve(spec_path, spec.references[0].image)) as im:
                im = im.convert("RGBA")
                im.thumbnail((height * 4, height), Image.LANCZOS)
                out[name] = np.asarray(im)
        except OSError:
            continue
    return out


def _thumbs(entry: ShotEntry, height: int = 160) -> dict[str, np.ndarray]:
    """One crop per character (middle sampled frame of its region; the poster when no masks)."""
    from cinekit.score.regions import character_region, crop
    from cinekit.score.temporal import load_frames

    source = entry.main if entry.kind == "still" else (entry.poster or entry.main)
    if source is None or not source.exists():
        return {}
    frames, _ = load_frames(source)
    frame = frames[0]
    out = {}
    n_out = int((entry.record or {}).get("job", {}).get("frames", 1))
    for name in entry.characters:
        try:
            region = character_region(entry.main, n_out, (frame.shape[1], frame.shape[0]), name)
        except CinekitError:
            continue
        mid = int(np.abs(region.frames - n_out // 2).argmin())   # the poster is the middle frame
        img = crop(frame, region.masks[mid]) if region.source == "masks" else frame
        out[name] = _resize(img, height=height)
    return out


def _resize(img: np.ndarray, height: int | None = None, width: int | None = None) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    if height is not None:
        size = (max(1, round(w * height / h)), height)
    else:
        size = (width, max(1, round(h * width / w)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(img[..., :3])).resize(size, Image.LANCZOS))


# --------------------------------------------------------------------------- scoring
def score_all(project, lists, warnings: list[ReportWarning], embedder=None,
              progress: Callable[[int, int, str], None] | None = None) -> None:
    """Fill ``scores``/``gates``/``thumbs`` of every rendered shot; identity across shots when embedded."""
    from cinekit.score.gates import score_output

    gates = project.config.gates
    if embedder is None and project.config.embedder:
        from cinekit.score.identity import Embedder

        embedder = Embedder((project.root / project.config.embedder).resolve())
    todo = [e for _, entries in lists for e in entries if e.main is not None]
    for done, e in enumerate(todo):
        if progress:
            progress(done, len(todo), f"scoring {e.shotlist}: {e.shot_id}")
        try:
            e.scores = score_output(e.main, project=project, embedder=embedder)
            e.thumbs = _thumbs(e)
        except (CinekitError, ValueError, OSError) as exc:
            msg = exc.format() if isinstance(exc, CinekitError) else str(exc)
            warnings.append(ReportWarning(f"{e.shotlist}: {e.shot_id}: cannot score: {msg}", "cannot score"))
            continue
        for w in e.scores["warnings"]:
            if w.startswith("no embedder configured"):
                if w not in warnings:
                    warnings.append(ReportWarning(w, "no embedder"))   # once per page, not once per shot
            else:
                warnings.append(ReportWarning(f"{e.shotlist}: {e.shot_id}: {w}", "score"))
    if progress:
        progress(len(todo), len(todo), "scored")
    if embedder is not None:
        from cinekit.score.identity import cross_shot

        by_char: dict[str, dict[str, np.ndarray]] = {}
        for _, entries in lists:
            for e in entries:
                for name, img in e.thumbs.items():
                    by_char.setdefault(name, {})[f"{e.shotlist}#{e.shot_id}"] = embedder.embed([img])[0]
        for name, vecs in by_char.items():
            for key, value in cross_shot(vecs).items():
                for _, entries in lists:
                    for e in entries:
                        if f"{e.shotlist}#{e.shot_id}" == key and e.scores and name in e.scores["characters"]:
                            e.scores["characters"][name]["identity_cross_shot"] = value
        for _, entries in lists:
            for e in entries:
                if e.scores:
                    vals = [c["identity_cross_shot"] for c in e.scores["characters"].values() if "identity_cross_shot" in c]
                    if vals:
                        e.scores["scores"]["identity_cross_shot"] = min(vals)
    for _, entries in lists:
        for e in entries:
            if e.scores and gates:
                e.gates = check_gates(e.scores, gates)
                for g in e.gates:
                    if g.status == "fail":
                        warnings.append(ReportWarning(f"{e.shotlist}: {e.shot_id}: gate failed: {g.message}", "gate failed"))


# --------------------------------------------------------------------------- contact sheet
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizing
        return ImageFont.load_default()


def contact_sheet(entries: list[ShotEntry], title: str, cell_width: int = 320, columns: int = 4) -> np.ndarray:
    """Panels / posters on a grid with captions (id, duration, engine, prompt): ``(H, W, 3)`` uint8."""
    import textwrap

    from PIL import Image, ImageDraw

    from cinekit.score.temporal import load_frames

    pad, cap_h, head = 12, 64, 40
    thumbs = []
    for e in entries:
        src = e.poster if e.kind == "clip" else e.main
        img = None
        if src is not None and src.exists() and src.is_file():
            img = _resize(load_frames(src)[0][0], width=cell_width)
        thumbs.append(img)
    cell_h = max([t.shape[0] for t in thumbs if t is not None] or [round(cell_width * 2 / 3)])
    columns = max(1, min(columns, len(entries)))
    rows = max(1, -(-len(entries) // columns))
    W = pad + columns * (cell_width + pad)
    H = head + rows * (cell_h + cap_h + pad) + pad
    sheet = Image.new("RGB", (W, H), (245, 245, 247))
    d = ImageDraw.Draw(sheet)
    d.text((pad, 10), title, fill=(20, 20, 30), font=_font(20))
    f_id, f_txt = _font(15), _font(12)
    for i, (e, img) in enumerate(zip(entries, thumbs)):
        x = pad + (i % columns) * (cell_width + pad)
        y = head + (i // columns) * (cell_h + cap_h + pad)
        if img is None:
            d.rectangle([x, y, x + cell_width - 1, y + cell_h - 1], fill=(210, 210, 215))
            d.text((x + 10, y + cell_h // 2 - 8), "not rendered", fill=(90, 90, 100), font=f_txt)
        else:
            sheet.paste(Image.fromarray(img), (x, y + (cell_h - img.shape[0]) // 2))
        dur = f"{e.duration:g} s" if e.kind == "clip" and e.duration else "still"
        d.text((x, y + cell_h + 4), f"{e.shot_id}  ·  {dur}  ·  {e.engine}", fill=(20, 20, 30), font=f_id)
        for k, line in enumerate(textwrap.wrap(e.prompt, width=cell_width // 7)[:2]):
            d.text((x, y + cell_h + 24 + 16 * k), line, fill=(80, 80, 95), font=f_txt)
    return np.asarray(sheet)


# --------------------------------------------------------------------------- entry point
def build_report(project, out: Path | str | None = None, *, scores: bool = True, embedder=None,
                 out_dir: Path | str | None = None, compare: tuple[Path, ...] = (),
                 progress: Callable[[int, int, str], None] | None = None) -> Report:
    """Write the review page of the renders in ``out_dir`` (default: the project's output folder)
    and ``<list>.contact.png`` beside it. ``out``: the page (default ``<out_dir>/report.html``);
    ``compare``: other output folders whose renders are the B side of each shot's A/B compare;
    ``progress(done, total, what)``: called as shots are scored and the page is written."""
    from PIL import Image

    from cinekit.render.writers import atomic_path
    from cinekit.score.review_html import render_html

    out_dir = Path(out_dir).resolve() if out_dir else project.output_dir
    page = Path(out).resolve() if out else out_dir / "report.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    lists, warnings = collect(project, out_dir, tuple(Path(c).resolve() for c in compare))
    if scores:
        score_all(project, lists, warnings, embedder, progress)
    sheets = []
    for rel, entries in lists:
        if progress:
            progress(1, 1, f"contact sheet {rel}")
        sheet = page.parent / f"{Path(rel).stem}.contact.png"
        with atomic_path(sheet) as tmp:
            Image.fromarray(contact_sheet(entries, f"{project.root.name} · {rel}")).save(tmp, format="PNG")
        sheets.append(sheet)
    names = sorted({n for _, es in lists for e in es for n in e.characters})
    source = project.rel(out_dir) if out_dir != project.output_dir else ""
    text = render_html(project, lists, warnings, page, sheets, reference_art(project, names), source)
    with atomic_path(page) as tmp:
        tmp.write_text(text, encoding="utf-8")
    for path in (page, *sheets):
        path.chmod(0o644)   # temporary files are created 0600; a review page is meant to be shared
    return Report(page, sheets, [e for _, es in lists for e in es], warnings)
