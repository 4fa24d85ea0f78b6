"""The dependency rule, read from the source with ``ast``: web → domain → data (all may use api.config, api.errors
and api.schemas); the data layer imports neither the domain nor the web layer; the domain imports neither Flask nor
the web layer."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Known exceptions outside this change, to be removed by their owner (the test fails once one is gone, so the list
# only shrinks): services.py reads the request's app and session and still raises the deprecated ApiError.
KNOWN: dict[str, set[str]] = {}


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def violations(package: str, forbidden: tuple[str, ...]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        # Named by package (``flask``) or by module (``api.web.errors``), not by the names imported from it.
        bad = {
            "flask" if m.split(".")[0] == "flask" else ".".join(m.split(".")[:3])
            for m in imports(path)
            if any(m == f or m.startswith(f + ".") for f in forbidden)
        }
        if bad:
            found[rel] = bad
    return found


def test_the_import_walker_sees_nested_and_from_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("import flask\nfrom api.web import auth\n\ndef f():\n    from api.domain.services import db\n")
    assert {"flask", "api.web", "api.web.auth", "api.domain.services"} <= imports(src)


def test_data_imports_neither_domain_nor_web() -> None:
    assert violations("api/data", ("api.domain", "api.web", "flask")) == {}


def test_domain_imports_neither_flask_nor_web() -> None:
    found = violations("api/domain", ("api.web", "flask", "flask_openapi3", "werkzeug.exceptions"))
    unexpected = {f: mods - KNOWN.get(f, set()) for f, mods in found.items() if mods - KNOWN.get(f, set())}
    assert unexpected == {}
    stale = {f: mods - found.get(f, set()) for f, mods in KNOWN.items() if mods - found.get(f, set())}
    assert stale == {}, "a known exception is gone: remove it from KNOWN"


def test_errors_config_and_schemas_import_no_layer() -> None:
    for rel in ("api/errors.py", "api/config.py", "api/schemas.py"):
        mods = imports(ROOT / rel)
        assert not {m for m in mods if m.startswith(("api.web", "api.domain", "api.data", "flask"))}, rel


def test_the_web_app_starts_without_scikit_learn() -> None:
    """The service binds its port before the matcher's heavy modules load (they come with the first matcher or
    training, in the background): importing the app must not import scikit-learn, which alone took ~2.4 s of a
    first start on a 2-core machine."""
    import subprocess
    import sys

    probe = (
        "import sys, api.web.app, api.cli.service; print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
