"""The Dockerfile the pipeline specs run in, checked where no Docker daemon runs.

The image is what ``tulip deploy --image`` points every spec at, so a COPY of a missing file,
a package left out, or an entrypoint that does not start would end every job on the cluster.
Here: the Dockerfile is parsed; every COPY source exists; every package pyproject installs is
copied in; the build context is assembled from the COPY lines alone, and the RUN steps are
executed in a clean virtual environment as the Dockerfile writes them (the dependencies are
the ones already installed: there is no network, so ``pip install -r`` becomes a check that
each requirement is satisfied; the ImageNet weight preload is skipped); then every command the
specs run starts from that environment, from ``/`` as the image's WORKDIR (TensorFlow's
import in the build's check is left to the rest of the suite). With a Docker
that knows ``docker build --check`` and a daemon, that runs too.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from pipelines.layout import PIPELINES

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def copies() -> list[tuple[list[str], str]]:
    return [
        (parts[:-1], parts[-1])
        for word, rest in instructions()
        if word == "COPY"
        for parts in [shlex.split(rest)]
    ]


def spec_commands() -> dict[str, list[str]]:
    """Each bundled spec's commands: its cmd, or the lines of its bash stdin."""
    found = {}
    for name in PIPELINES:
        spec = json.loads((REPO / "pipelines" / f"{name.lower()}.json").read_text())
        t = spec["transform"]
        if t.get("stdin"):
            lines = [shlex.split(x) for x in t["stdin"] if x.strip() and not x.startswith("set ")]
            found[name] = lines
        else:
            found[name] = [t["cmd"]]
    return found


def test_the_dockerfile_parses_and_copies_what_exists():
    steps = instructions()
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11"), steps[0]
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"  # the base image's Python satisfies it
    for sources, _dest in copies():
        for src in sources:
            if glob.has_magic(src):
                continue  # a pattern may match nothing on purpose (README.m[d])
            assert (REPO / src).exists(), f"Dockerfile COPY {src}: no such file in the checkout"
    copied = {Path(s).parts[0] for sources, _ in copies() for s in sources}
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for pattern in find["find"]["include"]:
        package = pattern.rstrip("*")
        assert package in copied, f"pyproject installs {package} but the Dockerfile never copies it"
    assert "pyproject.toml" in copied


def test_every_spec_command_comes_from_a_copied_package():
    copied = {Path(s).parts[0] for sources, _ in copies() for s in sources}
    for name, commands in spec_commands().items():
        for argv in commands:
            if argv[:2] == ["python3", "-m"]:
                assert argv[2].split(".")[0] in copied, f"{name} runs {argv[2]}, not in the image"
            else:
                assert argv[0] in _console_scripts(), f"{name} runs {argv[0]}: nothing installs it"


