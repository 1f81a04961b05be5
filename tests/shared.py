"""Where the shared data lives: the flower photos, the Keras weights, the edge embedder.

``$TULIP_SHARED`` names the folder (it holds ``data/flower_photos``); without it, the
``shared`` folder beside the checkout. A test that needs the data and finds none skips, and
says which variable to set: 57 errors tell a newcomer nothing, one skip reason does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_ENV = "TULIP_SHARED"
#: a folder every pytest-xdist worker of one run shares (tests/conftest.py makes and removes
#: it), for artefacts that are expensive to build and read-only once built
SESSION_TMP_ENV = "TULIP_TEST_SESSION_TMP"
#: what TensorFlow's native code prints at start-up, which must not reach a user's terminal
TENSORFLOW_NOISE = ("cudart_stub", "cuInit", "oneDNN", "absl::InitializeLog", "cpu_feature_guard")
REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """The folder the shared data should be in (it may be missing)."""
    return Path(os.environ.get(SHARED_ENV) or REPO_ROOT.parent / "shared")


def shared_dir() -> Path:
    """The shared folder; skips the calling test when it holds no flower photos."""
    root = shared_root()
    if not (root / "data" / "flower_photos").is_dir():
        pytest.skip(
            f"no shared data at {root / 'data' / 'flower_photos'}: set {SHARED_ENV} to the "
            "folder that holds data/flower_photos (and keras/models)"
        )
    return root


def flower_photos() -> Path:
    return shared_dir() / "data" / "flower_photos"


@contextlib.contextmanager
def built_once(name: str, *, at: Path | None = None) -> Iterator[Path]:
    """A folder for an artefact that the workers of one run build once and then share.

    The caller holds an exclusive lock on it while the block runs: the first worker finds it
    empty and builds into it, the others wait and find it built. ``at`` names the folder
    (kept across runs); by default it is ``name`` in ``$TULIP_TEST_SESSION_TMP``, and outside
    a test run a private temporary folder."""
    session = os.environ.get(SESSION_TMP_ENV)
    if at is None and not session:
        yield Path(tempfile.mkdtemp(prefix=f"tulip-{name}-"))
        return
    folder = at or Path(session) / name
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield folder
