import inspect
import json
from pathlib import Path

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
from auditor.neighbours import near_duplicate_threshold
from auditor.policy import (
    DEFAULTS,
    RANGES,
    InvalidPolicy,
    Policy,
    default_policy_toml,
    load_policy,
)
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


def _bench(name: str) -> dict:
    """One row of the benchmarks' last full run (bench/results.json, ``bench/run``)."""
    rows = json.loads((Path(__file__).resolve().parents[2] / "bench" / "results.json").read_text())
    found = [r for r in rows if r.get("name") == name]
    assert found, f"bench/results.json has no row {name!r}: re-run the calibration bench"
    return found[0]


@pytest.mark.parametrize("architecture", ["mobilenet_1.0_224", "mobilenet_0.25_224"])
def test_each_backbone_threshold_sits_above_its_closest_distinct_photos(architecture):
    """The calibration, from the data bench/near_copy_calibration.py measured on the 600 real
    photos: no two distinct photos are called copies, and most edited copies are found."""
    threshold = near_duplicate_threshold(architecture)
    closest = _bench(f"closest distinct photos vs threshold [{architecture}]")
    recall = _bench(f"edited copies found at the backbone's threshold [{architecture}]")
    assert closest["baseline"] == threshold, "the bench ran with another threshold: re-run it"
    assert closest["figure"] < threshold
    assert recall["figure"] >= 0.8


def test_the_colour_histogram_threshold_sits_above_its_closest_distinct_pictures():
    threshold = near_duplicate_threshold("colour_histogram")
    closest = _bench(
        "colour_histogram: closest two distinct pictures of one class (centred cosine)"
    )
    assert closest["figure"] < threshold


def test_near_copy_threshold_follows_the_backbone_unless_the_policy_sets_it():
    loose, tight = (
        near_duplicate_threshold(a) for a in ("mobilenet_1.0_224", "mobilenet_0.25_224")
    )
    assert loose < tight  # else there is nothing to tell apart
    between, above = (loose + tight) / 2, min(1.0, tight + 0.02)
    ref = {"repo": "flowers", "branch": "master", "commit": "c1"}
    pair = ("/daisy/0_0.jpg", "/tulips/zz_copy.jpg")
    # a copy in the loose space, distinct in the tight one
    big = run_audit(_with_near_copy_across_classes(between, "mobilenet_1.0_224"), data_ref=ref)
    assert pair in _cross_class_copies(big)
    assert big.document["policy"]["cross_class_duplicate"]["near_threshold"] == loose

    small = _with_near_copy_across_classes(between, "mobilenet_0.25_224")
    result = run_audit(small, data_ref=ref)
    assert _cross_class_copies(result) == []
    assert result.document["policy"]["split_leakage"]["near_threshold"] == tight

    chosen = Policy.from_mapping({"cross_class_duplicate": {"near_threshold": loose}})
    assert pair in _cross_class_copies(run_audit(small, data_ref=ref, policy=chosen))

    closer = _with_near_copy_across_classes(above, "mobilenet_0.25_224")
    assert pair in _cross_class_copies(run_audit(closer, data_ref=ref))


def test_a_policy_copied_from_the_printed_defaults_keeps_the_calibrated_near_threshold(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(default_policy_toml())
    tuned = load_policy(p).for_architecture("mobilenet_0.25_224")
    calibrated = near_duplicate_threshold("mobilenet_0.25_224")
    assert calibrated != DEFAULTS["duplicate"]["near_threshold"]
    assert tuned.settings["duplicate"]["near_threshold"] == calibrated
    assert tuned.settings["split_leakage"]["near_threshold"] == calibrated


def test_every_default_is_inside_its_range():
    for section, values in DEFAULTS.items():
        for key, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert RANGES[key].admits(value), f"[{section}] {key} = {value}"


@pytest.mark.parametrize(
    ("section", "key", "value", "allowed"),
    [
        ("duplicate", "near_threshold", 5, "between -1 and 1 (a cosine similarity)"),
        ("class_overlap", "threshold", 1.5, "between 0 and 1 (an overlap score)"),
        ("class_overlap", "folds", 1, "at least 2"),
        ("drift", "alpha", 0, "above 0 and at most 1 (a p-value)"),
        ("label_issue", "temperature", 0.0, "above 0"),
        ("class_imbalance", "max_ratio", 0.5, "at least 1 (largest class over smallest)"),
        ("audit", "threads", -1, "at least 0 (0 is the library default)"),
        ("drift", "min_effect", float("nan"), "at least 0"),
    ],
)
def test_a_value_out_of_range_names_the_key_and_the_range(section, key, value, allowed):
    with pytest.raises(InvalidPolicy) as caught:
        Policy.from_mapping({section: {key: value}}, source="p.toml")
    message = str(caught.value)
    assert message.startswith(f"policy [{section}] {key} in p.toml = ")
    assert message.endswith(f"is out of range: it must be {allowed}")
