"""`cinekit report`: a static review page of the whole project, plus a contact sheet per shot list.

The page is one HTML file with inline CSS and no script or network access: panels and clips
are referenced by paths relative to the page (keep the page inside the output folder, next to
the renders), character gallery thumbnails are inlined as data URIs. It shows, per shot list
in order, each shot's panel or clip, id, prompt, duration and engine, its scores coloured
against the project's gates; then a gallery per character across all shots; then warnings.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from cinekit.errors import CinekitError
from cinekit.score.gates import HIGHER_IS_BETTER, PER_CHARACTER, check_gates

LABELS = {"palette_delta_e": "ΔE", "identity_cosine": "id cos", "identity_cross_shot": "id x-shot",
          "flicker": "flicker", "warp_error": "warp"}


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


@dataclass
class Report:
    html: Path
    contact_sheets: list[Path]
    shots: list[ShotEntry]
    warnings: list[str]

    @property
    def failed_gates(self) -> list:
        return [g for s in self.shots for g in s.gates if g.status == "fail"]


# --------------------------------------------------------------------------- collecting
def index_sidecars(out_dir: Path) -> dict[tuple[str, str], tuple[Path, dict]]:
    """``(shotlist, shot id) -> (sidecar path, record)`` for every cinekit sidecar under ``out_dir``."""
    found: dict[tuple[str, str], tuple[Path, dict]] = {}
    if not out_dir.is_dir():
        return found
    for path in sorted(out_dir.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(out_dir).parts):
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not (isinstance(record, dict) and "cinekit" in record and isinstance(record.get("job"), dict)):
            continue
        job = record["job"]
        key = (str(job.get("shotlist")), str(job.get("shot_id")))
        if key not in found or path.stat().st_mtime > found[key][0].stat().st_mtime:
            found[key] = (path, record)
    return found


def collect(project) -> tuple[list[tuple[str, list[ShotEntry]]], list[str]]:
    """The shots of every list in order, each joined with its newest rendered output."""
    warnings = [p.format() for p in project.warnings]
    sidecars = index_sidecars(project.output_dir)
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
            hit = sidecars.get((rel, shot.id))
            if hit is None:
                warnings.append(f"{rel}: {shot.id}: not rendered yet (no output in {project.rel(project.output_dir)})")
            else:
                side, record = hit
                outputs = record.get("outputs", {})
                entry.record = record
                entry.engine = record.get("job", {}).get("engine", engine)
                entry.main = side.parent / outputs["main"] if "main" in outputs else None
                poster = outputs.get("poster") or (outputs.get("main") if shot.kind == "still" else None)
                entry.poster = side.parent / poster if poster else None
                if entry.main is None or not entry.main.exists():
                    warnings.append(f"{rel}: {shot.id}: the sidecar names an output that is missing")
                    entry.main = None
                job = record.get("job", {})
                if job.get("raw_prompt") not in (None, "", shot.prompt) or job.get("kind") != shot.kind:
                    warnings.append(f"{rel}: {shot.id}: the shot changed since it was rendered (render it again)")
            entries.append(entry)
        lists.append((rel, entries))
    return lists, warnings


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


def _data_uri(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# --------------------------------------------------------------------------- scoring
def score_all(project, lists, warnings: list[str], embedder=None) -> None:
    """Fill ``scores``/``gates``/``thumbs`` of every rendered shot; identity across shots when embedded."""
    from cinekit.score.gates import score_output

    gates = project.config.gates
    if embedder is None and project.config.embedder:
        from cinekit.score.identity import Embedder

        embedder = Embedder((project.root / project.config.embedder).resolve())
    for _, entries in lists:
        for e in entries:
            if e.main is None:
                continue
            try:
                e.scores = score_output(e.main, project=project, embedder=embedder)
                e.thumbs = _thumbs(e)
            except (CinekitError, ValueError, OSError) as exc:
                msg = exc.format() if isinstance(exc, CinekitError) else str(exc)
                warnings.append(f"{e.shotlist}: {e.shot_id}: cannot score: {msg}")
                continue
            for w in e.scores["warnings"]:
                if w.startswith("no embedder configured"):
                    if w not in warnings:
                        warnings.append(w)   # once per page, not once per shot
                else:
                    warnings.append(f"{e.shotlist}: {e.shot_id}: {w}")
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
                        warnings.append(f"{e.shotlist}: {e.shot_id}: gate failed: {g.message}")


# --------------------------------------------------------------------------- HTML
CSS = """
:root{--bg:#15171c;--card:#1f232b;--fg:#e8e8ec;--dim:#9aa0ab;--ok:#2e9e5b;--bad:#d64545;--na:#4a505c}
*{box-sizing:border-box}body{margin:0;padding:24px;background:var(--bg);color:var(--fg);
font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{margin:0 0 4px;font-size:22px}h2{margin:32px 0 12px;font-size:18px;border-bottom:1px solid #333;padding-bottom:6px}
.sub{color:var(--dim);margin-bottom:16px}.board{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:16px}
.card{background:var(--card);border-radius:8px;overflow:hidden;display:flex;flex-direction:column}
.card img,.card video{width:100%;display:block;background:#000;aspect-ratio:var(--ar,3/2);object-fit:contain}
.missing{display:flex;align-items:center;justify-content:center;aspect-ratio:3/2;color:var(--dim);background:#111}
.meta{padding:8px 10px}.id{font-weight:600}.kind{color:var(--dim);font-size:12px;margin-left:6px}
.prompt{color:#c9cbd2;font-size:13px;margin:4px 0}.chips{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px}
.chip{font-size:12px;padding:1px 7px;border-radius:10px;background:var(--na);white-space:nowrap}
.chip.pass{background:var(--ok)}.chip.fail{background:var(--bad)}.swatch{display:inline-block;width:10px;height:10px;
border-radius:2px;margin-right:1px;vertical-align:middle}.gallery{display:flex;flex-wrap:wrap;gap:10px}
.thumb{background:var(--card);border-radius:6px;padding:6px;text-align:center;font-size:12px;color:var(--dim)}
.thumb img{height:160px;display:block;margin-bottom:4px}ul.warn{color:#f0c36d}a{color:#8ab4f8}
"""


def _url(target: Path, page_dir: Path) -> str:
    return quote(Path(os.path.relpath(target, page_dir)).as_posix())


def _chip(name: str, value: float | None, gate_results: list, character: str | None = None) -> str:
    if value is None:
        return ""
    status = ""
    title = f"{name} = {value:.4g}"
    for g in gate_results:
        if g.name == name and g.character == character:
            status = g.status
            title = g.message
    digits = 2 if name == "palette_delta_e" else 3
    who = f"{character} " if character else ""
    better = "higher" if HIGHER_IS_BETTER[name] else "lower"
    return (f'<span class="chip {status}" data-score="{name}" title="{html.escape(title)} ({better} is better)">'
            f'{html.escape(who + LABELS[name])} {value:.{digits}f}</span>')


def _media(e: ShotEntry, page_dir: Path) -> str:
    if e.main is None:
        return '<div class="missing">not rendered</div>'
    record = e.record or {}
    job = record.get("job", {})
    ar = f'style="--ar:{job.get("width", 3)}/{job.get("height", 2)}"'
    alt = html.escape(f"{e.shot_id}: {e.prompt}")
    if e.kind == "clip" and e.main.suffix.lower() in (".mp4", ".webm"):
        poster = f' poster="{_url(e.poster, page_dir)}"' if e.poster and e.poster.exists() else ""
        return (f'<video class="clip" src="{_url(e.main, page_dir)}"{poster} {ar} controls loop muted autoplay '
                f'playsinline preload="auto" data-shot="{html.escape(e.shot_id)}" '
                f'data-frames="{job.get("frames", "")}" data-fps="{job.get("fps", "")}"></video>')
    src = e.main if e.main.is_file() else e.poster   # a PNG-frame folder shows its poster
    if src is None:
        return '<div class="missing">no preview</div>'
    return f'<img class="panel" src="{_url(src, page_dir)}" alt="{alt}" {ar} data-shot="{html.escape(e.shot_id)}">'


def _card(e: ShotEntry, page_dir: Path) -> str:
    job = (e.record or {}).get("job", {})
    if e.kind == "clip":
        dur = f"{job['frames'] / job['fps']:.2f} s · {job['frames']} frames @ {job['fps']:g} fps" if job else f"{e.duration:g} s"
    else:
        dur = "still"
    chips = []
    if e.scores:
        for name in ("flicker", "warp_error"):
            chips.append(_chip(name, e.scores["scores"].get(name), e.gates))
        for char, entry in e.scores["characters"].items():
            for name in PER_CHARACTER:
                chips.append(_chip(name, entry.get(name), e.gates, char))
            pal = entry.get("palette")
            if pal:
                sw = "".join(f'<i class="swatch" style="background:{c}"></i>' for c in pal["output"])
                chips.append(f'<span class="chip" title="{html.escape(char)}: output palette">{sw}</span>')
    prompt = html.escape(job.get("raw_prompt") or e.prompt)
    return (f'<div class="card" id="{html.escape(e.shotlist)}#{html.escape(e.shot_id)}">{_media(e, page_dir)}'
            f'<div class="meta"><span class="id">{html.escape(e.shot_id)}</span>'
            f'<span class="kind">{html.escape(dur)} · {html.escape(e.engine)}</span>'
            f'<div class="prompt">{prompt}</div>'
            f'<div class="chips">{"".join(c for c in chips if c)}</div></div></div>')


def render_html(project, lists, warnings: list[str], page: Path, sheets: list[Path]) -> str:
    page_dir = page.parent
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width,initial-scale=1'>",
             f"<title>cinekit review: {html.escape(project.root.name)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(project.root.name)}</h1>"]
    n = sum(len(entries) for _, entries in lists)
    rendered = sum(1 for _, entries in lists for e in entries if e.main is not None)
    gates = ", ".join(f"{k} {'≥ ' + format(g.min, 'g') if g.min is not None else ''}"
                      f"{' ' if g.min is not None and g.max is not None else ''}"
                      f"{'≤ ' + format(g.max, 'g') if g.max is not None else ''}" for k, g in project.config.gates.items())
    parts.append(f"<div class='sub'>{rendered}/{n} shots rendered · gates: {html.escape(gates or 'none')}</div>")
    for (rel, entries), sheet in zip(lists, sheets):
        parts.append(f"<h2>{html.escape(rel)} <a class='sheet' href='{_url(sheet, page_dir)}'>contact sheet</a></h2>")
        parts.append("<div class='board'>" + "".join(_card(e, page_dir) for e in entries) + "</div>")
    chars: dict[str, list[str]] = {}
    for _, entries in lists:
        for e in entries:
            for name, img in e.thumbs.items():
                entry = (e.scores or {}).get("characters", {}).get(name, {})
                chips = "".join(_chip(s, entry.get(s), e.gates, name) for s in PER_CHARACTER)
                chars.setdefault(name, []).append(
                    f"<div class='thumb'><img src='{_data_uri(img)}' alt='{html.escape(name)} in {html.escape(e.shot_id)}'>"
                    f"{html.escape(e.shot_id)}<div class='chips'>{chips}</div></div>")
    if chars:
        parts.append("<h2>Characters</h2>")
        for name in sorted(chars):
            parts.append(f"<h3>{html.escape(name)}</h3><div class='gallery'>{''.join(chars[name])}</div>")
    parts.append("<h2>Warnings</h2>")
    if warnings:
        parts.append("<ul class='warn'>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>")
    else:
        parts.append("<p>none</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


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
def build_report(project, out: Path | str | None = None, *, scores: bool = True, embedder=None) -> Report:
    """Write the review page (default ``<output>/report.html``) and ``<list>.contact.png`` beside it."""
    from PIL import Image

    from cinekit.render.writers import atomic_path

    page = Path(out).resolve() if out else project.output_dir / "report.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    lists, warnings = collect(project)
    if scores:
        score_all(project, lists, warnings, embedder)
    sheets = []
    for rel, entries in lists:
        sheet = page.parent / f"{Path(rel).stem}.contact.png"
        with atomic_path(sheet) as tmp:
            Image.fromarray(contact_sheet(entries, f"{project.root.name} · {rel}")).save(tmp, format="PNG")
        sheets.append(sheet)
    text = render_html(project, lists, warnings, page, sheets)
    with atomic_path(page) as tmp:
        tmp.write_text(text, encoding="utf-8")
    for path in (page, *sheets):
        path.chmod(0o644)   # temporary files are created 0600; a review page is meant to be shared
    return Report(page, sheets, [e for _, es in lists for e in es], warnings)
