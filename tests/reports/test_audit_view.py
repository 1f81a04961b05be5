"""The audit page model: tolerant of the document's shapes, exact about what it shows."""

from __future__ import annotations

import pytest

from reports.audit_view import (
    FINDINGS_SHOWN_PER_CHECK,
    Source,
    build_view,
    overlap_matrix,
    projection_arrays,
    summarize,
)
from reports.charts import heatmap, scatter


def doc(**extra) -> dict:
    base = {
        "schema": "tulip.audit/v1",
        "verdict": "fail",
        "data": {"repo": "flowers", "branch": "master", "commit": "d" * 32},
        "reference": {"repo": "label_reference", "commit": "r" * 32},
        "summary": {"images": 30, "classes": {"daisy": 10, "orchids": 10, "roses": 10}},
        "findings": [
            {
                "check": "lookalike_class",
                "severity": "fail",
                "classes": ["orchids", "tulips"],
                "score": 0.9,
                "files": ["/orchids/1.jpg", "/orchids/2.jpg"],
                "introduced_by": [{"repo": "flowers", "commit": "b" * 32}],
                "message": "orchids look like tulips",
            },
            {
                "check": "label_issue",
                "severity": "warn",
                "classes": ["daisy", "roses"],
                "score": 0.6,
                "files": ["/daisy/7.jpg"],
                "introduced_by": [{"repo": "flowers", "commit": "a" * 32}],
                "message": "looks like roses",
            },
        ],
    }
    base.update(extra)
    return base


def test_lookalike_thumbnails_come_from_the_reference_repo():
    asked = []

    def listing(source: Source, label: str, limit: int) -> list[str]:
        asked.append((source.repo, label))
        return [f"/{label}/{i}.jpg" for i in range(1, 30)]

    view = build_view(doc(), listing=listing)
    (c,) = view.comparisons
    assert (c.suspect, c.other) == ("orchids", "tulips")
    assert c.other_in_reference and c.other_source == Source("label_reference", "r" * 32)
    assert c.suspect_source.repo == "flowers"
    assert ("label_reference", "tulips") in asked and ("flowers", "orchids") in asked
    assert c.suspect_files[:2] == ["/orchids/1.jpg", "/orchids/2.jpg"]  # the evidence first
    assert len(c.suspect_files) == len(c.other_files) == 12


def test_finding_files_missing_from_the_commit_get_no_thumbnail():
    view = build_view(doc(), listing=lambda s, label, n: [f"/{label}/2.jpg", f"/{label}/3.jpg"])
    assert view.comparisons[0].suspect_files == ["/orchids/2.jpg", "/orchids/3.jpg"]


def test_groups_by_severity_then_check_with_a_cap():
    many = [
        {
            "check": "label_issue",
            "severity": "warn",
            "classes": ["a", "b"],
            "score": i / 1000,
            "files": [f"/a/{i}.jpg"],
            "message": str(i),
        }
        for i in range(FINDINGS_SHOWN_PER_CHECK + 15)
    ]
    view = build_view(doc(findings=[*doc()["findings"], *many]))
    assert [g.severity for g in view.groups] == ["fail", "warn"]
    warn = view.groups[1].checks[0]
    assert len(warn.findings) == FINDINGS_SHOWN_PER_CHECK and warn.hidden == 16
    assert warn.findings[0].score >= warn.findings[-1].score  # worst first
    assert view.counts == {"fail": 1, "warn": 16 + FINDINGS_SHOWN_PER_CHECK, "info": 0}


def test_blame_orders_failing_commits_first():
    view = build_view(doc())
    assert [b.source.commit for b in view.blame] == ["b" * 32, "a" * 32]
    assert view.blame[0].checks == ["lookalike_class"]


@pytest.mark.parametrize(
    "shape",
    [
        {"overlap": {"labels": ["a", "b"], "matrix": [[1, 0.7], [0.7, 1]]}},
        {"overlap_matrix": {"classes": ["a", "b"], "scores": [[1, 0.7], [0.7, 1]]}},
        {"overlap": {"pairs": [{"classes": ["a", "b"], "score": 0.7}]}},
        {"overlap": [{"classes": ["a", "b"], "score": 0.7}]},
        {"overlap": {"a": {"b": 0.7}, "b": {"a": 0.7}}},
    ],
)
def test_overlap_matrix_shapes(shape):
    labels, m = overlap_matrix(shape)
    assert labels == ["a", "b"] and m[0][1] == m[1][0] == 0.7


