"""From decided effects to the file operations of one fix commit, on the commit they apply to.

Pure: the decided :class:`~auditor.review.decisions.Effects` and the files of the base commit
(``FileInfo``s, as ``Backend.walk_files`` gives them) in, a :class:`ReviewPlan` out: every
move (by reference to the stored content, so a rename re-uploads nothing), every exclusion,
the class folders a rename empties (deleted in one operation each), what is accepted or
deferred, and the class counts before and after, for the dry run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipelines.info import FileInfo
from pipelines.layout import label_of

from .decisions import ConflictingDecisions, Effects, FileEffect, InvalidDecisions, Rename


@dataclass(frozen=True)
class Move:
    source: FileInfo
    dest: str
    finding: str
    reason: str  # "rename" or "relabel"


@dataclass(frozen=True)
class Kept:
    """An accepted or deferred file, with the class it has once the fix lands."""

    file: FileInfo
    effect: FileEffect
    label: str


@dataclass
class ReviewPlan:
    base: str  # the commit the fix applies to
    moves: list[Move] = field(default_factory=list)
    excluded: list[tuple[FileInfo, FileEffect]] = field(default_factory=list)
    emptied: list[str] = field(default_factory=list)  # class folders deleted whole
    accepted: list[Kept] = field(default_factory=list)
    deferred: list[Kept] = field(default_factory=list)
    renames: list[Rename] = field(default_factory=list)
    classes_before: dict[str, int] = field(default_factory=dict)
    classes_after: dict[str, int] = field(default_factory=dict)

    @property
    def changes_files(self) -> bool:
        return bool(self.moves or self.excluded)

    def renamed(self, rename: Rename) -> int:
        """How many files a rename moves."""
        return sum(
            m.reason == "rename" and label_of(m.source.path) == rename.source for m in self.moves
        )

    def deletes(self) -> list[str]:
        """The delete operations: each emptied folder once, then files outside them."""
        inside = tuple(d + "/" for d in self.emptied)
        singles = [m.source.path for m in self.moves] + [f.path for f, _e in self.excluded]
        return [*self.emptied, *sorted(p for p in singles if not p.startswith(inside))]


def _dest(path: str, to: str) -> str:
    """``/orchids/sub/1.jpg`` relabelled to tulips: ``/tulips/sub/1.jpg``."""
    rest = path.strip("/").split("/", 1)[1]
    return f"/{to}/{rest}"


def make_plan(
    effects: Effects,
    files: Iterable[FileInfo],
    *,
    base: str,
    audited: Mapping[str, str] | None = None,
    where: str = "the branch",
) -> ReviewPlan:
    """The operations of the fix on ``files`` (the base commit's). ``audited``: path -> content
    hash in the audited commit, when the base is a later head (``--rebase``): a decided file
    whose content changed since the audit refuses the plan."""
    manifest = {f.path: f for f in files}
    plan = ReviewPlan(base=base, renames=sorted(effects.renames.values(), key=lambda r: r.source))
    plan.classes_before = dict(
        sorted(Counter(label_of(p) for p in manifest if label_of(p)).items())
    )
    changed: list[str] = []
    for path, e in sorted(effects.files.items()):
        f = manifest.get(path)
        if f is None:
            raise InvalidDecisions(
                f"decision {e.item}: {path} is not in {where} (deleted or moved since the audit?)"
            )
        if audited is not None and audited.get(path) != f.hash:
            changed.append(path)
    if audited is not None:
        for r in effects.renames.values():
            changed += [
                p
                for p, f in manifest.items()
                if label_of(p) == r.source and audited.get(p) != f.hash
            ]
    if changed:
        shown = ", ".join(sorted(changed)[:5]) + (" …" if len(changed) > 5 else "")
        raise ConflictingDecisions(
            f"{len(changed)} decided files changed or appeared since the audit ({shown}), so "
            "the decisions may not hold for the new head; audit it again and review that audit"
        )

    final: dict[str, str] = {}  # path -> the class it ends in (accepted and deferred files)
    for path, e in sorted(effects.files.items()):
        f = manifest[path]
        if e.action == "relabel":
            plan.moves.append(Move(f, _dest(path, e.to), e.finding, "relabel"))
        elif e.action == "exclude":
            plan.excluded.append((f, e))
    for r in plan.renames:
        for path, f in sorted(manifest.items()):
            if label_of(path) != r.source:
                continue
            e = effects.files.get(path)
            if e is not None and e.action in ("relabel", "exclude"):
                continue  # a decision on the file itself refines the rename
            plan.moves.append(Move(f, _dest(path, r.to), r.finding, "rename"))
            final[path] = r.to
    for path, e in sorted(effects.files.items()):
        if e.action in ("accept", "defer"):
            kept = Kept(manifest[path], e, final.get(path, label_of(path)))
            (plan.accepted if e.action == "accept" else plan.deferred).append(kept)

    leaving = {m.source.path for m in plan.moves} | {f.path for f, _e in plan.excluded}
    arriving: dict[str, Move] = {}
    for m in plan.moves:
        if m.dest in arriving:
            raise ConflictingDecisions(
                f"{m.source.path} and {arriving[m.dest].source.path} would both move to "
                f"{m.dest}; exclude one of them or relabel it elsewhere"
            )
        if m.dest in manifest and m.dest not in leaving:
            raise ConflictingDecisions(
                f"moving {m.source.path} to {m.dest} would overwrite the file already there; "
                "exclude one of them (a duplicate?) or relabel it elsewhere"
            )
        arriving[m.dest] = m
    for r in plan.renames:
        if not any(label_of(p) == r.source and p not in leaving for p in manifest):
            plan.emptied.append("/" + r.source)

    after = Counter(plan.classes_before)
    for m in plan.moves:
        after[label_of(m.source.path)] -= 1
        after[label_of(m.dest)] += 1
    for f, _e in plan.excluded:
        after[label_of(f.path)] -= 1
    plan.classes_after = {c: n for c, n in sorted(after.items()) if n > 0}
    return plan
