"""Small real data and real pipeline artefacts shared by the training and conversion tests.

Everything expensive (an Embed run, a trained model) is built once per test process and
cached here, so that the session fixtures of ``tests/training`` and ``tests/conversion`` share
it. Images come from ``../shared/data/flower_photos`` (12 per class) plus bad files made on
the spot; the backbone is ``mobilenet_0.25_224``.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import struct
import tempfile
import zlib
from functools import cache
from pathlib import Path

from PIL import Image

from tests.shared import flower_photos

ARCH = "mobilenet_0.25_224"
PER_CLASS = 12
CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def flower_source() -> Path:
    return flower_photos()


@cache
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="tulip-ml-tests-"))
    atexit.register(shutil.rmtree, root, True)
    return root


# --- bad files --------------------------------------------------------------------------------

DS_STORE = b"\x00\x00\x00\x01Bud1" + b"\x00" * 2040


def png_bomb(width: int = 200_000, height: int = 200_000) -> bytes:
    """A valid-looking PNG header that declares ``width x height`` pixels, with a tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def truncated_jpeg(source: Path) -> bytes:
    data = source.read_bytes()
    return data[: len(data) // 2]


def bad_files(example_jpeg: Path) -> dict[str, bytes]:
    """Repo path -> bytes of every unreadable kind, and the reason word each must produce."""
    return {
        "/daisy/empty.jpg": b"",
        "/daisy/.DS_Store": DS_STORE,
        "/roses/truncated.jpg": truncated_jpeg(example_jpeg),
        "/tulips/bomb.png": png_bomb(),
    }


BAD_REASONS = {
    "/daisy/empty.jpg": "zero-byte",
    "/daisy/.DS_Store": "not an image",
    "/roses/truncated.jpg": "truncated",
    "/tulips/bomb.png": "decompression bomb",
}


def odd_but_fine_files() -> dict[str, bytes]:
    """Readable images in awkward formats: CMYK, 16-bit grayscale, RGBA, palette."""

    def save(img: Image.Image, fmt: str) -> bytes:
        buf = io.BytesIO()
        img.save(buf, fmt)
        return buf.getvalue()

    return {
        "/sunflowers/cmyk.jpg": save(Image.new("CMYK", (64, 48), (0, 0, 255, 0)), "JPEG"),
        "/dandelion/gray16.png": save(Image.new("I;16", (40, 40), 50000), "PNG"),
        "/daisy/rgba.png": save(Image.new("RGBA", (32, 32), (255, 0, 0, 0)), "PNG"),
    }


# --- the slice of flower photos ---------------------------------------------------------------


@cache
def flower_slice() -> Path:
    """``<root>/flower_photos/<class>/*.jpg``: PER_CLASS real photos per class, attribution kept."""
    dest = _root() / "flower_photos"
    src = flower_source()
    for c in CLASSES:
        (dest / c).mkdir(parents=True)
        for p in sorted((src / c).glob("*.jpg"))[:PER_CLASS]:
            shutil.copyfile(p, dest / c / p.name)
    if (src / "ATTRIBUTION.txt").is_file():
        shutil.copyfile(src / "ATTRIBUTION.txt", _root() / "ATTRIBUTION.txt")
    return dest


@cache
def dirty_slice() -> Path:
    """The flower slice plus every bad-file kind and the awkward-but-readable ones."""
    dest = _root() / "dirty" / "flower_photos"
    shutil.copytree(flower_slice(), dest)
    example = next(iter(sorted((dest / "roses").glob("*.jpg"))))
    for rp, data in {**bad_files(example), **odd_but_fine_files()}.items():
        (dest / rp.lstrip("/")).write_bytes(data)
    return dest


def make_manifest(repo: Path, work: Path, *, input_name: str = "flower_photos") -> Path:
    """A TULIP_DATUMS manifest with one datum per ``/*/*`` path, laid out as the engine does:
    each datum sees only its own file under ``<datum input>/<repo path>``."""
    lines = []
    for i, f in enumerate(sorted(p for p in repo.glob("*/*"))):
        rel = f.relative_to(repo)
        datum_in = work / "in" / str(i)
        (datum_in / rel).parent.mkdir(parents=True, exist_ok=True)
        if f.is_dir():
            shutil.copytree(f, datum_in / rel)
        else:
            shutil.copyfile(f, datum_in / rel)
        out = work / "out" / str(i)
        control = work / "control" / str(i)
        out.mkdir(parents=True)
        control.mkdir(parents=True)
        lines.append(
            json.dumps(
                {
                    "id": f"d{i}",
                    "inputs": {input_name: str(datum_in)},
                    "out": str(out),
                    "control": str(control),
                }
            )
        )
    manifest = work / "datums.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def merge_outputs(work: Path, dest: Path) -> Path:
    """Union of the datums' outputs, as the engine commits them to the output repo."""
    for out in sorted((work / "out").iterdir()):
        shutil.copytree(out, dest, dirs_exist_ok=True)
    return dest


@cache
def embed_run() -> Path:
    """Run the Embed stage through ``run_batched`` on the dirty slice; returns the work dir."""
    from pipelines.worker import DATUM_MANIFEST_ENV, run_batched
    from training.backbones import KerasEmbedder
    from training.embed import make_processor

    work = _root() / "embed_job"
    manifest = make_manifest(dirty_slice(), work)
    old = os.environ.get(DATUM_MANIFEST_ENV)
    os.environ[DATUM_MANIFEST_ENV] = str(manifest)
    try:
        run_batched(make_processor(KerasEmbedder(ARCH), batch_size=8), batch_size=16)
    finally:
        if old is None:
            del os.environ[DATUM_MANIFEST_ENV]
        else:
            os.environ[DATUM_MANIFEST_ENV] = old
    merge_outputs(work, _root() / "Embed")
    return work


def embeddings_dir() -> Path:
    embed_run()
    return _root() / "Embed"


@cache
def trained_model() -> Path:
    """Train's output for the dirty slice (default options)."""
    from training.train import TrainOptions, train

    out = _root() / "Train"
    train(embeddings_dir(), dirty_slice(), out, TrainOptions(seed=0))
    return out


def fresh_dir(name: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_root()))
    return d
