"""The shipped rule packs (YAML under alerts/packs/) and how a site's `alerts:` section combines with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alerts.rules import RuleSet
from devices.yamlload import load_yaml_model, read_yaml

PACK_DIR = Path(__file__).with_name("packs")
DEFAULT_PACK = "machine-room"


def pack_path(name: str = DEFAULT_PACK) -> Path:
    """The file of a shipped pack (ValueError naming the packs there are)."""
    path = PACK_DIR / f"{name}.yaml"
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in PACK_DIR.glob("*.yaml")))
        raise ValueError(f"no rule pack {name!r}; packs: {names}")
    return path


def load_pack(name: str = DEFAULT_PACK) -> RuleSet:
    """A shipped pack, validated (a broken pack is a located ConfigError naming its file and line)."""
    return load_yaml_model(pack_path(name), RuleSet)


def pack_rule_dicts(name: str = DEFAULT_PACK) -> list[dict[str, Any]]:
    """The pack's rules as plain mappings, for combining with a site's rules before validation."""
    raw = read_yaml(pack_path(name))
    rules = raw.get("rules", []) if isinstance(raw, dict) else []
    return [dict(r) for r in rules]


def combine(
    pack: list[dict[str, Any]],
    site_rules: list[dict[str, Any]],
    disabled: list[str],
    generator_transfer_s: float,
) -> list[dict[str, Any]]:
    """Pack rules minus the disabled ones, each replaced by a site rule of the same id, then the site's
    new rules. The pack's power-chain rules take the site's generator start-and-transfer time."""
    by_site = {str(r.get("id")): r for r in site_rules}
    out: list[dict[str, Any]] = []
    for rule in pack:
        rid = str(rule.get("id"))
        if rid in disabled:
            continue
        if rid in by_site:
            out.append(by_site.pop(rid))
            continue
        if isinstance(rule.get("power_chain"), dict):
            rule = {**rule, "power_chain": {**rule["power_chain"], "transfer_s": generator_transfer_s}}
        out.append(rule)
    out += [r for r in site_rules if str(r.get("id")) in by_site]
    # A disabled pack rule may still be named by another pack rule's `inhibits`: drop those references.
    ids = {str(r.get("id")) for r in out}
    return [
        {**r, "inhibits": [t for t in r["inhibits"] if t in ids]}
        if isinstance(r.get("inhibits"), list)
        else r
        for r in out
    ]
