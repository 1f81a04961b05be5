"""`tulip synth`: procedurally drawn flower photos, for offline demos and tests."""

from __future__ import annotations

from pathlib import Path

import click

from . import output as out
from .base import Settings, cli, pass_settings


def _size(value: str) -> int | tuple[int, int]:
    lo, sep, hi = value.partition("-")
    try:
        return (int(lo), int(hi)) if sep else int(lo)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give N or MIN-MAX, e.g. 240 or 200-320") from None


@cli.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--classes",
    default="daisy,dandelion,roses,sunflowers,tulips",
    show_default=True,
    help="comma-separated kinds; 'orchids' are drawn by the tulip generator",
)
@click.option("--per-class", type=int, default=60, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", default="240", show_default=True, help="pixels: N, or a MIN-MAX range")
@out.output_option()
@pass_settings
def synth(
    s: Settings, out_dir: Path, classes: str, per_class: int, seed: int, size: str, output: str
) -> None:
    """Draw a flower_photos-style folder of generated images into OUT_DIR."""
    from tulip.synth import generate

    kinds = [c.strip() for c in classes.split(",") if c.strip()]
    with out.progress_bar(len(kinds) * per_class, "drawing", quiet=s.quiet, unit="img") as bar:
        made = generate(
            out_dir,
            classes=kinds,
            per_class=per_class,
            seed=seed,
            size=_size(size),
            progress=lambda done, total: bar.update(done - bar.n),
        )
    if output == "json":
        out.emit_json({k: [str(p) for p in v] for k, v in made.items()})
    else:
        out.info(
            f"drew {sum(len(v) for v in made.values())} images of {', '.join(made)} in {out_dir}",
            quiet=s.quiet,
        )
