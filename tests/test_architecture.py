"""The house rules, read from the code: one-way dependencies, task names in one module, matcher files stay small."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> dict[str, set[str]]:
    """Every module a package's files import (absolute names; relative imports resolved), by file."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations/versions" in path.as_posix():
            continue
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts[:-1])
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = parts[: len(parts) - node.level + 1]
                    names.add(".".join(base + ([node.module] if node.module else [])))
                elif node.module:
                    names.add(node.module)
        out[str(path.relative_to(ROOT))] = names
    return out


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{f} imports {n}"
        for f, names in _imports(package).items()
        for n in sorted(names)
        if any(n == p or n.startswith(p + ".") for p in forbidden)
    ]


def test_matcher_is_pure() -> None:
    web_db_queue = ("flask", "flask_openapi3", "sqlalchemy", "sqlmodel", "celery", "redis", "psycopg", "alembic")
    assert _offenders("matcher", ("api", "workers", "seed", *web_db_queue)) == []


def test_seed_is_data_and_readers() -> None:
    assert _offenders("seed", ("api", "workers")) == []


def test_api_never_imports_workers() -> None:
    assert _offenders("api", ("workers",)) == []


def test_celery_task_names_live_in_one_module() -> None:
    pattern = re.compile(
        r"[\"']twinning\.(rescore_all|rescore_city|rescore_chunk|train_model|nightly_rescore|expire_matches)[\"']"
    )
    files = [
        str(p.relative_to(ROOT))
        for pkg in ("api", "workers")
        for p in (ROOT / pkg).rglob("*.py")
        if pattern.search(p.read_text())
    ]
    assert files == ["api/domain/queue.py"]


def test_no_matcher_file_over_500_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "matcher").rglob("*.py")}
    assert {f: n for f, n in sizes.items() if n > 500} == {}
