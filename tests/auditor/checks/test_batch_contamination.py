"""batch_contamination: a commit's batch of one class's pictures filed under another."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.batches import CommitBatches, batches_since
from auditor.checks.batch_contamination import batch_contamination
from auditor.policy import InvalidPolicy, Policy
from pipelines.records import EmbeddingSet
from tests.auditor.synthetic import make


def _history(extra: list[tuple[str, int, int]], *, seed: int = 0, spread: float = 2.0):
    """Old data (3 classes x 40) and one later commit adding ``extra`` (label, kind, n)."""
    old = make([("a", 0, 40), ("b", 1, 40), ("c", 2, 40)], seed=seed, spread=spread)
    new = make(extra, seed=seed + 100, spread=spread, prefix="new")
    x = np.vstack([old.vectors, new.vectors])
    labels = list(old.labels) + list(new.labels)
    paths = list(old.paths) + list(new.paths)
    batch = np.r_[np.full(len(old), -1), np.zeros(len(new), int)]
    return x, labels, paths, batch


def test_a_batch_of_another_class_fails_and_names_the_commit_class_share_and_files():
    x, labels, paths, batch = _history([("a", 1, 30)])  # 30 b-pictures committed into /a
    [f] = batch_contamination(x, labels, paths, batch, ["c0ffee" * 5 + "ab"])
    assert f.severity == "fail" and f.classes == ["a", "b"]
    assert f.score > 0.8 and f.details["commit"] == "c0ffee" * 5 + "ab"
    assert f.details["interval"][0] <= f.score <= f.details["interval"][1]
    assert len(f.files) >= 27 and all("/a/new1_" in p for p in f.files)
    assert "c0ffeec0ffee" in f.message and "look like b" in f.message


def test_a_minority_of_foreign_pictures_warns():
    x, labels, paths, batch = _history([("a", 0, 30), ("a", 2, 10)])  # 25 % are c-pictures
    [f] = batch_contamination(x, labels, paths, batch, ["1" * 32])
    assert f.severity == "warn" and f.classes == ["a", "c"]
    assert 0.15 <= f.score < 0.5


def test_more_of_the_same_class_is_silent_over_seeds():
    fired = 0
    for seed in range(10):
        x, labels, paths, batch = _history([("a", 0, 20), ("b", 1, 10)], seed=seed)
        fired += bool(batch_contamination(x, labels, paths, batch, ["2" * 32]))
    assert fired == 0


def test_small_and_degenerate_inputs_give_nothing_not_a_traceback():
    x, labels, paths, batch = _history([("a", 1, 3)])  # below min_added
    assert batch_contamination(x, labels, paths, batch, ["3" * 32]) == []
    x, labels, paths, batch = _history([("d", 1, 10)])  # a class new in the commit
    assert batch_contamination(x, labels, paths, batch, ["3" * 32]) == []
    # a class with a single old image, and a commit that adds nothing
    one = np.random.default_rng(0).normal(size=(4, 8))
    assert batch_contamination(one, list("abbb"), list("wxyz"), [-1, -1, 0, 0], ["4" * 32]) == []
    assert batch_contamination(one, list("abbb"), list("wxyz"), [-1] * 4, ["4" * 32]) == []
    with pytest.raises(ValueError, match="batch has 3 entries"):
        batch_contamination(one, list("abbb"), list("wxyz"), [-1] * 3, [])


def test_policy_keys_are_range_checked():
    assert Policy.from_mapping({"batch_contamination": {"fail_share": 0.6}})
    with pytest.raises(InvalidPolicy, match="warn_share"):
        Policy.from_mapping({"batch_contamination": {"warn_share": 1.5}})
    with pytest.raises(InvalidPolicy, match="severity"):
        Policy.from_mapping({"batch_contamination": {"class_severity": "loud"}})


def test_batches_since_reads_the_commits_after_the_baseline(store):
    store.create_repo("photos")
    with store.start_commit("photos") as w:
        w.put_bytes("/a/1.jpg", b"1")
        w.put_bytes("/a/2.jpg", b"2")
    first = w.id
    with store.start_commit("photos") as w:
        w.put_bytes("/a/3.jpg", b"3")
        w.put_bytes("/b/4.jpg", b"4")
    second = w.id
    with store.start_commit("photos") as w:
        w.delete("/a/1.jpg")  # a commit that only deletes
    third = w.id
    got = batches_since(store, "photos", third, None)
    assert got.order == [second, third]
    assert dict(got.added) == {"/a/3.jpg": second, "/b/4.jpg": second}
    assert got.deleted == {third: 1}
    assert list(got.codes(["/a/2.jpg", "/a/3.jpg"])) == [-1, 0]
    assert batches_since(store, "photos", third, second).order == [third]
    assert batches_since(store, "photos", third, first).order == [second, third]
    assert CommitBatches([third]).codes(["/a/2.jpg"]).tolist() == [-1]


def test_label_issue_does_not_let_a_committed_cluster_vote_for_itself():
    from auditor.checks.label_issue import label_issue

    x, labels, paths, batch = _history([("a", 1, 20), ("a", 0, 10)], spread=1.0)
    truth = {p for p in paths if "/a/new1_" in p}
    blind = {f.files[0] for f in label_issue(x, labels, paths)}
    aware = label_issue(x, labels, paths, batch=batch)
    found = {f.files[0] for f in aware}
    assert len(found & truth) >= 18 > len(blind & truth)
    assert len(found - truth) <= 2
    assert all(f.details["signals"] for f in aware)


def test_run_audit_tests_the_commits_since_the_baseline():
    from auditor.audit import run_audit
    from pipelines.records import EmbeddingSet

    x, labels, paths, batch = _history([("a", 1, 30)])
    data = EmbeddingSet(
        paths=paths,
        labels=labels,
        sha256=[f"{i:064x}" for i in range(len(x))],
        vectors=x,
        architecture="synthetic",
    )
    commit = "9" * 32
    added = {p: commit for p, b in zip(paths, batch, strict=True) if b == 0}
    result = run_audit(data, data_ref={"repo": "r"}, batches=CommitBatches([commit], added))
    [f] = [f for f in result.findings if f.check == "batch_contamination"]
    assert f.severity == "fail" and result.verdict == "fail"
    assert result.document["batches"]["added"] == {commit: 30}
    plain = run_audit(data, data_ref={"repo": "r"})
    assert not [f for f in plain.findings if f.check == "batch_contamination"]


def test_a_class_one_commit_brought_is_judged_by_its_own_images_not_flagged_wholesale():
    """A new folder (or a rename) brings a whole class in one commit: there are no older
    images of it to hear, so its images must hear each other, as the regression already lets
    them, or every one of them looks like some other class (the demo's renamed tulips did)."""
    from auditor.audit import run_audit
    from auditor.checks.label_issue import judged_batches

    old = make([("a", 0, 40), ("b", 1, 40), ("c", 2, 40)], spread=2.0)
    new = make([("d", 3, 40), ("a", 0, 10)], seed=100, spread=2.0, prefix="new")
    data = EmbeddingSet(
        paths=old.paths + new.paths,
        labels=old.labels + new.labels,
        sha256=old.sha256 + new.sha256,
        vectors=np.vstack([old.vectors, new.vectors]),
        architecture="synthetic",
    )
    commit = "7" * 32
    batch = np.r_[np.full(len(old), -1), np.zeros(len(new), int)]
    judged = judged_batches(batch, data.labels)
    assert (judged[np.array(data.labels) == "d"] == -1).all()  # the new class counts as old
    assert (judged[len(old) :][np.array(new.labels) == "a"] == 0).all()  # more a's stay a batch
    batches = CommitBatches([commit], dict.fromkeys(new.paths, commit))

    def flagged_in_d(**kw) -> int:
        result = run_audit(data, data_ref={"repo": "r"}, **kw)
        return sum(
            f.files[0].startswith("/d/") for f in result.findings if f.check == "label_issue"
        )

    # Noisy clusters (spread 2): a few of d's images are flagged as they would be by an audit
    # that knew nothing of commits (5 of 40 here); hearing only a, b and c flagged 15.
    assert flagged_in_d(batches=batches) <= flagged_in_d() + 2
