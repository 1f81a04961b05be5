"""Review work outside Tulip: Label Studio tasks out and its annotations back as decisions, or a
plain CSV (``file, finding_id, action, to``) for a spreadsheet.

Label Studio: one task per file of the audit's findings (a file in several findings is one
task, owned by the worst finding). ``data`` carries the image URL (served by ``tulip serve``
at ``/files/<repo>/<commit>/<path>``, signed when the server has a token), the file, its
class, the finding id and the audit; ``predictions`` hold the suggested class as a
``choices`` result, so reviewers start from Tulip's suggestion. The labeling config
(:func:`label_config`) offers every class plus ``(exclude)`` and ``(not sure)``. An
annotation then reads back as: the file's own class, accept; another class, relabel;
``(exclude)``, exclude; ``(not sure)``, defer. An export whose tasks were not made from one
audit by :func:`export_review` (another project's) is refused.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from auditor.findings import id_of
from pipelines.backend import Backend
from pipelines.errors import TulipError
from pipelines.layout import label_of

from .decisions import Decision, InvalidDecisions, parse_decisions
from .target import load_target

TASKS_SCHEMA = "tulip.review-tasks/v1"
FROM_NAME = "label"  # the Choices control of the labeling config
TO_NAME = "image"
EXCLUDE = "(exclude)"
NOT_SURE = "(not sure)"
CSV_COLUMNS = ("file", "finding_id", "action", "to")
SUGGESTS = ("label_issue", "lookalike_class")  # checks whose second class is a suggestion


class ForeignExport(InvalidDecisions):
    """A Label Studio export that is not of tasks ``tulip review export`` made for this audit."""


def file_signature(token: str, repo: str, commit: str, path: str) -> str:
    """What lets one image URL through a token-protected ``tulip serve`` (Label Studio's
    browser has no cookie of ours): an HMAC of the file's address under the server's token."""
    msg = f"tulip-file/v1\n{repo}\n{commit}\n{path}".encode()
    return hmac.new(token.encode(), msg, hashlib.sha256).hexdigest()[:32]


def file_url(base_url: str, repo: str, commit: str, path: str, *, token: str | None) -> str:
    url = f"{base_url.rstrip('/')}/files/{quote(repo)}/{commit}/{quote(path.lstrip('/'), safe='/')}"
    return url + (f"?sig={file_signature(token, repo, commit, path)}" if token else "")


@dataclass
class Exported:
    text: str
    label_config: str
    items: int  # tasks or rows
    findings: int


def suggestion(finding: dict, path: str) -> str:
    classes = [str(c) for c in finding.get("classes") or []]
    if finding.get("check") in SUGGESTS and len(classes) == 2:
        return classes[1]
    return label_of(path)


def export_review(
    backend: Backend | None,
    audit_ref: str,
    *,
    format: str,
    base_url: str = "http://127.0.0.1:8080",
    token: str | None = None,
    checks: Collection[str] | None = None,
) -> Exported:
    """The audit's findings as Label Studio tasks (``format="label-studio"``) or CSV rows."""
    target = load_target(backend, audit_ref)
    findings = [
        f
        for f in target.document["findings"]
        if f.get("files") and (checks is None or f.get("check") in checks)
    ]
    data = target.data
    classes = set((target.document.get("summary") or {}).get("classes") or {})
    classes |= {suggestion(f, p) for f in findings for p in f["files"]}
    config = label_config(sorted(c for c in classes if c))
    if format == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        rows = 0
        for f in findings:
            for p in f["files"]:
                s = suggestion(f, p)
                w.writerow([p, id_of(f), "", s if s != label_of(p) else ""])
                rows += 1
        return Exported(buf.getvalue(), config, rows, len(findings))
    if format != "label-studio":
        raise InvalidDecisions(f"unknown format {format!r}: label-studio or csv")
    tasks: dict[str, dict] = {}
    for f in findings:
        fid = id_of(f)
        for p in f["files"]:
            if p in tasks:
                tasks[p]["data"]["findings"].append(fid)
                continue
            image = (
                file_url(base_url, data["repo"], data["commit"], p, token=token)
                if data.get("commit")
                else p
            )
            tasks[p] = {
                "data": {
                    "image": image,
                    "path": p,
                    "label": label_of(p),
                    "finding": fid,
                    "findings": [fid],
                    "check": f.get("check"),
                    "severity": f.get("severity"),
                    "message": f.get("message"),
                    "tulip_audit": target.source,
                    "tulip_data": f"{data.get('repo')}@{data.get('commit')}",
                    "tulip_schema": TASKS_SCHEMA,
                },
                "predictions": [
                    {
                        "model_version": f"tulip {f.get('check')}",
                        "score": float(f.get("score") or 0.0),
                        "result": [
                            {
                                "id": fid[:10],
                                "from_name": FROM_NAME,
                                "to_name": TO_NAME,
                                "type": "choices",
                                "value": {"choices": [suggestion(f, p)]},
                            }
                        ],
                    }
                ],
            }
    text = json.dumps(list(tasks.values()), indent=2) + "\n"
    return Exported(text, config, len(tasks), len(findings))


def label_config(classes: list[str]) -> str:
    """The Label Studio labeling config the exported tasks are made for."""
    choices = "\n".join(
        f"    <Choice value={quoteattr(c)}/>" for c in [*classes, EXCLUDE, NOT_SURE]
    )
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
        '  <Header value="$path ($label): $check, $severity"/>\n'
        '  <Text name="message" value="$message"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInLine="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


