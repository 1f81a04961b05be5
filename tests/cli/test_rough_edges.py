"""What a newcomer met, run as they ran it: the real console script against a real store.

A policy value out of range, a reader that closes the pipe, TensorFlow's start-up noise, and
the label of an image in a sub-folder (one rule from Embed to the audit to the lineage diff).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.shared import TENSORFLOW_NOISE

SPECS = Path(__file__).resolve().parents[2] / "pipelines"


def _picture(path: Path, colour: tuple[int, int, int], seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (64, 64), colour)
    for i in range(64):  # a pattern per picture, so no two are copies
        img.putpixel(
            ((seed * 7 + i * 3) % 64, (seed * 13 + i) % 64), (255 - colour[0], i * 4, seed)
        )
    img.save(path, "PNG")


def _exe() -> str:
    return shutil.which("tulip", path=str(Path(sys.executable).parent)) or "tulip"


def test_a_policy_value_out_of_range_is_exit_2_and_one_line_naming_key_and_range(
    tulip_cli, tmp_path
):
    folder = tmp_path / "photos"
    _picture(folder / "daisy" / "1.png", (250, 250, 250), 1)
    policy = tmp_path / "policy.toml"
    policy.write_text("[duplicate]\nnear_threshold = 5\n")
    proc = tulip_cli("audit", "--dir", str(folder), "--policy", str(policy), check=False)
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [
        f"tulip: error: policy [duplicate] near_threshold in {policy} = 5.0 is out of range: "
        "it must be between -1 and 1 (a cosine similarity)"
    ]


def test_a_reader_that_closes_the_pipe_early_ends_it_quietly(tulip_cli, tmp_path):
    tree = tmp_path / "many"
    tree.mkdir()
    for i in range(3000):  # far more than a pipe buffer of `list file` output
        (tree / f"file-with-a-longish-name-{i:05d}.txt").write_bytes(b"x")
    tulip_cli("create", "repo", "r")
    tulip_cli("put", "file", "r@master:/", "-f", str(tree), "-r", "-q")
    for args in (["list", "file", "r@master"], ["list", "commit", "r"], ["list", "job"]):
        proc = subprocess.Popen(
            [_exe(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "TULIP_ROOT": str(tulip_cli.root)},
        )
        proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
        assert err == ""


def _tensorflow_import(env: dict) -> str:
    code = "from training.runtime import quiet_tensorflow\nquiet_tensorflow()\nimport tensorflow\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_tensorflow_start_up_lines_are_silenced_unless_verbose():
    bare = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], capture_output=True, text=True, timeout=300
    ).stderr
    noise = [word for word in TENSORFLOW_NOISE if word in bare]
    if not noise:
        pytest.skip("TensorFlow prints no start-up lines on this machine")
    env = {
        k: v for k, v in os.environ.items() if k not in ("TULIP_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")
    }
    quiet = _tensorflow_import(env)
    assert [word for word in noise if word in quiet] == []
    loud = _tensorflow_import({**env, "TULIP_VERBOSE": "1"})
    assert [word for word in noise if word in loud] == noise


def _nested_store(tulip_cli, tmp_path: Path) -> tuple[str, str]:
    """flower_photos with daisy (partly in /daisy/sub) and roses; a second commit adds one more
    daisy under /daisy/sub. The Embed pipeline (colour histogram backbone) runs on both."""
    first = tmp_path / "first"
    for i in range(8):
        _picture(first / "daisy" / ("sub" if i % 2 else "") / f"d{i}.png", (240, 240, 230), i)
        _picture(first / "roses" / f"r{i}.png", (200, 20, 40), 100 + i)
    spec = json.loads((SPECS / "embed.json").read_text())
    spec["transform"]["env"]["ARCHITECTURE"] = "colour_histogram"
    (tmp_path / "embed.json").write_text(json.dumps(spec))
    tulip_cli("create", "repo", "flower_photos")
    tulip_cli("create", "pipeline", "-f", str(tmp_path / "embed.json"))
    put = json.loads(
        tulip_cli(
            "put", "file", "flower_photos@master:/", "-f", str(first), "-r", "-o", "json"
        ).stdout
    )
    tulip_cli("wait", "commit", f"flower_photos@{put['id']}", "-q")
    more = tmp_path / "more.png"
    _picture(more, (245, 245, 235), 99)
    second = json.loads(
        tulip_cli(
            "put", "file", "flower_photos@master:/daisy/sub/d99.png", "-f", str(more), "-o", "json"
        ).stdout
    )
    tulip_cli("wait", "commit", f"flower_photos@{second['id']}", "-q")
    return put["id"], second["id"]


@pytest.mark.slow
def test_an_image_in_a_sub_folder_is_of_its_top_folder_everywhere(tulip_cli, tmp_path):
    first, second = _nested_store(tulip_cli, tmp_path)
    record = json.loads(tulip_cli("get", "file", f"Embed@{second}:/daisy/sub/d99.png.json").stdout)
    assert record["label"] == "daisy"
    audit = json.loads(
        tulip_cli("audit", f"flower_photos@{second}", "-o", "json", check=False).stdout
    )
    assert audit["summary"]["classes"] == {"daisy": 9, "roses": 8}
    diff = json.loads(
        tulip_cli(
            "lineage", f"flower_photos@{first}", "--diff", f"flower_photos@{second}", "-o", "json"
        ).stdout
    )
    assert diff["added"] == ["flower_photos:/daisy/sub/d99.png"]
    assert diff["class_counts_a"] == {"flower_photos:daisy": 8, "flower_photos:roses": 8}
    assert diff["class_counts_b"] == {"flower_photos:daisy": 9, "flower_photos:roses": 8}
    assert diff["classes_added"] == [] and diff["classes_removed"] == []


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("parallelism_spec", {"constant": -3}, "'parallelismSpec.constant' must be a whole"),
        ("glob", "/**[[", "'input.pfs.glob' is '/**[[', not a valid glob (glob '/**[[' has an"),
        ("glob", "/[z-a]", "'input.pfs.glob' is '/[z-a]', not a valid glob (bad character range"),
    ],
)
def test_a_bad_spec_value_is_exit_2_naming_the_field(tulip_cli, tmp_path, field, value, said):
    spec = {
        "pipeline": {"name": "X"},
        "transform": {"cmd": ["true"]},
        "input": {"pfs": {"repo": "r", "glob": value if field == "glob" else "/*"}},
    }
    if field != "glob":
        spec[field] = value
    path = tmp_path / "x.json"
    path.write_text(json.dumps(spec))
    tulip_cli("create", "repo", "r")
    proc = tulip_cli("create", "pipeline", "-f", str(path), check=False)
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and said in lines[0], lines
    assert json.loads(tulip_cli("list", "pipeline", "-o", "json").stdout) == []  # none made
