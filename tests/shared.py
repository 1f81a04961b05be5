"""Where the shared data lives: the flower photos, the Keras weights, the edge embedder.

``$TULIP_SHARED`` names the folder (it holds ``data/flower_photos``); without it, the
``shared`` folder beside the checkout. A test that needs the data and finds none skips, and
says which variable to set: 57 errors tell a newcomer nothing, one skip reason does.
"""

from __future__ import annotations

import os
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
