"""`tulip deploy`: the data repos and the pipelines of pipelines/*.json, on a Pachyderm cluster."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.deploy import (
    NEVER_CHECKED,
    NOT_CHECKED_OFFLINE,
    bundled_specs,
    deploy,
    load_specs,
    offline_plan,
    prepare,
)
from pipelines.errors import BackendUnavailable

from . import output as out
from .data import pass_settings
from .main import Settings, cli


@cli.command("deploy")
@click.option(
    "--image",
    required=True,
    help="container image the specs run in: the Dockerfile, built and pushed where the "
    "cluster pulls from, e.g. registry.example/tulip:0.1.0",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="validate and show the plan; create nothing (works offline, saying what it could not check)",
)
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
    active pachctl context), each pipeline running in IMAGE; existing ones are updated.

    Every spec is validated offline first (Pachyderm's schema, Tulip's checks, the order, the
    image reference). --dry-run then asks the cluster too, if one answers."""
    from pipelines.pachyderm import PachydermBackend

    specs = load_specs(list(files)) if files else bundled_specs()
    prepared = prepare(specs, image=image)
    out.info(f"validated {len(prepared)} specs offline", quiet=s.quiet)
    not_checked = list(NEVER_CHECKED)
    try:
        backend = PachydermBackend.from_environment()
    except BackendUnavailable as e:
        if not dry_run:
            raise
        out.info(f"no cluster reached, so the plan is offline only: {e}", quiet=s.quiet)
        steps = offline_plan(prepared, image=image)
        not_checked = [*NOT_CHECKED_OFFLINE, *not_checked]
    else:
        try:
            out.info(
                f"{'planning' if dry_run else 'deploying'} {len(prepared)} pipelines on "
                f"{backend.address} (pachd {backend.version_text})",
                quiet=s.quiet,
            )
            steps = deploy(backend, specs, image=image, dry_run=dry_run, reprocess=reprocess)
        finally:
            backend.close()
        offline = [st.name for st in steps if st.kind == "pipeline" and st.checked_by == "offline"]
        if offline:
            not_checked.insert(
                0,
                f"pachd's validation of {', '.join(offline)}: their inputs do not exist yet",
            )
    if output == "json":
        out.emit_json([st.as_dict() for st in steps])
    else:
        out.table(
            ["KIND", "NAME", "ACTION", "DETAIL"],
            [(st.kind, st.name, st.action, st.detail) for st in steps],
        )
    if dry_run:
        for line in not_checked:
            out.info(f"not checked: {line}", quiet=False)
