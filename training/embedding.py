"""Embed many image files quickly and in constant memory.

Answers "what is the embedding of each of these files, or why has it none?" at close to the
backbone's raw speed. Files are read, hashed and decoded by a thread pool (Pillow releases
the GIL while it decodes and resizes) while the backbone runs on the previous batch. A
bounded queue of batches keeps at most ``(prefetch + 1) * batch_size`` decoded images alive,
so memory does not grow with the number of files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.backbones import Embedder
from training.images import DEFAULT_MAX_PIXELS, ImageInfo, UnreadableImage, decode_with_info

log = logging.getLogger(__name__)


@dataclass
class FileEmbedding:
    """The outcome for one file: an embedding, or the reason there is none."""

    path: Path
    sha256: str
    size: int
    info: ImageInfo | None = None
    embedding: np.ndarray | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.embedding is not None


@dataclass
class _Decoded:
    path: Path
    sha256: str
    size: int
    info: ImageInfo | None
    pixels: np.ndarray | None
    reason: str | None


def _read_and_decode(path: Path, *, image_size: tuple[int, int], max_pixels: int) -> _Decoded:
    try:
        data = path.read_bytes()
    except OSError as e:
        return _Decoded(path, "", 0, None, None, f"cannot read file: {e.strerror or e}")
    digest = hashlib.sha256(data).hexdigest()
    try:
        pixels, info = decode_with_info(data, size=image_size, max_pixels=max_pixels)
    except UnreadableImage as e:
        return _Decoded(path, digest, len(data), None, None, e.reason)
    except Exception as e:  # Pillow can raise nearly anything on hostile input
        return _Decoded(
            path, digest, len(data), None, None, f"corrupt image: {type(e).__name__}: {e}"
        )
    return _Decoded(path, digest, len(data), info, pixels, None)


_DONE = object()


def embed_files(
    paths: Iterable[Path],
    embedder: Embedder,
    *,
    batch_size: int = 32,
    workers: int | None = None,
    prefetch: int = 2,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[FileEmbedding]:
    """Yield one ``FileEmbedding`` per path, in the order given.

    ``workers`` decode threads (default: the CPU count) fill up to ``prefetch`` batches ahead
    of the one the backbone is running on.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    workers = workers or max(1, os.cpu_count() or 1)
    batches: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tulip-decode")

    def produce() -> None:
        try:
            batch: list[Future] = []
            for p in paths:
                if stop.is_set():
                    return
                batch.append(
                    pool.submit(
                        _read_and_decode,
                        Path(p),
                        image_size=embedder.image_size,
                        max_pixels=max_pixels,
                    )
                )
                if len(batch) >= batch_size:
                    _put(batches, batch, stop)
                    batch = []
            if batch:
                _put(batches, batch, stop)
        except BaseException as e:  # surfaced in the consumer
            _put(batches, e, stop)
        finally:
            _put(batches, _DONE, stop)

    producer = threading.Thread(target=produce, name="tulip-decode-feeder", daemon=True)
    producer.start()
    try:
        while True:
            item = batches.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            decoded = [f.result() for f in item]
            good = [d for d in decoded if d.pixels is not None]
            t0 = time.perf_counter()
            vectors = embedder.embed(np.stack([d.pixels for d in good])) if good else None
            log.debug("embedded %d images in %.3fs", len(good), time.perf_counter() - t0)
            row = 0
            for d in decoded:
                if d.pixels is not None:
                    assert vectors is not None
                    yield FileEmbedding(d.path, d.sha256, d.size, d.info, vectors[row], None)
                    row += 1
                else:
                    yield FileEmbedding(d.path, d.sha256, d.size, d.info, None, d.reason)
    finally:
        stop.set()
        while True:  # unblock the producer if it waits on a full queue
            try:
                batches.get_nowait()
            except queue.Empty:
                break
        producer.join(timeout=5)
        pool.shutdown(wait=True, cancel_futures=True)


def _put(q: queue.Queue, item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue
