"""`tulip audit --embeddings FILE`: the real console script on files made elsewhere."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.auditor.synthetic import make


def _save(path, data, **override):
    arrays = {
        "paths": np.array(data.paths),
        "labels": np.array(data.labels),
        "embeddings": data.vectors,
    }
    arrays.update(override)
    np.savez(path, **arrays)
    return str(path)


def test_a_clean_file_passes_and_says_which_thresholds_it_used(tulip_cli, tmp_path):
    data = make([("a", 0, 30), ("b", 1, 30), ("c", 2, 30)], seed=2)
    proc = tulip_cli("audit", "--embeddings", _save(tmp_path / "e.npz", data), "-o", "json")
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "tulip.audit/v1" and doc["verdict"] in ("pass", "warn")
    assert doc["summary"]["images"] == 90 and doc["reference"] is None
    assert doc["embeddings"]["calibrated"] is False
    assert b"not one Tulip has calibrated" in proc.stderr  # said, not silently reused


def test_one_class_under_two_names_fails_with_exit_3(tulip_cli, tmp_path):
    data = make([("a", 0, 30), ("b", 1, 30), ("b_again", 1, 30)], seed=2)
    ref = make([("a", 0, 15), ("b", 1, 15)], seed=3, prefix="r")
    proc = tulip_cli(
        "audit",
        "--embeddings",
        _save(tmp_path / "e.npz", data),
        "--reference-embeddings",
        _save(tmp_path / "r.npz", ref),
        "--report",
        str(tmp_path / "report.html"),
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert b"class_overlap" in proc.stdout and b"b_again" in proc.stdout
    assert "b_again" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"embeddings": np.zeros((90, 4, 4))}, "must be 2-D"),
        ({"labels": np.array(["a"] * 90)}, "every row has the label 'a'"),
        ({"paths": np.array(["/a/x.jpg"] * 90)}, "duplicate paths"),
        ({"embeddings": np.full((90, 64), np.nan)}, "90 embeddings hold NaN"),
    ],
)
def test_bad_files_exit_2_naming_the_problem(tulip_cli, tmp_path, override, message):
    data = make([("a", 0, 45), ("b", 1, 45)], seed=2)
    proc = tulip_cli("audit", "--embeddings", _save(tmp_path / "e.npz", data, **override),
                     check=False)  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()


def test_a_missing_array_and_bad_usage_exit_2(tulip_cli, tmp_path):
    np.savez(tmp_path / "e.npz", paths=np.array(["/a/1.jpg"]), embeddings=np.zeros((1, 4)))
    proc = tulip_cli("audit", "--embeddings", str(tmp_path / "e.npz"), check=False)
    assert proc.returncode == 2 and b"no array 'labels'" in proc.stderr
    proc = tulip_cli("audit", "--embeddings", str(tmp_path / "e.npz"), "--dir", str(tmp_path),
                     check=False)  # fmt: skip
    assert proc.returncode == 2 and b"give one of" in proc.stderr


@pytest.mark.parametrize(
    ("target", "where"),
    [
        ("auditor.external.read_embeddings", "while reading its embeddings"),
        ("auditor.audit.label_scores", "in its label_issue step"),
    ],
)
def test_running_out_of_memory_exits_2_with_the_sampling_advice_not_a_traceback(
    tmp_path, capsys, monkeypatch, target, where
):
    """The real entry point in this process, so the allocation can be made to fail."""
    import importlib

    from tulip.cli.main import main

    module, name = target.rsplit(".", 1)

    def no_memory(*_a, **_kw):
        raise MemoryError

    monkeypatch.setattr(importlib.import_module(module), name, no_memory)
    data = make([("a", 0, 30), ("b", 1, 30)], seed=2)
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "audit", "--embeddings", _save(tmp_path / "e.npz", data)])
    err = capsys.readouterr().err
    assert done.value.code == 2, err
    assert f"ran out of memory {where}" in err and "sample_per_class = 500" in err
    assert "Traceback" not in err and "unexpected error" not in err


@pytest.mark.parametrize("quiet", [False, True])
def test_a_bar_follows_the_audit_steps_and_quiet_turns_it_off(tmp_path, monkeypatch, quiet):
    from tulip.cli import audit_cmd
    from tulip.cli.base import Settings

    bars = []

    class Bar:
        def __init__(self, total, desc, **_kw):
            self.total, self.desc, self.n, self.postfix, self.closed = total, desc, 0, [], False
            bars.append(self)

        def set_postfix_str(self, text, refresh=True):
            self.postfix.append(text)

        def refresh(self):
            pass

        def close(self):
            self.closed = True

    monkeypatch.setattr(audit_cmd.out, "progress_bar", Bar)
    from auditor import audit_embeddings

    data = make([("a", 0, 30), ("b", 1, 30)], seed=2)
    audit_embeddings(
        _save(tmp_path / "e.npz", data), progress=audit_cmd._step_progress(Settings(quiet=quiet))
    )
    if quiet:
        assert bars == []
        return
    (bar,) = bars
    assert bar.desc == "audit" and bar.n == bar.total and bar.closed
    assert bar.postfix[0] == "neighbours" and "label_issue" in bar.postfix
