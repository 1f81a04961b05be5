"""Pipeline specs: Pachyderm JSON in, one canonical camelCase dict out, or an error that names
the field.

Pachyderm accepts camelCase and snake_case keys; its JSON Schema knows camelCase only and
requires nothing. So: strip ``$schema``, turn schema keys (never user keys such as ``env``
names) into camelCase by walking the schema, validate, then run our own semantic checks.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .datums import glob_regex
from .errors import InvalidSpec, TulipError

NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,63}$")
INPUT_KINDS = ("pfs", "cross", "union", "join", "group", "cron")
LOCAL_UNSUPPORTED_INPUTS = ("group", "cron")
LOCAL_UNSUPPORTED_FIELDS = ("spout", "tfJob", "egress", "s3Out", "determined")


@functools.cache
def schema() -> dict:
    text = (
        resources.files("pipelines")
        .joinpath("schema/CreatePipelineRequest.schema.json")
        .read_text()
    )
    return json.loads(text)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _resolve(node: dict) -> dict:
    """Follow a local ``$ref`` (the schema keeps every type under ``definitions``)."""
    seen = 0
    while "$ref" in node and seen < 10:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema()["definitions"][name]
        seen += 1
    return node


def _to_camel(value: Any, node: dict) -> Any:
    node = _resolve(node)
    if isinstance(value, dict):
        props = node.get("properties")
        if props is None:  # a free-form map (env, labels): keep the user's keys
            return dict(value)
        out: dict[str, Any] = {}
        for key, sub in value.items():
            camel = key if key in props else _camel(key)
            if camel in out:
                raise InvalidSpec(f"spec field {camel!r} is given twice (as {key!r} too)")
            out[camel] = _to_camel(sub, props[camel]) if camel in props else sub
        return out
    if isinstance(value, list) and "items" in node:
        return [_to_camel(v, node["items"]) for v in value]
    return value


def _field_path(path: Iterator[Any]) -> str:
    parts: list[str] = []
    for p in path:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "(top level)"


def _schema_error(err: Any, spec: dict) -> InvalidSpec:
    import jsonschema

    # Prefer the most specific error: an unknown key, else the deepest.
    candidates = [err, *list(jsonschema.exceptions.best_match([err]).context or [])]
    for e in candidates:
        if e.validator == "additionalProperties":
            node = _resolve(e.schema) if isinstance(e.schema, dict) else {}
            known = sorted((node.get("properties") or {}).keys())
            extra = sorted(set(e.instance) - set(known)) if isinstance(e.instance, dict) else []
            where = _field_path(e.absolute_path)
            for key in extra:
                hint = difflib.get_close_matches(_camel(key), known, n=1)
                full = f"{where}.{key}" if e.absolute_path else key
                msg = f"spec field {full!r} is not a known field"
                msg += (
                    f"; did you mean {hint[0]!r}?"
                    if hint
                    else f"; known fields here: {', '.join(known)}"
                )
                return InvalidSpec(msg)
    deepest = max(
        [err, *jsonschema.exceptions.ErrorTree([err]).errors.values()],
        key=lambda e: len(e.absolute_path),
    )
    where = _field_path(deepest.absolute_path)
    if deepest.validator == "oneOf":
        kinds = [
            alt.get("type")
            for alt in deepest.validator_value
            if alt.get("type") not in (None, "null")
        ]
        if kinds:
            return InvalidSpec(
                f"spec field {where!r} must be {' or '.join(_article(k) for k in kinds)}, "
                f"not {json.dumps(deepest.instance)}"
            )
    return InvalidSpec(f"spec field {where!r}: {deepest.message}")


def _article(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def normalize(raw: dict, *, local: bool = True) -> dict:
    """camelCase a spec and validate it against Pachyderm's schema; semantic checks follow.

    ``local=False`` skips the checks for features only the embedded engine lacks (cron and
    group inputs, spouts, egress...), for specs bound for a real Pachyderm cluster.
    """
    if not isinstance(raw, dict):
        raise InvalidSpec(f"a pipeline spec is a JSON object, not {type(raw).__name__}")
    raw = {k: v for k, v in raw.items() if k != "$schema"}
    top = schema()["definitions"]["CreatePipelineRequest"]
    spec = _to_camel(raw, top)

    import jsonschema

    validator = jsonschema.Draft4Validator(schema())
    errors = sorted(validator.iter_errors(spec), key=lambda e: (len(e.absolute_path), str(e.path)))
    # Unknown keys first: they are the usual typo, and they explain other errors.
    errors.sort(key=lambda e: e.validator != "additionalProperties")
    if errors:
        raise _schema_error(errors[0], spec)
    check_semantics(spec, local=local)
    return spec


def load(path: Path | str) -> dict:
    """Read and validate a spec file; JSON errors say the line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidSpec(f"no spec file at {path}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidSpec(
            f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None
    try:
        return normalize(raw)
    except InvalidSpec as e:
        raise InvalidSpec(f"{path}: {e}") from None


# -- semantic checks ------------------------------------------------------------------------


def check_semantics(spec: dict, *, local: bool = True) -> None:
    name = (spec.get("pipeline") or {}).get("name")
    if not name:
        raise InvalidSpec("spec field 'pipeline.name' is missing: every pipeline needs a name")
    if not NAME_RE.match(name):
        raise InvalidSpec(
            f"spec field 'pipeline.name' is {name!r}: use 1-63 letters, digits, '_' or '-'"
        )
    transform = spec.get("transform")
    if not transform:
        raise InvalidSpec(f"spec field 'transform' is missing in pipeline {name}")
    if not transform.get("cmd"):
        raise InvalidSpec(
            f"spec field 'transform.cmd' is missing in pipeline {name}: say what to run"
        )
    if spec.get("input") is None:
        raise InvalidSpec(f"spec field 'input' is missing in pipeline {name}")
    names: list[str] = []
    _check_input(spec["input"], "input", names, local=local)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidSpec(
            f"spec field 'input' names {dup[0]!r} twice; give one of them a different 'name'"
        )
    if "out" in names:
        raise InvalidSpec("spec field 'input' uses the name 'out', which is reserved for /pfs/out")
    service = spec.get("service")
    if service is not None:
        for key in ("internalPort",):
            port = service.get(key)
            if not isinstance(port, int) or not 0 < port < 65536:
                raise InvalidSpec(f"spec field 'service.{key}' must be a port number, not {port!r}")
    parallelism = (spec.get("parallelismSpec") or {}).get("constant")
    if parallelism is not None and (
        not isinstance(parallelism, int) or isinstance(parallelism, bool) or parallelism < 0
    ):
        raise InvalidSpec(
            "spec field 'parallelismSpec.constant' must be a whole number of workers, 0 or more "
            f"(0 and 1 mean one), not {parallelism!r}"
        )
    tries = spec.get("datumTries")
    if tries is not None and tries < 0:
        raise InvalidSpec(f"spec field 'datumTries' must be 0 or more, not {tries}")
    if local:
        for field in LOCAL_UNSUPPORTED_FIELDS:
            if spec.get(field):
                raise InvalidSpec(
                    f"spec field {field!r} is not supported by the embedded engine; "
                    "run this pipeline on a Pachyderm cluster (--backend pachyderm)"
                )


def _check_input(node: dict, where: str, names: list[str], *, local: bool) -> None:
    if not isinstance(node, dict):
        raise InvalidSpec(f"spec field {where!r} must be an object")
    kinds = [k for k in INPUT_KINDS if node.get(k) is not None]
    if len(kinds) != 1:
        raise InvalidSpec(
            f"spec field {where!r} must set exactly one of {', '.join(INPUT_KINDS)}; "
            f"it sets {', '.join(kinds) or 'none'}"
        )
    kind = kinds[0]
    if local and kind in LOCAL_UNSUPPORTED_INPUTS:
        raise InvalidSpec(
            f"spec field '{where}.{kind}': {kind} inputs are not supported by the embedded engine; "
            "use pfs, cross, union or join"
        )
    if kind == "pfs":
        pfs = node["pfs"]
        if not pfs.get("repo"):
            raise InvalidSpec(f"spec field '{where}.pfs.repo' is missing: name the input repo")
        if not pfs.get("glob"):
            raise InvalidSpec(
                f"spec field '{where}.pfs.glob' is missing for repo {pfs['repo']!r}: "
                'say how to split it into datums, e.g. "/" or "/*"'
            )
        if not pfs["glob"].startswith("/"):
            raise InvalidSpec(
                f"spec field '{where}.pfs.glob' is {pfs['glob']!r}: a glob starts with '/'"
            )
        try:
            glob_regex(pfs["glob"])
        except (InvalidSpec, re.error) as e:
            reason = str(e).split(": ", 1)[-1] if isinstance(e, InvalidSpec) else e.msg
            raise InvalidSpec(
                f"spec field '{where}.pfs.glob' is {pfs['glob']!r}, not a valid glob ({reason}); "
                'for example "/", "/*" or "/*/*"'
            ) from None
        names.append(pfs.get("name") or pfs["repo"])
        return
    if kind == "cron":
        names.append(node["cron"].get("name") or "cron")
        return
    children = node[kind]
    if not children:
        raise InvalidSpec(f"spec field '{where}.{kind}' is empty: list at least one input")
    for i, child in enumerate(children):
        _check_input(child, f"{where}.{kind}[{i}]", names, local=local)


# -- what the engine needs from a spec ------------------------------------------------------


@dataclass(frozen=True)
class PfsInput:
    name: str
    repo: str
    branch: str
    glob: str
    join_on: str | None = None
    outer_join: bool = False


def pfs_inputs(node: dict) -> list[PfsInput]:
    """Every pfs leaf of an input tree, in order."""
    if node.get("pfs") is not None:
        p = node["pfs"]
        return [
            PfsInput(
                name=p.get("name") or p["repo"],
                repo=p["repo"],
                branch=p.get("branch") or "master",
                glob=p["glob"],
                join_on=p.get("joinOn"),
                outer_join=bool(p.get("outerJoin")),
            )
        ]
    for kind in ("cross", "union", "join", "group"):
        if node.get(kind):
            return [leaf for child in node[kind] for leaf in pfs_inputs(child)]
    return []


def starving_inputs(node: dict, is_empty: Callable[[PfsInput], bool]) -> list[PfsInput]:
    """The empty inputs that leave this input tree with no datums, in spec order.

    A ``cross`` (or an inner ``join``) has no datums when any of its inputs has none, a
    ``union`` when all of its inputs have none. An input with ``outerJoin`` in a join is
    optional: its being empty starves nothing. ``is_empty`` says whether a pfs input's
    branch has no files (or no commit) now."""
    return _starving(node, is_empty)[1]


def _starving(node: dict, is_empty: Callable[[PfsInput], bool]) -> tuple[bool, list[PfsInput]]:
    """(does this node have no datums, the empty inputs to blame)."""
    if node.get("pfs") is not None:
        [leaf] = pfs_inputs(node)
        return (True, [leaf]) if is_empty(leaf) else (False, [])
    if node.get("union"):
        results = [_starving(c, is_empty) for c in node["union"]]
        if all(empty for empty, _ in results):
            return True, [leaf for _, leaves in results for leaf in leaves]
        return False, []
    for kind in ("cross", "join", "group"):
        if node.get(kind):
            children = node[kind]
            results = [_starving(c, is_empty) for c in children]
            if kind == "join":  # datums exist when the inputs present are all outerJoin ones
                present = [c for c, (empty, _) in zip(children, results, strict=True) if not empty]
                outer = all((c.get("pfs") or {}).get("outerJoin") for c in present)
                if present and len(present) < len(children) and outer:
                    return False, []
            blamed = [leaf for empty, leaves in results if empty for leaf in leaves]
            return bool(blamed), blamed
    return False, []


def empty_input_warnings(backend: Any, spec: dict) -> list[str]:
    """Sentences naming each empty input that leaves a pipeline with no datums.

    ``backend`` is any :class:`pipelines.backend.Backend`. A branch with no commit, or whose
    finished head holds no file, is empty; one still being written is not (yet)."""

    def is_empty(leaf: PfsInput) -> bool:
        try:
            head = backend.inspect_branch(leaf.repo, leaf.branch).head
            if head is None:
                return True
            if backend.inspect_commit(leaf.repo, head).finished is None:
                return False
            return next(iter(backend.walk_files(leaf.repo, head)), None) is None
        except TulipError:
            return False  # a missing repo is reported by whoever needs it

    name = spec_name(spec)
    return [
        f"pipeline {name}: input {leaf.repo}@{leaf.branch} is empty, and a cross with an empty "
        f"input has no datums: {name} will output nothing until {leaf.repo} has files "
        "(an optional input belongs in a join with outerJoin)"
        for leaf in starving_inputs(spec.get("input") or {}, is_empty)
    ]


def spec_name(spec: dict) -> str:
    return spec["pipeline"]["name"]


def transform_hash(spec: dict) -> str:
    """What the outputs depend on besides the data: changing it reprocesses every datum."""
    relevant = {
        "transform": spec.get("transform"),
        "salt": spec.get("salt"),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
