"""`tulip audit`: audit a data commit (or a plain folder) and exit by verdict, for people and CI."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.refs import parse_ref

from . import output as out
from .base import Refused, Settings, cli, pass_settings


def _progress(s: Settings):
    bars: dict[str, object] = {}

    def update(step: str, done: int, total: int) -> None:
        if s.quiet:
            return
        bar = bars.get(step)
        if bar is None:
            bar = bars[step] = out.progress_bar(total, step, quiet=s.quiet, unit="img")
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


@cli.command("audit")
@click.argument("ref", required=False)
@click.option(
    "--dir",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="audit a plain folder of class subfolders instead of a commit",
)
@click.option(
    "--reference", default=None, help="a labelled gallery: REPO@REF (or a folder, with --dir)"
)
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="severities and thresholds (TOML or JSON); see `tulip audit --print-policy`",
)
@click.option(
    "--architecture",
    default=None,
    help="backbone for embeddings it computes (default: Embed's, else mobilenet_1.0_224)",
)
@click.option(
    "--fail-on",
    type=click.Choice(["fail", "warn"]),
    default="fail",
    show_default=True,
    help="the verdict that makes the exit code 3",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also write a standalone HTML report here",
)
@click.option("--print-policy", is_flag=True, help="print the default policy and exit")
@out.output_option()
@pass_settings
def audit(
    s: Settings,
    ref: str | None,
    folder: Path | None,
    reference: str | None,
    policy: Path | None,
    architecture: str | None,
    fail_on: str,
    report: Path | None,
    print_policy: bool,
    output: str,
) -> None:
    """Audit REPO@REF (or --dir PATH): exit 0 on pass or warn, 3 on fail, 2 on bad input."""
    if print_policy:
        from auditor.policy import default_policy_toml

        click.echo(default_policy_toml(), nl=False)
        return
    if (ref is None) == (folder is None):
        raise click.UsageError("give either REPO@REF or --dir PATH")
    if folder is not None:
        from auditor import audit_folder

        backend = None
        result = audit_folder(
            folder,
            reference=Path(reference) if reference else None,
            policy=policy,
            architecture=architecture,
            progress=_progress(s),
        )
    else:
        from auditor import audit_commit

        backend = s.backend()
        result = audit_commit(
            backend,
            parse_ref(ref),
            reference=parse_ref(reference) if reference else None,
            policy=policy,
            architecture=architecture,
            progress=_progress(s),
        )
    doc = result.document
    failed = doc["verdict"] == "fail" or (fail_on == "warn" and doc["verdict"] == "warn")
    refusal = s.refuse_after_output(Refused() if failed else None)
    if report is not None:
        _write_report(doc, report, backend, folder, reference)
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        _print_findings(doc)
    if refusal is not None:
        raise refusal


def _print_findings(doc: dict) -> None:
    data = doc["data"]
    where = f"{data['repo']}@{data['commit']}" if data.get("commit") else data["repo"]
    summary = doc["summary"]
    click.echo(
        f"{doc['verdict'].upper()}: {where}: {summary['images']} images in "
        f"{len(summary['classes'])} classes, {len(doc['findings'])} findings"
    )
    if not doc["findings"]:
        return
    rows = []
    for f in doc["findings"]:
        intro = ", ".join(f"{c['repo']}@{c['commit'][:12]}" for c in f.get("introduced_by") or [])
        rows.append(
            (
                f["severity"],
                f["check"],
                "/".join(f["classes"]),
                len(f["files"]),
                f["message"],
                intro or "-",
            )
        )
    out.table(["SEVERITY", "CHECK", "CLASSES", "FILES", "MESSAGE", "INTRODUCED BY"], rows, wrap=4)


def _write_report(
    doc: dict, path: Path, backend, folder: Path | None, reference: str | None
) -> None:
    from reports.standalone import images_from_backend, images_from_dirs, write_report

    if folder is not None:
        mounts = {doc["data"]["repo"]: folder}
        if reference:
            mounts[doc["reference"]["repo"]] = Path(reference)
        images = images_from_dirs(mounts)
    else:
        commits = {doc["data"]["repo"]: doc["data"]["commit"]}
        if doc.get("reference"):
            commits[doc["reference"]["repo"]] = doc["reference"]["commit"]
        images = images_from_backend(backend, commits)
    write_report(path, doc, images=images)
