"""Content-addressed blobs: each distinct content is stored once, under its sha256.

A blob is written to a temporary file first and renamed into place, so a reader never sees a
half-written blob, and a crash leaves at most a stray temporary file (``fsck`` reports it,
``gc`` removes it). Blobs are read-only once stored.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SourceChanged, StorageFull, StoreCorrupt

CHUNK = 1 << 20
_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


@contextmanager
def _storage_errors(what: str):
    """Disk full and size limits become a clear error; the caller's commit is abandoned."""
    try:
        yield
    except OSError as e:
        if e.errno in _FULL:
            raise StorageFull(
                f"no space left while storing {what} ({e.strerror}); nothing was committed. "
                "Free some space (`tulip gc` removes unreferenced blobs) and try again"
            ) from None
        raise


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class ObjectStore:
    def __init__(self, root: Path):
        self.root = Path(root) / "objects"
        self.tmp = Path(root) / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def _place(self, tmp: Path, digest: str) -> None:
        dest = self.path(digest)
        if dest.exists():
            tmp.unlink(missing_ok=True)
            return
        dest.parent.mkdir(exist_ok=True)
        os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(tmp, dest)

    def _tempfile(self) -> tuple[int, Path]:
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        return fd, Path(name)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        if self.has(digest):
            return digest, len(data)
        fd, tmp = self._tempfile()
        try:
            with _storage_errors("data"), os.fdopen(fd, "wb") as f:
                f.write(data)
            self._place(tmp, digest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return digest, len(data)

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy a local file in while hashing it; refuses a file that changes while read."""
        try:
            before = os.stat(source)
            src = open(source, "rb")  # noqa: SIM115 - closed below, before the rename
        except FileNotFoundError:
            raise SourceChanged(
                f"{source} vanished before it could be read; nothing was committed"
            ) from None
        fd, tmp = self._tempfile()
        h = hashlib.sha256()
        size = 0
        try:
            with _storage_errors(str(source)), src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            try:
                after = os.stat(source)
            except FileNotFoundError:
                raise SourceChanged(
                    f"{source} vanished while it was read; nothing was committed"
                ) from None
            if (after.st_size, after.st_mtime_ns) != (
                before.st_size,
                before.st_mtime_ns,
            ) or size != after.st_size:
                raise SourceChanged(
                    f"{source} changed while it was read; nothing was committed, try again"
                )
            self._place(tmp, h.hexdigest())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return h.hexdigest(), size

    def adopt(self, source: Path) -> tuple[str, int]:
        """Move a file we own (a pipeline's output) into the store without copying."""
        h = hashlib.sha256()
        size = 0
        with open(source, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
        digest = h.hexdigest()
        if self.has(digest):
            source.unlink()
            return digest, size
        fd, tmp = self._tempfile()
        os.close(fd)
        try:
            os.replace(source, tmp)  # same filesystem: the work dir lives in the store root
        except OSError:
            with _storage_errors(str(source)):
                shutil.copyfile(source, tmp)
            source.unlink()
        self._place(tmp, digest)
        return digest, size

    def read(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreCorrupt(
                f"blob {digest} is missing from {self.root}; run `tulip fsck`"
            ) from None

    def open(self, digest: str):
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise StoreCorrupt(
                f"blob {digest} is missing from {self.root}; run `tulip fsck`"
            ) from None

    def materialize(self, digest: str, dest: Path) -> None:
        """Place a blob at ``dest``: a hard link when possible (instant, no space), else a copy."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = self.path(digest)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)

    def copy(self, digest: str, dest: Path) -> None:
        """A private, writable copy (for files handed to users)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            with os.fdopen(fd, "wb") as out, self.open(digest) as src:
                shutil.copyfileobj(src, out, CHUNK)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def verify(self, digest: str) -> bool:
        h = hashlib.sha256()
        with self.open(digest) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return h.hexdigest() == digest

    def digests(self) -> Iterator[str]:
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                for f in sorted(sub.iterdir()):
                    yield sub.name + f.name

    def remove(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def stray_temporaries(self) -> list[Path]:
        return sorted(self.tmp.iterdir())
