"""The real `tulip` console script in a subprocess against a real store: every foundation verb."""

import json
import subprocess
import sys

import pytest


@pytest.fixture
def cli(tulip_cli):
    tulip_cli.env = {"TULIP_NO_AUTORUN": "1"}
    return tulip_cli


def js(proc):
    return json.loads(proc.stdout)


def test_help_and_version(cli):
    out = cli("--help").stdout.decode()
    for verb in ("create", "list", "inspect", "put", "get", "find", "diff", "wait", "fsck"):
        assert verb in out
    assert cli("--version").stdout.decode().startswith("tulip, version")


def test_cheap_verbs_do_not_import_tensorflow(cli, tmp_path):
    cli("create", "repo", "r")
    code = (
        "import sys\n"
        "from tulip.cli.main import main\n"
        "try:\n    main(['list', 'repo', '-o', 'json'])\nexcept SystemExit:\n    pass\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'ai_edge_litert', 'sklearn', 'flask') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**__import__("os").environ, "TULIP_ROOT": str(cli.root)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_repo_commit_file_verbs_end_to_end(cli, tmp_path):
    src = tmp_path / "flowers"
    (src / "daisy").mkdir(parents=True)
    (src / "daisy" / "1.jpg").write_bytes(b"d1")
    (src / "daisy" / "2.jpg").write_bytes(b"d2")
    cli("create", "repo", "flower_photos", "-d", "photos")
    repos = js(cli("list", "repo", "-o", "json"))
    assert [r["name"] for r in repos] == ["flower_photos"]
    put = js(cli("put", "file", "flower_photos@master:/", "-f", str(src), "-r", "-o", "json"))
    assert put["files"] == 2
    orchids = tmp_path / "orchids"
    orchids.mkdir()
    (orchids / "t1.jpg").write_bytes(b"tulip")
    cli("put", "file", "flower_photos@master", "-f", "orchids", "-r", "-m", "add orchids")
    commits = js(cli("list", "commit", "flower_photos@master", "-o", "json"))
    assert len(commits) == 2
    for key in ("id", "repo", "branch", "origin", "parent", "started", "finished", "size_bytes"):
        assert key in commits[0]
    assert commits[0]["parent"] == commits[1]["id"] and commits[0]["origin"] == "USER"
    assert commits[0]["description"] == "add orchids"
    inspected = js(cli("inspect", "commit", "flower_photos@master", "-o", "json"))
    assert inspected["id"] == commits[0]["id"]
    assert inspected["direct_provenance"] == [] and inspected["provenance"] == []
    parent = js(cli("inspect", "commit", "flower_photos@master^", "-o", "json"))
    assert parent["id"] == commits[1]["id"]
    files = js(cli("list", "file", "flower_photos@master", "-o", "json"))
    assert [(f["path"], f["type"]) for f in files] == [("/daisy/", "dir"), ("/orchids/", "dir")]
    assert cli("get", "file", "flower_photos@master:/orchids/t1.jpg").stdout == b"tulip"
    out = tmp_path / "got"
    cli("get", "file", "flower_photos@master:/daisy", "-o", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["1.jpg", "2.jpg"]
    history = js(cli("find", "commit", "flower_photos@master:/orchids", "-o", "json"))
    assert [(h["id"], h["change"]) for h in history] == [(commits[0]["id"], "added")]
    diff = js(cli("diff", "file", "flower_photos@master", "-o", "json"))
    assert [(d["path"], d["change"]) for d in diff] == [("/orchids/t1.jpg", "added")]
    diff2 = js(
        cli(
            "diff",
            "file",
            f"flower_photos@{commits[1]['id']}",
            "flower_photos@master",
            "-o",
            "json",
        )
    )
    assert [(d["path"], d["change"]) for d in diff2] == [("/orchids/t1.jpg", "deleted")]
    cli("delete", "file", "flower_photos@master:/orchids")
    assert [f["path"] for f in js(cli("list", "file", "flower_photos@master", "-o", "json"))] == [
        "/daisy/"
    ]
    head = js(cli("inspect", "commit", "flower_photos@master", "-o", "json"))["id"]
    cli("delete", "commit", f"flower_photos@{head}")
    assert (
        js(cli("inspect", "commit", "flower_photos@master", "-o", "json"))["id"] == commits[0]["id"]
    )
    # stdin put
    cli("put", "file", "flower_photos@master:/notes.txt", "-f", "-", input=b"from stdin")
    assert cli("get", "file", "flower_photos@master:/notes.txt").stdout == b"from stdin"
    assert js(cli("fsck", "-o", "json"))["ok"] is True


def test_pipeline_job_and_wait_verbs(tulip_cli, tmp_path):
    cli = tulip_cli  # background runner on: pipelines run on their own
    cli("create", "repo", "d")
    cli("put", "file", "d@master:/a.txt", "-f", "-", input=b"hello")
    spec = tmp_path / "upper.json"
    spec.write_text(
        json.dumps(
            {
                "pipeline": {"name": "Upper"},
                "transform": {
                    "cmd": ["bash"],
                    "stdin": ["tr a-z A-Z < /pfs/d/a.txt > /pfs/out/a.txt"],
                },
                "parallelism_spec": {"constant": 1},
                "input": {"pfs": {"repo": "d", "glob": "/"}},
            }
        )
    )
    cli("create", "pipeline", "-f", str(spec))
    put = js(cli("put", "file", "d@master:/b.txt", "-f", "-", "-o", "json", input=b"x"))
    waited = js(cli("wait", "commit", f"d@{put['id']}", "--timeout", "120", "-o", "json"))
    commits = waited["commits"]
    assert waited["id"] == put["id"] and waited["finished"] is True
    assert {c["repo"] for c in commits} == {"d", "Upper"} and all(c["finished"] for c in commits)
    assert waited["audits"] == [] and waited["gates"] == []  # no Audit, no Convert here
    assert cli("get", "file", "Upper@master:/a.txt").stdout == b"HELLO"
    jobs = js(cli("list", "job", "-p", "Upper", "-o", "json"))
    assert jobs[0]["id"] == put["id"]
    for key in (
        "pipeline",
        "id",
        "state",
        "data_processed",
        "data_skipped",
        "data_failed",
        "data_total",
    ):
        assert key in jobs[0]
    assert jobs[0]["state"] == "success"
    pipelines = js(cli("list", "pipeline", "-o", "json"))
    assert pipelines[0]["name"] == "Upper" and pipelines[0]["inputs"] == [
        {"repo": "d", "branch": "master"}
    ]
    prov = js(cli("inspect", "commit", "Upper@master", "-o", "json"))
    assert {"repo": "d", "branch": "master", "id": put["id"]} in prov["direct_provenance"]
    datums = js(cli("list", "datum", f"Upper@{put['id']}", "-o", "json"))
    assert datums[0]["state"] == "success"
    assert "Upper" in cli("list", "pipeline").stdout.decode()
    cli("logs", "-p", "Upper")
    cli("delete", "pipeline", "Upper")
    assert js(cli("list", "pipeline", "-o", "json")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "commit", "nope"], "no repo 'nope'"),
        (["inspect", "commit", "d@mastr"], "no branch 'mastr' in d; branches: master"),
        (["inspect", "commit", "d@" + "0" * 32], "no commit 0000"),
        (["inspect", "commit", "d@@x"], "malformed reference"),
        (["get", "file", "d@master:/missing"], "no file or directory /missing"),
        (["put", "file", "d@master:/../etc/passwd", "-f", "-"], "climbs out of the repo"),
        (["put", "file", "d@master:/x", "-f", "/definitely/not/here"], "no local file"),
        (["create", "pipeline", "-f", "/definitely/not/here.json"], "no spec file"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_code_2(cli, args, message):
    cli("create", "repo", "d")
    cli("put", "file", "d@master:/a", "-f", "-", input=b"1")
    proc = cli(*args, check=False, input=b"")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr.decode()
    assert proc.stdout == b""
    assert js(cli("fsck", "-o", "json"))["ok"]


def test_spec_typo_names_the_field(cli, tmp_path):
    cli("create", "repo", "d")
    spec = tmp_path / "bad.json"
    spec.write_text(
        json.dumps(
            {
                "pipeline": {"name": "P"},
                "transform": {"cmnd": ["true"]},
                "input": {"pfs": {"repo": "d", "glob": "/"}},
            }
        )
    )
    proc = cli("create", "pipeline", "-f", str(spec), check=False)
    assert proc.returncode == 2
    assert "'transform.cmnd' is not a known field; did you mean 'cmd'?" in proc.stderr.decode()
    missing = tmp_path / "missing_repo.json"
    missing.write_text(
        json.dumps(
            {
                "pipeline": {"name": "P"},
                "transform": {"cmd": ["true"]},
                "input": {"pfs": {"repo": "ghost", "glob": "/"}},
            }
        )
    )
    proc = cli("create", "pipeline", "-f", str(missing), check=False)
    assert proc.returncode == 2 and "'ghost', which does not exist" in proc.stderr.decode()


def test_read_verbs_do_not_create_a_store(tulip_cli, tmp_path):
    proc = tulip_cli("list", "repo", check=False)
    assert proc.returncode == 2 and "no Tulip store" in proc.stderr.decode()
    assert not tulip_cli.root.exists()
