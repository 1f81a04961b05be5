"""The 600 real flower photos as mobilenet_1.0_224 embeddings, cached in bench/out/.

Benchmarks of the auditor need real embeddings but must not depend on ``training/`` (built in
parallel), so this computes them with keras directly: Pillow RGB, EXIF-transposed, resized
bilinear to 224x224 with no crop, normalised (x-127.5)/127.5, MobileNet(alpha=1.0,
include_top=False, pooling='avg', weights='imagenet'). The cache is an .npz keyed by
path + sha256, so a changed photo is re-embedded and everything else is instant.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data/flower_photos")
OUT = Path(__file__).resolve().parent / "out"


AUGMENTATIONS = ("jpeg_q40", "half_size", "crop_90", "brighter_20", "mirror")


def _augment(im, how: str):
    """A copy of a photo as people make them: re-saved, resized, cropped, brightened, mirrored."""
    import io

    from PIL import Image, ImageEnhance, ImageOps

    if how == "jpeg_q40":
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=40)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if how == "half_size":
        return im.resize((max(1, im.width // 2), max(1, im.height // 2)), Image.BILINEAR)
    if how == "crop_90":
        dx, dy = im.width // 20, im.height // 20
        return im.crop((dx, dy, im.width - dx, im.height - dy))
    if how == "brighter_20":
        return ImageEnhance.Brightness(im).enhance(1.2)
    if how == "mirror":
        return ImageOps.mirror(im)
    raise ValueError(f"unknown augmentation {how!r}; known: {AUGMENTATIONS}")


def _decode(path: Path, augmentation: str | None = None) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if augmentation:
            im = _augment(im, augmentation)
        im = im.resize((224, 224), Image.BILINEAR)
        return (np.asarray(im, dtype=np.float32) - 127.5) / 127.5


def _embed(items: list[tuple[Path, str | None]], alpha: float = 1.0) -> np.ndarray:
    import keras

    model = keras.applications.MobileNet(
        alpha=alpha, include_top=False, pooling="avg", weights="imagenet", input_shape=(224, 224, 3)
    )
    out = []
    for i in range(0, len(items), 32):
        batch = np.stack([_decode(p, a) for p, a in items[i : i + 32]])
        out.append(np.asarray(model.predict(batch, verbose=0), dtype=np.float32))
    return np.concatenate(out)


def _cached(
    keys: list[tuple[str, str]], items: list[tuple[Path, str | None]], cache: Path, alpha: float
):
    """Vectors for keys (path, sha256[+augmentation]), embedding only the ones not cached."""
    cached: dict[tuple[str, str], np.ndarray] = {}
    if cache.exists():
        z = np.load(cache)
        for p, s, v in zip(z["paths"], z["sha256"], z["vectors"], strict=True):
            cached[(str(p), str(s))] = v
    missing = [i for i, key in enumerate(keys) if key not in cached]
    if missing:
        vecs = _embed([items[i] for i in missing], alpha)
        for i, v in zip(missing, vecs, strict=True):
            cached[keys[i]] = v
        cache.parent.mkdir(parents=True, exist_ok=True)
        ordered = sorted(cached)
        np.savez(
            cache,
            paths=np.array([k[0] for k in ordered]),
            sha256=np.array([k[1] for k in ordered]),
            vectors=np.stack([cached[k] for k in ordered]).astype(np.float32),
        )
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def _photos(data: Path) -> tuple[list[Path], list[str], list[str]]:
    files = sorted(p for p in data.glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    rel = ["/" + p.relative_to(data).as_posix() for p in files]
    shas = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
    return files, rel, shas


def _cache(kind: str, alpha: float) -> Path:
    return OUT / f"{kind}_mobilenet_{alpha}_224.npz"


def load(
    data: Path = DATA, *, alpha: float = 1.0
) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """(paths like '/daisy/x.jpg', labels, sha256, vectors) for every photo in data, embedded
    by MobileNet v1 at width alpha (1024-d at 1.0)."""
    files, rel, shas = _photos(data)
    vectors = _cached(
        list(zip(rel, shas, strict=True)),
        [(f, None) for f in files],
        _cache("embeddings", alpha),
        alpha,
    )
    labels = [p.strip("/").split("/")[0] for p in rel]
    return rel, labels, shas, vectors


def load_augmented(
    data: Path = DATA, *, per_class: int = 12, alpha: float = 1.0
) -> tuple[list[str], list[str], np.ndarray]:
    """Edited copies of the first per_class photos of each class: (source path, augmentation,
    vectors), len(AUGMENTATIONS) copies per photo. Used to calibrate near-duplicate detection."""
    files, rel, shas = _photos(data)
    chosen: list[int] = []
    for label in sorted({r.split("/")[1] for r in rel}):
        chosen += [i for i, r in enumerate(rel) if r.split("/")[1] == label][:per_class]
    keys, items, sources, augs = [], [], [], []
    for i in chosen:
        for a in AUGMENTATIONS:
            keys.append((rel[i], f"{shas[i]}+{a}"))
            items.append((files[i], a))
            sources.append(rel[i])
            augs.append(a)
    return sources, augs, _cached(keys, items, _cache("augmented", alpha), alpha)


if __name__ == "__main__":
    import time

    t = time.perf_counter()
    paths, labels, shas, vectors = load()
    print(f"{len(paths)} embeddings {vectors.shape} in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    sources, augs, aug_vectors = load_augmented()
    print(f"{len(sources)} edited copies {aug_vectors.shape} in {time.perf_counter() - t:.1f} s")
