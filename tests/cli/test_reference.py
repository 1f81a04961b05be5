"""The README's CLI reference is generated from the CLI itself; this keeps it from drifting."""

from pathlib import Path

from tulip.cli.reference import END, START, render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_cli_reference_matches_the_cli():
    text = README.read_text(encoding="utf-8")
    section = text[text.index(START) : text.index(END) + len(END)]
    assert section == render(), "README.md is stale: run `python -m tulip.cli.reference --write`"


def test_reference_lists_every_contract_verb():
    section = render()
    for verb in (
        "tulip create repo",
        "tulip list commit",
        "tulip inspect commit",
        "tulip put file",
        "tulip find commit",
        "tulip diff file",
        "tulip wait commit",
        "tulip audit",
        "tulip lineage",
        "tulip blame",
        "tulip serve",
        "tulip demo",
        "tulip export mobile",
        "tulip identify",
    ):
        assert f"**`{verb}" in section
