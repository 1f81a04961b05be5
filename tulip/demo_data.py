"""Where the demo's photos and weights come from, and what it falls back to without them.

Flower photos are looked for in this order: ``--data DIR``, ``$TULIP_DEMO_DATA``, the local
cache (``~/.cache/tulip/flower_photos``), then a download of the official archive, checked
against its published size and sha256. With none of them (no network), the demo draws its
own flowers (``tulip synth``) and says so.

ImageNet weights come through Keras' own cache and download. Without them, MobileNet would
embed noise, so the demo says so and uses the colour-histogram featuriser instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "TULIP_DEMO_DATA"
OFFLINE_ENV = "TULIP_OFFLINE"
ARCHIVE_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
)
# From tensorflow/datasets url_checksums/tf_flowers.txt
ARCHIVE_SIZE = 228_813_984
ARCHIVE_SHA256 = "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c"
CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
FALLBACK_ARCHITECTURE = "colour_histogram"

Say = Callable[[str], None]


@dataclass(frozen=True)
class DataSource:
    path: Path
    kind: str  # "given", "env", "cache", "download", "generated"
    note: str


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tulip"


def looks_like_flowers(path: Path) -> bool:
    return path.is_dir() and all((path / c).is_dir() and any((path / c).iterdir()) for c in CLASSES)


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def find_flowers(
    given: Path | None,
    *,
    say: Say,
    download: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> DataSource | None:
    """The first flower_photos folder found, or None when there is none to be had."""
    if given is not None:
        if not looks_like_flowers(given):
            from pipelines.errors import TulipError

            raise TulipError(
                f"--data {given} is not a flower_photos folder: it needs class folders "
                f"{', '.join(CLASSES)} with images in them"
            )
        return DataSource(given, "given", f"flower photos from {given}")
    env = os.environ.get(DATA_ENV)
    if env:
        if looks_like_flowers(Path(env)):
            return DataSource(Path(env), "env", f"flower photos from ${DATA_ENV} ({env})")
        say(f"${DATA_ENV}={env} is not a flower_photos folder; looking elsewhere")
    cached = cache_dir() / "flower_photos"
    if looks_like_flowers(cached):
        return DataSource(cached, "cache", f"flower photos from the local cache ({cached})")
    if not download or offline():
        return None
    try:
        return DataSource(
            _download(cached, say=say, progress=progress),
            "download",
            f"flower photos downloaded from {ARCHIVE_URL}",
        )
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as e:
        say(f"could not download the flower photos ({e})")
        return None


def _download(target: Path, *, say: Say, progress) -> Path:
    say(f"downloading the flower photos ({ARCHIVE_SIZE / 2**20:.0f} MiB) from {ARCHIVE_URL}")
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / "flower_photos.tgz"
        with urllib.request.urlopen(ARCHIVE_URL, timeout=20) as resp, open(archive, "wb") as f:
            done = 0
            while chunk := resp.read(1 << 20):
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, ARCHIVE_SIZE)
        if done != ARCHIVE_SIZE or h.hexdigest() != ARCHIVE_SHA256:
            raise ValueError(
                f"the archive does not match its checksum (got {done} bytes, "
                f"sha256 {h.hexdigest()[:16]}...); not using it"
            )
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        extracted = Path(tmp) / "flower_photos"
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)
    return target


def generate_flowers(
    target: Path,
    *,
    per_class: int,
    seed: int,
    say: Say,
    progress: Callable[[int, int], None] | None = None,
) -> DataSource:
    from tulip.synth import generate

    generate(target, classes=CLASSES, per_class=per_class, seed=seed, progress=progress)
    return DataSource(
        target,
        "generated",
        f"{per_class} generated flowers per class in {target} "
        "(procedurally drawn; the orchids will be drawn by the tulip generator)",
    )


def weights_available(architecture: str) -> tuple[bool, str]:
    """Whether Keras can load ImageNet weights for ``architecture`` here: cached, or downloadable."""
    from training.backbones import keras_cache_dir, parse_architecture

    arch = parse_architecture(architecture)
    if arch.weights_filename is None:
        return True, f"{arch.name} needs no weights"
    cached = keras_cache_dir() / arch.weights_filename
    if cached.exists():
        return True, f"ImageNet weights from Keras' cache ({cached})"
    if offline():
        return False, f"no ImageNet weights in Keras' cache ({cached}) and ${OFFLINE_ENV} is set"
    folder = "mobilenet" if arch.family == "mobilenet_v1" else "mobilenet_v2"
    url = f"https://storage.googleapis.com/tensorflow/keras-applications/{folder}/{arch.weights_filename}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        return (
            False,
            f"no ImageNet weights in Keras' cache ({cached}) and no way to download them ({e})",
        )
    return True, "ImageNet weights: Keras will download them on first use"
