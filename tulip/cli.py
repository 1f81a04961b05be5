"""Placeholder until the CLI lands."""


def main() -> None:
    raise SystemExit("tulip: the command line is being built")
