"""The Embed stage: one embedding record per image, one datum per image.

Run by ``pipelines/embed.json`` with ``datumBatching`` so that one process embeds every datum
of a job, decoding the next images while the backbone works on the current ones::

    python -m training.embed [--architecture A | --embedder PATH.tflite] [--batch-size N]

For the input file ``/<label>/<name>`` it writes ``<datum out>/<label>/<name>.json``, an
``pipelines.records.EmbeddingRecord``. A file that is not a readable image gets a record
with status ``unreadable`` and the reason; it never fails its datum.

A datum's hash covers its path, so a file that only moved (a relabel, a class renamed by a
review) is a new datum; its content is not new. Records are kept by content hash in the
embedding cache (``training.embedding_cache``: ``$TULIP_CACHE``, else the store's
``cache/embeddings``), and a file whose content is there is written from it: a rename embeds
no image again, and the backbone is not even loaded when nothing is new.
``TULIP_EMBED_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.layout import EMBED, label_of
from pipelines.records import EmbeddingRecord, record_path
from pipelines.worker import STORE_ROOT_ENV, Datum, run_batched
from training.backbones import Embedder, default_architecture, load_embedder, parse_architecture
from training.embedding import FileEmbedding, embed_files
from training.embedding_cache import EmbeddingCache, default_cache_dir
from training.runtime import stage_main

CACHE_SWITCH_ENV = "TULIP_EMBED_CACHE"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Source:
    datum: Datum
    path: Path
    repo_path: str


def _sources(datums: list[Datum]) -> Iterator[_Source]:
    for datum in datums:
        for name in sorted(datum.inputs):
            for path in datum.files(name):
                yield _Source(datum, path, datum.relpath(path, name))


def to_record(result: FileEmbedding, *, repo_path: str, architecture: str) -> EmbeddingRecord:
    """The record Embed writes for one file's outcome."""
    return EmbeddingRecord(
        path=repo_path,
        label=label_of(repo_path),
        sha256=result.sha256,
        size=result.size,
        architecture=architecture,
        status="ok" if result.ok else "unreadable",
        reason=result.reason,
        image=result.info.to_dict() if result.info else None,
        embedding=result.embedding,
    )


def write_record(record: EmbeddingRecord, out: Path) -> Path:
    """Write atomically, so a killed job never leaves half a record behind."""
    target = out / record_path(record.path).lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(record.to_json(), encoding="utf-8")
    tmp.replace(target)
    return target


@dataclass
class EmbedStats:
    images: int = 0
    unreadable: int = 0
    cached: int = 0  # written from the embedding cache: content already embedded
    seconds: float = 0.0

    @property
    def embedded(self) -> int:
        return self.images - self.cached


class LazyEmbedder:
    """An embedder built on first use, so that a job whose every file is in the cache never
    loads the backbone (TensorFlow alone takes seconds to import)."""

    def __init__(self, name: str, load: Callable[[], Embedder]):
        self.name = name
        self._load = load
        self._embedder: Embedder | None = None

    @property
    def loaded(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._load()
        return self._embedder

    @property
    def image_size(self) -> tuple[int, int]:
        return self.loaded.image_size

    @property
    def dim(self) -> int:
        return self.loaded.dim

    def embed(self, pixels):
        return self.loaded.embed(pixels)


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def make_processor(
    embedder: Embedder,
    *,
    batch_size: int = 32,
    workers: int | None = None,
    stats: EmbedStats | None = None,
    progress: Callable[[str], None] | None = None,
    cache: EmbeddingCache | None = None,
) -> Callable[[list[Datum]], None]:
    """The ``process`` function ``run_batched`` calls with each list of datums. With a
    ``cache``, files whose content it holds are written from it and not embedded again."""
    stats = stats if stats is not None else EmbedStats()

    def write(record: EmbeddingRecord, source: _Source) -> bool:
        try:
            write_record(record, source.datum.out)
        except OSError as e:
            source.datum.fail(f"cannot write the record of {source.repo_path}: {e}")
            return False
        if record.status != "ok":
            source.datum.log(f"unreadable {source.repo_path}: {record.reason}")
        return True

    def process(datums: list[Datum]) -> None:
        t0 = time.perf_counter()
        sources = list(_sources(datums))
        todo = sources
        n = bad = hits = 0
        if cache is not None:
            todo = []
            for source in sources:
                sha, size = _sha256(source.path)
                record = cache.record(embedder.name, sha, path=source.repo_path, size=size)
                if record is None:
                    todo.append(source)
                elif write(record, source):
                    n, hits, bad = n + 1, hits + 1, bad + (record.status != "ok")
        by_path = {s.path: s for s in todo}
        if todo:
            for result in embed_files(
                (s.path for s in todo), embedder, batch_size=batch_size, workers=workers
            ):
                source = by_path[result.path]
                record = to_record(result, repo_path=source.repo_path, architecture=embedder.name)
                if not write(record, source):
                    continue
                if cache is not None:
                    cache.keep(record)
                n, bad = n + 1, bad + (not result.ok)
        dt = time.perf_counter() - t0
        stats.images += n
        stats.unreadable += bad
        stats.cached += hits
        stats.seconds += dt
        if progress:
            progress(
                f"embedded {n - hits} files and {hits} from the cache ({bad} unreadable) from "
                f"{len(datums)} datums in {dt:.1f}s; {stats.images} so far, "
                f"{stats.images / max(stats.seconds, 1e-9):.1f} images/s"
            )

    return process


def stage_cache() -> EmbeddingCache | None:
    """The embedding cache the stage uses: the store's (``$TULIP_ROOT`` locally), or
    ``$TULIP_CACHE``; none with ``TULIP_EMBED_CACHE=0``."""
    if os.environ.get(CACHE_SWITCH_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    return EmbeddingCache(default_cache_dir(os.environ.get(STORE_ROOT_ENV) or None))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.embed", description=__doc__.split("\n")[0])
    p.add_argument(
        "--architecture",
        default=None,
        help="backbone name (default: $ARCHITECTURE, else mobilenet_1.0_224)",
    )
    p.add_argument("--embedder", default=None, help="a .tflite feature extractor to use instead")
    p.add_argument("--batch-size", type=int, default=32, help="images per backbone call")
    p.add_argument(
        "--datums-per-call",
        type=int,
        default=256,
        help="datums handed to one pipelined decode/embed pass (more = less pipeline drain)",
    )
    p.add_argument("--workers", type=int, default=None, help="decode threads (default: CPUs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> str:
        if args.embedder:  # a .tflite file: no name to key a cache by (its stem is not unique)
            embedder, cache = load_embedder(tflite=args.embedder), None
        else:
            arch = parse_architecture(args.architecture or default_architecture()).name
            embedder, cache = LazyEmbedder(arch, lambda: load_embedder(arch)), stage_cache()
        stats = EmbedStats()
        process = make_processor(
            embedder,
            batch_size=args.batch_size,
            workers=args.workers,
            stats=stats,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
            cache=cache,
        )
        run_batched(process, batch_size=max(args.datums_per_call, args.batch_size))
        return (
            f"Embed done: {stats.images} files with {embedder.name} ({stats.embedded} embedded, "
            f"{stats.cached} from the content cache), {stats.unreadable} unreadable"
        )

    return stage_main(EMBED, body)


if __name__ == "__main__":
    sys.exit(main())
