"""The layer rule holds (import-linter contracts in pyproject.toml) and the check can fail: a sibling that
imports a sibling, or a lower layer that imports a higher one, breaks it. No import cycles anywhere."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "roomguard",
    "api",
    "collector",
    "ingest",
    "alerts",
    "compliance",
    "dashboards",
    "bus",
    "records",
    "siteconfig",
    "devices",
)
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tree / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.yaml"))
    return tree


def test_the_repository_keeps_its_layer_contracts() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("ingest/admit.py", "import collector.poller", "Siblings never import each other"),
        ("collector/render.py", "import ingest.lineproto", "Siblings never import each other"),
        ("alerts/engine.py", "import collector.poller", "Siblings never import each other"),
        ("siteconfig/alert_rules.py", "import alerts.engine", "Layers"),
        ("alerts/forecast.py", "import sqlalchemy", "The rule engine is pure"),
        ("alerts/engine.py", "import bus.outbox", "The rule engine is pure"),
        ("bus/backoff.py", "import ingest.batch", "Layers"),
        ("records/db.py", "import bus.backoff", "Layers"),
        ("records/migrate.py", "import alerts.store", "Layers"),
        ("alerts/lifecycle.py", "import sqlalchemy", "The rule engine is pure"),
        ("alerts/render.py", "import records.db", "The rule engine is pure"),
        ("siteconfig/secrets.py", "import bus.backoff", "Layers"),
        ("devices/errors.py", "import siteconfig.config", "Layers"),
        ("api/roles.py", "import collector.poller", "The API reads the bus and records"),
        ("api/passwords.py", "import ingest.batch", "The API reads the bus and records"),
        ("alerts/engine.py", "import api.roles", "Layers"),
        ("records/audit.py", "import api.store", "Layers"),
    ],
)
def test_an_import_against_the_rule_fails_the_check(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _copy(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # against the rule\n")
    result = _lint(tree)
    assert result.returncode != 0, result.stdout
    broken = [ln for ln in result.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(ln.startswith(contract) for ln in broken), result.stdout


def test_no_module_imports_itself_back_through_others() -> None:
    # `if TYPE_CHECKING:` imports are not executed: a type-only back reference is not a cycle.
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                cycles.append((module, imported))
    pairs = sorted({tuple(sorted(p)) for p in cycles})
    assert not pairs, f"import cycles between: {pairs[:10]}"


def test_every_package_is_in_the_contracts() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    not_shipped = ("tests", "bench", "testkit")
    top = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name not in not_shipped}
    assert top == set(PACKAGES), "a new package joins root_packages and the layers contract"
    for pkg in PACKAGES:
        assert f'"{pkg}' in text, pkg
