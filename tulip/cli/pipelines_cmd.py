"""Pipelines, jobs, datums and logs."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from pipelines import specs as specmod
from pipelines.backend import LocalServices
from pipelines.errors import InvalidSpec

from . import output as out
from .base import Settings, cli, create, delete, inspect, list_, pass_settings, start, stop, update


def _load_spec(path: str) -> dict:
    if path == "-":
        try:
            return json.loads(click.get_text_stream("stdin").read())
        except json.JSONDecodeError as e:
            raise InvalidSpec(
                f"stdin: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
            ) from None
    raw = Path(path)
    if not raw.exists():
        raise InvalidSpec(f"no spec file at {path}")
    try:
        return json.loads(raw.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InvalidSpec(
            f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None


def _warn(messages: list[str]) -> None:
    """Warnings go to stderr even with --quiet: they say why output will be missing."""
    for m in messages:
        click.echo(f"warning: {m}", err=True)


def _create_or_update(
    s: Settings,
    path: str,
    *,
    update: bool,
    reprocess: bool,
    dry_run: bool,
    output: str,
    parallelism: int | None = None,
) -> None:
    spec = _load_spec(path)
    if parallelism is not None:
        if parallelism < 1:
            raise InvalidSpec(f"--parallelism must be at least 1, not {parallelism}")
        spec.pop("parallelism_spec", None)
        spec["parallelismSpec"] = {"constant": parallelism}
    b = s.backend(create=True)
    try:
        info = b.create_pipeline(spec, update=update, reprocess=reprocess, dry_run=dry_run)
    except InvalidSpec as e:
        raise InvalidSpec(f"{path}: {e}") from None
    warnings = specmod.empty_input_warnings(b, info.spec)
    _warn(warnings)
    if output == "json":
        return out.emit_json({**info.as_dict(), "warnings": warnings})
    verb = "valid" if dry_run else ("updated" if update else "created")
    out.info(
        f"pipeline {info.name} {verb} (version {info.version}); inputs: "
        + ", ".join(f"{r}@{b}" for r, b in info.inputs),
        quiet=s.quiet,
    )


@create.command("pipeline")
@click.option(
    "-f", "--file", "path", required=True, help="pipeline spec (Pachyderm JSON), or - for stdin"
)
@click.option("--dry-run", is_flag=True, help="validate only")
@click.option(
    "--parallelism",
    type=int,
    default=None,
    help="workers (datum processes) per job; sets the spec's parallelismSpec.constant "
    "(default: the spec's, else the cores)",
)
@out.output_option()
@pass_settings
def create_pipeline(
    s: Settings, path: str, dry_run: bool, parallelism: int | None, output: str
) -> None:
    """Create a pipeline from a Pachyderm JSON spec (camelCase or snake_case)."""
    _create_or_update(
        s,
        path,
        update=False,
        reprocess=False,
        dry_run=dry_run,
        output=output,
        parallelism=parallelism,
    )


@update.command("pipeline")
@click.option("-f", "--file", "path", required=True, help="pipeline spec (Pachyderm JSON)")
@click.option("--reprocess", is_flag=True, help="reprocess every datum, not only changed ones")
@click.option("--dry-run", is_flag=True, help="validate only")
@out.output_option()
@pass_settings
def update_pipeline(s: Settings, path: str, reprocess: bool, dry_run: bool, output: str) -> None:
    """Update a pipeline's spec; a changed transform reprocesses its datums."""
    _create_or_update(s, path, update=True, reprocess=reprocess, dry_run=dry_run, output=output)


@list_.command("pipeline")
@out.output_option()
@pass_settings
def list_pipeline(s: Settings, output: str) -> None:
    """List pipelines, with their state, last job and service URL."""
    b = s.backend()
    pipelines = b.list_pipelines()
    warnings = {p.name: specmod.empty_input_warnings(b, p.spec) for p in pipelines}
    for p in pipelines:
        _warn(warnings[p.name])
    if output == "json":
        return out.emit_json([{**p.as_dict(), "warnings": warnings[p.name]} for p in pipelines])
    rows = []
    for p in pipelines:
        jobs = b.list_jobs(p.name, limit=1)
        last = f"{jobs[0].state} {out.ago(jobs[0].created)}" if jobs else "-"
        rows.append(
            (
                p.name,
                p.version,
                ", ".join(f"{r}@{br}" for r, br in p.inputs),
                p.state,
                last,
                p.service_url or "",
            )
        )
    out.table(["NAME", "VERSION", "INPUT", "STATE", "LAST JOB", "SERVICE"], rows)


@inspect.command("pipeline")
@click.argument("name")
@out.output_option()
@pass_settings
def inspect_pipeline(s: Settings, name: str, output: str) -> None:
    """Show a pipeline and its spec."""
    p = s.backend().inspect_pipeline(name)
    if output == "json":
        return out.emit_json(p.as_dict())
    click.echo(
        f"Name: {p.name}\nVersion: {p.version}\nState: {p.state}\nSpec commit: {p.name}.spec@{p.spec_commit}"
    )
    if p.service_url:
        stop = f"tulip --root {shlex.quote(str(s.store_root.absolute()))} stop pipeline {p.name}"
        click.echo(f"Service: {p.service_url}  (stop it: {stop})")
    click.echo("Spec:\n" + json.dumps(p.spec, indent=2))


