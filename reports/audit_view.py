"""What an audit page shows, derived from an ``audit.json`` document (``tulip.audit/v1``).

Both renderers use it: the served audit page and the standalone ``report.html``. The document
is data from a pipeline, so every field is read defensively: a missing or oddly shaped extra
(per-class stats, the overlap matrix, the 2-D projection) drops that section with a note
instead of failing the page. Strings stay strings; escaping is the templates' job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .charts import Heatmap, Scatter, heatmap, scatter

SEVERITY_ORDER = ("fail", "warn", "info")
PAIR_CHECKS = frozenset({"class_overlap", "lookalike_class"})
THUMBS_PER_SIDE = 12
LISTING_LIMIT = 20_000
FINDINGS_SHOWN_PER_CHECK = 60
PER_PAGE = 50  # findings per page of the served audit page and the JSON API
MAX_PER_PAGE = 500
HEATMAP_MAX_CLASSES = 60  # past this the overlap heatmap is unreadable (and megabytes)
BLAME_ROWS = 100  # commits listed in the blame table
BLAME_FINDINGS = 100  # finding numbers listed per commit in the JSON API's blame
CLASS_ROWS = 200  # classes listed in the class table (flagged first when there are more)
CHECK_TITLES = {
    "class_overlap": "Classes that overlap",
    "lookalike_class": "Classes that look like a reference class",
    "new_label": "New labels",
    "label_issue": "Images whose label looks wrong",
    "duplicate": "Duplicates",
    "cross_class_duplicate": "The same image under two labels",
    "unreadable_file": "Unreadable files",
    "class_imbalance": "Class imbalance",
    "drift": "Drift since the last audit",
}

# Where the auditor may put its extras, most likely first.
PER_CLASS_KEYS = ("per_class", "class_stats", "classes")
OVERLAP_KEYS = ("overlap", "overlap_matrix", "class_overlap_matrix", "pair_overlap")
PROJECTION_KEYS = ("projection", "embedding_map", "pca", "map_2d")


@dataclass(frozen=True)
class Source:
    repo: str
    commit: str | None
    branch: str | None = None


@dataclass
class Finding:
    index: int
    check: str
    severity: str
    classes: list[str]
    score: float | None
    files: list[str]
    introduced_by: list[Source]
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return CHECK_TITLES.get(self.check, self.check.replace("_", " "))

    @property
    def id(self) -> str:
        """The finding's stable id (``auditor.findings``), which review decisions name."""
        from auditor.findings import id_of

        return id_of({"check": self.check, "classes": self.classes, "files": self.files,
                      **({"id": self.extra["id"]} if "id" in self.extra else {})})  # fmt: skip

    @property
    def class_level(self) -> bool:
        """A finding about a class as a whole: reviewed by a rename or merge, not per file."""
        from auditor.findings import CLASS_LEVEL

        return self.check in CLASS_LEVEL


@dataclass
class CheckGroup:
    check: str
    title: str
    findings: list[Finding]
    hidden: int = 0  # beyond FINDINGS_SHOWN_PER_CHECK; the JSON API has them all


@dataclass
class SeverityGroup:
    severity: str
    checks: list[CheckGroup]

    @property
    def count(self) -> int:
        return sum(len(c.findings) + c.hidden for c in self.checks)


@dataclass
class Comparison:
    """Thumbnails of a suspect class next to the class it looks like."""

    finding: int
    check: str
    suspect: str
    other: str
    suspect_source: Source
    other_source: Source
    suspect_files: list[str]
    other_files: list[str]
    other_in_reference: bool
    score: float | None = None


@dataclass
class ClassRow:
    label: str
    images: int | None
    stats: dict[str, Any]
    flags: list[str]  # checks whose findings name this class


@dataclass
class Blame:
    source: Source
    findings: list[int]
    checks: list[str]


