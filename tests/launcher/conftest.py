"""Fixtures shared by the launcher's CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def clean_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder: no stray ./launch.toml is picked up."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder
