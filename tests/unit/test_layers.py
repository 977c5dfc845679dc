"""The layers: shared code never imports a service, and no service imports another's package."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SERVICES = ("intake", "matching", "notify", "audit")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "shared").rglob("*.py")), ids=lambda p: p.name)
def test_shared_never_imports_a_service(path: Path):
    bad = sorted(m for m in _imports(path) if m == "services" or m.startswith("services."))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_never_imports_another_services_package(service: str):
    others = tuple(f"services.{name}" for name in SERVICES if name != service)
    for path in sorted((ROOT / "services" / service).rglob("*.py")):
        bad = sorted(m for m in _imports(path) if m.startswith(others) or m == "services.jurisdiction")
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