@dataclass
class AuditView:
    schema: str
    verdict: str
    data: Source | None
    reference: Source | None
    images: int | None
    classes: list[ClassRow]
    stat_columns: list[str]
    findings: list[Finding]
    groups: list[SeverityGroup]
    comparisons: list[Comparison]
    heatmap: Heatmap | None
    scatter: Scatter | None
    gallery: Heatmap | None
    blame: list[Blame]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    created: str | None = None
    policy: Any = None
    blame_hidden: int = 0  # commits beyond BLAME_ROWS
    class_rows: int = CLASS_ROWS
    _index: Any = None

    @property
    def index(self) -> FindingIndex:
        if self._index is None:
            self._index = FindingIndex(self.findings)
        return self._index

    def page_of(self, finding: int, per_page: int = PER_PAGE) -> int:
        """The page of the unfiltered listing that shows finding number ``finding``."""
        return finding // per_page + 1

    def as_dict(self) -> dict:
        """The derived parts the JSON API adds to the document."""
        return {
            "verdict": self.verdict,
            "counts": self.counts,
            "comparisons": [
                {
                    "finding": c.finding,
                    "check": c.check,
                    "suspect": {"class": c.suspect, "repo": c.suspect_source.repo,
                                "commit": c.suspect_source.commit, "files": c.suspect_files},
                    "other": {"class": c.other, "repo": c.other_source.repo,
                              "commit": c.other_source.commit, "files": c.other_files,
                              "in_reference": c.other_in_reference},
                }
                for c in self.comparisons
            ],
            "blame": [
                {"repo": b.source.repo, "commit": b.source.commit,
                 "findings": b.findings[:BLAME_FINDINGS], "checks": b.checks,
                 # present when the list is cut
                 **({"findings_total": len(b.findings)}
                    if len(b.findings) > BLAME_FINDINGS else {})}
                for b in self.blame
            ],
            "projection": None if self.scatter is None else {
                "method": self.scatter.method, "points": self.scatter.total,
            },
            "notes": self.notes,
        }  # fmt: skip


@dataclass(frozen=True)
class FindingFilter:
    """Which findings a page shows: by check, class, introducing commit (a prefix of its
    ID) and severity, then one page of them, in the document's order (worst first)."""

    check: str | None = None
    cls: str | None = None
    commit: str | None = None
    severity: str | None = None
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> FindingFilter:
        """From query arguments; ValueError naming the argument when one is malformed."""

        def number(name: str, default: int, high: int) -> int:
            raw = args.get(name)
            if raw in (None, ""):
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
            if not 1 <= value <= high:
                raise ValueError(f"{name} must be between 1 and {high}, got {value}")
            return value

        severity = args.get("severity") or None
        if severity is not None and severity not in SEVERITY_ORDER:
            raise ValueError(
                f"severity must be one of {', '.join(SEVERITY_ORDER)}, got {severity!r}"
            )
        return cls(
            check=args.get("check") or None,
            cls=args.get("class") or None,
            commit=args.get("commit") or None,
            severity=severity,
            page=number("page", 1, 10**9),
            per_page=number("per_page", PER_PAGE, MAX_PER_PAGE),
        )

    def args(self, **change: Any) -> dict[str, Any]:
        """Query arguments for this filter with some changed (None and defaults left out)."""
        values = {"check": self.check, "class": self.cls, "commit": self.commit,
                  "severity": self.severity, "page": self.page, "per_page": self.per_page}  # fmt: skip
        values.update(change)
        defaults = {"page": 1, "per_page": PER_PAGE}
        return {k: v for k, v in values.items() if v is not None and defaults.get(k) != v}

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.check, self.cls, self.commit, self.severity))


@dataclass
class FindingsPage:
    filter: FindingFilter
    findings: list[Finding]
    total: int  # findings that match the filter
    pages: int
    facets: dict[str, dict[str, int]]  # check / severity -> count, over all findings

    @property
    def first(self) -> int:
        return 0 if not self.findings else (self.filter.page - 1) * self.filter.per_page + 1

    @property
    def last(self) -> int:
        return self.first + len(self.findings) - 1 if self.findings else 0

    def page_numbers(self, around: int = 2) -> list[int | None]:
        """Page links to show: the first, the last and a few around this one (None = a gap)."""
        keep = {1, self.pages, *range(self.filter.page - around, self.filter.page + around + 1)}
        out: list[int | None] = []
        for p in sorted(k for k in keep if 1 <= k <= self.pages):
            if out and p - (out[-1] or 0) > 1:
                out.append(None)
            out.append(p)
        return out


