"""Review decisions: what a reviewer said about the findings of one audit, checked and
turned into what happens to each file.

A decision names a finding by its id (``auditor.findings.finding_id``), optionally one of its
files, and an action:

* ``relabel`` a file (or every file of the finding) to class ``to``; a label issue's
  suggested class when ``to`` is left out. ``to`` must be a class of the data, one the
  finding names (a lookalike's class of the reference gallery), or a new one by leave
  (``new_class``);
* ``exclude`` it: the file leaves the branch, its content stays in the store's history;
* ``accept`` it: the label is right, do not flag the file again while its content is unchanged;
* ``defer`` it: no decision yet, recorded so that the queue shows who looked;
* ``rename`` a class (``from``, by default the finding's first class, to ``to``): every file
  of ``/<from>/`` moves to ``/<to>/``; ``merge`` is a rename into a class that exists.

Pure: no store. :func:`parse_decisions` checks the shape of the decision file,
:func:`expand` checks each decision against the audit's findings and classes and gives every
file one effect, or raises naming the decisions that disagree.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.findings import CLASS_LEVEL, id_of
from pipelines.errors import InvalidPath, TulipError
from pipelines.layout import label_of
from pipelines.refs import normalize_path

ACTIONS = ("relabel", "exclude", "accept", "rename", "merge", "defer")
FILE_ACTIONS = ("relabel", "exclude", "accept", "defer")
CLASS_ACTIONS = ("rename", "merge")
FIELDS = ("finding", "file", "action", "to", "from", "note")
#: the shortest finding-id prefix a decision may use (as git takes short commit ids)
MIN_PREFIX = 8


class InvalidDecisions(TulipError):
    """A decision file that is not a list of decisions, or a decision that cannot apply."""


class UnknownFinding(InvalidDecisions):
    """A decision names a finding the audit does not have."""


class UnknownClass(InvalidDecisions):
    """A relabel or merge into a class the data does not have (``--new-class`` allows it)."""


class ConflictingDecisions(InvalidDecisions):
    """Two decisions give one file (or one class) two different outcomes."""


@dataclass(frozen=True)
class Decision:
    finding: str
    action: str
    file: str | None = None
    to: str | None = None
    source: str | None = None  # "from": the class a rename or merge renames
    note: str | None = None

    def to_dict(self) -> dict[str, str]:
        d = {"finding": self.finding, "action": self.action}
        for key, value in (("file", self.file), ("to", self.to), ("from", self.source)):
            if value is not None:
                d[key] = value
        if self.note:
            d["note"] = self.note
        return d


def parse_decisions(raw: Any, *, source: str) -> list[Decision]:
    """Decisions from a decision file's text (or its parsed JSON): a list of
    ``{"finding", "file"?, "action", "to"?, "from"?, "note"?}``. Errors name ``source`` and
    the item."""
    if isinstance(raw, bytes | str):
        try:
            raw = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as e:
            raise InvalidDecisions(
                f"{source} is not valid JSON ({e}); nothing was applied"
            ) from None
    if isinstance(raw, dict) and isinstance(raw.get("decisions"), list):
        raw = raw["decisions"]  # the output of `tulip review import -o json`
    if not isinstance(raw, list):
        raise InvalidDecisions(
            f"{source} holds a JSON {type(raw).__name__}; it must be a list of decisions like "
            '{"finding": "<id>", "action": "relabel", "file": "/orchids/1.jpg", "to": "tulips"}'
        )
    out = []
    for i, item in enumerate(raw, start=1):
        where = f"{source}: decision {i}"
        if not isinstance(item, dict):
            raise InvalidDecisions(f"{where} is a JSON {type(item).__name__}, not an object")
        unknown = sorted(set(item) - set(FIELDS))
        if unknown:
            raise InvalidDecisions(
                f"{where} has unknown field(s) {', '.join(map(repr, unknown))}; "
                f"the fields are {', '.join(FIELDS)}"
            )
        for key in FIELDS:
            if item.get(key) is not None and not isinstance(item[key], str):
                raise InvalidDecisions(f"{where}: {key!r} must be a string")
        if not item.get("finding"):
            raise InvalidDecisions(f'{where} names no finding ("finding": "<id>")')
        action = item.get("action")
        if action not in ACTIONS:
            raise InvalidDecisions(f"{where}: action {action!r} is not one of {', '.join(ACTIONS)}")
        path = item.get("file")
        if path is not None:
            try:
                path = normalize_path(path)
            except InvalidPath as e:
                raise InvalidDecisions(f"{where}: {e}") from None
        if action in CLASS_ACTIONS and path is not None:
            raise InvalidDecisions(
                f"{where}: {action} moves a whole class; use relabel for one file ({path})"
            )
        out.append(
            Decision(
                finding=item["finding"].strip(),
                action=action,
                file=path,
                to=_class_name(item.get("to"), where) if item.get("to") is not None else None,
                source=_class_name(item["from"], where) if item.get("from") is not None else None,
                note=item.get("note"),
            )
        )
    return out


def _class_name(name: str, where: str) -> str:
    name = name.strip().strip("/")
    if not name or "/" in name or name in (".", "..") or "\x00" in name:
        raise InvalidDecisions(f"{where}: {name!r} is not a class name (one folder name)")
    return name


@dataclass(frozen=True)
class FileEffect:
    """What one decision does to one file."""

    path: str
    action: str  # relabel, exclude, accept or defer
    finding: str
    check: str
    item: int  # which decision (1-based), for messages
    to: str | None = None  # relabel: the class


@dataclass(frozen=True)
class Rename:
    source: str
    to: str
    finding: str
    item: int
    merge: bool


@dataclass
class Effects:
    """Every file's one outcome, every renamed class, and the decisions as resolved (full
    finding ids, a label issue's suggested class filled in)."""

    files: dict[str, FileEffect] = field(default_factory=dict)
    renames: dict[str, Rename] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    class_level: list[Decision] = field(default_factory=list)  # accept/defer of a whole class


