"""Decode any image a user might commit into the RGB uint8 array a backbone expects.

Answers two questions for Embed, Train and Convert alike: "what are this file's pixels, at the
backbone's input size?" and "if it has none, why not?". Every file that cannot be decoded
raises ``UnreadableImage`` with a reason a person can act on (zero-byte, not an image,
truncated, decompression bomb), so the caller can record it instead of crashing.

Decoding follows what the tensorflow-for-poets apps do with a camera bitmap: apply the EXIF
orientation, flatten to RGB (transparent pixels over white), and scale the whole picture to
exactly ``size`` with bilinear resampling, without cropping.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from pipelines.errors import TulipError

DEFAULT_SIZE = (224, 224)
#: Files declaring more pixels than this (or than Pillow's ``Image.MAX_IMAGE_PIXELS``, if lower)
#: are refused before any pixel buffer is allocated. 89 MP, Pillow's own default, covers
#: phone and DSLR photos; a PNG bomb declares billions.
DEFAULT_MAX_PIXELS = 89_478_485

_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


class UnreadableImage(TulipError):
    """A file that holds no decodable picture; ``reason`` says why in a few words."""

    def __init__(self, reason: str, *, name: str | None = None):
        self.reason = reason
        self.name = name
        super().__init__(f"{name}: {reason}" if name else reason)


@dataclass(frozen=True)
class ImageInfo:
    """What a file's header says, without decoding its pixels."""

    width: int
    height: int
    mode: str
    format: str | None
    orientation: int = 1  # EXIF orientation tag; 1 means stored upright

    def to_dict(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "format": self.format,
            "orientation": self.orientation,
        }


def _as_bytes(source: bytes | str | Path) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    return Path(source).read_bytes()


def _open(data: bytes, *, max_pixels: int) -> Image.Image:
    """Open the header only, refusing empty files, non-images and declared bombs."""
    if not data:
        raise UnreadableImage("zero-byte file")
    try:
        # Pillow warns (DecompressionBombWarning) above Image.MAX_IMAGE_PIXELS and raises above
        # twice that. warnings.catch_warnings is not thread-safe, so instead of turning the
        # warning into an error the limit below never exceeds Pillow's own.
        img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UnreadableImage(f"decompression bomb: {e}") from e
    except UnidentifiedImageError as e:
        head = data[:8].hex(" ")
        raise UnreadableImage(
            f"not an image: no image format recognises its {len(data)} bytes (first bytes {head})"
        ) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise UnreadableImage(f"corrupt image header: {e}") from e
    width, height = img.size
    if width <= 0 or height <= 0:
        raise UnreadableImage(f"corrupt image header: declares {width}x{height} pixels")
    if Image.MAX_IMAGE_PIXELS:
        max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS)
    if width * height > max_pixels:
        raise UnreadableImage(
            f"decompression bomb: {img.format} declares {width}x{height} = {width * height:,} "
            f"pixels, over the limit of {max_pixels:,}"
        )
    return img


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is not a broken image
        return 1


def read_info(source: bytes | str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Size, mode, format and EXIF orientation from the header; pixels are not decoded."""
    img = _open(_as_bytes(source), max_pixels=max_pixels)
    with img:
        return ImageInfo(img.width, img.height, img.mode, img.format, _orientation(img))


def _load_fully(img: Image.Image) -> None:
    """Decode every pixel now, so truncation and corruption surface here and not later."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone flipped Pillow's global switch
        raise TulipError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process; Tulip needs it False "
            "to tell truncated images from whole ones"
        )
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UnreadableImage(f"decompression bomb: {e}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e)
        kind = "truncated" if "truncated" in msg.lower() else "corrupt"
        raise UnreadableImage(f"{kind} {img.format or 'image'}: {msg}") from e


def to_rgb(img: Image.Image) -> Image.Image:
    """Flatten any Pillow mode to 8-bit RGB: alpha over white, 16-bit scaled, CMYK converted."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _SIXTEEN_BIT_MODES:
        # 16-bit grayscale (PNG, TIFF). Pillow's own convert() clips at 255, which would turn
        # most of the picture white; scale the 0..65535 range down instead.
        arr = np.asarray(img, dtype=np.float64)
        gray = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        gray = np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")
    if (mode == "P" and "transparency" in img.info) or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def decode(
    source: bytes | str | Path,
    *,
    size: tuple[int, int] = DEFAULT_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Pixels of an image file as ``uint8`` array of shape ``(height, width, 3)`` = ``size[::-1]``.

    ``size`` is ``(width, height)`` as in Pillow. Raises ``UnreadableImage``.
    """
    array, _ = decode_with_info(source, size=size, max_pixels=max_pixels)
    return array


def decode_with_info(
    source: bytes | str | Path,
    *,
    size: tuple[int, int] = DEFAULT_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, ImageInfo]:
    """``decode`` plus the header facts of the source, read in the same pass."""
    data = _as_bytes(source)
    img = _open(data, max_pixels=max_pixels)
    with img:
        info = ImageInfo(img.width, img.height, img.mode, img.format, _orientation(img))
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)  # animated GIF/WebP: the first frame is the picture
        if img.format == "JPEG":
            # Let libjpeg scale by 1/2..1/8 while decoding when the photo is far larger than
            # the target; it still leaves at least twice the target size for the resize.
            img.draft(None, (size[0] * 2, size[1] * 2))
        _load_fully(img)
        try:
            upright = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block is not a broken image
            upright = img
        rgb = to_rgb(upright)
        if rgb.size != tuple(size):
            rgb = rgb.resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        array = np.asarray(rgb, dtype=np.uint8)
    if array.shape != (size[1], size[0], 3):  # pragma: no cover - guards Pillow surprises
        raise UnreadableImage(f"decoded to shape {array.shape}, expected {(size[1], size[0], 3)}")
    return array, info