def _console_scripts() -> set[str]:
    return {ep.name for ep in metadata.entry_points(group="console_scripts")} | {"/bin/bash"}


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker here")
def test_docker_build_check_when_docker_can():
    proc = subprocess.run(
        ["docker", "build", "--check", str(REPO)], capture_output=True, text=True, timeout=120
    )
    if "unknown flag: --check" in proc.stderr or "Cannot connect" in proc.stderr:
        pytest.skip(f"docker cannot check here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory) -> Path:
    """The image's /opt/tulip built as the Dockerfile builds it, in a clean venv."""
    base = tmp_path_factory.mktemp("image")
    ctx = base / "opt" / "tulip"
    ctx.mkdir(parents=True)
    for sources, dest in copies():
        for src in sources:
            matches = glob.glob(str(REPO / src)) if glob.has_magic(src) else [str(REPO / src)]
            for m in matches:
                target = ctx / dest if dest not in ("./", ".") else ctx / Path(m).name
                if Path(m).is_dir():
                    shutil.copytree(m, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(m, target)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The dependencies (no network here): the site-packages this test runs with, as a plain
    # path entry, so Tulip's own editable install there is not picked up.
    deps = [p for p in sys.path if p.endswith("site-packages")] or [
        sysconfig.get_paths()["purelib"]
    ]
    (next(venv.glob("lib/python*/site-packages")) / "_deps.pth").write_text(
        "\n".join(dict.fromkeys(deps)) + "\n"
    )
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    tmp = base / "tmp"
    tmp.mkdir()
    runs = [rest for word, rest in instructions() if word == "RUN"]
    for run in runs:
        if "PRELOAD_WEIGHTS" in run:
            continue  # downloads the ImageNet weights; the tests use Keras' seeded cache
        for part in (p.strip() for p in run.replace("/tmp/", f"{tmp}/").split("&&")):
            if part.startswith("pip install -r "):
                _check_requirements(Path(part.split()[-1]), venv)
                continue
            if part.startswith("pip install"):  # this pip, installing into the clean venv
                pip = f"{shlex.quote(sys.executable)} -m pip --python {venv / 'bin' / 'python'}"
                part = part.replace("pip", pip, 1) + " --no-build-isolation --no-index --quiet"
            # TensorFlow's own import (half a minute on a loaded CI box) is every other
            # test's business; the image's Tulip packages are imported all the same.
            part = re.sub(r"import tensorflow, ai_edge_litert, ", "import ", part)
            proc = subprocess.run(
                ["bash", "-c", part], cwd=ctx, env=env, capture_output=True, text=True, timeout=300
            )
            assert proc.returncode == 0, f"RUN {part}\n{proc.stdout}\n{proc.stderr}"
    shutil.rmtree(ctx / "build", ignore_errors=True)
    return venv


def _check_requirements(requirements: Path, venv: Path) -> None:
    lines = [x for x in requirements.read_text().splitlines() if x.strip()]
    assert lines, "the requirements step produced no requirements"
    code = (
        "import sys\nfrom importlib import metadata\nfrom packaging.requirements import Requirement\n"
        "bad = []\nfor line in sys.stdin.read().splitlines():\n"
        "    r = Requirement(line)\n    try:\n        v = metadata.version(r.name)\n"
        "    except metadata.PackageNotFoundError:\n        bad.append(f'{r}: not installed'); continue\n"
        "    if not r.specifier.contains(v, prereleases=True):\n        bad.append(f'{r}: {v}')\n"
        "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        input="\n".join(lines),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"unsatisfied requirements:\n{proc.stdout}{proc.stderr}"
    for line in lines:
        Requirement(line)  # every line is a valid requirement


@pytest.mark.slow
def test_the_image_installs_and_every_spec_entrypoint_starts(image_venv, tmp_path):
    env = {**os.environ, "PATH": f"{image_venv / 'bin'}:/usr/bin:/bin"}
    for key in ("PYTHONPATH", "VIRTUAL_ENV", "TULIP_ROOT"):
        env.pop(key, None)
    where = subprocess.run(
        ["python3", "-c", "import pipelines, auditor; print(pipelines.__file__)"],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
    )
    installed = Path(where.stdout.strip())
    assert str(image_venv) in str(installed), f"pipelines came from {installed}, not the image"
    assert (installed.parent / "schema" / "CreatePipelineRequest.schema.json").exists()
    for name, commands in spec_commands().items():
        for argv in commands:
            if argv[:2] != ["python3", "-m"]:
                continue
            proc = subprocess.run(
                [*argv[:3], "--help"], cwd="/", env=env, capture_output=True, text=True, timeout=120
            )
            assert proc.returncode == 0 and "usage:" in proc.stdout, (name, argv, proc.stderr)
    # and the installed CLI the image's build step ends with
    assert fnmatch.fnmatch(
        subprocess.run(["tulip", "--version"], env=env, capture_output=True, text=True).stdout,
        "tulip, version *",
    )
    assert re.search(
        r"usage",
        subprocess.run(["tulip", "--help"], env=env, capture_output=True, text=True).stdout,
        re.I,
    )
