"""`roomguard dashboards build [--out DIR] [--check]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dashboards.build import HERE, differing, write

app = typer.Typer(help="Grafana dashboards as code. Grafana 儀表板。", no_args_is_help=True)


@app.command("build")
def build(
    out: Annotated[Path, typer.Option(help="Folder to write json/ and provisioning/ into.")] = HERE,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 naming the files that differ.")
    ] = False,
) -> None:
    """Generate the dashboard JSON and provisioning files from the metric catalog. 產生儀表板。"""
    if check:
        bad = differing(out)
        for path in bad:
            typer.echo(f"differs: {path}", err=True)
        if bad:
            typer.echo("run `roomguard dashboards build` to regenerate", err=True)
            raise typer.Exit(1)
        typer.echo(f"dashboards up to date in {out}")
        return
    for path in write(out):
        typer.echo(f"wrote {path}")


def register(root: typer.Typer) -> None:
    """Mount `dashboards` on the roomguard command."""
    root.add_typer(app, name="dashboards")
