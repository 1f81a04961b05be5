"""JPEG thumbnails of repo images, made with Pillow and cached on disk by content hash and size.

The cache key is the file's sha256 plus the edge length, never its path, so a hostile file
name cannot steer a write, and identical images in many commits share one thumbnail.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

SIZES = (64, 96, 128, 160, 256)
DEFAULT_SIZE = 128
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


class NotAnImage(ValueError):
    """The bytes are not an image Pillow can decode."""


def is_image_path(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def make_thumbnail(data: bytes, size: int = DEFAULT_SIZE, *, quality: int = 80) -> bytes:
    """A JPEG no larger than ``size`` on its longer edge (aspect kept, EXIF rotation applied)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            im = ImageOps.exif_transpose(im)
            im.thumbnail((size, size))
            if im.mode != "RGB":
                im = im.convert("RGB")
            out = io.BytesIO()
            im.save(out, "JPEG", quality=quality, optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise NotAnImage(f"not a decodable image: {e}") from None


class ThumbnailCache:
    """``<dir>/<ab>/<sha256>-<size>.jpg``, written atomically."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    def path(self, digest: str, size: int) -> Path:
        if not digest.isalnum():
            raise ValueError(f"content hash {digest!r} is not a hex digest")
        return self.directory / digest[:2] / f"{digest}-{size}.jpg"

    def get(self, digest: str, size: int, load: Callable[[], bytes]) -> Path:
        """The cached thumbnail, made from ``load()`` on a miss; raises NotAnImage."""
        target = self.path(digest, size)
        if target.is_file():
            return target
        thumb = make_thumbnail(load(), size)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(thumb)
        os.replace(tmp, target)
        return target
