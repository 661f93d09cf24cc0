"""The shipped rule packs (YAML under alerts/packs/) and how a site's `alerts:` section combines with them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from devices.yamlload import load_yaml_model
from siteconfig.alert_rules import AnyRule, RuleSet
from siteconfig.alerts_config import AlertsConfig

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


def combine(
    pack: Sequence[AnyRule],
    site_rules: Sequence[AnyRule],
    disabled: Sequence[str],
    generator_transfer_s: float,
) -> RuleSet:
    """Pack rules minus the disabled ones, each replaced by a site rule of the same id, then the site's
    new rules. The pack's power-chain rules take the site's generator start-and-transfer time."""
    by_site = {r.id: r for r in site_rules}
    out: list[AnyRule] = []
    for rule in pack:
        if rule.id in disabled:
            continue
        if rule.id in by_site:
            out.append(by_site.pop(rule.id))
            continue
        chain = getattr(rule, "power_chain", None)
        if chain is not None:
            rule = rule.model_copy(
                update={"power_chain": chain.model_copy(update={"transfer_s": generator_transfer_s})}
            )
        out.append(rule)
    out += [r for r in site_rules if r.id in by_site]
    # A disabled pack rule may still be named by another rule's `inhibits`: drop those references.
    ids = {r.id for r in out}
    out = [r.model_copy(update={"inhibits": [t for t in r.inhibits if t in ids]}) for r in out]
    return RuleSet(rules=out)


def site_rule_set(config: AlertsConfig | None) -> RuleSet:
    """The rules a site runs: the default pack (unless switched off) combined with its own rules."""
    if config is None:
        return load_pack()
    pack = load_pack().rules if config.default_rules else []
    return combine(pack, config.rules, config.disabled_rules, config.generator_transfer_s)
