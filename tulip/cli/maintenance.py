"""Store maintenance: consistency checks and garbage collection (the embedded store only)."""

from __future__ import annotations

import click

from pipelines.backend import Checkable, Collectable, require
from pipelines.connect import backend_type
from pipelines.errors import StoreCorrupt

from . import output as out
from .base import Settings, cli, pass_settings


@cli.command("fsck")
@click.option("--verify-content", is_flag=True, help="re-hash every blob (slow, thorough)")
@out.output_option()
@pass_settings
def fsck(s: Settings, verify_content: bool, output: str) -> None:
    """Check the store's consistency; exits 2 if anything is wrong."""
    require(backend_type(s.backend_name), Checkable, "tulip fsck")  # before connecting anywhere
    store = require(s.backend(), Checkable, "tulip fsck")
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
        raise StoreCorrupt(f"{len(problems)} problems found in {s.store_root}")


@cli.command("gc")
@pass_settings
def gc(s: Settings) -> None:
    """Remove blobs no commit uses, and temporaries left by interrupted writes."""
    require(backend_type(s.backend_name), Collectable, "tulip gc")
    blobs, temps = require(s.backend(), Collectable, "tulip gc").gc()
    out.info(f"removed {blobs} unreferenced blobs and {temps} stray temporaries", quiet=s.quiet)
