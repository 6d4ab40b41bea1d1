"""The app layering of docs/ARCHITECTURE.md, checked on the source: no upward imports between apps, and no
import of a private (underscore) name from outside the package that owns it.

The import graph is read with ``ast`` (module-level and function-level imports alike), so a lazy import
inside a function cannot hide an upward dependency. Migrations are skipped (they never import app code).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Lowest first. An app may import the apps listed in ALLOWED for it and nothing else of ours; the list
#: follows docs/ARCHITECTURE.md ("Layers"). ``console`` is the DPO console: it may read every app, and
#: nothing imports it.
ORDER = ("config", "audit", "events", "profiles", "consent", "scoring", "webhooks", "engagement", "kpis",
         "subject_rights", "console")
ALLOWED: dict[str, frozenset[str]] = {
    "config": frozenset(),
    "audit": frozenset({"config"}),
    "events": frozenset({"config"}),
    "profiles": frozenset({"config", "audit", "events"}),
    "consent": frozenset({"config", "audit", "events", "profiles"}),
    "scoring": frozenset({"config", "audit", "events", "profiles", "consent"}),
    "webhooks": frozenset({"config", "audit", "events", "profiles", "consent"}),  # never engagement
    "engagement": frozenset({"config", "audit", "events", "profiles", "consent", "scoring"}),
    "kpis": frozenset({"config", "audit", "events", "profiles", "consent", "scoring", "engagement"}),
    "subject_rights": frozenset({"config", "audit", "events", "profiles", "consent", "scoring", "webhooks",
                                 "engagement", "kpis"}),
    "console": frozenset(ORDER[:-1]),
}
#: The composition root: settings, URL routing, the Celery app and WSGI wire the apps together, so they
#: may name any app (they are not "shared plumbing").
COMPOSITION_ROOT = {"config.urls", "config.celery", "config.wsgi", "config.asgi"}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for app in ORDER:
        base = ROOT / app
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            if "migrations" in rel.parts:
                continue
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            found.append((".".join(parts), path))
    return found


MODULES = _modules()
KNOWN = {name for name, _ in MODULES}


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, imported module, names imported from it) for every import statement in the file."""
    package = _package_of(module, path)
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target, tuple(alias.name for alias in node.names)))
    return out


def _app(module: str) -> str:
    return module.split(".")[0]


def test_the_layering_lists_every_app_once() -> None:
    assert set(ALLOWED) == set(ORDER) and len(ORDER) == len(set(ORDER))
    for app, allowed in ALLOWED.items():
        assert allowed <= set(ORDER[: ORDER.index(app)]), f"{app} may only depend on apps below it"


def test_no_app_imports_an_app_above_it_or_beside_it() -> None:
    violations = []
    for module, path in MODULES:
        if module in COMPOSITION_ROOT or module.startswith("config.settings"):
            continue
        app = _app(module)
        for line, target, _names in _imports(module, path):
            other = _app(target)
            if other in ALLOWED and other != app and other not in ALLOWED[app]:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert violations == []


#: Private names imported from another module, allowed by exception: none. Each entry would be (importing
#: module, imported module); an entry that no longer matches any import fails the test below.
PRIVATE_IMPORT_ALLOWED: frozenset[tuple[str, str]] = frozenset()


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _private_imports() -> list[tuple[str, str, str]]:
    """(importing module, imported module, "path:line name") for every private (single-underscore) name that
    a module takes from another module of ours: ``from x.y import _name``, or ``import x.y`` / ``from x
    import y`` and then ``y._name``."""
    found = []
    for module, path in MODULES:
        tree = ast.parse(path.read_text(), str(path))
        aliases: dict[str, str] = {}  # local name -> module of ours it is bound to
        asnames = {(node.lineno, alias.name): alias.asname or alias.name for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) for alias in node.names}
        for line, target, names in _imports(module, path):
            if not names and target in KNOWN:  # import x.y [as z]
                aliases[target.rpartition(".")[2]] = target
            if target not in KNOWN and not any(f"{target}.{n}" in KNOWN for n in names):
                continue
            for name in names:
                if f"{target}.{name}" in KNOWN:  # a submodule imported by name
                    aliases[asnames.get((line, name), name)] = f"{target}.{name}"
                    continue
                if name.startswith("_") and not name.startswith("__") and target != module:
                    found.append((module, target, f"{_shown(path)}:{line} {name}"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")
                    and aliases[node.value.id] != module):
                found.append((module, aliases[node.value.id], f"{_shown(path)}:{node.lineno} {node.attr}"))
    return found


def test_no_module_imports_a_private_name_from_another_module() -> None:
    """A private (underscore) name is used only in the module that defines it: a helper that another module
    needs, even one of the same package, gets a public name in the module where it lives (the package's
    ``__init__`` re-exports only what callers outside use)."""
    violations = sorted(where for importer, imported, where in _private_imports()
                        if (importer, imported) not in PRIVATE_IMPORT_ALLOWED)
    assert violations == []


def test_the_private_import_allow_list_only_names_imports_that_still_exist() -> None:
    used = {(importer, imported) for importer, imported, _ in _private_imports()}
    assert sorted(PRIVATE_IMPORT_ALLOWED - used) == []


def test_the_private_import_check_sees_both_forms(tmp_path: Path) -> None:
    """Control: the scanner is not blind (a planted ``from m import _x`` and ``m._y`` are both found)."""
    import tests.foundation.test_layering as layering

    module = tmp_path / "_planted_private_import_check.py"  # read as if it were a module of the audit app
    module.write_text("from audit.services import _actor\nfrom audit import canonical\n\n"
                      "def f():\n    return _actor, canonical._canonical_value\n")
    planted = ("audit._planted_private_import_check", module)
    original = layering.MODULES
    layering.MODULES = [*original, planted]
    try:
        found = {(imported, where.rsplit(" ", 1)[1]) for importer, imported, where in layering._private_imports()
                 if importer == planted[0]}
    finally:
        layering.MODULES = original
    assert found == {("audit.services", "_actor"), ("audit.canonical", "_canonical_value")}
