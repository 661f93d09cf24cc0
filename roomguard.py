"""Composition root: the `roomguard` command mounts each package's sub-commands."""

from __future__ import annotations

import typer

from collector.cli import register as register_collector

app = typer.Typer(
    name="roomguard",
    help="Machine-room monitoring and TWSE CC-16000 evidence. 機房環境監控與 CC-16000 稽核佐證。",
    no_args_is_help=True,
    add_completion=False,
)
register_collector(app)


def main() -> None:
    """Run the roomguard command line."""
    app()


if __name__ == "__main__":
    main()