class FindingIndex:
    """Finding positions by check, severity, class and commit, built once per audit, so a
    filtered page costs a few list intersections, not a pass over 50k findings."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        self.by: dict[str, dict[str, list[int]]] = {"check": {}, "severity": {}, "class": {}}
        commits: dict[str, list[int]] = {}
        for pos, f in enumerate(findings):
            self.by["check"].setdefault(f.check, []).append(pos)
            self.by["severity"].setdefault(f.severity, []).append(pos)
            for c in dict.fromkeys(f.classes):
                self.by["class"].setdefault(c, []).append(pos)
            for src in f.introduced_by:
                if src.commit:
                    commits.setdefault(src.commit, []).append(pos)
        self.commits = commits
        self._arrays: dict[tuple[str, str], np.ndarray] = {}

    def select(self, flt: FindingFilter) -> np.ndarray:
        """Positions of the matching findings, ascending (sorted-array intersections)."""
        chosen: list[np.ndarray] = []
        for key, value in (("check", flt.check), ("severity", flt.severity), ("class", flt.cls)):
            if value is not None:
                chosen.append(self._array(key, value))
        if flt.commit is not None:
            hits = [self._array("commit", c) for c in self.commits if c.startswith(flt.commit)]
            chosen.append(np.unique(np.concatenate(hits)) if hits else np.zeros(0, np.int64))
        if not chosen:
            return np.arange(len(self.findings))
        chosen.sort(key=len)
        out = chosen[0]
        for other in chosen[1:]:
            out = np.intersect1d(out, other, assume_unique=True)
        return out

    def _array(self, key: str, value: str) -> np.ndarray:
        cached = self._arrays.get((key, value))
        if cached is None:
            source = self.commits if key == "commit" else self.by[key]
            cached = np.asarray(source.get(value, []), dtype=np.int64)
            self._arrays[(key, value)] = cached
        return cached

    def page(self, flt: FindingFilter) -> FindingsPage:
        positions = self.select(flt)
        pages = max(1, -(-len(positions) // flt.per_page))
        start = (flt.page - 1) * flt.per_page
        return FindingsPage(
            filter=flt,
            findings=[self.findings[int(p)] for p in positions[start : start + flt.per_page]],
            total=len(positions),
            pages=pages,
            facets={
                k: {name: len(v) for name, v in self.by[k].items()} for k in ("check", "severity")
            },
        )


Listing = Callable[[Source, str, int], list[str]]
"""(where, class label, limit) -> up to ``limit`` image paths of that class there."""


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _source(value: Any) -> Source | None:
    if not isinstance(value, dict) or not isinstance(value.get("repo"), str):
        return None
    commit = value.get("commit") or value.get("id")
    return Source(value["repo"], commit if isinstance(commit, str) else None,
                  _str(value.get("branch")) or None)  # fmt: skip


def _finding(i: int, raw: Any) -> Finding | None:
    if not isinstance(raw, dict):
        return None
    known = {"check", "severity", "classes", "score", "files", "introduced_by", "message"}
    classes = [c for c in raw.get("classes") or [] if isinstance(c, str)]
    files = [f for f in raw.get("files") or [] if isinstance(f, str)]
    blamed = [s for s in (_source(x) for x in raw.get("introduced_by") or []) if s]
    severity = _str(raw.get("severity"), "info").lower()
    return Finding(
        index=i,
        check=_str(raw.get("check"), "unknown"),
        severity=severity if severity in SEVERITY_ORDER else "info",
        classes=classes,
        score=_float(raw.get("score")),
        files=files,
        introduced_by=blamed,
        message=_str(raw.get("message")),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _groups(findings: list[Finding]) -> list[SeverityGroup]:
    check_rank = {c: i for i, c in enumerate(CHECK_TITLES)}
    groups = []
    for sev in SEVERITY_ORDER:
        mine = [f for f in findings if f.severity == sev]
        if not mine:
            continue
        by_check: dict[str, list[Finding]] = {}
        for f in mine:
            by_check.setdefault(f.check, []).append(f)
        checks = []
        for check in sorted(by_check, key=lambda c: (check_rank.get(c, 99), c)):
            items = sorted(by_check[check], key=lambda f: -(f.score or 0.0))
            shown = items[:FINDINGS_SHOWN_PER_CHECK]
            title = CHECK_TITLES.get(check, check.replace("_", " "))
            checks.append(CheckGroup(check, title, shown, len(items) - len(shown)))
        groups.append(SeverityGroup(sev, checks))
    return groups


def _class_rows(doc: dict, findings: list[Finding]) -> tuple[list[ClassRow], list[str]]:
    summary = doc.get("summary") if isinstance(doc.get("summary"), dict) else {}
    counts = summary.get("classes") if isinstance(summary.get("classes"), dict) else {}
    stats: dict[str, dict] = {}
    for key in PER_CLASS_KEYS:
        value = doc.get(key)
        if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            stats = {str(k): v for k, v in value.items()}
            break
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for row in value:
                label = row.get("label", row.get("class", row.get("name")))
                if isinstance(label, str):
                    stats[label] = {
                        k: v for k, v in row.items() if k not in ("label", "class", "name")
                    }
            break
    flags: dict[str, list[str]] = {}
    for f in findings:
        for c in f.classes:
            if f.check not in flags.setdefault(c, []):
                flags[c].append(f.check)
    labels = sorted(set(counts) | set(stats), key=str)
    columns: list[str] = []
    for label in labels:
        for k, v in (stats.get(label) or {}).items():
            if k not in columns and k not in ("images", "count", "n") and _scalar(v):
                columns.append(k)
    rows = []
    for label in labels:
        s = stats.get(label) or {}
        n = counts.get(label, s.get("images", s.get("count", s.get("n"))))
        rows.append(
            ClassRow(
                label=str(label),
                images=n if isinstance(n, int) and not isinstance(n, bool) else None,
                stats={k: s[k] for k in columns if k in s and _scalar(s[k])},
                flags=flags.get(label, []),
            )
        )
    return rows, columns


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def overlap_matrix(doc: dict) -> tuple[list[str], list[list[float | None]]] | None:
    """The class-pair overlap from whichever shape the document uses."""
    for key in OVERLAP_KEYS:
        value = doc.get(key)
        if isinstance(value, dict):
            labels = value.get("labels") or value.get("classes")
            matrix = value.get("matrix") or value.get("scores") or value.get("values")
            if isinstance(labels, list) and isinstance(matrix, list):
                return [str(x) for x in labels], [
                    [_float(v) for v in row] if isinstance(row, list) else [] for row in matrix
                ]
            pairs = value.get("pairs")
            if isinstance(pairs, list):
                return _from_pairs(pairs)
            if value and all(isinstance(v, dict) for v in value.values()):
                return _from_nested(value)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return _from_pairs(value)
    return None


def _from_pairs(pairs: list) -> tuple[list[str], list[list[float | None]]] | None:
    entries = []
    for p in pairs:
        if not isinstance(p, dict):
            continue
        classes = p.get("classes") or [p.get("a"), p.get("b")]
        if len(classes) == 2 and all(isinstance(c, str) for c in classes):
            entries.append((classes[0], classes[1], _float(p.get("score", p.get("overlap")))))
    if not entries:
        return None
    labels = sorted({c for a, b, _ in entries for c in (a, b)})
    idx = {c: i for i, c in enumerate(labels)}
    m: list[list[float | None]] = [[None] * len(labels) for _ in labels]
    for a, b, s in entries:
        m[idx[a]][idx[b]] = s
        if m[idx[b]][idx[a]] is None:
            m[idx[b]][idx[a]] = s
    return labels, m


def _from_nested(value: dict) -> tuple[list[str], list[list[float | None]]]:
    labels = sorted({str(k) for k in value} | {str(k) for v in value.values() for k in v})
    return labels, [[_float((value.get(a) or {}).get(b)) for b in labels] for a in labels]


def projection_arrays(p: Any) -> tuple[list[float], list[float], list[str], list[str], str] | None:
    """(xs, ys, labels, paths, method) from whichever shape the projection uses."""
    if not isinstance(p, dict):
        return None
    method = _str(p.get("method"), "pca")
    points = p.get("points")
    xs: list[float] = []
    ys: list[float] = []
    labels: list[str] = []
    paths: list[str] = []
    if isinstance(points, list) and points and isinstance(points[0], dict):
        for q in points:
            x, y = _float(q.get("x")), _float(q.get("y"))
            if x is None or y is None:
                continue
            xs.append(x)
            ys.append(y)
            labels.append(_str(q.get("label", q.get("class")), "?"))
            paths.append(_str(q.get("path")))
        return xs, ys, labels, paths, method
    coords = points if isinstance(points, list) else p.get("coords") or p.get("xy")
    if coords is None and isinstance(p.get("x"), list) and isinstance(p.get("y"), list):
        coords = list(zip(p["x"], p["y"], strict=False))
    raw_labels = p.get("labels") or p.get("label") or p.get("classes")
    if not isinstance(coords, list) or not isinstance(raw_labels, list):
        return None
    raw_paths = p.get("paths") or p.get("path")
    if not isinstance(raw_paths, list):
        raw_paths = [""] * len(coords)
    for i, c in enumerate(coords):
        if not isinstance(c, list | tuple) or len(c) < 2 or i >= len(raw_labels):
            continue
        x, y = _float(c[0]), _float(c[1])
        if x is None or y is None:
            continue
        lab = raw_labels[i]
        if isinstance(lab, int) and isinstance(p.get("label_names"), list):
            lab = p["label_names"][lab] if 0 <= lab < len(p["label_names"]) else "?"
        xs.append(x)
        ys.append(y)
        labels.append(str(lab))
        paths.append(_str(raw_paths[i]) if i < len(raw_paths) else "")
    return xs, ys, labels, paths, method


def document_projection(doc: dict) -> dict | None:
    for key in PROJECTION_KEYS:
        if isinstance(doc.get(key), dict):
            return doc[key]
    return None


def _comparisons(
    findings: list[Finding], data: Source | None, reference: Source | None, listing: Listing | None
) -> list[Comparison]:
    out = []
    seen: set[tuple[str, str]] = set()
    for f in findings:
        if f.check not in PAIR_CHECKS or len(f.classes) < 2 or data is None:
            continue
        suspect, other = f.classes[0], f.classes[1]
        if (suspect, other) in seen:
            continue
        seen.add((suspect, other))
        in_reference = f.check == "lookalike_class" and reference is not None
        other_source = reference if in_reference else data
        mine = [p for p in f.files if _label_of(p) == suspect]
        theirs = [p for p in f.files if _label_of(p) == other and not in_reference]
        if listing is not None:
            # The finding's own files first (they are the evidence), then the class folder;
            # only files that exist at the commit, so no thumbnail is broken.
            present = listing(data, suspect, LISTING_LIMIT)
            there = set(present)
            mine = [p for p in mine if p in there] + [p for p in present if p not in mine]
            present = listing(other_source, other, LISTING_LIMIT)
            there = set(present)
            theirs = [p for p in theirs if p in there] + [p for p in present if p not in theirs]
        out.append(
            Comparison(
                finding=f.index,
                check=f.check,
                suspect=suspect,
                other=other,
                suspect_source=data,
                other_source=other_source,
                suspect_files=mine[:THUMBS_PER_SIDE],
                other_files=theirs[:THUMBS_PER_SIDE],
                other_in_reference=in_reference,
                score=f.score,
            )
        )
    return out


def _label_of(path: str) -> str:
    parts = path.strip("/").split("/")
    return parts[0] if len(parts) > 1 else ""


def _blame(findings: list[Finding]) -> list[Blame]:
    by_commit: dict[tuple[str, str | None], Blame] = {}
    for f in findings:
        for s in f.introduced_by:
            key = (s.repo, s.commit)
            b = by_commit.setdefault(key, Blame(s, [], []))
            b.findings.append(f.index)
            if f.check not in b.checks:
                b.checks.append(f.check)
    rank = {"fail": 0, "warn": 1, "info": 2}
    return sorted(
        by_commit.values(),
        key=lambda b: (min(rank[findings[i].severity] for i in b.findings), -len(b.findings)),
    )


def build_view(
    doc: dict,
    *,
    listing: Listing | None = None,
    projection: dict | None = None,
) -> AuditView:
    """Everything the audit page shows. ``projection`` is used when the document has none."""
    if not isinstance(doc, dict):
        raise ValueError(f"an audit document is a JSON object, not {type(doc).__name__}")
    notes: list[str] = []
    raw_findings = doc.get("findings") if isinstance(doc.get("findings"), list) else []
    findings = [f for f in (_finding(i, r) for i, r in enumerate(raw_findings)) if f]
    data = _source(doc.get("data"))
    reference = _source(doc.get("reference"))
    summary = doc.get("summary") if isinstance(doc.get("summary"), dict) else {}
    images = summary.get("images") if isinstance(summary.get("images"), int) else None
    classes, columns = _class_rows(doc, findings)
    if len(classes) > CLASS_ROWS:
        classes.sort(key=lambda row: not row.flags)  # stable: flagged first, then by name

    hm = None
    matrix = overlap_matrix(doc)
    if matrix is not None and len(matrix[0]) > HEATMAP_MAX_CLASSES:
        notes.append(
            f"the overlap heatmap is not drawn for {len(matrix[0])} classes (more than "
            f"{HEATMAP_MAX_CLASSES}); filter the findings by class_overlap instead"
        )
        matrix = None
    if matrix is not None:
        try:
            hm = heatmap(*matrix, caption="overlap between each pair of classes (higher is worse)")
        except ValueError as e:
            notes.append(f"overlap matrix not shown: {e}")

    gallery = None
    g = doc.get("gallery")
    if isinstance(g, dict) and isinstance(g.get("matrix"), list):
        rows = [str(x) for x in g.get("classes") or []]
        cols = [str(x) for x in g.get("gallery_classes") or g.get("reference_classes") or []]
        matrix = [[_float(v) for v in r] if isinstance(r, list) else [] for r in g["matrix"]]
        if max(len(rows), len(cols)) > HEATMAP_MAX_CLASSES:
            notes.append(
                f"the reference comparison is not drawn for {len(rows)} x {len(cols)} classes"
            )
        else:
            try:
                gallery = heatmap(rows, matrix, columns=cols,
                                  caption="each data class (rows) against each reference class (columns)")  # fmt: skip
            except ValueError as e:
                notes.append(f"reference comparison not shown: {e}")

    sc = None
    proj = document_projection(doc) or projection
    arrays = projection_arrays(proj) if proj else None
    if arrays is not None:
        xs, ys, labs, paths, method = arrays
        flagged = {c for f in findings if f.severity == "fail" for c in f.classes}
        try:
            sc = scatter(xs, ys, labs, paths, method=method, highlight=flagged)
        except ValueError as e:
            notes.append(f"embedding map not shown: {e}")
        of = proj.get("of") if isinstance(proj, dict) else None
        if sc is not None and isinstance(of, int) and of > len(xs):
            sc.notes.append(f"a sample of {len(xs)} of the {of} images")
    elif proj is None:
        notes.append("no 2-D projection in the audit document and no embeddings to compute one")

    verdict = _str(doc.get("verdict"), "unknown").lower()
    counts = {sev: sum(1 for f in findings if f.severity == sev) for sev in SEVERITY_ORDER}
    blame = _blame(findings)
    return AuditView(
        schema=_str(doc.get("schema")),
        verdict=verdict,
        data=data,
        reference=reference,
        images=images,
        classes=classes,
        stat_columns=columns,
        findings=findings,
        groups=_groups(findings),
        comparisons=_comparisons(findings, data, reference, listing),
        heatmap=hm,
        scatter=sc,
        gallery=gallery,
        blame=blame[:BLAME_ROWS],
        blame_hidden=max(0, len(blame) - BLAME_ROWS),
        counts=counts,
        notes=notes,
        created=_str(doc.get("created") or doc.get("time")) or None,
        policy=doc.get("policy"),
    )


def summarize(doc: dict) -> dict:
    """The few fields the overview timeline needs."""
    findings = doc.get("findings") if isinstance(doc.get("findings"), list) else []
    counts = {sev: 0 for sev in SEVERITY_ORDER}
    top = None
    for f in findings:
        if isinstance(f, dict) and f.get("severity") in counts:
            counts[f["severity"]] += 1
            if top is None and f["severity"] == "fail":
                top = _str(f.get("message"))
    data = _source(doc.get("data"))
    return {
        "verdict": _str(doc.get("verdict"), "unknown").lower(),
        "data": None if data is None else {"repo": data.repo, "commit": data.commit},
        "counts": counts,
        "top": top,
    }


def chart_markup(view: AuditView, heatmap_macro, scatter_macro) -> dict:
    """The charts as markup, rendered by the ``charts.html`` macros (autoescaped) once per
    audit: ``overlap``, ``gallery`` and ``map``, each None when the document lacks it."""
    return {
        "overlap": heatmap_macro(view.heatmap) if view.heatmap else None,
        "gallery": heatmap_macro(view.gallery) if view.gallery else None,
        "map": scatter_macro(view.scatter) if view.scatter else None,
    }
