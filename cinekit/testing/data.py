"""Where the third-party test data lives (``../shared/data`` beside the checkout, by default).

The data is never copied into the repository. ``CINEKIT_TEST_DATA`` names it explicitly; else
the first existing of ``<repo>/../shared/data`` and ``/work/shared/data`` (a clone made
elsewhere on the build machine, as CI does, still finds it).
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    if os.environ.get("CINEKIT_TEST_DATA"):
        return Path(os.environ["CINEKIT_TEST_DATA"])
    candidates = [_REPO.parent / "shared" / "data", Path("/work/shared/data")]
    return next((c for c in candidates if c.is_dir()), candidates[0])