@pytest.mark.parametrize(
    "shape",
    [
        {
            "points": [
                {"x": 1, "y": 2, "label": "a", "path": "/a/1"},
                {"x": 3, "y": 4, "label": "b"},
            ]
        },
        {"points": [[1, 2], [3, 4]], "labels": ["a", "b"], "paths": ["/a/1", ""]},
        {"x": [1, 3], "y": [2, 4], "labels": ["a", "b"]},
        {"coords": [[1, 2], [3, 4]], "labels": [0, 1], "label_names": ["a", "b"]},
    ],
)
def test_projection_shapes(shape):
    xs, ys, labels, _paths, method = projection_arrays(shape)
    assert (xs, ys, labels, method) == ([1.0, 3.0], [2.0, 4.0], ["a", "b"], "pca")


def test_malformed_extras_become_notes_not_errors():
    view = build_view(
        doc(
            overlap={"labels": ["a", "b"], "matrix": [[1]]},
            projection={"points": "x"},
            findings=[None, "x", {"severity": "catastrophic", "score": float("nan")}],
        )
    )
    assert view.heatmap is None and any("overlap matrix" in n for n in view.notes)
    assert view.scatter is None
    assert [f.severity for f in view.findings] == ["info"] and view.findings[0].score is None
    with pytest.raises(ValueError, match="JSON object"):
        build_view(["not", "a", "doc"])


def test_per_class_stats_become_table_columns():
    view = build_view(
        doc(
            per_class={
                "daisy": {"images": 10, "purity": 0.9, "nested": {"x": 1}},
                "roses": {"images": 10, "purity": 0.8},
            }
        )
    )
    assert view.stat_columns == ["purity"]
    row = next(r for r in view.classes if r.label == "daisy")
    assert row.images == 10 and row.stats == {"purity": 0.9} and row.flags == ["label_issue"]


def test_summarize_for_the_timeline():
    s = summarize(doc())
    assert s["verdict"] == "fail" and s["counts"] == {"fail": 1, "warn": 1, "info": 0}
    assert s["top"] == "orchids look like tulips"


def test_chart_geometry():
    h = heatmap(["a", "b"], [[1, 0.5], [0.5, 1]])
    assert len(h.cells) == 4 and h.cells[0].fill == "#eeeeee" and h.cells[1].dark is False
    assert heatmap(["a", "b"], [[1, 0.95], [0.95, 1]]).cells[1].dark is True  # absolute scale
    with pytest.raises(ValueError, match="2x2"):
        heatmap(["a", "b"], [[1]])
    s = scatter([0, 10, float("nan")], [0, 10, 1], ["a", "b", "a"], highlight={"b"})
    assert len(s.points) == 2 and s.legend[0][0] == "b"  # the flagged label first
    assert all(0 <= p.x <= s.width and 0 <= p.y <= s.height for p in s.points)
    big = scatter(list(range(10_000)), list(range(10_000)), ["a"] * 10_000, max_points=1000)
    assert big.points == [] and big.notes  # too many for one <circle> each: one path per class
    assert sum(series.d.count("M") for series in big.series) == 1000


def test_the_auditors_own_shapes():
    """auditor/audit.py writes class_stats, overlap {classes, matrix}, gallery {classes,
    gallery_classes, matrix} and projection {x, y, label, path, of}."""
    view = build_view(doc(
        class_stats={"daisy": {"images": 10, "spread": 0.2, "new": False, "findings": {"label_issue": 1}}},
        overlap={"classes": ["daisy", "orchids"], "matrix": [[None, 0.1], [0.1, None]], "threshold": 0.5},
        gallery={"classes": ["daisy", "orchids"], "gallery_classes": ["daisy", "roses", "tulips"],
                 "matrix": [[0.9, 0.1, 0.0], [0.0, 0.1, 0.95]]},
        projection={"method": "pca", "points": 2, "of": 30, "x": [0.0, 1.0], "y": [1.0, 0.0],
                    "label": ["daisy", "orchids"], "path": ["/daisy/1.jpg", "/orchids/1.jpg"]},
    ))  # fmt: skip
    assert view.stat_columns == ["spread", "new"]
    assert view.heatmap.labels == ["daisy", "orchids"]
    g = view.gallery
    assert g.columns == ["daisy", "roses", "tulips"] and len(g.cells) == 6
    assert g.cells[0].fill == "#eeeeee"  # daisy against daisy
    assert next(c for c in g.cells if c.row == "orchids" and c.column == "tulips").dark
    assert [p.path for p in view.scatter.points] == ["/daisy/1.jpg", "/orchids/1.jpg"]
    assert "a sample of 2 of the 30 images" in view.scatter.notes
