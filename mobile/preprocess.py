"""How each app turns a photo into the model's input, reproduced so Tulip can predict what the
phone will say before the model ships.

What the tensorflow-for-poets-2 apps do (read in googlecodelabs/tensorflow-for-poets-2):

* Android, ``tflite/app/src/main/java/com/example/android/tflitecamerademo/ImageClassifier.java``
  (commit 5058f70, the app later moved under ``android/tflite/``): the camera preview is taken
  as a 224x224 ``Bitmap`` (``textureView.getBitmap(DIM_IMG_SIZE_X, DIM_IMG_SIZE_Y)``, a
  filtered, i.e. bilinear, scale of the whole frame with no crop and no antialiasing), then
  ``convertBitmapToByteBuffer`` writes, per pixel in R, G, B order,
  ``(((val >> 16) & 0xFF) - IMAGE_MEAN) / IMAGE_STD`` with ``IMAGE_MEAN = 128`` (int) and
  ``IMAGE_STD = 128.0f``: float32 ``(x - 128) / 128``.
* iOS, ``ios/tflite/CameraExampleViewController.mm`` (commit 2d8b235): PhotoKit returns the
  photo scaled to *fill* 224x224 (``PHImageContentModeAspectFill``: the short side becomes
  224, the aspect ratio is kept, nothing is cropped); ``CGImageToPixels`` draws it as RGBA;
  ``inputImageToModel`` then samples it to 224x224 by nearest neighbour
  (``in_x = (x * image.width) / wanted_input_width``, integer division) and writes
  ``(in_pixel[c] - input_mean) / input_std`` with ``input_mean = input_std = 127.5f``.
* The pipeline (Tulip's Embed and Train stages): Pillow decodes (JPEG draft scaling to at
  least twice the target), turns the photo upright by its EXIF orientation, resizes to
  224x224 with Pillow's antialiased bilinear filter (``reducing_gap=3.0``), then float32
  ``(x - 127.5) / 127.5``.

Photos are turned upright by their EXIF orientation on every platform: the apps classify
camera frames, which have none, and PhotoKit applies it.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidImage, UnknownPlatform

RESIZE_BILINEAR = "bilinear"  # Android: 2x2 bilinear straight to the target size, no antialias
RESIZE_FILL_NEAREST = "fill_nearest"  # iOS: aspect-fill to the target, then nearest neighbour
RESIZE_PILLOW = "pillow_bilinear"  # the pipeline: Pillow's antialiased bilinear
RESIZE_MODES = (RESIZE_BILINEAR, RESIZE_FILL_NEAREST, RESIZE_PILLOW)


@dataclass(frozen=True)
class PlatformSpec:
    """One app's preprocessing: resize, channel order, then float32 ``(x - mean) / std``."""

    name: str
    mean: float
    std: float
    resize: str = RESIZE_BILINEAR
    channel_order: str = "RGB"
    size: tuple[int, int] = (224, 224)  # (width, height)

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise UnknownPlatform(
                f"platform {self.name!r}: resize {self.resize!r} is not one of {RESIZE_MODES}"
            )
        if self.channel_order not in ("RGB", "BGR"):
            raise UnknownPlatform(
                f"platform {self.name!r}: channel order {self.channel_order!r} is not RGB or BGR"
            )
        if not self.std:
            raise UnknownPlatform(f"platform {self.name!r}: std must not be 0")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        return d


ANDROID = PlatformSpec("android", mean=128.0, std=128.0, resize=RESIZE_BILINEAR)
IOS = PlatformSpec("ios", mean=127.5, std=127.5, resize=RESIZE_FILL_NEAREST)
PIPELINE = PlatformSpec("pipeline", mean=127.5, std=127.5, resize=RESIZE_PILLOW)
PLATFORMS: dict[str, PlatformSpec] = {"android": ANDROID, "ios": IOS}


def platform_spec(platform: str | PlatformSpec) -> PlatformSpec:
    """``android``, ``ios`` or ``pipeline`` by name, or a custom spec as given."""
    if isinstance(platform, PlatformSpec):
        return platform
    known = {**PLATFORMS, "pipeline": PIPELINE}
    try:
        return known[platform]
    except KeyError:
        raise UnknownPlatform(
            f"unknown platform {platform!r}; use one of {sorted(known)} or a PlatformSpec"
        ) from None


def pixels(source: str | Path | bytes, spec: PlatformSpec) -> np.ndarray:
    """The uint8 RGB (or BGR) pixels the app would have, ``(height, width, 3)``."""
    from PIL import Image, ImageOps

    width, height = spec.size
    name = str(source) if not isinstance(source, bytes) else "image bytes"
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            if spec.resize == RESIZE_PILLOW and image.format == "JPEG":
                image.draft(None, (width * 2, height * 2))
            image.load()
            upright = _upright(image, ImageOps)
            rgb = upright.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise InvalidImage(f"{name} cannot be decoded as an image: {exc}") from exc
    if spec.resize == RESIZE_PILLOW:
        out = np.asarray(rgb.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0))
    elif spec.resize == RESIZE_BILINEAR:
        out = bilinear_resize(np.asarray(rgb), width, height)
    else:
        scale = max(width / rgb.width, height / rgb.height)
        filled = (max(width, round(rgb.width * scale)), max(height, round(rgb.height * scale)))
        photo = np.asarray(rgb.resize(filled, Image.Resampling.BILINEAR))
        rows = (np.arange(height) * photo.shape[0]) // height
        cols = (np.arange(width) * photo.shape[1]) // width
        out = photo[rows][:, cols]
    out = np.ascontiguousarray(out, dtype=np.uint8)
    return out[..., ::-1].copy() if spec.channel_order == "BGR" else out


def _upright(image, image_ops):
    try:
        return image_ops.exif_transpose(image)
    except Exception:  # a broken EXIF block is not a broken image
        return image


def bilinear_resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Plain bilinear sampling (pixel centres, 2x2 taps, no antialiasing) to uint8.

    This is what a filtered ``Bitmap`` scale or a GPU texture sample does, and unlike
    Pillow it does not average over the whole footprint when shrinking a photo.
    """
    src_h, src_w = array.shape[:2]

    def taps(out_n: int, in_n: int):
        pos = (np.arange(out_n, dtype=np.float64) + 0.5) * (in_n / out_n) - 0.5
        pos = np.clip(pos, 0, in_n - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, in_n - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    y0, y1, wy = taps(height, src_h)
    x0, x1, wx = taps(width, src_w)
    a = np.asarray(array, dtype=np.float32)
    wx = wx[None, :, None]
    top = a[y0][:, x0] * (1 - wx) + a[y0][:, x1] * wx
    bottom = a[y1][:, x0] * (1 - wx) + a[y1][:, x1] * wx
    out = top * (1 - wy[:, None, None]) + bottom * wy[:, None, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def normalize(pixel_array: np.ndarray, spec: PlatformSpec) -> np.ndarray:
    """float32 ``(x - mean) / std``, computed in float32 as the apps' Java and C++ do."""
    x = np.asarray(pixel_array).astype(np.float32)
    return (x - np.float32(spec.mean)) / np.float32(spec.std)


def preprocess(source: str | Path | bytes, spec: str | PlatformSpec = ANDROID) -> np.ndarray:
    """The float32 ``(height, width, 3)`` input the app feeds the model for this photo."""
    spec = platform_spec(spec)
    return normalize(pixels(source, spec), spec)
