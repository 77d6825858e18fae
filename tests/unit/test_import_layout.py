"""The direction of imports that README.md ("Layout") promises, read from the code itself with `ast`."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "udfs", "featurespec", "features", "connectors", "jobs", "workers", "fyp")
# A measurement that reports with the benchmarks' percentiles (fyp/index/approval_latency.py); not a correctness path.
BENCH_IMPORT_ALLOWED = {"fyp.index.approval_latency"}


def _modules() -> dict[str, set[str]]:
    """Module name -> the project modules it imports (function-local imports included)."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            imported = set()
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module)
                elif isinstance(node, ast.Import):
                    imported.update(alias.name for alias in node.names)
            found[name] = {m for m in imported if m.split(".")[0] in PACKAGES}
    return found


def _group(module: str) -> str:
    """The unit whose direction README states: a top-level package, or a module or package right under fyp/."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "fyp" and len(parts) > 1 else parts[0]


MODULES = _modules()


def test_no_two_groups_import_each_other():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imported in MODULES.items():
        edges[_group(module)].update(_group(m) for m in imported if _group(m) != _group(module))
    cycles = sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, ()))
    assert cycles == []


def test_only_the_cli_imports_the_cli():
    offenders = {m: sorted(i for i in imported if i.startswith(("fyp.commands", "fyp.cli")))
                 for m, imported in MODULES.items() if not m.startswith(("fyp.commands", "fyp.cli"))}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_no_correctness_path_imports_the_benchmarks():
    offenders = {m for m, imported in MODULES.items()
                 if any(i.startswith("fyp.bench") for i in imported)
                 and not m.startswith(("fyp.bench", "fyp.commands")) and m not in BENCH_IMPORT_ALLOWED}
    assert offenders == set()


def test_nothing_imports_a_job():
    assert {m for m, imported in MODULES.items() if any(i.startswith("jobs.") for i in imported)} == set()


def test_the_checks_see_real_imports():
    """Guards the guards: the graph above is read from the code, so a known edge must be in it."""
    assert "featurespec.sql" in MODULES["jobs.engagement_features"]
    assert "fyp.bench.stats" in MODULES["fyp.index.approval_latency"]
