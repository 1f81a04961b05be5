"""`tulip fsck` and `tulip gc`: the embedded store's own checks, refused plainly elsewhere."""

from __future__ import annotations

import json


def test_fsck_and_gc_do_not_apply_to_a_pachyderm_cluster(tulip_cli, monkeypatch):
    for verb in ("fsck", "gc"):
        # No cluster runs here: the command must refuse before trying to reach one.
        proc = tulip_cli("--backend", "pachyderm", verb, check=False, env={"PACHD_ADDRESS": ""})
        err = proc.stderr.decode().strip()
        assert proc.returncode == 2, err
        assert err.count("\n") == 0, err  # one clear line, no traceback
        assert f"tulip {verb} does not apply to the pachyderm backend" in err


def test_fsck_reports_a_consistent_store_and_a_missing_blob(tulip_cli, tmp_path):
    (tmp_path / "f.txt").write_text("hello")
    tulip_cli("create", "repo", "r")
    tulip_cli("put", "file", "r@master:/f.txt", "-f", str(tmp_path / "f.txt"))
    ok = json.loads(tulip_cli("fsck", "-o", "json").stdout)
    assert ok["ok"] is True and ok["problems"] == []
    blobs = [p for p in (tulip_cli.root / "objects").rglob("*") if p.is_file()]
    assert len(blobs) == 1
    blobs[0].chmod(0o644)
    blobs[0].unlink()
    proc = tulip_cli("fsck", check=False)
    assert proc.returncode == 2
    assert "referenced but missing" in proc.stdout.decode()
