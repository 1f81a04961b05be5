"""`tulip deploy`: the data repos and the pipelines of pipelines/*.json, on a Pachyderm cluster."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.deploy import bundled_specs, deploy, load_specs

from . import output as out
from .data import pass_settings
from .main import Settings, cli


@cli.command("deploy")
@click.option(
    "--image",
    required=True,
    help="container image the specs run in (built from the Dockerfile), e.g. registry/tulip:0.1.0",
)
@click.option("--dry-run", is_flag=True, help="validate and show the plan; create nothing")
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="deploy these specs instead of the bundled pipelines/*.json (repeatable)",
)
@click.option("--reprocess", is_flag=True, help="updated pipelines reprocess every datum")
@out.output_option()
@pass_settings
def deploy_cmd(
    s: Settings, image: str, dry_run: bool, files: tuple[Path, ...], reprocess: bool, output: str
) -> None:
    """Create the data repos and the pipelines on the cluster at $PACHD_ADDRESS (else the
    active pachctl context), each pipeline running in IMAGE; existing ones are updated."""
    from pipelines.pachyderm import PachydermBackend

    specs = load_specs(list(files)) if files else bundled_specs()
    backend = PachydermBackend.from_environment()
    try:
        out.info(f"deploying {len(specs)} pipelines to {backend.address}", quiet=s.quiet)
        steps = deploy(backend, specs, image=image, dry_run=dry_run, reprocess=reprocess)
    finally:
        backend.close()
    if output == "json":
        return out.emit_json([st.as_dict() for st in steps])
    out.table(
        ["KIND", "NAME", "ACTION", "DETAIL"],
        [(st.kind, st.name, st.action, st.detail) for st in steps],
    )
