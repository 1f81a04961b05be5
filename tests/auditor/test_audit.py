import json

import numpy as np
import pytest

from auditor.audit import IncompatibleEmbeddings, run_audit
from auditor.policy import Policy
from auditor.schema import validate_document
from pipelines.errors import TulipError
from pipelines.records import EmbeddingSet
from tests.auditor.synthetic import make

REF = {"repo": "flower_photos", "branch": "master", "commit": "c" * 32}
BASE = [("daisy", 0, 30), ("roses", 1, 30), ("tulips", 2, 30)]


def _join(*sets):
    return EmbeddingSet(
        paths=[p for s in sets for p in s.paths],
        labels=[label for s in sets for label in s.labels],
        sha256=[h for s in sets for h in s.sha256],
        vectors=np.vstack([s.vectors for s in sets]),
        architecture="synthetic",
    )


def _checks(result):
    return sorted((f.check, f.severity, tuple(f.classes)) for f in result.findings)


def test_clean_data_passes_with_the_extras_the_report_needs():
    r = run_audit(make(BASE), data_ref=REF)
    assert r.verdict == "pass" and r.findings == []
    doc = r.document
    validate_document(doc)
    assert doc["overlap"]["classes"] == ["daisy", "roses", "tulips"]
    assert len(doc["projection"]["x"]) == 90
    assert set(doc["class_stats"]) == {"daisy", "roses", "tulips"}
    assert {"class_overlap", "label_issue", "features", "total"} <= set(doc["timings"])


def test_seed_scenario_a_orchids_beside_tulips_fails_on_class_overlap():
    before = make(BASE)
    orchids = make([("orchids", 2, 30)], seed=7, prefix="new")
    r = run_audit(_join(before, orchids), previous=before, data_ref=REF)
    assert r.verdict == "fail"
    overlap = [f for f in r.findings if f.check == "class_overlap"]
    assert [(f.classes, f.files) for f in overlap] == [
        (["orchids", "tulips"], sorted(orchids.paths))
    ]
    # the orchids are tulips of the previous commit too, and no single image is blamed
    assert ("lookalike_class", "fail", ("orchids", "tulips")) in _checks(r)
    assert not [f for f in r.findings if f.check == "label_issue"]


def test_seed_scenario_b_orchids_without_tulips_is_a_lookalike_of_the_reference():
    data = make([("daisy", 0, 30), ("roses", 1, 30), ("orchids", 2, 30)])
    gallery = make(BASE, seed=11, prefix="ref")
    r = run_audit(
        data, reference=gallery, data_ref=REF, reference_ref={"repo": "ref", "commit": "r"}
    )
    assert r.verdict == "fail"
    assert _checks(r) == [("lookalike_class", "fail", ("orchids", "tulips"))]
    assert r.document["reference"] == {"repo": "ref", "commit": "r"}
    assert r.document["gallery"]["source"] == "reference"


def test_a_distinct_new_class_only_warns():
    data = make([*BASE, ("lilies", 4, 30)])
    gallery = make(BASE, seed=11, prefix="ref")
    r = run_audit(data, reference=gallery, data_ref=REF)
    assert r.verdict == "warn"
    assert _checks(r) == [("new_label", "warn", ("lilies",))]


def test_per_image_issues_alone_warn():
    data = make(BASE)
    labels = list(data.labels)
    labels[0] = "roses"  # a daisy filed as a rose
    data.labels = labels
    r = run_audit(data, data_ref=REF)
    assert r.verdict == "warn"
    assert [(f.check, f.files, f.classes) for f in r.findings] == [
        ("label_issue", [data.paths[0]], ["roses", "daisy"])
    ]


def test_drift_needs_a_previous_commit_and_finds_replaced_content():
    before = make(BASE)
    replaced = make([("tulips", 4, 30)], seed=3, prefix="new")
    now = _join(make(BASE[:2]), replaced)
    r = run_audit(now, previous=before, data_ref=REF)
    assert ("drift", "warn", ("tulips",)) in _checks(r)
    assert not [f for f in run_audit(now, data_ref=REF).findings if f.check == "drift"]


