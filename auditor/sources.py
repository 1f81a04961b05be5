"""Where an audit's embeddings come from: Embed's records when they exist, else computed here.

``tulip audit`` works whether or not the Embed pipeline exists. It reads Embed's output for
the audited commit when there is one, and otherwise embeds the images itself through an
on-disk cache keyed by (architecture, content hash), so a second audit of the same data, or of
a commit that adds 50 images, embeds only what it has not seen.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from pipelines.backend import Backend, LocalBlobs
from pipelines.errors import CommitNotFound, RepoNotFound, TulipError
from pipelines.layout import EMBED, label_of
from pipelines.records import SUFFIX, EmbeddingRecord, EmbeddingSet, collect
from training.backbones import DEFAULT_ARCHITECTURE
from training.embedding_cache import EmbeddingCache

# Files at the top of a data repo that are documentation, not stray data.
DOC_FILES = ("attribution", "readme", "license", "licence", "notice")

Progress = Callable[[int, int], None]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def embed_images(
    files: Iterable[tuple[str, Path]],
    *,
    architecture: str,
    cache: EmbeddingCache | None,
    progress: Progress | None = None,
    batch_size: int = 32,
) -> EmbeddingSet:
    """Records for ``(repo path, local file)`` pairs, embedding only what the cache lacks."""
    from training.embed import to_record  # TensorFlow stays out until embedding is needed

    files = list(files)
    records: list[EmbeddingRecord] = []
    todo: list[tuple[str, Path]] = []
    for repo_path, local in files:
        sha = _sha256(local)
        record = (
            cache.record(architecture, sha, path=repo_path, size=local.stat().st_size)
            if cache
            else None
        )
        if record is None:
            todo.append((repo_path, local))
            continue
        records.append(record)
    done = len(records)
    if progress:
        progress(done, len(files))
    if todo:
        from training.backbones import load_embedder
        from training.embedding import embed_files

        embedder = load_embedder(architecture)
        by_local = {str(local): repo_path for repo_path, local in todo}
        for result in embed_files([p for _, p in todo], embedder, batch_size=batch_size):
            record = to_record(
                result, repo_path=by_local[str(result.path)], architecture=architecture
            )
            records.append(record)
            if cache:
                cache.keep(record)
            done += 1
            if progress:
                progress(done, len(files))
    return collect(records)


def is_doc_file(path: str) -> bool:
    return Path(path).name.lower().startswith(DOC_FILES)


def class_files_in_dir(root: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(images under class folders, stray files at the top) of a flower_photos-style folder."""
    root = Path(root)
    if not root.is_dir():
        raise TulipError(f"{root} is not a directory of class folders")
    images, stray = [], []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = "/" + p.relative_to(root).as_posix()
        if label_of(rel):
            images.append((rel, p))
        elif not is_doc_file(rel):
            stray.append((rel, p))
    return images, stray


def stray_records(stray: Iterable[tuple[str, Path | int]]) -> list[EmbeddingRecord]:
    """Files outside any class folder: no label, so they cannot be learned from."""
    out = []
    for rel, local in stray:
        size = local.stat().st_size if isinstance(local, Path) else int(local)
        sha = _sha256(local) if isinstance(local, Path) else ""
        out.append(
            EmbeddingRecord(
                path=rel,
                label="",
                sha256=sha,
                size=size,
                architecture="",
                status="unreadable",
                reason="outside any class folder (an image's label is its folder)",
            )
        )
    return out


def with_stray(data: EmbeddingSet, stray: list[EmbeddingRecord]) -> EmbeddingSet:
    data.unreadable = sorted([*data.unreadable, *stray], key=lambda r: r.path)
    return data


# -- from a backend -------------------------------------------------------------------------


def embed_output_for(
    backend: Backend, repo: str, commit_id: str, *, pipeline: str = EMBED
) -> str | None:
    """The Embed commit computed from exactly this data commit, if there is one.

    A data commit and what the pipelines computed from it share one ID (a commit set); data
    committed before the pipeline existed was embedded in the pipeline's own commit set, so
    the commits that name it in their provenance are asked next (the newest finished one).
    """
    try:
        out = backend.inspect_commit(pipeline, commit_id)
    except (CommitNotFound, RepoNotFound):
        out = None
    if (
        out is not None
        and out.finished is not None
        and not out.error
        and any(p.repo == repo and p.id == commit_id for p in out.direct_provenance)
    ):
        return out.id
    try:
        later = [r for r in backend.subvenance(repo, commit_id) if r.repo == pipeline]
    except (CommitNotFound, RepoNotFound):
        return None
    for ref in reversed(later):
        c = backend.inspect_commit(ref.repo, ref.id)
        if c.finished is not None and not c.error:
            return c.id
    return None


def records_from_backend(backend: Backend, repo: str, commit_id: str) -> EmbeddingSet:
    """Embed's records of a commit; the vectors stream into a memory map (see
    :func:`collect_mapped`), so a million records never sit in memory as objects and again
    as a matrix."""
    return collect_mapped(
        EmbeddingRecord.from_json(backend.get_file(repo, commit_id, f.path))
        for f in backend.walk_files(repo, commit_id)
        if f.path.endswith(SUFFIX)
    )


