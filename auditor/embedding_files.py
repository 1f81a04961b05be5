"""Embeddings made elsewhere, read from a file: ``.npz`` (arrays ``paths``, ``labels``,
``embeddings``) or Parquet (columns ``path``, ``label``, ``embedding``).

This is the input of ``tulip audit --embeddings FILE``, for teams whose own backbone (CLIP,
EfficientNet...) already embedded their images, as cleanlab users hand ``find_label_issues``
their ``labels`` and ``pred_probs``. The vectors stream from the file in chunks into a
float32 memory map in a scratch folder, so a million 1024-d rows never sit in memory twice;
paths and labels are read whole (they are small).

Optional: ``sha256`` (content hashes, for exact copies; without them a path is its own
identity) and ``architecture`` (npz array, or Parquet schema metadata) naming the backbone.

Every problem is an :class:`InvalidEmbeddings` that names the file and what is wrong with it
(a missing array or column, a bad shape, NaNs and where, one class only, duplicate paths),
so the CLI exits 2 with that message.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.errors import TulipError
from pipelines.records import EmbeddingSet

NPZ_ARRAYS = ("paths", "labels", "embeddings")
PARQUET_COLUMNS = ("path", "label", "embedding")
_CHUNK = 65_536


class InvalidEmbeddings(TulipError):
    """An embeddings file that cannot be audited; the message names the file and the problem."""


@dataclass
class EmbeddingFile:
    """An embeddings file read into an EmbeddingSet whose vectors are a memory map."""

    data: EmbeddingSet
    architecture: str | None  # as the file names it (npz ``architecture``, Parquet metadata)


def read_embeddings(path: Path, scratch: Path, *, name: str = "embeddings") -> EmbeddingFile:
    """Read and validate ``path``; the vectors go to a memory map under ``scratch``."""
    path = Path(path)
    if not path.is_file():
        raise InvalidEmbeddings(f"{name} file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        paths, labels, vectors, arch, hashes = _read_npz(path, scratch)
    elif suffix in (".parquet", ".pq"):
        paths, labels, vectors, arch, hashes = _read_parquet(path, scratch)
    else:
        raise InvalidEmbeddings(
            f"{name} file {path} is neither .npz (arrays {', '.join(NPZ_ARRAYS)}) nor "
            f".parquet (columns {', '.join(PARQUET_COLUMNS)})"
        )
    _validate(path, paths, labels, vectors)
    if hashes is None:
        # without content hashes, identity is the path: copies are found by similarity alone
        hashes = [f"path:{p}" for p in paths]
    elif len(hashes) != len(paths):
        raise InvalidEmbeddings(f"{path}: sha256 has {len(hashes)} entries, paths {len(paths)}")
    order = np.argsort(np.asarray(paths, dtype=object), kind="stable")
    if (order != np.arange(len(order))).any():
        # the audit's documents list files in path order; reorder the map in chunks
        vectors = _reordered(vectors, order, scratch / "sorted.f32")
        paths = [paths[i] for i in order]
        labels = [labels[i] for i in order]
        hashes = [hashes[i] for i in order]
    data = EmbeddingSet(
        paths=paths,
        labels=labels,
        sha256=hashes,
        vectors=vectors,
        architecture=arch,
    )
    return EmbeddingFile(data=data, architecture=arch)


def _strings(values, what: str, path: Path) -> list[str]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidEmbeddings(f"{path}: {what} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "US" and not (
        arr.dtype == object and all(isinstance(v, str) for v in arr)
    ):
        raise InvalidEmbeddings(f"{path}: {what} must hold strings, got dtype {arr.dtype}")
    return [v.decode() if isinstance(v, bytes) else str(v) for v in arr.tolist()]


def _read_npz(path: Path, scratch: Path):
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise InvalidEmbeddings(f"{path} is not a valid .npz file ({e})") from None
    with archive:
        members = {Path(m).stem: m for m in archive.namelist() if m.endswith(".npy")}
        missing = [a for a in NPZ_ARRAYS if a not in members]
        if missing:
            raise InvalidEmbeddings(
                f"{path} has no array {' or '.join(repr(m) for m in missing)}; it has "
                f"{sorted(members) or 'no arrays'} (need {', '.join(NPZ_ARRAYS)})"
            )
        small = {}
        for key in ("paths", "labels", "architecture", "sha256"):
            if key in members:
                with archive.open(members[key]) as f:
                    try:
                        small[key] = np.lib.format.read_array(f, allow_pickle=False)
                    except ValueError as e:
                        raise InvalidEmbeddings(
                            f"{path}: array {key!r} cannot be read without pickle ({e}); store "
                            "it as a string array (np.array(values, dtype=str))"
                        ) from None
        paths = _strings(small["paths"], "paths", path)
        labels = _strings(small["labels"], "labels", path)
        arch = None
        if "architecture" in small and small["architecture"].size == 1:
            arch = str(small["architecture"].reshape(-1)[0]) or None
        hashes = _strings(small["sha256"], "sha256", path) if "sha256" in small else None
        with archive.open(members["embeddings"]) as f:
            vectors = _stream_npy(f, path, scratch / "vectors.f32", rows=len(paths))
    return paths, labels, vectors, arch, hashes


def _stream_npy(f, path: Path, out: Path, *, rows: int) -> np.ndarray:
    """The (n, d) array of an .npy stream, copied chunk by chunk into a float32 memory map."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise InvalidEmbeddings(f"{path}: embeddings use .npy format {version}; save with numpy")
    if len(shape) != 2:
        raise InvalidEmbeddings(
            f"{path}: embeddings must be 2-D (images, dimensions), got shape {shape}"
        )
    if dtype.kind not in "fiu" or dtype.hasobject:
        raise InvalidEmbeddings(f"{path}: embeddings must be numbers, got dtype {dtype}")
    if fortran:
        raise InvalidEmbeddings(f"{path}: embeddings are stored column-major; save them C-ordered")
    n, d = shape
    if n != rows:
        raise InvalidEmbeddings(
            f"{path}: embeddings has {n} rows but paths has {rows} entries; one row per path"
        )
    vectors = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, d))
    step = max(1, _CHUNK * 1024 // max(d, 1))
    for start in range(0, n, step):
        count = min(step, n - start)
        raw = f.read(count * d * dtype.itemsize)
        if len(raw) != count * d * dtype.itemsize:
            raise InvalidEmbeddings(f"{path}: embeddings is truncated at row {start}")
        vectors[start : start + count] = np.frombuffer(raw, dtype=dtype).reshape(count, d)
    vectors.flush()
    return np.load(out, mmap_mode="r")


def _read_parquet(path: Path, scratch: Path):
    import pyarrow as pa
    import pyarrow.compute
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InvalidEmbeddings(f"{path} is not a valid Parquet file ({e})") from None
    names = pf.schema_arrow.names
    missing = [c for c in PARQUET_COLUMNS if c not in names]
    if missing:
        raise InvalidEmbeddings(
            f"{path} has no column {' or '.join(repr(m) for m in missing)}; it has {names} "
            f"(need {', '.join(PARQUET_COLUMNS)})"
        )
    kind = pf.schema_arrow.field("embedding").type
    if not (
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    ):
        raise InvalidEmbeddings(
            f"{path}: column 'embedding' must be a list of numbers per row, got {kind}"
        )
    n = pf.metadata.num_rows
    meta = pf.schema_arrow.metadata or {}
    arch = meta.get(b"architecture", b"").decode() or None
    paths: list[str] = []
    labels: list[str] = []
    has_hashes = "sha256" in names
    hashes: list[str] | None = [] if has_hashes else None
    vectors = None
    row = 0
    columns = [*PARQUET_COLUMNS, *(["sha256"] if has_hashes else [])]
    for batch in pf.iter_batches(batch_size=_CHUNK // 4, columns=columns):
        column = batch.column("embedding")
        if column.null_count:
            first = row + int(np.flatnonzero(np.asarray(column.is_null()))[0])
            raise InvalidEmbeddings(f"{path}: row {first} has no embedding")
        lengths = np.asarray(pa.compute.list_value_length(column), dtype=np.int64)
        flat = np.asarray(column.flatten(), dtype=np.float32)
        d = int(np.bincount(lengths).argmax()) if len(lengths) else 0
        if len(lengths) and (lengths != d).any():
            bad = row + int(np.flatnonzero(lengths != d)[0])
            raise InvalidEmbeddings(
                f"{path}: embeddings differ in length (row {bad} has {int(lengths[bad - row])} "
                f"values, others {d}); every row needs the same dimensions"
            )
        if vectors is None:
            if d == 0:
                raise InvalidEmbeddings(f"{path}: embeddings are empty")
            vectors = np.lib.format.open_memmap(
                scratch / "vectors.f32", mode="w+", dtype=np.float32, shape=(n, d)
            )
        elif d != vectors.shape[1]:
            raise InvalidEmbeddings(
                f"{path}: embeddings differ in length (row {row} has {d} values, the first "
                f"rows {vectors.shape[1]}); every row needs the same dimensions"
            )
        vectors[row : row + len(column)] = flat.reshape(len(column), d)
        paths += _strings(batch.column("path").to_pylist(), "path", path)
        labels += _strings(batch.column("label").to_pylist(), "label", path)
        if hashes is not None:
            hashes += _strings(batch.column("sha256").to_pylist(), "sha256", path)
        row += len(column)
    if vectors is None:
        raise InvalidEmbeddings(f"{path} holds no rows")
    vectors.flush()
    return paths, labels, np.load(scratch / "vectors.f32", mmap_mode="r"), arch, hashes


def _validate(path: Path, paths: list[str], labels: list[str], vectors: np.ndarray) -> None:
    if len(paths) == 0:
        raise InvalidEmbeddings(f"{path} holds no rows")
    if len(labels) != len(paths):
        raise InvalidEmbeddings(
            f"{path}: labels has {len(labels)} entries but paths has {len(paths)}"
        )
    if vectors.shape[1] < 2:
        raise InvalidEmbeddings(f"{path}: embeddings have {vectors.shape[1]} dimension(s)")
    for start in range(0, len(vectors), _CHUNK):
        bad = ~np.isfinite(vectors[start : start + _CHUNK]).all(axis=1)
        if bad.any():
            rows = start + np.flatnonzero(bad)
            total = sum(
                int((~np.isfinite(vectors[s : s + _CHUNK]).all(axis=1)).sum())
                for s in range(start, len(vectors), _CHUNK)
            )
            raise InvalidEmbeddings(
                f"{path}: {total} embeddings hold NaN or infinite values, the first at row "
                f"{int(rows[0])} ({paths[int(rows[0])]}); drop or re-embed those images"
            )
    empty = [i for i, v in enumerate(labels) if not v]
    if empty:
        raise InvalidEmbeddings(
            f"{path}: {len(empty)} rows have an empty label, the first at row {empty[0]} "
            f"({paths[empty[0]]})"
        )
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise InvalidEmbeddings(
            f"{path}: every row has the label {classes[0]!r}; an audit compares classes, so "
            "it needs at least two"
        )
    seen: dict[str, int] = {}
    dupes = []
    for i, p in enumerate(paths):
        if p in seen:
            dupes.append((seen[p], i, p))
        else:
            seen[p] = i
    if dupes:
        first = ", ".join(f"{p!r} (rows {a} and {b})" for a, b, p in dupes[:3])
        raise InvalidEmbeddings(
            f"{path}: {len(dupes)} duplicate paths, e.g. {first}; each path must name one image"
        )


def _reordered(vectors: np.ndarray, order: np.ndarray, out: Path) -> np.ndarray:
    sorted_map = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=vectors.shape)
    for start in range(0, len(order), _CHUNK):
        rows = order[start : start + _CHUNK]
        sorted_map[start : start + len(rows)] = vectors[np.sort(rows)][np.argsort(np.argsort(rows))]
    sorted_map.flush()
    return np.load(out, mmap_mode="r")
