"""Shared fixtures: the example project copied to a temporary folder, real third-party data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cinekit.testing.data import shared_data_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
DATA = shared_data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data (third-party test data; never copied into the repo)."""
    assert DATA.is_dir(), f"test data not found at {DATA} (set CINEKIT_TEST_DATA)"
    return DATA


def copy_example(dest: Path) -> Path:
    """The repo's example project (cinekit.yaml, characters/, shots/) copied into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "cinekit.yaml", dest / "cinekit.yaml")
    for folder in ("characters", "shots"):
        shutil.copytree(REPO / folder, dest / folder)
    return dest


@pytest.fixture
def example_project(tmp_path) -> Path:
    return copy_example(tmp_path / "project")
