"""`tulip create pipeline` and `tulip list pipeline` warn about an empty input of a cross;
`--parallelism` sets the spec's parallelismSpec."""

import json


def test_create_and_list_pipeline_warn_about_an_empty_cross_input(tulip_cli, tmp_path):
    tulip_cli.env["TULIP_NO_AUTORUN"] = "1"
    tulip_cli("create", "repo", "photos")
    (tmp_path / "a.jpg").write_bytes(b"a")
    tulip_cli("put", "file", "photos@master:/a.jpg", "-f", str(tmp_path / "a.jpg"))
    tulip_cli("create", "repo", "label_reference")
    spec = {
        "pipeline": {"name": "Audit"},
        "transform": {"cmd": ["true"]},
        "input": {
            "cross": [
                {"pfs": {"repo": "photos", "glob": "/"}},
                {"pfs": {"repo": "label_reference", "glob": "/"}},
            ]
        },
    }
    (tmp_path / "audit.json").write_text(json.dumps(spec))
    made = tulip_cli("create", "pipeline", "-f", str(tmp_path / "audit.json"), "--parallelism", "2")
    err = made.stderr.decode()
    assert "warning: pipeline Audit: input label_reference@master is empty" in err
    assert "photos@master is empty" not in err
    listed = tulip_cli("list", "pipeline")
    assert "label_reference@master is empty" in listed.stderr.decode()
    assert "warning" not in listed.stdout.decode()  # data stays on stdout
    as_json = json.loads(tulip_cli("list", "pipeline", "-o", "json").stdout)
    assert "label_reference@master" in as_json[0]["warnings"][0]
    shown = json.loads(tulip_cli("inspect", "pipeline", "Audit", "-o", "json").stdout)
    assert shown["spec"]["parallelismSpec"] == {"constant": 2}
    bad = tulip_cli(
        "create", "pipeline", "-f", str(tmp_path / "audit.json"), "--parallelism", "0", check=False
    )
    assert bad.returncode != 0 and "--parallelism must be at least 1" in bad.stderr.decode()