def resolve_finding(ref: str, ids: Collection[str], *, where: str, audit: str) -> str:
    """A finding id, or a unique prefix of one (at least ``MIN_PREFIX`` hex digits)."""
    if ref in ids:
        return ref
    matches = [i for i in ids if i.startswith(ref)] if len(ref) >= MIN_PREFIX else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UnknownFinding(
            f"{where}: {ref!r} is the start of {len(matches)} finding ids; give more"
        )
    raise UnknownFinding(
        f"{where}: no finding {ref!r} in {audit} ({len(ids)} findings; "
        f"`tulip review list {audit}` shows their ids); nothing was applied"
    )


def expand(
    decisions: Iterable[Decision],
    findings: Mapping[str, Mapping[str, Any]],
    *,
    classes: Collection[str],
    new_class: bool = False,
    source: str = "decisions",
    audit: str = "the audit",
) -> Effects:
    """Check ``decisions`` against the audit's ``findings`` (by id) and the data's ``classes``,
    and give each file one effect. Raises ``UnknownFinding``, ``UnknownClass`` or
    ``ConflictingDecisions`` naming the decision; nothing is half-decided."""
    effects = Effects()
    known = set(classes)
    decisions = list(decisions)
    renamed_to = {d.to for d in decisions if d.action in CLASS_ACTIONS and d.to}
    seen: set[Decision] = set()
    for i, d in enumerate(decisions, start=1):
        where = f"{source}: decision {i}"
        fid = resolve_finding(d.finding, findings.keys(), where=where, audit=audit)
        f = findings[fid]
        check = str(f.get("check"))
        fclasses = [str(c) for c in f.get("classes") or []]
        files = [str(p) for p in f.get("files") or []]
        to = d.to
        if d.action == "relabel" and to is None:
            if check == "label_issue" and len(fclasses) == 2:
                to = fclasses[1]  # the suggested label
            else:
                raise InvalidDecisions(f'{where}: relabel needs "to": the class to move to')
        if d.action in CLASS_ACTIONS and to is None:
            raise InvalidDecisions(f'{where}: {d.action} needs "to": the new class name')
        resolved = Decision(fid, d.action, d.file, to, d.source, d.note)
        if resolved in seen:
            continue  # the same decision twice is one decision
        seen.add(resolved)
        effects.decisions.append(resolved)
        if d.file is not None and d.file not in set(files):
            shown = ", ".join(files[:3]) + (f", … ({len(files)} files)" if len(files) > 3 else "")
            raise InvalidDecisions(
                f"{where}: {d.file} is not a file of finding {fid} ({check}: {shown or 'no files'})"
            )
        if d.action in CLASS_ACTIONS:
            _add_rename(effects, resolved, fclasses, known, where=where, item=i)
            continue
        suggested = to in fclasses  # the finding named it (a class of the reference gallery)
        if d.action == "relabel" and not (
            to in known or to in renamed_to or suggested or new_class
        ):
            raise UnknownClass(
                f"{where}: relabel to {to!r}, a class the data does not have (classes: "
                f"{', '.join(sorted(known)) or 'none'}); pass --new-class to start one"
            )
        if d.file is None and check in CLASS_LEVEL and d.action in ("accept", "defer"):
            effects.class_level.append(resolved)  # a class as a whole: never withheld later
            continue
        for path in [d.file] if d.file is not None else files:
            if d.action == "relabel" and label_of(path) == to:
                raise InvalidDecisions(f"{where}: {path} is in class {to} already")
            _add_file(effects, FileEffect(path, d.action, fid, check, i, to), where=where)
    return effects


