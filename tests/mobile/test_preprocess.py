"""Each app's preprocessing, reproduced: normalisation values, resizes, channel order."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mobile.errors import InvalidImage, UnknownPlatform
from mobile.preprocess import (
    ANDROID,
    IOS,
    PIPELINE,
    PlatformSpec,
    bilinear_resize,
    normalize,
    pixels,
    platform_spec,
    preprocess,
)


def _png(array: np.ndarray) -> bytes:
    sink = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(sink, format="PNG")
    return sink.getvalue()


def test_android_and_ios_normalisation_match_the_apps():
    values = np.array([[[0, 128, 255]]], dtype=np.uint8)
    android = normalize(values, ANDROID)
    ios = normalize(values, IOS)
    assert android.dtype == ios.dtype == np.float32
    # ImageClassifier.java: ((v & 0xFF) - 128) / 128.0f
    assert android.ravel().tolist() == [-1.0, 0.0, 127 / 128]
    # CameraExampleViewController.mm: (v - 127.5f) / 127.5f
    expected = [np.float32(v - 127.5) / np.float32(127.5) for v in (0, 128, 255)]
    assert ios.ravel().tolist() == [float(v) for v in expected]
    assert ios.ravel()[[0, 2]].tolist() == [-1.0, 1.0]


def test_bilinear_resize_keeps_constant_and_interpolates_gradients():
    flat = np.full((10, 20, 3), 77, np.uint8)
    assert (bilinear_resize(flat, 5, 4) == 77).all()
    ramp = np.tile(np.arange(0, 256, 64, dtype=np.uint8)[None, :, None], (2, 1, 3))  # 0..192
    up = bilinear_resize(ramp, 8, 2)[0, :, 0]
    assert up[0] == 0 and up[-1] == 192
    assert (np.diff(up.astype(int)) >= 0).all()


def test_bilinear_resize_does_not_average_like_pillow():
    """A 1-px checkerboard shrunk 3.2x: 2x2 taps alias it, Pillow's wide filter greys it out."""
    board = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    board = np.repeat(board[..., None], 3, axis=2)
    ours = bilinear_resize(board, 20, 20)
    pillow = np.asarray(Image.fromarray(board).resize((20, 20), Image.Resampling.BILINEAR))
    assert ours.std() > 30 and pillow.std() < 2


def test_ios_fill_then_nearest_samples_the_whole_photo():
    # A wide photo: left half red, right half blue; iOS squashes it, it does not crop it.
    wide = np.zeros((300, 600, 3), np.uint8)
    wide[:, :300, 0] = 255
    wide[:, 300:, 2] = 255
    out = pixels(_png(wide), IOS)
    assert out.shape == (224, 224, 3)
    assert (out[:, :100, 0] == 255).all() and (out[:, -100:, 2] == 255).all()


def test_every_platform_gives_the_model_input_shape():
    photo = np.random.default_rng(0).integers(0, 256, (333, 500, 3))
    for spec in (ANDROID, IOS, PIPELINE):
        x = preprocess(_png(photo), spec)
        assert x.shape == (224, 224, 3) and x.dtype == np.float32
        assert x.min() >= -1.0 and x.max() <= 1.0


def test_bgr_swaps_channels():
    red = np.zeros((50, 50, 3), np.uint8)
    red[..., 0] = 255
    bgr = PlatformSpec("bgr", mean=0, std=1, channel_order="BGR")
    out = pixels(_png(red), bgr)
    assert (out[..., 2] == 255).all() and (out[..., 0] == 0).all()


def test_exif_orientation_is_applied(tmp_path):
    tall = np.zeros((40, 20, 3), np.uint8)
    tall[:20] = 255  # white on top
    image = Image.fromarray(tall).rotate(90, expand=True)  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    path = tmp_path / "sideways.jpg"
    image.save(path, exif=exif, quality=95)
    out = pixels(path, ANDROID)
    assert out[:50].mean() > 200 and out[-50:].mean() < 50


def test_undecodable_image_and_unknown_platform(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"not a jpeg")
    with pytest.raises(InvalidImage, match=str(path)):
        preprocess(path, ANDROID)
    with pytest.raises(UnknownPlatform, match="windows"):
        platform_spec("windows")
    with pytest.raises(UnknownPlatform, match="resize"):
        PlatformSpec("x", mean=0, std=1, resize="bicubic")
