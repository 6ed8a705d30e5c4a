"""The arrows of the house, read from the imports of every module (no module is imported).

Services → shared; the CLI → shared and the services' public names; benchmarks → testkit →
product. Lazy imports inside functions count as much as those at the top of a file.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICES = {p.parent.name: p for p in REPO.glob("services/*/twincast_*/__init__.py")}
SERVICE_PACKAGES = frozenset(p.parent.name for p in SERVICES.values())
PACKAGES = {
    "twincast": REPO / "twincast",
    "twincast_shared": REPO / "shared" / "twincast_shared",
    "twincast_testkit": REPO / "testkit" / "twincast_testkit",
    "twincast_bench": REPO / "bench" / "twincast_bench",
    **{p.parent.name: p.parent for p in SERVICES.values()},
}
PRODUCT = frozenset({"twincast", "twincast_shared", *SERVICE_PACKAGES})
# `bench` was the benchmarks' import name before they became a package of their own.
NOT_FOR_THE_PRODUCT = frozenset({"twincast_bench", "twincast_testkit", "bench"})


@dataclass(frozen=True)
class Import:
    package: str  # the importing module's top-level package
    path: Path
    line: int
    module: str  # what is imported, dotted: `a.b` for `import a.b`, `a.b.c` for `from a.b import c`
    via_from: bool

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}: {self.module}"

    @property
    def top(self) -> str:
        return self.module.split(".", 1)[0]


def _module_name(package: str, root: Path, path: Path) -> list[str]:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports_of(package: str, root: Path, path: Path) -> Iterator[Import]:
    here = _module_name(package, root, path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(package, path, node.lineno, alias.name, via_from=False)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here if is_package else here[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                yield Import(package, path, node.lineno, f"{base}.{alias.name}", via_from=True)


@cache
def all_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            found.extend(_imports_of(package, root, path))
    return tuple(found)


@cache
def _public_names(service: str) -> frozenset[str]:
    """What a service's `__init__` defines or re-exports (its `__all__`, else every name bound)."""
    tree = ast.parse((PACKAGES[service] / "__init__.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        exported = any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
        if exported and isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            return frozenset(ast.literal_eval(node.value))
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".", 1)[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        else:
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


def _reaches_past_init(found: Import) -> bool:
    """True when an import names a service's submodule rather than one of its public names."""
    parts = found.module.split(".")
    if len(parts) == 1:
        return False
    if len(parts) > 2 or not found.via_from:
        return True
    # `from twincast_x import name`: fine unless `name` is a submodule the package does not export.
    root = PACKAGES[parts[0]]
    submodule = (root / f"{parts[1]}.py").exists() or (root / parts[1]).is_dir()
    return submodule and parts[1] not in _public_names(parts[0])


def _service_imports_another(found: Import) -> bool:
    return (
        found.package in SERVICE_PACKAGES
        and found.top in SERVICE_PACKAGES
        and found.top != found.package
    )


def _shared_imports_above_it(found: Import) -> bool:
    return found.package == "twincast_shared" and (
        found.top in SERVICE_PACKAGES or found.top == "twincast"
    )


def _cli_imports_service_internals(found: Import) -> bool:
    return (
        found.package == "twincast" and found.top in SERVICE_PACKAGES and _reaches_past_init(found)
    )


def _product_imports_test_code(found: Import) -> bool:
    return found.package in PRODUCT and found.top in NOT_FOR_THE_PRODUCT


def _testkit_imports_benchmarks(found: Import) -> bool:
    return found.package == "twincast_testkit" and found.top in {"twincast_bench", "bench"}


RULES: dict[str, Callable[[Import], bool]] = {
    "a service imports another service": _service_imports_another,
    "shared imports a service or the CLI": _shared_imports_above_it,
    "the CLI imports a service's private module": _cli_imports_service_internals,
    "the product imports the benchmarks or the testkit": _product_imports_test_code,
    "the testkit imports the benchmarks": _testkit_imports_benchmarks,
}


def test_the_walk_sees_every_package_and_lazy_imports() -> None:
    packages = {found.package for found in all_imports()}
    assert packages == set(PACKAGES), set(PACKAGES) - packages
    assert {"twincast_gateway", "twincast_reasoning", "twincast_stt"} <= SERVICE_PACKAGES
    cli = [f for f in all_imports() if f.path == REPO / "twincast" / "cli.py"]
    assert any(f.module == "twincast.client.ask" for f in cli), "lazy import inside `ask` missed"


def test_relative_imports_resolve_to_their_package(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "__init__.py").write_text("from . import a\nfrom .a import b\n")
    (root / "sub" / "mod.py").write_text("from .. import top\nfrom ..other import c\n")
    package = sorted(f.module for f in _imports_of("pkg", root, root / "sub" / "__init__.py"))
    module = sorted(f.module for f in _imports_of("pkg", root, root / "sub" / "mod.py"))
    assert package == ["pkg.sub.a", "pkg.sub.a.b"]
    assert module == ["pkg.other.c", "pkg.top"]


@pytest.mark.parametrize("rule", list(RULES))
def test_imports_follow_the_arrows(rule: str) -> None:
    hits = sorted((f for f in all_imports() if RULES[rule](f)), key=lambda f: (f.path, f.line))
    offending = [str(found) for found in hits]
    assert not offending, f"{rule}:\n  " + "\n  ".join(offending)
