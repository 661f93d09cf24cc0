"""`roomguard check-config`, and the gate every command passes before it uses a site file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from siteconfig.check import check_config_command
from siteconfig.config import SiteConfig, load_site

SiteArg = Annotated[Path, typer.Argument(help="Site configuration YAML.", exists=False)]


class SiteFirst(TyperGroup):
    """A command group whose site file may come first: `roomguard compliance SITE status` reads naturally,
    typer wants the command first, so the site file moves behind it (`status SITE`); a bare
    `roomguard compliance SITE` runs the group's `serve` (the long-running process)."""

    default_command = "serve"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            if len(args) > 1 and args[1] in self.commands:
                args = [args[1], args[0], *args[2:]]
            else:
                args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def load_site_or_exit(path: Path, *, secrets: bool = True) -> SiteConfig:
    """The site file, or every problem on stderr and exit 2 (an unset secret is one of them)."""
    code, text = check_config_command(path, resolve_secrets=secrets)
    if code != 0:
        typer.echo(text, err=True)
        raise typer.Exit(code)
    return load_site(path)


def check_config(
    path: SiteArg,
    no_secrets: Annotated[
        bool, typer.Option("--no-secrets", help="Do not read the secrets (check the file's structure only).")
    ] = False,
) -> None:
    """Validate a site configuration; print a summary, or every error with file, line and key path.

    Every secret the file references is read too (environment variable or file), so an unset variable
    shows here, not as a failure at start-up. 檢查設定檔。"""
    code, text = check_config_command(path, resolve_secrets=not no_secrets)
    typer.echo(text, err=code != 0)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Mount `check-config` on the root `roomguard` app."""
    app.command("check-config")(check_config)


__all__ = ["SiteArg", "load_site_or_exit", "register"]
