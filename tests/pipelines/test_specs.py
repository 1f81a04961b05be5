import json
from pathlib import Path

import pytest

from pipelines import specs
from pipelines.errors import InvalidSpec

REPO = Path(__file__).resolve().parents[2]


def base(**over):
    spec = {
        "pipeline": {"name": "Train"},
        "transform": {"cmd": ["/bin/bash"], "stdin": ["echo hi"], "env": {"IMAGE_SIZE": "224"}},
        "input": {"pfs": {"repo": "flower_photos", "glob": "/"}},
    }
    spec.update(over)
    return spec


def test_snake_case_becomes_camel_case_but_env_keys_stay():
    spec = base(parallelism_spec={"constant": 1}, datum_tries=2)
    spec["transform"]["accept_return_code"] = [3]
    spec["transform"]["env"] = {"MY_VAR_NAME": "1"}
    out = specs.normalize(spec)
    assert out["parallelismSpec"] == {"constant": 1}
    assert out["datumTries"] == 2
    assert out["transform"]["acceptReturnCode"] == [3]
    assert out["transform"]["env"] == {"MY_VAR_NAME": "1"}


def test_schema_key_is_stripped():
    assert "$schema" not in specs.normalize({**base(), "$schema": "x"})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda s: s["transform"].update(cmnd=s["transform"].pop("cmd")),
            r"'transform\.cmnd'.*did you mean 'cmd'",
        ),
        (
            lambda s: s.update(transfrom=s.pop("transform")),
            r"'transfrom'.*did you mean 'transform'",
        ),
        (lambda s: s["input"]["pfs"].pop("glob"), r"'input\.pfs\.glob' is missing"),
        (lambda s: s["input"]["pfs"].update(glob="*"), r"a glob starts with '/'"),
        (lambda s: s["pipeline"].pop("name"), r"'pipeline\.name' is missing"),
        (lambda s: s["pipeline"].update(name="bad name!"), r"'pipeline\.name'"),
        (lambda s: s.pop("transform"), r"'transform' is missing"),
        (lambda s: s.pop("input"), r"'input' is missing"),
        (lambda s: s["transform"].update(cmd="bash"), r"'transform\.cmd' must be an array"),
        (lambda s: s.update(datumTries=-1), r"'datumTries' must be 0 or more"),
        (
            lambda s: s.update(input={"pfs": {"repo": "a", "glob": "/"}, "cross": []}),
            r"exactly one of",
        ),
        (lambda s: s.update(input={"cross": []}), r"'input\.cross' is empty"),
        (
            lambda s: s.update(
                input={
                    "cross": [
                        {"pfs": {"repo": "a", "glob": "/"}},
                        {"pfs": {"repo": "a", "glob": "/*"}},
                    ]
                }
            ),
            r"names 'a' twice",
        ),
        (
            lambda s: s.update(input={"group": [{"pfs": {"repo": "a", "glob": "/"}}]}),
            r"not supported by the embedded engine",
        ),
        (lambda s: s.update(service={"internalPort": "x"}), r"service\.internalPort"),
    ],
)
def test_bad_specs_name_the_field(mutate, message):
    spec = base()
    mutate(spec)
    with pytest.raises(InvalidSpec, match=message):
        specs.normalize(spec)


def test_load_reports_json_syntax_position(tmp_path):
    p = tmp_path / "spec.json"
    p.write_text('{"pipeline": {"name": "x"},\n  "transform": }')
    with pytest.raises(InvalidSpec, match=r"line 2, column"):
        specs.load(p)


def test_pfs_inputs_walks_the_tree():
    spec = specs.normalize(
        base(
            input={
                "cross": [
                    {"pfs": {"repo": "Embed", "glob": "/"}},
                    {
                        "union": [
                            {"pfs": {"repo": "a", "glob": "/*", "name": "x"}},
                            {"pfs": {"repo": "b", "glob": "/*", "branch": "dev"}},
                        ]
                    },
                ]
            }
        )
    )
    leaves = specs.pfs_inputs(spec["input"])
    assert [(i.name, i.repo, i.branch, i.glob) for i in leaves] == [
        ("Embed", "Embed", "master", "/"),
        ("x", "a", "master", "/*"),
        ("b", "b", "dev", "/*"),
    ]


def test_transform_hash_changes_with_the_command_only():
    a = specs.normalize(base())
    b = specs.normalize(base(description="different words"))
    c = specs.normalize(base(transform={"cmd": ["/bin/sh"]}))
    assert specs.transform_hash(a) == specs.transform_hash(b)
    assert specs.transform_hash(a) != specs.transform_hash(c)


@pytest.mark.parametrize("path", sorted((REPO / "pipelines").glob("*.json")), ids=lambda p: p.name)
def test_shipped_specs_are_valid(path):
    spec = specs.load(path)
    assert spec["pipeline"]["name"] == json.loads(path.read_text())["pipeline"]["name"]
