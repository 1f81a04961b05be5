"""Store maintenance: consistency checks and garbage collection."""

from __future__ import annotations

import click

from pipelines.errors import StoreCorrupt

from . import output as out
from .base import Settings, cli, pass_settings


@cli.command("fsck")
@click.option("--verify-content", is_flag=True, help="re-hash every blob (slow, thorough)")
@out.output_option()
@pass_settings
def fsck(s: Settings, verify_content: bool, output: str) -> None:
    """Check the store's consistency; exits 2 if anything is wrong."""
    store = s.backend()
    problems = store.fsck(verify_content=verify_content)
    orphans, strays = store.unreferenced()
    if output == "json":
        out.emit_json(
            {
                "ok": not problems,
                "problems": problems,
                "unreferenced_blobs": len(orphans),
                "stray_temporaries": len(strays),
            }
        )
    else:
        for p in problems:
            click.echo(f"problem: {p}")
        click.echo(
            f"{len(problems)} problems; {len(orphans)} unreferenced blobs and {len(strays)} "
            "stray temporary files (harmless; `tulip gc` removes them)"
        )
    if problems:
        raise StoreCorrupt(f"{len(problems)} problems found in {store.root}")


@cli.command("gc")
@pass_settings
def gc(s: Settings) -> None:
    """Remove blobs no commit uses, and temporaries left by interrupted writes."""
    blobs, temps = s.backend().gc()
    out.info(f"removed {blobs} unreferenced blobs and {temps} stray temporaries", quiet=s.quiet)
