"""No silent empty outputs: the seed's order with an empty label_reference still ends in a
model; a job with no datums says why; a Convert with no audit verdict fails and says so."""

import json
from importlib import resources

import pytest

from pipelines import specs as specmod
from tests.pipelines.test_runner import out_files, put


def bundled(name: str, stdin: list[str]) -> dict:
    """A shipped spec (its real input tree) with a bash stand-in for its transform."""
    spec = json.loads(resources.files("pipelines").joinpath(f"{name}.json").read_text())
    spec["transform"] = {"cmd": ["bash"], "stdin": stdin}
    return spec


EMBED = [
    "for f in $(find /pfs/flower_photos -type f); do md5sum $f > /pfs/out/$(basename $f); done"
]
TRAIN = ["ls /pfs/Embed | wc -l > /pfs/out/model"]
AUDIT = [
    "if [ -d /pfs/label_reference ]; then ref=yes; else ref=no; fi",
    'echo "{\\"verdict\\": \\"pass\\", \\"reference\\": \\"$ref\\"}" > /pfs/out/audit.json',
]
CONVERT = [
    "test -f /pfs/Audit/audit.json || { echo 'gate blocked: no audit.json in /pfs/Audit' >&2; exit 3; }",
    "cp /pfs/Train/model /pfs/out/optimized_graph.lite",
]


def seed_order(store, run_jobs, *, audit=AUDIT):
    """The seed's order: put the photos, create label_reference empty, then the pipelines."""
    store.create_repo("flower_photos")
    put(store, "flower_photos", {"/daisy/1.jpg": b"d1", "/tulips/2.jpg": b"t2"})
    store.create_repo("label_reference")
    for name, stdin in (("embed", EMBED), ("train", TRAIN), ("audit", audit), ("convert", CONVERT)):
        store.create_pipeline(bundled(name, stdin))
    return {j.pipeline: j for j in run_jobs(store)}


def test_seed_order_with_an_empty_reference_ends_in_a_model(store, run_jobs):
    jobs = seed_order(store, run_jobs)
    assert {p: (j.state, j.data_total) for p, j in jobs.items()} == {
        "Embed": ("success", 2),
        "Train": ("success", 1),
        "Audit": ("success", 1),
        "Convert": ("success", 1),
    }
    assert json.loads(out_files(store, "Audit")["/audit.json"])["reference"] == "no"
    assert out_files(store, "Convert")["/optimized_graph.lite"].strip() == b"2"
    # The gallery arrives later: the Audit now sees it, as a cross would have.
    put(store, "label_reference", {"/daisy/r.jpg": b"r"})
    again = {j.pipeline: j for j in run_jobs(store)}
    assert again["Audit"].state == "success"
    assert json.loads(out_files(store, "Audit")["/audit.json"])["reference"] == "yes"


def test_convert_without_an_audit_verdict_fails_naming_the_audit(store, run_jobs):
    jobs = seed_order(store, run_jobs, audit=["true"])  # an Audit that writes nothing
    assert jobs["Audit"].state == "success" and out_files(store, "Audit") == {}
    convert = jobs["Convert"]
    assert convert.state == "failure"
    assert "no audit.json" in convert.reason and "Audit" in convert.reason
    assert out_files(store, "Convert") == {}


def test_a_job_with_no_datums_says_which_input_is_empty(store, run_jobs):
    store.create_repo("photos")
    put(store, "photos", {"/a.jpg": b"a"})
    store.create_repo("gallery")  # created, never filled
    store.create_pipeline(
        {
            "pipeline": {"name": "Both"},
            "transform": {"cmd": ["bash"], "stdin": ["touch /pfs/out/x"]},
            "input": {
                "cross": [
                    {"pfs": {"repo": "photos", "glob": "/"}},
                    {"pfs": {"repo": "gallery", "glob": "/"}},
                ]
            },
        }
    )
    [job] = run_jobs(store)
    assert (job.state, job.data_total) == ("success", 0)
    assert job.reason.startswith("0 datums") and "gallery@master" in job.reason
    assert "photos" not in job.reason.replace("gallery", "")
    assert store.inspect_job("Both", job.id).reason == job.reason
    warnings = specmod.empty_input_warnings(store, store.inspect_pipeline("Both").spec)
    assert len(warnings) == 1 and "gallery@master is empty" in warnings[0]


@pytest.mark.parametrize(
    "node, empty, starved",
    [
        (
            {"cross": [{"pfs": {"repo": "a", "glob": "/"}}, {"pfs": {"repo": "b", "glob": "/"}}]},
            {"b"},
            ["b"],
        ),
        (
            {"union": [{"pfs": {"repo": "a", "glob": "/"}}, {"pfs": {"repo": "b", "glob": "/"}}]},
            {"b"},
            [],
        ),
        (
            {"union": [{"pfs": {"repo": "a", "glob": "/"}}, {"pfs": {"repo": "b", "glob": "/"}}]},
            {"a", "b"},
            ["a", "b"],
        ),
        (
            {
                "join": [
                    {"pfs": {"repo": "a", "glob": "/", "joinOn": "k", "outerJoin": True}},
                    {"pfs": {"repo": "b", "glob": "/", "joinOn": "k"}},
                ]
            },
            {"b"},
            [],
        ),
        ({"pfs": {"repo": "a", "glob": "/"}}, set(), []),
    ],
)
def test_starving_inputs(node, empty, starved):
    got = specmod.starving_inputs(node, lambda leaf: leaf.repo in empty)
    assert [leaf.repo for leaf in got] == starved