@delete.command("pipeline")
@click.argument("name")
@pass_settings
def delete_pipeline(s: Settings, name: str) -> None:
    """Delete a pipeline, its output repo and its service."""
    s.backend().delete_pipeline(name)


@stop.command("pipeline")
@click.argument("name")
@pass_settings
def stop_pipeline(s: Settings, name: str) -> None:
    """Pause a pipeline: no new jobs; its service (if any) is stopped."""
    b = s.backend()
    b.set_pipeline_state(name, "paused")
    # Local services are the embedded engine's; a cluster runs its own.
    if isinstance(b, LocalServices) and b.stop_service(name):
        out.info(f"stopped the {name} service", quiet=s.quiet)


@start.command("pipeline")
@click.argument("name")
@pass_settings
def start_pipeline(s: Settings, name: str) -> None:
    """Resume a paused pipeline; a service starts again on its latest input."""
    b = s.backend()
    b.set_pipeline_state(name, "running")
    p = b.inspect_pipeline(name)
    if p.spec.get("service") and isinstance(b, LocalServices):
        url = b.restart_service(name)
        out.info(f"{name} is serving at {url}", quiet=s.quiet)


@list_.command("job")
@click.option("-p", "--pipeline", default=None, help="only this pipeline's jobs")
@click.option("-n", "--number", type=int, default=None, help="show at most this many")
@out.output_option()
@out.raw_option()
@pass_settings
def list_job(s: Settings, pipeline: str | None, number: int | None, output: str, raw: bool) -> None:
    """List jobs, newest first, with their datum counts."""
    jobs = s.backend().list_jobs(pipeline, limit=number)
    if raw:
        from pipelines.protojson import job_info

        return out.emit_raw(job_info(j) for j in jobs)
    if output == "json":
        return out.emit_json([j.as_dict() for j in jobs])
    out.table(
        [
            "PIPELINE",
            "ID",
            "STATE",
            "STARTED",
            "DURATION",
            "PROCESSED",
            "SKIPPED",
            "FAILED",
            "TOTAL",
            "REASON",
        ],
        [
            (
                j.pipeline,
                j.id,
                j.state,
                out.ago(j.created),
                out.duration(j.started, j.finished),
                j.data_processed,
                j.data_skipped + j.data_recovered,
                j.data_failed,
                j.data_total,
                (j.reason or "")[:120],
            )
            for j in jobs
        ],
    )


@inspect.command("job")
@click.argument("ref", metavar="PIPELINE@JOB")
@out.output_option()
@out.raw_option()
@pass_settings
def inspect_job(s: Settings, ref: str, output: str, raw: bool) -> None:
    """Show one job."""
    pipeline, _, job_id = ref.partition("@")
    b = s.backend()
    if not job_id:
        jobs = b.list_jobs(pipeline, limit=1)
        job_id = jobs[0].id if jobs else "-"
    j = b.inspect_job(pipeline, job_id)
    if raw:
        from pipelines.protojson import job_info

        return out.emit_raw([job_info(j)])
    if output == "json":
        return out.emit_json(j.as_dict())
    for k, v in j.as_dict().items():
        click.echo(f"{k}: {v}")


@list_.command("datum")
@click.argument("ref", metavar="PIPELINE@JOB")
@out.output_option()
@pass_settings
def list_datum(s: Settings, ref: str, output: str) -> None:
    """List the datums of a job and what became of each."""
    pipeline, _, job_id = ref.partition("@")
    b = s.backend()
    if not job_id:
        jobs = b.list_jobs(pipeline, limit=1)
        job_id = jobs[0].id if jobs else "-"
    datums = b.list_datums(pipeline, job_id)
    if output == "json":
        return out.emit_json([d.as_dict() for d in datums])
    out.table(
        ["ID", "STATE", "TRIES", "FILES", "REASON"],
        [
            (d.id[:16], d.state, d.tries, " ".join(d.files)[:80], (d.reason or "")[:80])
            for d in datums
        ],
    )


@cli.command("logs")
@click.option("-p", "--pipeline", required=True, help="pipeline name")
@click.option("-j", "--job", "job_id", default=None, help="job ID (default: the latest)")
@click.option("--datum", "datum_id", default=None, help="one datum (ID prefix)")
@pass_settings
def logs(s: Settings, pipeline: str, job_id: str | None, datum_id: str | None) -> None:
    """Print the logs of a pipeline's job, or of one datum."""
    click.echo(s.backend().logs(pipeline, job_id, datum_id), nl=False)


@cli.command("validate")
@click.argument("paths", nargs=-1, required=True)
@pass_settings
def validate(s: Settings, paths: tuple[str, ...]) -> None:
    """Validate pipeline spec files without a store."""
    for path in paths:
        specmod.load(path)
        out.info(f"{path}: valid", quiet=s.quiet)
