"""Put Tulip's pipelines on a backend: the data repos they read, then the pipelines of
``pipelines/*.json`` in dependency order, each with its transform image replaced.

``tulip deploy --image IMAGE`` calls ``deploy`` on a Pachyderm cluster; the function itself
works on any ``Backend`` (the tests run it on the embedded store and the pachd double).
Deploying again updates the pipelines whose spec or image changed and leaves the others
alone, so a new image rolls out with the same command.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from . import specs as specmod
from .backend import Backend
from .errors import InvalidSpec, PipelineCycle, PipelineNotFound, RepoNotFound


@dataclass(frozen=True)
class DeployStep:
    """One line of a deployment plan, or of what was done."""

    kind: str  # "repo" or "pipeline"
    name: str
    action: str  # "create", "update", "unchanged", "exists", "would create", "would update"
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def bundled_specs() -> list[tuple[str, dict]]:
    """The specs shipped in the ``pipelines`` package, as (file name, raw spec)."""
    out = []
    for entry in sorted(resources.files("pipelines").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            out.append((entry.name, json.loads(entry.read_text(encoding="utf-8"))))
    return out


def load_specs(paths: list[Path]) -> list[tuple[str, dict]]:
    out = []
    for p in paths:
        try:
            out.append((str(p), json.loads(Path(p).read_text(encoding="utf-8"))))
        except FileNotFoundError:
            raise InvalidSpec(f"no spec file at {p}") from None
        except json.JSONDecodeError as e:
            raise InvalidSpec(
                f"{p}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
            ) from None
    return out


def with_image(spec: dict, image: str) -> dict:
    """A copy of a (normalized) spec whose transform runs in ``image``."""
    out = json.loads(json.dumps(spec))
    out.setdefault("transform", {})["image"] = image
    return out


def order(specs: list[dict]) -> list[dict]:
    """Upstream pipelines first (a pipeline reads the output repo named after another)."""
    by_name = {specmod.spec_name(s): s for s in specs}
    needs = {
        name: {i.repo for i in specmod.pfs_inputs(s.get("input") or {}) if i.repo in by_name}
        for name, s in by_name.items()
    }
    done: list[str] = []
    while needs:
        ready = sorted(n for n, deps in needs.items() if not deps - set(done))
        if not ready:
            raise PipelineCycle(
                f"the specs read each other's outputs in a cycle: {', '.join(sorted(needs))}"
            )
        for n in ready:
            done.append(n)
            del needs[n]
    return [by_name[n] for n in done]


def data_repos(specs: list[dict]) -> list[str]:
    """Repos the pipelines read that no pipeline writes: people put data in them."""
    outputs = {specmod.spec_name(s) for s in specs}
    repos = {i.repo for s in specs for i in specmod.pfs_inputs(s.get("input") or {})}
    return sorted(repos - outputs)


def deploy(
    backend: Backend,
    raw_specs: list[tuple[str, dict]],
    *,
    image: str,
    dry_run: bool = False,
    reprocess: bool = False,
) -> list[DeployStep]:
    """Create the data repos and create or update every pipeline, upstream first."""
    if not image or any(c.isspace() for c in image):
        raise InvalidSpec(
            f"--image must name a container image (e.g. registry/tulip:0.1.0), not {image!r}"
        )
    specs = []
    for where, raw in raw_specs:
        try:
            specs.append(specmod.normalize(raw, local=False))
        except InvalidSpec as e:
            raise InvalidSpec(f"{where}: {e}") from None
    specs = [with_image(s, image) for s in order(specs)]
    steps: list[DeployStep] = []
    present: set[str] = set()
    for repo in data_repos(specs):
        try:
            backend.inspect_repo(repo)
            present.add(repo)
            steps.append(DeployStep("repo", repo, "exists"))
        except RepoNotFound:
            if dry_run:
                steps.append(DeployStep("repo", repo, "would create"))
            else:
                backend.create_repo(repo, description="input of the Tulip pipelines")
                present.add(repo)
                steps.append(DeployStep("repo", repo, "create"))
    for spec in specs:
        name = specmod.spec_name(spec)
        try:
            existing = backend.inspect_pipeline(name)
        except PipelineNotFound:
            existing = None
        inputs = [i.repo for i in specmod.pfs_inputs(spec.get("input") or {})]
        detail = f"image {image}; inputs {', '.join(inputs)}"
        if existing is not None and existing.spec == spec and not reprocess:
            present.add(name)
            steps.append(DeployStep("pipeline", name, "unchanged", detail))
            continue
        if dry_run:
            if all(r in present for r in inputs):
                backend.create_pipeline(spec, update=existing is not None, dry_run=True)
                detail += " (validated by the backend)"
            else:
                detail += " (validated locally: its inputs do not exist yet)"
            steps.append(
                DeployStep("pipeline", name, "would update" if existing else "would create", detail)
            )
            if existing is not None:
                present.add(name)  # its output repo is really there
            continue
        backend.create_pipeline(spec, update=existing is not None, reprocess=reprocess)
        present.add(name)
        steps.append(DeployStep("pipeline", name, "update" if existing else "create", detail))
    return steps
