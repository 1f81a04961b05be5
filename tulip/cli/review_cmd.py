"""`tulip review`: from an audit's findings to one fix commit, with provenance.

`review list` shows the queue, `review apply` turns decisions into one USER commit on the
audited branch (and remembers accepts in the ledger), `review export` and `review import`
trade tasks and decisions with Label Studio or a spreadsheet. Each makes one call into
``auditor.review``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import output as out
from .base import Settings, cli, pass_settings

FORMATS = click.Choice(["label-studio", "csv"])


@cli.group("review")
def review() -> None:
    """Review an audit's findings: list them, apply decisions, trade with Label Studio."""


def _backend(s: Settings, audit_ref: str):
    """The store, unless AUDIT_REF is a local audit.json and there is no store to read."""
    local = Path(audit_ref).is_file() and s.backend_name in (None, "embedded")
    if local and not (s.store_root / "tulip.db").exists():
        return None
    return s.backend()


def _read(path: Path, hint: str) -> tuple[bytes, str]:
    """A file's bytes (stdin for "-"), and the name errors call it."""
    name = "stdin" if str(path) == "-" else str(path)
    try:
        return (sys.stdin.buffer.read() if name == "stdin" else path.read_bytes()), name
    except OSError as e:
        raise click.BadParameter(f"cannot read {name}: {e.strerror}", param_hint=hint) from None


@review.command("list")
@click.argument("audit_ref", metavar="AUDIT_REF")
@click.option("--check", "checks", multiple=True, help="only findings of this check (repeatable)")
@click.option("--undecided", is_flag=True, help="only findings nobody has decided yet")
@out.output_option()
@pass_settings
def list_cmd(s: Settings, audit_ref: str, checks: tuple[str, ...], undecided: bool, output: str):
    """The findings of an audit (Audit@ID, a data commit it audited, or an audit.json file),
    each with its id and the decisions made on it."""
    from auditor.review import list_review

    listing = list_review(_backend(s, audit_ref), audit_ref).as_dict()
    shown = [
        f
        for f in listing["findings"]
        if (not checks or f["check"] in checks) and not (undecided and f["decision"])
    ]
    if output == "json":
        return out.emit_json({**listing, "findings": shown})
    doc_line = f"{listing['audit']}: {str(listing['verdict']).upper()}, {len(shown)} findings"
    if listing["not_reflagged"]:
        doc_line += f"; {listing['not_reflagged']} accepted by review, not re-flagged"
    click.echo(doc_line)
    rows = []
    for f in shown:
        d = f["decision"]
        decided = "-" if d is None else d["action"] + (f" {d['to']}" if d.get("to") else "")
        classes = "/".join(f["classes"] or [])
        files = len(f["files"] or [])
        rows.append((f["id"], f["severity"], f["check"], classes, files, decided, f["message"]))
    if rows:
        out.table(
            ["ID", "SEVERITY", "CHECK", "CLASSES", "FILES", "DECISION", "MESSAGE"], rows, wrap=6
        )


@review.command("apply")
@click.argument("audit_ref", metavar="AUDIT_REF")
@click.option(
    "--decisions",
    "decisions_file",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help='a JSON list of {"finding", "file"?, "action", "to"?} ("-" for stdin)',
)
@click.option(
    "--dry-run", is_flag=True, help="print the file moves and class counts; change nothing"
)
@click.option("--by", default=None, help="who decided (default $USER)")
@click.option("--new-class", is_flag=True, help="allow a relabel into a class the data lacks")
@click.option(
    "--rebase",
    is_flag=True,
    help="if the branch moved since the audit, apply to its head when no decided file changed",
)
@out.output_option()
@pass_settings
def apply_cmd(
    s: Settings,
    audit_ref: str,
    decisions_file: Path,
    dry_run: bool,
    by: str | None,
    new_class: bool,
    rebase: bool,
    output: str,
):
    """Apply decisions as one USER commit on the audited data branch; prints its id."""
    from auditor.review import apply_review, default_reviewer, parse_decisions

    raw, name = _read(decisions_file, "--decisions")
    decisions = parse_decisions(raw, source=name)
    result = apply_review(
        s.backend(),
        audit_ref,
        decisions,
        by=by or default_reviewer(),
        dry_run=dry_run,
        new_class=new_class,
        rebase=rebase,
        source=name,
    )
    d = result.as_dict()
    if output == "json":
        return out.emit_json(d)
    _print_plan(d)