@dataclass
class Imported:
    audit: str | None
    decisions: list[Decision] = field(default_factory=list)
    items: int = 0
    skipped: int = 0

    def as_dict(self) -> dict:
        return {"audit": self.audit, "decisions": [d.to_dict() for d in self.decisions]}


def import_review(
    raw: bytes | str, *, format: str, source: str = "the export", audit: str | None = None
) -> Imported:
    """Decisions from a Label Studio JSON export (``format="label-studio"``) or a CSV."""
    if format == "csv":
        return _from_csv(raw, source=source, audit=audit)
    if format != "label-studio":
        raise InvalidDecisions(f"unknown format {format!r}: label-studio or csv")
    try:
        tasks = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidDecisions(f"{source} is not valid JSON ({e})") from None
    if not isinstance(tasks, list):
        raise ForeignExport(
            f"{source} is a JSON {type(tasks).__name__}, not a Label Studio JSON export "
            "(a list of tasks: Export > JSON in the project)"
        )
    audits, projects = set(), set()
    for i, task in enumerate(tasks, start=1):
        if not isinstance(task, dict):
            raise ForeignExport(f"{source}: task {i} is not an object")
        data = _task_data(task)
        if task.get("project") is not None:
            projects.add(task["project"])
        if not isinstance(data.get("tulip_audit"), str) or not data.get("finding"):
            project = f" (Label Studio project {task['project']})" if "project" in task else ""
            raise ForeignExport(
                f"{source}: task {i}{project} holds no tulip_audit and finding in its data: "
                "this is an export of another project, not of tasks made by `tulip review "
                "export`; nothing was imported"
            )
        audits.add(data["tulip_audit"])
    if len(projects) > 1:
        raise ForeignExport(
            f"{source} mixes tasks of Label Studio projects {', '.join(map(str, sorted(projects, key=str)))}; "
            "export one project"
        )
    if len(audits) > 1:
        raise ForeignExport(
            f"{source} holds tasks of {len(audits)} audits ({', '.join(sorted(audits))}); "
            "import one audit's project at a time"
        )
    found = next(iter(audits), None)
    if audit is not None and found is not None and found != audit:
        raise ForeignExport(
            f"{source} holds the tasks of {found}, not of {audit}: it is another project's export"
        )
    out = Imported(found or audit, items=len(tasks))
    for task in tasks:
        data = _task_data(task)
        choice, who = _choice(task)
        if choice is None:
            out.skipped += 1
            continue
        path, label = (
            str(data.get("path")),
            str(data.get("label") or label_of(str(data.get("path")))),
        )
        note = f"Label Studio task {task.get('id')}" + (f", annotated by {who}" if who else "")
        finding = str(data["finding"])
        if choice == EXCLUDE:
            d = Decision(finding, "exclude", file=path, note=note)
        elif choice == NOT_SURE:
            d = Decision(finding, "defer", file=path, note=note)
        elif choice == label:
            d = Decision(finding, "accept", file=path, note=note)
        else:
            d = Decision(finding, "relabel", file=path, to=choice, note=note)
        out.decisions.append(d)
    return out


def _task_data(task: dict[str, Any]) -> dict[str, Any]:
    """A task's data: the ``data`` object of the JSON export, or the task itself in
    Label Studio's JSON-MIN export (the data fields at the top)."""
    data = task.get("data")
    return data if isinstance(data, dict) else task


def _choice(task: dict[str, Any]) -> tuple[str | None, str | None]:
    """The reviewer's choice: the latest annotation that was not cancelled."""
    if not isinstance(task.get("annotations"), list):  # JSON-MIN: "label": "tulips"
        value = task.get(FROM_NAME) if "data" not in task else None
        if isinstance(value, dict):
            value = (value.get("choices") or [None])[0]
        return (value if isinstance(value, str) else None), task.get("annotator")
    done = [
        a
        for a in task["annotations"]
        if isinstance(a, dict) and not a.get("was_cancelled") and isinstance(a.get("result"), list)
    ]
    done.sort(key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""))
    for a in reversed(done):
        for r in a["result"]:
            if (
                isinstance(r, dict)
                and r.get("from_name") == FROM_NAME
                and r.get("type") == "choices"
            ):
                choices = (r.get("value") or {}).get("choices") or []
                if choices:
                    who = a.get("completed_by")
                    if isinstance(who, dict):
                        who = who.get("email") or who.get("id")
                    return str(choices[0]), None if who is None else str(who)
    return None, None


def _from_csv(raw: bytes | str, *, source: str, audit: str | None) -> Imported:
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise InvalidDecisions(
            f"{source}: the CSV header {header or '(none)'} lacks {', '.join(missing)}; "
            f"it must have the columns {', '.join(CSV_COLUMNS)}"
        )
    out = Imported(audit)
    for row in reader:
        out.items += 1
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        action = row.get("action", "").lower()
        if not action:
            out.skipped += 1
            continue
        line = reader.line_num
        if not row.get("finding_id"):
            raise InvalidDecisions(f"{source}: line {line} has an action but no finding_id")
        item = {"finding": row["finding_id"], "action": action}
        if row.get("file"):
            item["file"] = row["file"]
        if row.get("to"):
            item["to"] = row["to"]
        try:
            out.decisions.extend(parse_decisions([item], source=f"{source}: line {line}"))
        except TulipError as e:
            raise InvalidDecisions(str(e).replace(": decision 1", "")) from None
    return out
