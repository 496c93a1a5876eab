"""Dependencies in target_service/ run one way: api -> services -> db, cache, elevenlabs.

Parsed with `ast`, not imported, so the rule holds for every import in every
module (inside functions and `TYPE_CHECKING` blocks too) without running any
of them. A module nobody placed in a layer fails the test: a new top-level
file has to be put somewhere on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "target_service"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

ENTRY, SERVICES, LOWER = 3, 2, 1
LAYER_NAMES = {ENTRY: "api", SERVICES: "services", LOWER: "db/cache/elevenlabs/shared"}

SUBPACKAGES = {"api": ENTRY, "services": SERVICES, "db": LOWER, "cache": LOWER,
               "elevenlabs": LOWER}
"""Sub-packages and their layer."""

TOP_LEVEL = {
    # the HTTP layer's wiring: the app factory, the lifespan's resources, injection
    "app": ENTRY, "__main__": ENTRY, "deps": ENTRY, "resources": ENTRY,
    # shared by every layer, so they sit at the bottom and must not look up
    "schemas": LOWER, "domain": LOWER, "errors": LOWER, "settings": LOWER,
    "telemetry": LOWER, "tracing": LOWER, "trace_gate": LOWER, "encoding": LOWER,
    "jobs": LOWER, "job_metrics": LOWER, "background": LOWER, "__init__": LOWER,
    "runtime": LOWER, "shedding": LOWER, "span_spool": LOWER, "span_redaction": LOWER,
}
"""Modules directly under target_service/ and their layer."""

PURE = {"target_service.schemas": set(), "target_service.domain": {"target_service.schemas"}}
"""Modules below every layer, with the only service modules each may import."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    """The layer of a `target_service` module; None for the package itself."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        raise ValueError(module)
    if len(parts) == 1:
        return None
    if parts[1] in SUBPACKAGES:
        return SUBPACKAGES[parts[1]]
    if parts[1] in TOP_LEVEL:
        return TOP_LEVEL[parts[1]]
    raise AssertionError(f"{module} is in no layer: add it to SUBPACKAGES or TOP_LEVEL")


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every `target_service` module that `source` (the text of `module`) imports."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base == PACKAGE or node.module is None:  # `from target_service import api`
                found.update(f"{base}.{a.name}" for a in node.names)  # names a sub-module
            else:
                found.add(base)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def all_modules() -> dict[str, set[str]]:
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        modules[name] = imported_modules(path.read_text(encoding="utf-8"), name,
                                         is_package=path.name == "__init__.py")
    return modules


def violations(modules: dict[str, set[str]]) -> list[str]:
    """Each import of a higher layer by a lower one, and each impurity of a PURE module."""
    found = []
    for module, imports in modules.items():
        own = layer_of(module)
        for target in sorted(imports):
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                found.append(f"{module} ({LAYER_NAMES[own]}) imports {target} "
                             f"({LAYER_NAMES[theirs]})")
        if module in PURE:
            found.extend(f"{module} must stay below every layer but imports {target}"
                         for target in sorted(imports - PURE[module] - {PACKAGE}))
    return found


def test_dependencies_run_one_way():
    modules = all_modules()
    assert len(modules) > 30, "the package was not found"
    assert violations(modules) == []


@pytest.mark.parametrize("lower", ["services", "db", "cache", "elevenlabs"])
def test_nothing_below_api_imports_api(lower):
    """The brief's grep, as a test: no service, db, cache or elevenlabs module imports api."""
    modules = all_modules()
    offenders = {m: sorted(i for i in imports if i.startswith("target_service.api"))
                 for m, imports in modules.items() if m.startswith(f"target_service.{lower}")}
    assert {m: i for m, i in offenders.items() if i} == {}


@pytest.mark.parametrize("lower", ["db", "cache", "elevenlabs"])
def test_no_lower_layer_imports_services(lower):
    modules = all_modules()
    offenders = {m: sorted(i for i in imports if i.startswith("target_service.services"))
                 for m, imports in modules.items() if m.startswith(f"target_service.{lower}")}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_checker_sees_every_form_of_import():
    """A checker that finds nothing proves nothing: each spelling of a bad import is caught."""
    sources = {
        "from target_service.api import schemas": "target_service.api",
        "from target_service import api": "target_service.api",
        "import target_service.services.dashboard as d": "target_service.services.dashboard",
        "def f():\n    from ..services import agents": "target_service.services",
        "if TYPE_CHECKING:\n    from target_service.app import create_app": "target_service.app",
    }
    for source, target in sources.items():
        imports = imported_modules(source, "target_service.cache.memory")
        assert target in imports, source
        assert violations({"target_service.cache.memory": imports}), source
    assert imported_modules("from . import schemas", "target_service.api",
                            is_package=True) == {"target_service.api.schemas"}


def test_every_module_has_a_layer():
    for module in all_modules():
        layer_of(module)  # raises for an unplaced module
