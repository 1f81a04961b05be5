"""Train/validation/test assignment that a file keeps for life.

The split of an image is a function of its content hash alone (like ``retrain.py``'s
``which_set``, but keyed on the bytes rather than the file name), so adding or removing other
files never moves it, renaming it never moves it, and identical copies in two folders always
land together, which keeps duplicates from leaking between train and test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)


def split_of(sha256: str, *, validation: float = 0.1, test: float = 0.1) -> str:
    """The split of a file whose content hash is ``sha256`` (hex), for the given fractions."""
    if not (validation >= 0 and test >= 0 and validation + test < 1):
        raise ValueError(
            f"fractions must leave room for training: validation={validation}, test={test}"
        )
    u = int(sha256[:16], 16) / float(1 << 64)
    if u < test:
        return TEST
    if u < test + validation:
        return VALIDATION
    return TRAIN


@dataclass
class Splits:
    """The split of each path, plus the classes too small to hold out any images from."""

    assignment: dict[str, str]
    sha256: dict[str, str]
    all_train_classes: list[str] = field(default_factory=list)

    def paths(self, split: str) -> list[str]:
        return sorted(p for p, s in self.assignment.items() if s == split)

    def sizes(self) -> dict[str, int]:
        counts = Counter(self.assignment.values())
        return {s: counts.get(s, 0) for s in SPLITS}

    def to_json_dict(self) -> dict:
        return {
            "method": "sha256 of the file content: first 64 bits as a fraction of 2^64; "
            "below the test fraction is test, then validation, the rest train",
            "all_train_classes": self.all_train_classes,
            "files": {
                p: {"split": self.assignment[p], "sha256": self.sha256[p]}
                for p in sorted(self.assignment)
            },
        }


def assign_splits(
    paths: Sequence[str],
    labels: Sequence[str],
    sha256: Sequence[str],
    *,
    validation: float = 0.1,
    test: float = 0.1,
) -> Splits:
    """Split by content hash; a class whose images would give it no training example keeps
    all of them in training (and is listed in ``all_train_classes``) so it can still be learnt.
    """
    if not len(paths) == len(labels) == len(sha256):
        raise ValueError(
            f"lengths differ: {len(paths)} paths, {len(labels)} labels, {len(sha256)} hashes"
        )
    assignment = {
        p: split_of(h, validation=validation, test=test) for p, h in zip(paths, sha256, strict=True)
    }
    by_class: dict[str, list[str]] = {}
    for p, label in zip(paths, labels, strict=True):
        by_class.setdefault(label, []).append(p)
    starved = sorted(c for c, ps in by_class.items() if not any(assignment[p] == TRAIN for p in ps))
    for c in starved:
        for p in by_class[c]:
            assignment[p] = TRAIN
    return Splits(assignment, dict(zip(paths, sha256, strict=True)), starved)
