"""`cinekit timeline --otio`: the episode as an OpenTimelineIO timeline for Resolve / Premiere / Avid.

One video track, one clip per shot in order: its media reference points at the rendered file
(a still PNG, an MP4 / GIF, or a PNG-frame folder as an image sequence), its source range is
the rendered frames at the render's own rate (a still: its hold, whole frames of the timeline
rate). A marker on each clip carries the shot id and prompt (comment) and the shot's notes
(metadata). Shots with audio get an audio track aligned to them; the list's soundtrack gets
its own. Paths are relative to the project root: the file names no folder of the user's machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from cinekit.studio import media
from cinekit.studio.episode import Episode, EpisodeShot


def _rel(episode: Episode, path: Path) -> str:
    """``path`` relative to the project root, with forward slashes (``../`` when outside it)."""
    root = episode.project.root
    return Path(os.path.relpath(Path(path).resolve(), root)).as_posix()


def _reference(episode: Episode, s: EpisodeShot, otio):
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    if s.kind == "still":
        return otio.schema.ExternalReference(target_url=_rel(episode, s.main))
    available = tr(rt(0, s.fps), rt(s.frames, s.fps))
    if s.main.is_dir():  # --format png renders: 0000.png, 0001.png, ...
        names = sorted(p.name for p in s.main.glob("*.png"))
        pad = len(Path(names[0]).stem) if names else 4
        return otio.schema.ImageSequenceReference(
            target_url_base=_rel(episode, s.main) + "/", name_suffix=".png", start_frame=0,
            frame_zero_padding=pad, rate=s.fps, available_range=available)
    return otio.schema.ExternalReference(target_url=_rel(episode, s.main), available_range=available)


def shot_range(s: EpisodeShot, fps: float, otio):
    """The clip's source range: the rendered frames at the render's rate; a still's hold in timeline frames."""
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    if s.kind == "still":
        return tr(rt(0, fps), rt(max(1, media.frame_count(s.seconds, fps)), fps))
    return tr(rt(0, s.fps), rt(s.frames, s.fps))


def build_timeline(episode: Episode, *, fps: float | None = None, start_tc: str = "00:00:00:00"):
    """The ``opentimelineio.schema.Timeline`` of the episode (nothing written)."""
    from cinekit.studio import require

    otio = require("opentimelineio", "opentimelineio")

    from cinekit import __version__
    from cinekit.errors import UserError

    rate = float(fps or episode.fps)
    if rate <= 0:
        raise UserError(f"--fps {rate:g}: must be > 0")
    try:
        start = media.parse_smpte(start_tc, rate)
    except ValueError as exc:
        raise UserError(f"--start-timecode: {exc}") from None
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    name = episode.project.root.name
    timeline = otio.schema.Timeline(name=f"{name} {episode.name}")
    timeline.global_start_time = rt(start, round(rate))
    timeline.metadata["cinekit"] = {"version": __version__, "shotlist": episode.rel,
                                    "paths": "relative to the project root"}
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1 shots", kind=otio.schema.TrackKind.Audio)
    cursor = rt(0, rate)
    audio_at = rt(0, rate)
    for s in episode.shots:
        source = shot_range(s, rate, otio)
        notes = {"shot_id": s.id, "shotlist": episode.rel, "kind": s.kind, "engine": s.engine,
                 "prompt": s.prompt, "camera": s.camera, "action": s.shot.action, "dialogue": s.shot.dialogue_text,
                 "seed": s.record.get("job", {}).get("seed")}
        marker = otio.schema.Marker(name=s.id, marked_range=tr(source.start_time, rt(0, source.start_time.rate)),
                                    color=otio.schema.MarkerColor.GREEN, comment=s.prompt,
                                    metadata={"cinekit": notes})
        clip = otio.schema.Clip(name=s.id, media_reference=_reference(episode, s, otio), source_range=source,
                                markers=[marker], metadata={"cinekit": notes})
        video.append(clip)
        if s.audio is not None:
            gap = cursor - audio_at
            if gap.value > 0:
                audio.append(otio.schema.Gap(source_range=tr(rt(0, rate), gap.rescaled_to(rate))))
            audio.append(otio.schema.Clip(name=f"{s.id} audio", media_reference=otio.schema.ExternalReference(
                target_url=_rel(episode, s.audio)), source_range=tr(rt(0, rate), source.duration.rescaled_to(rate))))
            audio_at = cursor + source.duration.rescaled_to(rate)
        cursor = cursor + source.duration.rescaled_to(rate)
    timeline.tracks.append(video)
    if episode.audio is not None:
        track = otio.schema.Track(name="A2 soundtrack", kind=otio.schema.TrackKind.Audio)
        track.append(otio.schema.Clip(name=episode.audio.name, media_reference=otio.schema.ExternalReference(
            target_url=_rel(episode, episode.audio)), source_range=tr(rt(0, rate), cursor)))
        timeline.tracks.append(track)
    if len(audio):
        timeline.tracks.append(audio)
    return timeline


def write_timeline(episode: Episode, out: Path, **kwargs) -> Path:
    """Write the ``.otio`` (OTIO JSON) file atomically."""
    from cinekit.studio import require

    otio = require("opentimelineio", "opentimelineio")

    from cinekit.render.writers import atomic_path

    timeline = build_timeline(episode, **kwargs)
    with atomic_path(out) as tmp:
        otio.adapters.write_to_file(timeline, str(tmp), adapter_name="otio_json")
    return Path(out)


def default_path(episode: Episode) -> Path:
    return episode.renders / f"{episode.name}.otio"
