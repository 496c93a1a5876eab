"""The rule that gives the layout meaning (DESIGN.md, "Layout"):

`harness/analysis/` and `harness/model/` import no file, process, network,
gevent or Locust code, and nothing from `harness/loadgen/`, `harness/stack/` or
`harness/run/`. Checked on the source with `ast`, so an import inside a function
(or through `importlib.import_module("...")`) counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"
PURE_PACKAGES = ("analysis", "model")
FORBIDDEN = ("os", "subprocess", "socket", "httpx", "urllib", "gevent", "locust",
             "harness.loadgen", "harness.stack", "harness.run")
KNOWN_VIOLATIONS: dict[str, str] = {}
"""Module -> why it may break the rule for now (strict xfail); empty: none may."""


def forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def _imports_by_name(call: ast.Call) -> bool:
    """`__import__("x")` or `importlib.import_module("x")` with a literal name."""
    func = call.func
    named = ((isinstance(func, ast.Name) and func.id == "__import__")
             or (isinstance(func, ast.Attribute) and func.attr == "import_module"))
    return named and bool(call.args) and isinstance(call.args[0], ast.Constant) \
        and isinstance(call.args[0].value, str)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module `source` (the code of `module`) imports, at any depth.

    `from a import b` counts as `a` and as `a.b` (b may be a submodule);
    relative imports are resolved against `module`'s package."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and _imports_by_name(node):
            found.add(node.args[0].value)
    return found


def pure_modules() -> list[Path]:
    return sorted(p for pkg in PURE_PACKAGES for p in (HARNESS / pkg).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(HARNESS.parent).as_posix()


def module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def violations(path: Path) -> list[str]:
    found = imported_modules(path.read_text(encoding="utf-8"), module_name(path),
                             is_package=path.name == "__init__.py")
    return sorted(m for m in found if forbidden(m))


def cases():
    for path in pure_modules():
        reason = KNOWN_VIOLATIONS.get(rel(path))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(path, id=rel(path), marks=marks)


@pytest.mark.parametrize("path", list(cases()))
def test_pure_modules_import_no_io_process_network_or_orchestration(path: Path):
    assert violations(path) == [], f"{rel(path)} imports what harness/analysis and " \
                                   f"harness/model must not"


def test_the_rule_sees_the_modules_it_is_about():
    names = {rel(p) for p in pure_modules()}
    assert "harness/analysis/collect.py" in names
    assert {"harness/analysis/server_metrics.py", "harness/model/result.py",
            "harness/model/intervals.py"} <= names
    assert set(KNOWN_VIOLATIONS) <= names  # a stale exception would hide nothing
    assert all(not p.name.startswith("test_") for p in pure_modules())


def test_collect_is_checked_for_real():
    found = imported_modules((HARNESS / "analysis" / "collect.py").read_text(),
                             "harness.analysis.collect")
    assert {"harness.hdr", "harness.model.result", "harness.model.client"} <= found


SNEAKY = """
import json
import os.path
from subprocess import run
from .. import stack
from ..run.layout import RESULT
from harness import loadgen
import harness.runner_notes
import osmosis

def later():
    import socket
    from urllib.parse import urlsplit
    return __import__("gevent")

class K:
    def m(self):
        import importlib
        return importlib.import_module("locust.env")
"""


def test_the_checker_finds_imports_at_any_depth():
    found = imported_modules(SNEAKY, "harness.analysis.sneaky")
    assert sorted(m for m in found if forbidden(m)) == [
        "gevent", "harness.loadgen", "harness.run.layout", "harness.run.layout.RESULT",
        "harness.stack", "locust.env", "os.path", "socket", "subprocess", "subprocess.run",
        "urllib.parse", "urllib.parse.urlsplit"]
    assert not forbidden("osmosis") and not forbidden("harness.runner_notes")
    assert not forbidden("json") and not forbidden("harness.model.result")
