"""The one way the tests' builds are cached (tests/llama_build.py build_once): a complete build is
reused, an interrupted one redone, and callers at once build it once."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from tests.llama_build import build_once


def test_a_complete_build_is_reused_and_an_interrupted_one_is_redone(tmp_path: Path) -> None:
    root, builds = tmp_path / "thing-1", []

    def build(at: Path, log) -> None:
        builds.append(at)
        (at / "complete").touch()

    build_once(root, build, io.StringIO())
    build_once(root, build, io.StringIO())
    assert builds == [root]
    (root / "complete").unlink()  # a build killed before its last step
    build_once(root, build, io.StringIO())
    assert builds == [root, root]


def test_callers_at_once_build_once(tmp_path: Path) -> None:
    root, builds = tmp_path / "thing-2", []

    def build(at: Path, log) -> None:
        builds.append(at)
        time.sleep(0.3)  # the others arrive while this one builds, and wait on the lock
        (at / "complete").touch()

    callers = [threading.Thread(target=build_once, args=(root, build, io.StringIO())) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    assert builds == [root]
