"""`roomguard check-config FILE`: validate a site file and print its summary or every error."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from collector.config import SecretError, load_site, summarize
from collector.sitecheck import ProfileLookup, ProfileNames
from devices.yamlload import ConfigError

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # like argparse/typer usage errors: the input, not the program, is wrong


def check_config_command(
    path: Path | str,
    profile_names: ProfileNames | Iterable[str] | None = None,
    profile_info: ProfileLookup | None = None,
    *,
    resolve_secrets: bool = False,
) -> tuple[int, str]:
    """Return (0, summary) for a valid site file, or (2, every error formatted one per line)."""
    try:
        site = load_site(path, profile_names, profile_info)
    except ConfigError as exc:
        count = len(exc.errors)
        return EXIT_BAD_INPUT, exc.format() + f"\n{count} error{'s' if count != 1 else ''} in {path}"
    if resolve_secrets:
        missing: list[str] = []
        for key, ref in site.secret_refs():
            try:
                ref.resolve(Path(path).parent)
            except SecretError as exc:
                missing.append(f"{path}: {key}: {exc}")
        if missing:
            return EXIT_BAD_INPUT, "\n".join(missing)
    return EXIT_OK, summarize(site, profile_info)


def main(argv: Sequence[str] | None = None) -> None:
    """Minimal entry point: `python -c "from collector.cli_config import main; main()" FILE`."""
    args = list(sys.argv[1:] if argv is None else argv)
    resolve = "--resolve-secrets" in args
    files = [a for a in args if a != "--resolve-secrets"]
    if len(files) != 1:
        print("usage: check-config [--resolve-secrets] FILE", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    code, text = check_config_command(files[0], resolve_secrets=resolve)
    print(text, file=sys.stdout if code == EXIT_OK else sys.stderr)
    sys.exit(code)
