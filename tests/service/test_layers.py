"""Data flows one way: the service never imports the evaluation, which sits above it."""

from __future__ import annotations

import ast
from pathlib import Path

from service.cli import build_parser
from service.settings import Settings

SERVICE = Path(__file__).resolve().parents[2] / "service"


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            modules.add(node.module)
    return modules


def test_no_service_module_imports_eval() -> None:
    sources = sorted(SERVICE.rglob("*.py"))
    assert len(sources) > 10
    upward = {
        f"{path.relative_to(SERVICE.parent)}: {module}"
        for path in sources
        for module in imported_modules(path)
        if module == "eval" or module.startswith("eval.")
    }
    assert not upward


def test_eval_registers_its_commands_through_the_entry_point() -> None:
    help_text = build_parser(Settings()).format_help()
    assert "{ingest,serve,ask,mcp,eval,bench}" in help_text