def _add_rename(
    effects: Effects,
    d: Decision,
    fclasses: list[str],
    known: set[str],
    *,
    where: str,
    item: int,
) -> None:
    source = d.source or (fclasses[0] if fclasses else None)
    if source is None:
        raise InvalidDecisions(f'{where}: the finding names no class; say which ("from")')
    if source not in known:
        raise UnknownClass(
            f"{where}: {d.action} of class {source!r}, which the data does not have "
            f"(classes: {', '.join(sorted(known))})"
        )
    if d.to == source:
        raise InvalidDecisions(f"{where}: {d.action} of {source} to itself does nothing")
    if d.action == "merge" and d.to not in known:
        raise UnknownClass(
            f"{where}: merge into {d.to!r}, a class the data does not have; rename makes a new one"
        )
    earlier = effects.renames.get(source)
    if earlier is not None and earlier.to != d.to:
        raise ConflictingDecisions(
            f"{where} renames {source} to {d.to}, but decision {earlier.item} renames it to "
            f"{earlier.to}; keep one"
        )
    chained = [r for r in effects.renames.values() if r.to == source or r.source == d.to]
    if chained:
        other = chained[0]
        raise ConflictingDecisions(
            f"{where} renames {source} to {d.to}, and decision {other.item} renames "
            f"{other.source} to {other.to}: a chain of renames is ambiguous; apply them one "
            "review at a time"
        )
    effects.renames[source] = Rename(source, d.to, d.finding, item, d.to in known)


def _add_file(effects: Effects, e: FileEffect, *, where: str) -> None:
    earlier = effects.files.get(e.path)
    if earlier is None:
        effects.files[e.path] = e
        return
    if (earlier.action, earlier.to) == (e.action, e.to):
        return  # two findings of one file, decided alike
    raise ConflictingDecisions(
        f"{where} would {_verb(e)} {e.path}, but decision {earlier.item} would "
        f"{_verb(earlier)} it; keep one (nothing was applied)"
    )


def _verb(e: FileEffect) -> str:
    return f"relabel to {e.to}" if e.action == "relabel" else e.action


def findings_by_id(document: Mapping[str, Any]) -> dict[str, dict]:
    """The audit document's findings by id (ids computed for documents without them)."""
    out: dict[str, dict] = {}
    for f in document.get("findings") or []:
        if isinstance(f, dict):
            out.setdefault(id_of(f), f)
    return out
