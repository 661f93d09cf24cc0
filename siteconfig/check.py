"""`roomguard check-config FILE`: validate a site file and print its summary or every error."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from devices.yamlload import ConfigError, LocatedError, located
from siteconfig.config import SecretError, SiteConfig, load_site, summarize
from siteconfig.sitecheck import ProfileLookup, ProfileNames

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # like argparse/typer usage errors: the input, not the program, is wrong


def check_config_command(
    path: Path | str,
    profile_names: ProfileNames | Iterable[str] | None = None,
    profile_info: ProfileLookup | None = None,
    *,
    resolve_secrets: bool = False,
) -> tuple[int, str]:
    """Return (0, summary) for a valid site file, or (2, every error formatted one per line).

    With `resolve_secrets` every secret reference is read too: an unset variable or unreadable file is an
    error at the first place that uses it (once per variable, naming the other places).
    """
    try:
        site = load_site(path, profile_names, profile_info)
    except ConfigError as exc:
        return EXIT_BAD_INPUT, _errors_text(path, exc.errors)
    if resolve_secrets:
        missing = unresolved_secrets(Path(path), site)
        if missing:
            return EXIT_BAD_INPUT, _errors_text(path, missing)
    return EXIT_OK, summarize(site, profile_info)


def unresolved_secrets(path: Path, site: SiteConfig) -> list[LocatedError]:
    """One located error per secret variable or file that cannot be read, at its first use."""
    by_source: dict[str, list[tuple[tuple[str | int, ...], str]]] = {}
    for loc, ref in site.secret_refs():
        try:
            ref.resolve(path.parent)
        except SecretError as exc:
            by_source.setdefault(ref.describe(), []).append((loc, str(exc)))
    out: list[LocatedError] = []
    for uses in by_source.values():
        (first, message), others = uses[0], uses[1:]
        if others:
            message += " (also used by " + ", ".join(_key_path(loc) for loc, _ in others) + ")"
        out.append(located(path, first, message))
    return out


def _key_path(loc: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(loc))


def _errors_text(path: Path | str, errors: list[LocatedError]) -> str:
    count = len(errors)
    return "\n".join(e.format() for e in errors) + f"\n{count} error{'s' if count != 1 else ''} in {path}"


def main(argv: Sequence[str] | None = None) -> None:
    """Minimal entry point: `python -c "from siteconfig.check import main; main()" FILE`."""
    args = list(sys.argv[1:] if argv is None else argv)
    resolve = "--resolve-secrets" in args
    files = [a for a in args if a != "--resolve-secrets"]
    if len(files) != 1:
        print("usage: check-config [--resolve-secrets] FILE", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    code, text = check_config_command(files[0], resolve_secrets=resolve)
    print(text, file=sys.stdout if code == EXIT_OK else sys.stderr)
    sys.exit(code)