def test_split_leakage_runs_when_splits_are_given():
    data = make(BASE)
    data.vectors[1] = data.vectors[0]
    data.sha256[1] = data.sha256[0]
    splits = {p: "train" for p in data.paths} | {data.paths[1]: "test"}
    checks = _checks(run_audit(data, splits=splits, data_ref=REF))
    assert ("split_leakage", "warn", ("daisy",)) in checks
    assert ("duplicate", "info", ("daisy",)) in checks


def test_the_audit_is_deterministic():
    data = make([*BASE, ("orchids", 2, 30)], spread=1.5)
    a = run_audit(data, data_ref=REF).document
    b = run_audit(data, data_ref=REF).document
    a.pop("timings"), b.pop("timings")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_disabled_checks_do_not_run():
    data = make([*BASE, ("orchids", 2, 30)])
    policy = Policy.from_mapping(
        {"class_overlap": {"enabled": False}, "label_issue": {"enabled": False}}
    )
    r = run_audit(data, data_ref=REF, policy=policy)
    assert r.findings == [] and r.document["overlap"] is None


def test_introduced_by_is_filled_by_the_caller():
    before = make(BASE)
    orchids = make([("orchids", 2, 30)], seed=7, prefix="new")
    r = run_audit(_join(before, orchids), previous=before, data_ref=REF)
    blamed = r.with_introduced_by(
        lambda p: [{"repo": "flower_photos", "commit": "c2" if p.startswith("/orchids/") else "c1"}]
    )
    overlap = [f for f in blamed.document["findings"] if f["check"] == "class_overlap"]
    assert overlap[0]["introduced_by"] == [{"repo": "flower_photos", "commit": "c2"}]
    validate_document(blamed.document)


def test_no_readable_images_still_gives_a_document():
    from pipelines.records import EmbeddingRecord

    empty = EmbeddingSet([], [], [], np.zeros((0, 8), np.float32), None)
    empty.unreadable.append(
        EmbeddingRecord("/a/x.jpg", "a", "0", 0, "m", "unreadable", "zero bytes")
    )
    r = run_audit(empty, data_ref=REF)
    assert _checks(r) == [("unreadable_file", "warn", ("a",))]
    validate_document(r.document)


def test_a_gallery_of_another_width_is_refused():
    gallery = make(BASE, dim=8)
    with pytest.raises(IncompatibleEmbeddings, match=r"8-d but the data's are .*same architecture"):
        run_audit(make(BASE), reference=gallery, data_ref=REF)
    assert issubclass(IncompatibleEmbeddings, TulipError)  # the CLI's exit 2, one line


def test_known_labels_alone_make_unknown_labels_new():
    data = make([*BASE, ("lilies", 4, 30)])
    r = run_audit(data, data_ref=REF, known_labels={"daisy", "roses", "tulips"})
    assert _checks(r) == [("new_label", "warn", ("lilies",))]
    assert r.document["class_stats"]["lilies"]["new"] is True


def test_a_step_that_runs_out_of_memory_says_so_and_suggests_sampling(monkeypatch):
    from auditor import audit as audit_module

    def no_memory(*_a, **_kw):
        raise MemoryError

    monkeypatch.setattr(audit_module, "label_scores", no_memory)
    with pytest.raises(audit_module.AuditOutOfMemory) as err:
        run_audit(make(BASE), data_ref=REF)
    message = str(err.value)
    assert "90 images ran out of memory in its label_issue step" in message
    assert "sample_per_class = 500" in message
    assert isinstance(err.value, TulipError)  # the CLI prints it, exit 2, no traceback
    # the option it suggests is one the policy accepts
    sampled = Policy.from_mapping(
        {c: {"sample_per_class": 500} for c in ("class_overlap", "lookalike_class", "drift")}
    )
    assert sampled.settings["class_overlap"]["sample_per_class"] == 500


def test_progress_reports_every_step_in_order_and_ends_done():
    from auditor.audit import STEPS

    calls = []
    run_audit(make(BASE), data_ref=REF, progress=lambda *c: calls.append(c))
    assert calls[-1] == ("done", len(STEPS), len(STEPS))
    steps = [c[0] for c in calls[:-1]]
    assert steps == sorted(steps, key=STEPS.index), "steps out of order"
    assert {"neighbours", "class_overlap", "label_issue"} <= set(steps)
    assert all(total == len(STEPS) for _s, _d, total in calls)
    assert [d for _s, d, _t in calls] == sorted(d for _s, d, _t in calls)
