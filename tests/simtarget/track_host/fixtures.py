"""pytest fixtures for the host build of Track and trackdemo (import them by name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oracles import require_tool
from tests.simtarget.track_host import TrackHost, build_library

__all__ = ["checked", "free", "host_libraries"]


@pytest.fixture(scope="session")
def host_libraries(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Both flavours, compiled once per session: {1: checked, 0: free}."""
    gcc = require_tool("gcc")
    # Every test module that imports this fixture gets its own copy of it; the libraries
    # are built once per session all the same, into a folder the first copy renames into
    # place when both flavours are complete.
    done = tmp_path_factory.getbasetemp() / "track_host_libraries"
    if not done.exists():
        work = tmp_path_factory.mktemp("track_host_build")
        for dbg in (1, 0):
            build_library(gcc, work, dbg)
        work.rename(done)
    return {dbg: done / f"libtrackhost_dbg{dbg}.so" for dbg in (1, 0)}


@pytest.fixture
def checked(host_libraries: dict[int, Path], tmp_path: Path) -> TrackHost:
    """A fresh checked (DBG=1) copy: TRACE and assertions on."""
    return TrackHost(host_libraries[1], tmp_path)


@pytest.fixture
def free(host_libraries: dict[int, Path], tmp_path: Path) -> TrackHost:
    """A fresh free (DBG=0) copy: TRACE and assertions compiled out."""
    return TrackHost(host_libraries[0], tmp_path)
