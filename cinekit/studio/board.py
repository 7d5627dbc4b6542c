"""`cinekit board --pdf`: the episode as storyboard pages, the layout board artists know.

Landscape pages of 3-6 panels in shot order; under each panel its shot id, duration and
camera, then the action and dialogue notes (``action:`` / ``dialogue:`` of the shot) and the
prompt. A panel is the rendered still, or a clip's middle frame (its poster). The text is real
PDF text (searchable, copyable; a test reads it back), written with fpdf2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cinekit.errors import UserError
from cinekit.studio import media
from cinekit.studio.episode import Episode, EpisodeShot

PAGE = (297.0, 210.0)           # A4 landscape, mm
MARGIN, GAP, HEAD = 10.0, 6.0, 12.0
COLUMNS = {3: 3, 4: 2, 5: 3, 6: 3}
# a Unicode font when the machine has one (dialogue in any script); else PDF core Helvetica
FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
              "/Library/Fonts/Arial Unicode.ttf", "C:/Windows/Fonts/arial.ttf")


@dataclass
class BoardResult:
    path: Path
    pages: int
    panels: int


def panel_image(shot: EpisodeShot) -> np.ndarray:
    """The still, or the clip's middle frame (``frames // 2``, what the render's poster holds)."""
    if shot.poster is not None:
        return media.first_frame(shot.poster)
    idx = np.array([shot.frames // 2])
    return next(media.resampled(shot.main, idx))


def _font_file() -> str | None:
    try:
        import matplotlib

        mpl = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        if mpl.is_file():
            return str(mpl)
    except ImportError:
        pass
    return next((p for p in FONT_PATHS if Path(p).is_file()), None)


class _Writer:
    def __init__(self, title: str):
        from cinekit.studio import require

        self.pdf = require("fpdf", "fpdf2").FPDF(orientation="L", unit="mm", format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(MARGIN, MARGIN, MARGIN)
        self.pdf.set_title(title)
        self.pdf.set_creator("cinekit")
        # a fixed date: the same renders give the same PDF bytes
        self.pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=timezone.utc))
        font = _font_file()
        self.unicode = font is not None
        if font:
            self.pdf.add_font("body", "", font)
            bold = font.replace("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
            self.pdf.add_font("body", "B", bold if Path(bold).is_file() else font)
            self.family = "body"
        else:
            self.family = "helvetica"

    def text(self, s: str) -> str:
        return s if self.unicode else s.encode("latin-1", "replace").decode("latin-1")

    def font(self, size: float, bold: bool = False, grey: int = 20) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)
        self.pdf.set_text_color(grey, grey, grey)

    def block(self, x: float, y: float, w: float, h_max: float, text: str, size: float, line: float,
              bold: bool = False, grey: int = 20) -> float:
        """Wrapped text in a column, cut (with an ellipsis) where it would leave ``h_max``; returns the height."""
        if not text or h_max < line:
            return 0.0
        self.font(size, bold, grey)
        lines = self.pdf.multi_cell(w, line, self.text(text), dry_run=True, output="LINES")
        keep = max(1, int(h_max // line))
        if len(lines) > keep:
            lines = lines[:keep]
            lines[-1] = lines[-1].rstrip()[: max(1, len(lines[-1]) - 2)] + "..."
        for k, ln in enumerate(lines):
            self.pdf.set_xy(x, y + k * line)
            self.pdf.cell(w, line, ln)
        return len(lines) * line


def _grid(panels: int) -> tuple[int, int]:
    cols = COLUMNS[panels]
    return cols, math.ceil(panels / cols)


def write_board(episode: Episode, out: Path, *, panels: int = 6) -> BoardResult:
    """Write the storyboard PDF atomically; ``panels`` per page (3-6)."""
    from PIL import Image

    from cinekit.render.writers import atomic_path

    if panels not in COLUMNS:
        raise UserError(f"--panels {panels}: choose 3, 4, 5 or 6 panels a page")
    name = episode.project.root.name if episode.project is not None else ""
    w = _Writer(f"{name} - {episode.rel} - storyboard")
    cols, rows = _grid(panels)
    area_w, area_h = PAGE[0] - 2 * MARGIN, PAGE[1] - 2 * MARGIN - HEAD
    cell_w, cell_h = (area_w - (cols - 1) * GAP) / cols, (area_h - (rows - 1) * GAP) / rows
    notes_h = max(22.0, cell_h * 0.3)
    pages = math.ceil(len(episode.shots) / panels)
    for p in range(pages):
        w.pdf.add_page()
        w.font(13, bold=True)
        w.pdf.set_xy(MARGIN, MARGIN)
        w.pdf.cell(area_w * 0.7, 7, w.text(f"{name} · {episode.name}" if w.unicode else f"{name} - {episode.name}"))
        w.font(9, grey=90)
        w.pdf.set_xy(MARGIN + area_w * 0.7, MARGIN)
        w.pdf.cell(area_w * 0.3, 7, f"page {p + 1}/{pages} · {episode.seconds:.1f} s" if w.unicode
                   else f"page {p + 1}/{pages} - {episode.seconds:.1f} s", align="R")
        for k, shot in enumerate(episode.shots[p * panels:(p + 1) * panels]):
            x = MARGIN + (k % cols) * (cell_w + GAP)
            y = MARGIN + HEAD + (k // cols) * (cell_h + GAP)
            img = panel_image(shot)
            ih, iw = img.shape[:2]
            box_h = cell_h - notes_h
            scale = min(cell_w / iw, box_h / ih)
            pw, ph = iw * scale, ih * scale
            px, py = x + (cell_w - pw) / 2, y + (box_h - ph) / 2
            w.pdf.image(Image.fromarray(img), x=px, y=py, w=pw, h=ph)
            w.pdf.set_draw_color(40, 40, 40)
            w.pdf.rect(px, py, pw, ph)
            ty = y + box_h + 1.5
            dur = f"{shot.seconds:.2f} s" + (" (still)" if shot.kind == "still" else "")
            sep = " · " if w.unicode else " - "
            ty += w.block(x, ty, cell_w, 5, f"{shot.id}{sep}{dur}{sep}{shot.camera}", 9.5, 4.6, bold=True)
            left = y + cell_h - ty
            for label, text, grey in (("Action", shot.shot.action, 20), ("Dialogue", shot.shot.dialogue_text, 20),
                                      ("Prompt", shot.prompt, 110)):
                if text:
                    used = w.block(x, ty, cell_w, left, f"{label}: {text}", 7.5, 3.4, grey=grey)
                    ty, left = ty + used, left - used
    with atomic_path(out) as tmp:
        w.pdf.output(str(tmp))
    return BoardResult(Path(out), pages, len(episode.shots))


def default_path(episode: Episode) -> Path:
    return episode.renders / f"{episode.name}.board.pdf"
