"""Decoding: every awkward-but-valid format gives the right pixels; every bad file a reason."""

from __future__ import annotations

import io
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import TulipError
from tests.training.flowers import DS_STORE, flower_source, png_bomb, truncated_jpeg
from training.images import UnreadableImage, decode, decode_with_info, read_info


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo():
    return sorted((flower_source() / "daisy").glob("*.jpg"))[0]


def _reason(data: bytes) -> str:
    with pytest.raises(UnreadableImage) as e:
        decode(data)
    assert isinstance(e.value, TulipError)
    return e.value.reason


def test_zero_byte_file_is_unreadable():
    assert _reason(b"") == "zero-byte file"


def test_ds_store_is_not_an_image():
    reason = _reason(DS_STORE)
    assert reason.startswith("not an image")
    assert "00 00 00 01 42 75 64 31" in reason  # names the bytes it saw


def test_truncated_jpeg_is_caught_by_a_full_decode(photo):
    data = truncated_jpeg(photo)
    Image.open(io.BytesIO(data))  # the header alone looks fine ...
    reason = _reason(data)  # ... but the pixels are not all there
    assert reason.startswith("truncated JPEG")


def test_png_bomb_is_refused_without_allocating_its_pixels():
    tracemalloc.start()
    t0 = time.perf_counter()
    reason = _reason(png_bomb(200_000, 200_000))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert reason.startswith("decompression bomb")
    assert time.perf_counter() - t0 < 2
    assert peak < 50_000_000


def test_bomb_under_pillows_limit_is_still_capped():
    reason = None
    with pytest.raises(UnreadableImage) as e:
        decode(png_bomb(5000, 5000), max_pixels=1_000_000)
    reason = e.value.reason
    assert "5000x5000" in reason and "1,000,000" in reason


def test_cmyk_jpeg_becomes_rgb():
    data = _bytes(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=95)
    px = decode(data, size=(32, 32))
    r, g, b = px[16, 16].astype(int)
    assert r > 230 and g < 30 and b < 30  # pure red


def test_grayscale_is_replicated_to_three_channels():
    px = decode(_bytes(Image.new("L", (30, 20), 77), "PNG"), size=(16, 16))
    assert px.shape == (16, 16, 3)
    assert (px == 77).all()


def test_rgba_is_composited_on_white():
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 0))  # fully transparent red
    img.paste((0, 0, 255, 255), (0, 0, 10, 20))  # opaque blue left half
    px = decode(_bytes(img, "PNG"), size=(20, 20))
    assert tuple(px[10, 2]) == (0, 0, 255)
    assert tuple(px[10, 17]) == (255, 255, 255)


def test_palette_transparency_is_white():
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    data = _bytes(img, "PNG", transparency=0)
    assert (decode(data, size=(10, 10)) == 255).all()


@pytest.mark.parametrize("value, expected", [(65535, 255), (32896, 128), (0, 0)])
def test_16_bit_png_is_scaled_not_clipped(value, expected):
    data = _bytes(Image.new("I;16", (12, 12), value), "PNG")
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
    px = decode(data, size=(12, 12))
    assert (px == expected).all()


def test_32_bit_integer_mode_is_treated_as_16_bit_range():
    img = Image.fromarray(np.full((8, 8), 65535, np.int32), "I")
    assert (decode(_bytes(img, "TIFF"), size=(8, 8)) == 255).all()


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (20, 0, 40, 20))  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # display after rotating 90 degrees clockwise
    data = _bytes(img, "JPEG", exif=exif.tobytes(), quality=95)
    px, info = decode_with_info(data, size=(40, 40))
    assert info.orientation == 6
    top, bottom = px[5, 20].astype(int), px[34, 20].astype(int)
    assert top[0] > 200 and top[2] < 60  # red is now on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue at the bottom
    assert info.width == 40 and info.height == 20  # header facts are of the stored image


def test_whole_picture_is_scaled_to_exact_size_without_crop():
    img = Image.new("RGB", (300, 100), (128, 128, 128))
    img.paste((0, 255, 0), (0, 0, 6, 100))  # thin green strip at the far left
    img.paste((255, 0, 255), (294, 0, 300, 100))  # magenta at the far right
    px = decode(_bytes(img, "PNG"))
    assert px.shape == (224, 224, 3) and px.dtype == np.uint8
    assert px[112, 0, 1] > 200 and px[112, 0, 0] < 60  # left edge survived: not cropped
    assert px[112, 223, 0] > 200 and px[112, 223, 1] < 60  # right edge too


def test_real_photo_decodes_and_info_reads_header_only(photo):
    info = read_info(photo)
    assert info.format == "JPEG" and info.mode == "RGB" and info.width > 0
    px = decode(photo)
    assert px.shape == (224, 224, 3)
    assert 20 < px.mean() < 235


def test_large_jpeg_uses_reduced_decode_but_keeps_exact_size():
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1600, 2000, 3), np.uint8))
    px = decode(_bytes(big, "JPEG"), size=(224, 224))
    assert px.shape == (224, 224, 3)
