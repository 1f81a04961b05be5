"""Put Tulip's pipelines on a backend: the data repos they read, then the pipelines of
``pipelines/*.json`` in dependency order, each with its transform image replaced.

``tulip deploy --image IMAGE`` calls ``deploy`` on a Pachyderm cluster; the function itself
works on any ``Backend`` (the tests run it on the embedded store and the pachd double).
Deploying again updates the pipelines whose spec or image changed and leaves the others
alone, so a new image rolls out with the same command.

Everything that can be checked without a cluster is checked first, by ``prepare``: each spec
against Pachyderm's schema and Tulip's own checks, the order of the pipelines (no cycle), and
the image reference. ``offline_plan`` is what ``--dry-run`` shows when no cluster answers,
and ``NOT_CHECKED_OFFLINE`` says what only a cluster can tell.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from . import specs as specmod
from .backend import Backend
from .errors import InvalidSpec, PipelineCycle, PipelineNotFound, RepoNotFound
from .layout import PLACEHOLDER_IMAGE

# What a dry run without a cluster cannot know, and what no dry run checks.
NOT_CHECKED_OFFLINE = (
    "whether the repos and pipelines exist already (so: create or update)",
    "pachd's own validation of each spec (CreatePipelineV2 with dry_run)",
    "pachd's version (Tulip needs 2.8 or newer; 2.10 for the verdict write-back)",
)
NEVER_CHECKED = ("that the cluster's nodes can pull the image",)

# A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest], lower-case path.
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


@dataclass(frozen=True)
class DeployStep:
    """One line of a deployment plan, or of what was done."""

    kind: str  # "repo" or "pipeline"
    name: str
    action: str  # "create", "update", "unchanged", "exists", "would create", "would update",
    # "would create or update" (no cluster reached)
    detail: str = ""
    checked_by: str = "pachd"  # "pachd", or "offline": Pachyderm's schema and Tulip's checks

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


def check_image(image: str) -> str:
    """``image`` if it is a usable image reference, else ``InvalidSpec`` saying why."""
    if not image or not _IMAGE.match(image):
        raise InvalidSpec(
            f"--image must name a container image (e.g. registry.example/tulip:0.1.0), not "
            f"{image!r}"
        )
    if image == PLACEHOLDER_IMAGE:
        raise InvalidSpec(
            f"{PLACEHOLDER_IMAGE} is the placeholder the bundled specs name, and nothing "
            "publishes it: build the Dockerfile, push it to a registry the cluster pulls from, "
            "and pass that tag (docker build -t REGISTRY/tulip:0.1.0 . && docker push ...)"
        )
    return image


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


def prepare(raw_specs: list[tuple[str, dict]], *, image: str) -> list[dict]:
    """Every check that needs no cluster: the image, each spec (schema and Tulip's checks,
    cluster semantics), no cycle. Returns the specs, upstream first, running in ``image``."""
    check_image(image)
    specs = []
    for where, raw in raw_specs:
        try:
            specs.append(specmod.normalize(raw, local=False))
        except InvalidSpec as e:
            raise InvalidSpec(f"{where}: {e}") from None
    return [with_image(s, image) for s in order(specs)]


def _inputs(spec: dict) -> list[str]:
    return [i.repo for i in specmod.pfs_inputs(spec.get("input") or {})]


def offline_plan(specs: list[dict], *, image: str) -> list[DeployStep]:
    """What a deploy of ``prepare``d specs would do, as far as it is known with no cluster."""
    steps = [
        DeployStep("repo", r, "would create if missing", "an input no pipeline writes", "offline")
        for r in data_repos(specs)
    ]
    for spec in specs:
        steps.append(
            DeployStep(
                "pipeline",
                specmod.spec_name(spec),
                "would create or update",
                f"image {image}; inputs {', '.join(_inputs(spec))} (validated offline)",
                "offline",
            )
        )
    return steps


def deploy(
    backend: Backend,
    raw_specs: list[tuple[str, dict]],
    *,
    image: str,
    dry_run: bool = False,
    reprocess: bool = False,
) -> list[DeployStep]:
    """Create the data repos and create or update every pipeline, upstream first."""
    specs = prepare(raw_specs, image=image)
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
        inputs = _inputs(spec)
        detail = f"image {image}; inputs {', '.join(inputs)}"
        if existing is not None and existing.spec == spec and not reprocess:
            present.add(name)
            steps.append(DeployStep("pipeline", name, "unchanged", detail))
            continue
        if dry_run:
            checked_by = "pachd"
            if all(r in present for r in inputs):
                backend.create_pipeline(spec, update=existing is not None, dry_run=True)
                detail += " (validated by the backend)"
            else:
                detail += " (validated offline: its inputs do not exist yet)"
                checked_by = "offline"
            steps.append(
                DeployStep(
                    "pipeline",
                    name,
                    "would update" if existing else "would create",
                    detail,
                    checked_by,
                )
            )
            if existing is not None:
                present.add(name)  # its output repo is really there
            continue
        backend.create_pipeline(spec, update=existing is not None, reprocess=reprocess)
        present.add(name)
        steps.append(DeployStep("pipeline", name, "update" if existing else "create", detail))
    return steps
