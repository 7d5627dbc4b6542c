"""The review page's HTML: cards per shot, failing shots flagged, A/B compare, character galleries.

One file, inline CSS, one small inline script (the A/B slider and keeping the B clip in step
with A) and no network access: panels and clips are referenced by paths relative to the page;
thumbnails and reference art are inlined as data URIs, so the page can be mailed with its folder.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from cinekit.score.gates import HIGHER_IS_BETTER, PER_CHARACTER

LABELS = {"palette_delta_e": "ΔE", "identity_cosine": "id cos", "identity_cross_shot": "id x-shot",
          "flicker": "flicker", "warp_error": "warp"}

CSS = """
:root{--bg:#15171c;--card:#1f232b;--fg:#e8e8ec;--dim:#9aa0ab;--ok:#2e9e5b;--bad:#d64545;--na:#4a505c}
*{box-sizing:border-box}body{margin:0;padding:24px;background:var(--bg);color:var(--fg);
font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{margin:0 0 4px;font-size:22px}h2{margin:32px 0 12px;font-size:18px;border-bottom:1px solid #333;padding-bottom:6px}
.sub{color:var(--dim);margin-bottom:16px}.sub .fails{color:#fff;background:var(--bad);padding:1px 8px;border-radius:10px}
.sub .nofails{color:#fff;background:var(--ok);padding:1px 8px;border-radius:10px}
.board{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:16px}
.card{background:var(--card);border-radius:8px;overflow:hidden;display:flex;flex-direction:column;border:3px solid transparent}
.card.failed{border-color:var(--bad);box-shadow:0 0 0 1px var(--bad),0 0 18px rgba(214,69,69,.45)}
.flag{background:var(--bad);color:#fff;font-weight:600;padding:5px 10px;font-size:13px}
.card img,.card video{width:100%;display:block;background:#000;aspect-ratio:var(--ar,3/2);object-fit:contain}
.missing{display:flex;align-items:center;justify-content:center;aspect-ratio:3/2;color:var(--dim);background:#111}
.meta{padding:8px 10px}.id{font-weight:600}.kind{color:var(--dim);font-size:12px;margin-left:6px}
.prompt{color:#c9cbd2;font-size:13px;margin:4px 0}.chips{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px}
.chip{font-size:12px;padding:1px 7px;border-radius:10px;background:var(--na);white-space:nowrap}
.chip.pass{background:var(--ok)}.chip.fail{background:var(--bad)}.swatch{display:inline-block;width:10px;height:10px;
border-radius:2px;margin-right:1px;vertical-align:middle}.gallery{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.thumb{background:var(--card);border-radius:6px;padding:6px;text-align:center;font-size:12px;color:var(--dim)}
.thumb img{height:160px;display:block;margin-bottom:4px}.thumb.ref{border:2px solid #8ab4f8;color:#8ab4f8}
.thumb.ref img{background:repeating-conic-gradient(#2a2e36 0 25%,#20242b 0 50%) 0 0/16px 16px}
.ab .stage{position:relative}.ab .b-side{position:absolute;inset:0;clip-path:inset(0 0 0 var(--pos,50%))}
.ab .b-side img,.ab .b-side video{width:100%;height:100%;object-fit:contain}
.ab input{width:100%;margin:0;display:block;accent-color:#8ab4f8}
.ab .labels{display:flex;justify-content:space-between;font-size:12px;color:var(--dim);padding:0 10px}
ul.warn{color:#f0c36d}.warn .what{color:var(--dim)}a{color:#8ab4f8}
"""

# The A/B slider moves the edge between A (left) and B (right); B's clip follows A's clock.
SCRIPT = """
document.querySelectorAll('.ab').forEach(ab => {
  const range = ab.querySelector('input');
  const set = () => ab.style.setProperty('--pos', range.value + '%');
  range.addEventListener('input', set); set();
  const a = ab.querySelector('.a-side video'), b = ab.querySelector('.b-side video');
  if (a && b) {
    // Once A has ended, B plays its last frames out to its own end (pausing it with A would
    // stop it a frame short, a few ms behind A's clock).
    const sync = () => { if (a.ended) return;
                         if (Math.abs(b.currentTime - a.currentTime) > 0.05) b.currentTime = a.currentTime;
                         if (a.paused !== b.paused) (a.paused ? b.pause() : b.play().catch(() => {})); };
    ['play', 'pause', 'seeked', 'timeupdate'].forEach(ev => a.addEventListener(ev, sync));
  }
});
"""


def url(target: Path, page_dir: Path) -> str:
    from urllib.parse import quote

    return quote(Path(os.path.relpath(target, page_dir)).as_posix())


def data_uri(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def chip(name: str, value: float | None, gate_results: list, character: str | None = None) -> str:
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


def media(r, page_dir: Path, primary: bool = True) -> str:
    """A render's panel or clip (``r``: a ShotEntry or an Alternative: kind, main, poster, record, shot_id)."""
    if r.main is None:
        return '<div class="missing">not rendered</div>'
    job = (r.record or {}).get("job", {})
    ar = f'style="--ar:{job.get("width", 3)}/{job.get("height", 2)}"'
    sid = html.escape(r.shot_id)
    data = f'data-shot="{sid}"' if primary else f'data-compare="{sid}"'
    if r.kind == "clip" and r.main.suffix.lower() in (".mp4", ".webm"):
        poster = f' poster="{url(r.poster, page_dir)}"' if r.poster and r.poster.exists() else ""
        controls = "controls " if primary else ""
        return (f'<video class="clip" src="{url(r.main, page_dir)}"{poster} {ar} {controls}loop muted autoplay '
                f'playsinline preload="auto" {data} '
                f'data-frames="{job.get("frames", "")}" data-fps="{job.get("fps", "")}"></video>')
    src = r.main if r.main.is_file() else r.poster   # a PNG-frame folder shows its poster
    if src is None:
        return '<div class="missing">no preview</div>'
    alt = html.escape(f"{r.shot_id}: {getattr(r, 'label', '') or 'render'}")
    return f'<img class="panel" src="{url(src, page_dir)}" alt="{alt}" {ar} {data}>'


def compare(e, page_dir: Path) -> str:
    """A over B with a slider (B: the first other render of the shot: another engine or folder)."""
    b = e.alternatives[0]
    return (f'<div class="ab" data-a="{html.escape(e.label)}" data-b="{html.escape(b.label)}">'
            # B lies exactly over A's picture (the stage), not over the slider and labels below it
            f'<div class="stage"><div class="a-side">{media(e, page_dir)}</div>'
            f'<div class="b-side">{media(b, page_dir, False)}</div></div>'
            f'<input type="range" min="0" max="100" value="50" aria-label="A/B compare: {html.escape(e.shot_id)}">'
            f'<div class="labels"><span>A: {html.escape(e.label)}</span><span>B: {html.escape(b.label)}</span></div>'
            f'</div>')


def card(e, page_dir: Path) -> str:
    job = (e.record or {}).get("job", {})
    if e.kind == "clip":
        dur = f"{job['frames'] / job['fps']:.2f} s · {job['frames']} frames @ {job['fps']:g} fps" if job else f"{e.duration:g} s"
    else:
        dur = "still"
    chips = []
    if e.scores:
        for name in ("flicker", "warp_error"):
            chips.append(chip(name, e.scores["scores"].get(name), e.gates))
        for char, entry in e.scores["characters"].items():
            for name in PER_CHARACTER:
                chips.append(chip(name, entry.get(name), e.gates, char))
            pal = entry.get("palette")
            if pal:
                sw = "".join(f'<i class="swatch" style="background:{c}"></i>' for c in pal["output"])
                chips.append(f'<span class="chip" title="{html.escape(char)}: output palette">{sw}</span>')
    failed = [g for g in e.gates if g.status == "fail"]
    flag = ""
    if failed:
        flag = (f'<div class="flag" role="alert">FAILED {len(failed)} gate(s): '
                f'{html.escape("; ".join(g.message for g in failed))}</div>')
    body = compare(e, page_dir) if e.alternatives and e.main is not None else media(e, page_dir)
    prompt = html.escape(job.get("raw_prompt") or e.prompt)
    return (f'<div class="card{" failed" if failed else ""}" id="{html.escape(e.shotlist)}#{html.escape(e.shot_id)}" '
            f'data-card="{html.escape(e.shot_id)}">{flag}{body}'
            f'<div class="meta"><span class="id">{html.escape(e.shot_id)}</span>'
            f'<span class="kind">{html.escape(dur)} · {html.escape(e.engine)}</span>'
            f'<div class="prompt">{prompt}</div>'
            f'<div class="chips">{"".join(c for c in chips if c)}</div></div></div>')


def gates_text(gates) -> str:
    return ", ".join(f"{k} {'≥ ' + format(g.min, 'g') if g.min is not None else ''}"
                     f"{' ' if g.min is not None and g.max is not None else ''}"
                     f"{'≤ ' + format(g.max, 'g') if g.max is not None else ''}" for k, g in gates.items())


def render_html(project, lists, warnings: list, page: Path, sheets: list[Path],
                references: dict[str, np.ndarray] | None = None, source: str = "") -> str:
    """The page: header (rendered / failing counts), one board per list, galleries, warnings by kind."""
    from cinekit.score.report import WARNING_KINDS

    page_dir = page.parent
    shots = [e for _, entries in lists for e in entries]
    failing = [e for e in shots if any(g.status == "fail" for g in e.gates)]
    rendered = sum(1 for e in shots if e.main is not None)
    gates = gates_text(project.config.gates)
    fails = (f"<span class='fails' data-failing='{len(failing)}'>{len(failing)} shot(s) failing gates</span>"
             if failing else "<span class='nofails' data-failing='0'>no shot failing gates</span>")
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width,initial-scale=1'>",
             f"<title>cinekit review: {html.escape(project.root.name)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(project.root.name)}</h1>",
             f"<div class='sub'>{rendered}/{len(shots)} shots rendered · {fails} · gates: "
             f"{html.escape(gates or 'none')}{' · from ' + html.escape(source) if source else ''}</div>"]
    for (rel, entries), sheet in zip(lists, sheets):
        parts.append(f"<h2>{html.escape(rel)} <a class='sheet' href='{url(sheet, page_dir)}'>contact sheet</a></h2>")
        parts.append("<div class='board'>" + "".join(card(e, page_dir) for e in entries) + "</div>")
    chars: dict[str, list[str]] = {}
    for e in shots:
        for name in e.characters:
            chars.setdefault(name, [])
        for name, img in e.thumbs.items():
            entry = (e.scores or {}).get("characters", {}).get(name, {})
            chips = "".join(chip(s, entry.get(s), e.gates, name) for s in PER_CHARACTER)
            chars.setdefault(name, []).append(
                f"<div class='thumb'><img src='{data_uri(img)}' alt='{html.escape(name)} in {html.escape(e.shot_id)}'>"
                f"{html.escape(e.shot_id)}<div class='chips'>{chips}</div></div>")
    if chars:
        parts.append("<h2>Characters</h2>")
        for name in sorted(chars):
            ref = (references or {}).get(name)
            ref_html = (f"<div class='thumb ref'><img class='ref' src='{data_uri(ref)}' alt='{html.escape(name)} "
                        f"reference' data-reference='{html.escape(name)}'>reference</div>") if ref is not None else ""
            parts.append(f"<h3>{html.escape(name)}</h3><div class='gallery' data-character='{html.escape(name)}'>"
                         f"{ref_html}{''.join(chars[name])}</div>")
    parts.append("<h2>Warnings</h2>")
    if warnings:
        items = []
        for w in warnings:
            kind = getattr(w, "kind", "other")
            what = WARNING_KINDS.get(kind, "")
            items.append(f"<li data-kind='{html.escape(kind)}'><b>{html.escape(kind)}</b>: {html.escape(str(w))}"
                         f"{' <span class=what>(' + html.escape(what) + ')</span>' if what else ''}</li>")
        parts.append("<ul class='warn'>" + "".join(items) + "</ul>")
    else:
        parts.append("<p>none</p>")
    parts.append(f"<script>{SCRIPT}</script></body></html>\n")
    return "\n".join(parts)
