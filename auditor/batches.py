"""Which data commit added each image: the commit-aware view of an audit.

Only Tulip knows that a set of images arrived together, in one commit. A batch of tulips
uploaded to ``/roses`` looks, image by image, like a tight cluster that backs its own wrong
label; as a batch it is obviously foreign to the roses that were there before it.

:class:`CommitBatches` is pure data (commit ids oldest first, and the commit that added each
path since the baseline); :func:`batches_since` reads it from a store, one ``diff file`` per
commit since the baseline, never a per-file query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipelines.backend import Backend

#: commits since the baseline that are tested one by one at most (older ones count as "before")
MAX_COMMITS = 50


@dataclass(frozen=True)
class CommitBatches:
    """The commits since the baseline, oldest first, and the commit that added (or changed)
    each path since then. Paths not in ``added`` were there before the first of them."""

    order: list[str]
    added: Mapping[str, str] = field(default_factory=dict)
    deleted: Mapping[str, int] = field(default_factory=dict)  # commit -> files it deleted

    def codes(self, paths: Sequence[str]) -> np.ndarray:
        """Per path, the index in ``order`` of the commit that added it; -1 = before them."""
        index = {c: i for i, c in enumerate(self.order)}
        added = self.added
        return np.fromiter(
            (index.get(added.get(p, ""), -1) for p in paths), dtype=np.int64, count=len(paths)
        )

    def to_dict(self) -> dict:
        return {
            "commits": list(self.order),
            "added": {c: sum(1 for v in self.added.values() if v == c) for c in self.order},
            "deleted": dict(self.deleted),
        }


def batches_since(
    backend: Backend,
    repo: str,
    commit_id: str,
    baseline: str | None,
    *,
    max_commits: int = MAX_COMMITS,
) -> CommitBatches:
    """The data commits after ``baseline`` up to ``commit_id`` (at most ``max_commits``, the
    newest), with the files each added or changed. Without a baseline, every commit but the
    first: the first commit's images are what the class was to begin with."""
    chain: list[tuple[str, str | None]] = []
    commit = backend.inspect_commit(repo, commit_id)
    while commit.id != baseline and len(chain) < max_commits:
        if commit.parent is None:
            break  # the root commit: its images are the "before"
        chain.append((commit.id, commit.parent))
        commit = backend.inspect_commit(repo, commit.parent)
    chain.reverse()
    added: dict[str, str] = {}
    deleted: dict[str, int] = {}
    for cid, parent in chain:
        gone = 0
        for change in backend.diff_files(repo, cid, parent):
            if change.change in ("added", "modified"):
                added[change.path] = cid
            elif change.change == "deleted":
                added.pop(change.path, None)
                gone += 1
        if gone:
            deleted[cid] = gone
    return CommitBatches([c for c, _ in chain], added, deleted)
