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
