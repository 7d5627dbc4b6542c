"""The studio hand-off: an episode's rendered shots as the files editors and board artists use.

One module per export, all reading the same ``Episode`` (``cinekit.studio.episode``): the
shots of one list in order, each joined with what ``cinekit render`` wrote for it.

- ``animatic``: one movie of the episode (H.264 MP4, ProRes MOV or a PNG sequence), streamed
  frame by frame, with SMPTE timecode burn-in, shot slates and an optional audio track;
- ``board``: a storyboard PDF (panels with shot id, duration, camera, action, dialogue);
- ``timeline``: an OpenTimelineIO timeline (clips referencing the rendered files).
"""


def require(module: str, package: str):
    """Import an export's library, or say which package to install (exit 3, not a traceback)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        from cinekit.errors import CinekitError

        raise CinekitError(f"this export needs the Python package {package!r}, which is not installed",
                           hint=f"pip install {package}") from None