#: below this many readable records, collect() in memory is as cheap and simpler
MAP_FROM = 20_000
_MAP_CHUNK = 8192


def collect_mapped(records: Iterable[EmbeddingRecord], *, map_from: int = MAP_FROM) -> EmbeddingSet:
    """What :func:`pipelines.records.collect` gives, with the vectors of a large set written
    chunk by chunk to a float32 memory map in a scratch folder, removed with the array.

    Memory: the paths, labels and hashes, one chunk of vectors, and the map's pages the OS
    keeps cached (reclaimable), not N x d floats twice."""
    head: list[EmbeddingRecord] = []
    it = iter(records)
    for r in it:
        head.append(r)
        if len(head) >= map_from:
            break
    else:
        return collect(head)
    import shutil
    import weakref

    scratch = Path(tempfile.mkdtemp(prefix="tulip-embeddings-"))
    raw = scratch / "vectors.f32"
    meta: list[tuple[str, str, str, int]] = []  # (path, label, sha256, row in the file)
    bad: list[EmbeddingRecord] = []
    archs: set[str] = set()
    dim = None
    buffer: list[np.ndarray] = []
    with open(raw, "wb") as out:

        def flush() -> None:
            if buffer:
                out.write(np.stack(buffer).astype("<f4").tobytes())
                buffer.clear()

        for r in _chain(head, it):
            if r.status != "ok" or r.embedding is None:
                bad.append(r)
                continue
            if dim is None:
                dim = r.embedding.shape[0]
            elif r.embedding.shape[0] != dim:
                raise ValueError(f"{r.path} has a {r.embedding.shape[0]}-d embedding, others {dim}")
            archs.add(r.architecture)
            meta.append((r.path, r.label, r.sha256, len(meta)))
            buffer.append(r.embedding)
            if len(buffer) >= _MAP_CHUNK:
                flush()
        flush()
    if len(archs) > 1:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ValueError(f"embeddings from several architectures are mixed: {sorted(archs)}")
    stored = np.memmap(raw, dtype="<f4", mode="r", shape=(len(meta), dim or 0))
    meta.sort(key=lambda m: m[0])
    order = np.array([m[3] for m in meta], dtype=np.int64)
    if (order != np.arange(len(order))).any():
        ordered = scratch / "sorted.f32"
        target = np.memmap(ordered, dtype="<f4", mode="w+", shape=stored.shape)
        for start in range(0, len(order), _MAP_CHUNK * 8):
            rows = order[start : start + _MAP_CHUNK * 8]
            sorted_rows = np.sort(rows)
            target[start : start + len(rows)] = stored[sorted_rows][
                np.searchsorted(sorted_rows, rows)
            ]
        target.flush()
        del target, stored
        raw.unlink()
        stored = np.memmap(ordered, dtype="<f4", mode="r", shape=(len(meta), dim or 0))
    weakref.finalize(stored, shutil.rmtree, scratch, True)
    bad.sort(key=lambda r: r.path)
    return EmbeddingSet(
        paths=[m[0] for m in meta],
        labels=[m[1] for m in meta],
        sha256=[m[2] for m in meta],
        vectors=stored,
        architecture=archs.pop() if archs else None,
        unreadable=bad,
    )


def _chain(head: list, rest) -> Iterable:
    yield from head
    yield from rest


def local_files(
    backend: Backend, repo: str, commit_id: str, workdir: Path
) -> list[tuple[str, Path]]:
    """Every file of a commit as a local path: the stored blob when the backend has one on
    disk (no copy), else a copy under ``workdir``."""
    blobs = backend if isinstance(backend, LocalBlobs) else None
    out = []
    for f in backend.walk_files(repo, commit_id):
        if blobs is not None:
            out.append((f.path, blobs.blob_path(repo, commit_id, f.path)))
        else:
            local = workdir / f.path.lstrip("/")
            backend.copy_out(repo, commit_id, f.path, local)
            out.append((f.path, local))
    return out


def embeddings_for_commit(
    backend: Backend,
    repo: str,
    commit_id: str,
    *,
    architecture: str | None,
    cache: EmbeddingCache | None,
    progress: Progress | None = None,
) -> tuple[EmbeddingSet, str]:
    """A data commit's embeddings, and where they came from ("Embed@<id>" or "computed")."""
    embed_commit = embed_output_for(backend, repo, commit_id)
    if embed_commit is not None:
        data = records_from_backend(backend, EMBED, embed_commit)
        if architecture is None or data.architecture in (None, architecture):
            files = {f.path for f in backend.walk_files(repo, commit_id)}
            stray = [(p, 0) for p in sorted(files) if not label_of(p) and not is_doc_file(p)]
            return with_stray(data, stray_records(stray)), f"{EMBED}@{embed_commit}"
    arch = architecture or DEFAULT_ARCHITECTURE
    with tempfile.TemporaryDirectory(prefix="tulip-audit-") as tmp:
        files = local_files(backend, repo, commit_id, Path(tmp))
        images = [(p, local) for p, local in files if label_of(p)]
        stray = [(p, local) for p, local in files if not label_of(p) and not is_doc_file(p)]
        data = embed_images(images, architecture=arch, cache=cache, progress=progress)
        return with_stray(data, stray_records(stray)), "computed"
