"""The Embed stage: one embedding record per image, one datum per image.

Run by ``pipelines/embed.json`` with ``datumBatching`` so that one process embeds every datum
of a job, decoding the next images while the backbone works on the current ones::

    python -m training.embed [--architecture A | --embedder PATH.tflite] [--batch-size N]

For the input file ``/<label>/<name>`` it writes ``<datum out>/<label>/<name>.json``, an
``pipelines.records.EmbeddingRecord``. A file that is not a readable image gets a record
with status ``unreadable`` and the reason; it never fails its datum.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.layout import EMBED, label_of
from pipelines.records import EmbeddingRecord, record_path
from pipelines.worker import Datum, run_batched
from training.backbones import Embedder, default_architecture, load_embedder
from training.embedding import FileEmbedding, embed_files
from training.runtime import stage_main

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
    seconds: float = 0.0


def make_processor(
    embedder: Embedder,
    *,
    batch_size: int = 32,
    workers: int | None = None,
    stats: EmbedStats | None = None,
    progress: Callable[[str], None] | None = None,
) -> Callable[[list[Datum]], None]:
    """The ``process`` function ``run_batched`` calls with each list of datums."""
    stats = stats if stats is not None else EmbedStats()

    def process(datums: list[Datum]) -> None:
        t0 = time.perf_counter()
        sources = list(_sources(datums))
        by_path = {s.path: s for s in sources}
        n = bad = 0
        for result in embed_files(
            (s.path for s in sources), embedder, batch_size=batch_size, workers=workers
        ):
            source = by_path[result.path]
            record = to_record(result, repo_path=source.repo_path, architecture=embedder.name)
            try:
                write_record(record, source.datum.out)
            except OSError as e:
                source.datum.fail(f"cannot write the record of {source.repo_path}: {e}")
                continue
            n += 1
            if not result.ok:
                bad += 1
                source.datum.log(f"unreadable {source.repo_path}: {result.reason}")
        dt = time.perf_counter() - t0
        stats.images += n
        stats.unreadable += bad
        stats.seconds += dt
        if progress:
            progress(
                f"embedded {n} files ({bad} unreadable) from {len(datums)} datums in {dt:.1f}s; "
                f"{stats.images} so far, {stats.images / max(stats.seconds, 1e-9):.1f} images/s"
            )

    return process


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
        embedder = load_embedder(args.architecture or default_architecture(), tflite=args.embedder)
        stats = EmbedStats()
        process = make_processor(
            embedder,
            batch_size=args.batch_size,
            workers=args.workers,
            stats=stats,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
        )
        run_batched(process, batch_size=max(args.datums_per_call, args.batch_size))
        return (
            f"Embed done: {stats.images} files with {embedder.name}, {stats.unreadable} unreadable"
        )

    return stage_main(EMBED, body)


if __name__ == "__main__":
    sys.exit(main())