def _print_plan(d: dict, *, limit: int = 20) -> None:
    head = "DRY RUN, nothing changed: " if d["dry_run"] else ""
    click.echo(f"{head}{d['description']}")
    for r in d["renamed"]:
        click.echo(
            f"  {'merge' if r['merge'] else 'rename'} /{r['from']}/ -> /{r['to']}/: {r['files']} files"
        )
    moves = [m for m in d["moves"] if m["reason"] == "relabel"]
    for m in moves[:limit]:
        click.echo(f"  move {m['from']} -> {m['to']}")
    if len(moves) > limit:
        click.echo(f"  ... and {len(moves) - limit} more moves")
    for p in d["excluded_files"][:limit]:
        click.echo(f"  exclude {p}")
    if len(d["excluded_files"]) > limit:
        click.echo(f"  ... and {len(d['excluded_files']) - limit} more exclusions")
    before, after = d["classes"]["before"], d["classes"]["after"]
    rows = [(c, before.get(c, 0), after.get(c, 0)) for c in sorted(set(before) | set(after))]
    out.table(["CLASS", "BEFORE", "AFTER"], rows)
    if d["commit"]:
        c = d["commit"]
        click.echo(f"committed {c['repo']}@{c['id']} on {c['branch']}")
    elif not d["dry_run"]:
        click.echo(f"recorded in {d['ledger']['repo']}@{d['ledger']['commit']} (no files changed)")


@review.command("export")
@click.argument("audit_ref", metavar="AUDIT_REF")
@click.option("--format", "fmt", type=FORMATS, required=True, help="label-studio tasks or csv")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write here (default stdout)",
)
@click.option(
    "--base-url",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="where `tulip serve` answers, for the image URLs",
)
@click.option(
    "--token",
    default=None,
    envvar="TULIP_SERVE_TOKEN",
    help="the server's --token: image URLs are then signed for it (default $TULIP_SERVE_TOKEN)",
)
@click.option(
    "--label-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also write the Label Studio labeling config (XML) for these tasks here",
)
@click.option("--check", "checks", multiple=True, help="only findings of this check (repeatable)")
@pass_settings
def export_cmd(
    s: Settings,
    audit_ref: str,
    fmt: str,
    out_path: Path | None,
    base_url: str,
    token: str | None,
    label_config: Path | None,
    checks: tuple[str, ...],
):
    """Write the findings as Label Studio tasks (predictions = the suggested labels) or CSV."""
    from auditor.review import export_review

    exported = export_review(
        _backend(s, audit_ref),
        audit_ref,
        format=fmt,
        base_url=base_url,
        token=token,
        checks=checks or None,
    )
    _write(out_path, exported.text)
    if label_config is not None:
        label_config.write_text(exported.label_config, encoding="utf-8")
    out.info(
        f"exported {exported.items} {'tasks' if fmt == 'label-studio' else 'rows'} of "
        f"{exported.findings} findings" + (f" to {out_path}" if out_path else ""),
        quiet=s.quiet,
    )


@review.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--format", "fmt", type=FORMATS, required=True, help="label-studio export or csv")
@click.option(
    "--audit",
    "audit_ref",
    default=None,
    help="the audit the decisions are for: refuse tasks of any other (Label Studio tasks name theirs)",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the decisions here (default stdout), for `tulip review apply --decisions`",
)
@pass_settings
def import_cmd(s: Settings, file: Path, fmt: str, audit_ref: str | None, out_path: Path | None):
    """Turn a Label Studio JSON export (or a filled-in CSV) back into review decisions."""
    from auditor.review import import_review

    raw, name = _read(file, "FILE")
    imported = import_review(raw, format=fmt, source=name, audit=audit_ref)
    _write(out_path, json.dumps(imported.as_dict(), indent=2) + "\n")
    out.info(
        f"{len(imported.decisions)} decisions for {imported.audit} from {imported.items} "
        f"{'tasks' if fmt == 'label-studio' else 'rows'} ({imported.skipped} without a decision)"
        + (
            f"; apply them: tulip review apply {imported.audit} --decisions {out_path}"
            if out_path
            else ""
        ),
        quiet=s.quiet,
    )


def _write(path: Path | None, text: str) -> None:
    if path is None:
        click.echo(text, nl=False)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
