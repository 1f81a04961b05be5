import inspect
import json

import pytest

from auditor.audit import run_audit
from auditor.checks import (
    class_imbalance,
    class_overlap,
    cross_class_duplicate,
    drift,
    duplicate,
    label_issue,
    lookalike_class,
    new_label,
    split_leakage,
    unreadable_file,
)
from auditor.policy import DEFAULTS, InvalidPolicy, Policy, default_policy_toml, load_policy
from pipelines.errors import TulipError
from tests.auditor.synthetic import make

FUNCTIONS = {
    "unreadable_file": unreadable_file.unreadable_file,
    "duplicate": duplicate.duplicate,
    "cross_class_duplicate": cross_class_duplicate.cross_class_duplicate,
    "split_leakage": split_leakage.split_leakage,
    "class_overlap": class_overlap.class_overlap,
    "lookalike_class": lookalike_class.lookalike_class,
    "new_label": new_label.new_label,
    "label_issue": label_issue.label_issue,
    "class_imbalance": class_imbalance.class_imbalance,
    "drift": drift.drift,
}


@pytest.mark.parametrize("check", sorted(FUNCTIONS))
def test_policy_defaults_are_the_check_functions_defaults(check):
    params = inspect.signature(FUNCTIONS[check]).parameters
    for key, value in DEFAULTS[check].items():
        if key == "enabled":
            continue
        assert key in params, f"[{check}] {key} is not an option of the check"
        assert params[key].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[key].default == value, f"[{check}] {key}"


def test_toml_overrides_the_defaults(tmp_path):
    p = tmp_path / "policy.toml"
    p.write_text(
        '[label_issue]\nseverity = "info"\n[class_overlap]\nthreshold = 0.6\n'
        "[drift]\nenabled = false\n"
    )
    policy = load_policy(p)
    assert policy.options("label_issue")["severity"] == "info"
    assert policy.options("class_overlap")["threshold"] == 0.6
    assert policy.options("class_overlap")["folds"] == DEFAULTS["class_overlap"]["folds"]
    assert not policy.enabled("drift")


def test_json_works_too(tmp_path):
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"duplicate": {"severity": "warn"}}))
    assert load_policy(p).options("duplicate")["severity"] == "warn"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[class_overlap]\nthreshhold = 0.6\n",
            r"unknown setting 'threshhold' for \[class_overlap\]",
        ),
        ("[labels]\nseverity = 'warn'\n", "unknown check 'labels'"),
        ("[label_issue]\nseverity = 'error'\n", "is not a severity"),
        ("[label_issue]\nk = 'ten'\n", r"\[label_issue\] k in .* must be an integer"),
        ("[drift]\nenabled = 1\n", "must be true or false"),
        ("[class_overlap\n", "not valid TOML"),
    ],
)
def test_bad_policies_are_refused_naming_the_problem(tmp_path, text, message):
    p = tmp_path / "policy.toml"
    p.write_text(text)
    with pytest.raises(InvalidPolicy, match=message) as e:
        load_policy(p)
    assert isinstance(e.value, TulipError)
    assert str(p) in str(e.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidPolicy, match="cannot read policy file"):
        load_policy(tmp_path / "nope.toml")


def test_the_default_toml_reads_back_as_the_defaults(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(default_policy_toml())
    assert load_policy(p).to_dict() == Policy().to_dict()


def test_severities_from_the_policy_decide_the_verdict():
    d = make([("daisy", 0, 30), ("tulips", 2, 30), ("orchids", 2, 30)])
    ref = {"repo": "flowers", "branch": "master", "commit": "c1"}
    assert run_audit(d, data_ref=ref).verdict == "fail"
    relaxed = Policy.from_mapping({"class_overlap": {"severity": "warn"}})
    assert run_audit(d, data_ref=ref, policy=relaxed).verdict == "warn"
    quiet = Policy.from_mapping({"class_overlap": {"severity": "info"}})
    assert run_audit(d, data_ref=ref, policy=quiet).verdict == "pass"


def _with_near_copy_across_classes(similarity: float, architecture: str):
    """Synthetic data plus one tulips picture whose centred cosine to a daisy is ``similarity``."""
    from dataclasses import replace

    import numpy as np

    from auditor.neighbours import unit_rows

    d = make([("daisy", 0, 30), ("tulips", 1, 30)])
    source = d.paths.index("/daisy/0_0.jpg")
    other = d.vectors[d.paths.index("/tulips/1_0.jpg")]

    def build(a: float):
        copy = a * d.vectors[source] + (1 - a) * other
        x = np.vstack([d.vectors, copy[None, :]]).astype(np.float32)
        u = unit_rows(x)
        return x, float(u[source] @ u[-1])

    lo, hi = 0.0, 1.0
    for _ in range(60):  # the mix whose centred cosine is the asked similarity
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if build(mid)[1] < similarity else (lo, mid)
    x, got = build(lo)
    assert abs(got - similarity) < 1e-3
    return replace(
        d,
        paths=[*d.paths, "/tulips/zz_copy.jpg"],
        labels=[*d.labels, "tulips"],
        sha256=[*d.sha256, "f" * 64],
        vectors=x,
        architecture=architecture,
    )


def _cross_class_copies(result) -> list[tuple[str, ...]]:
    return [tuple(f.files) for f in result.findings if f.check == "cross_class_duplicate"]


def test_near_copy_threshold_follows_the_backbone_unless_the_policy_sets_it():
    # 0.85 is a copy in mobilenet_1.0_224's space (threshold 0.80) but not in
    # mobilenet_0.25_224's, where distinct photos reach 0.88 (threshold 0.89)
    ref = {"repo": "flowers", "branch": "master", "commit": "c1"}
    pair = ("/daisy/0_0.jpg", "/tulips/zz_copy.jpg")
    big = run_audit(_with_near_copy_across_classes(0.85, "mobilenet_1.0_224"), data_ref=ref)
    assert pair in _cross_class_copies(big)
    assert big.document["policy"]["cross_class_duplicate"]["near_threshold"] == 0.80

    small = _with_near_copy_across_classes(0.85, "mobilenet_0.25_224")
    result = run_audit(small, data_ref=ref)
    assert _cross_class_copies(result) == []
    assert result.document["policy"]["split_leakage"]["near_threshold"] == 0.89

    chosen = Policy.from_mapping({"cross_class_duplicate": {"near_threshold": 0.8}})
    assert pair in _cross_class_copies(run_audit(small, data_ref=ref, policy=chosen))

    closer = _with_near_copy_across_classes(0.93, "mobilenet_0.25_224")
    assert pair in _cross_class_copies(run_audit(closer, data_ref=ref))


def test_a_policy_copied_from_the_printed_defaults_keeps_the_calibrated_near_threshold(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(default_policy_toml())
    tuned = load_policy(p).for_architecture("mobilenet_0.25_224")
    assert tuned.settings["duplicate"]["near_threshold"] == 0.89
    assert tuned.settings["split_leakage"]["near_threshold"] == 0.89
