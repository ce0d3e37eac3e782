"""The shape of the product code, read from its source with ast (nothing is imported):

- no import circles, counting imports inside functions too (only `if TYPE_CHECKING:` blocks,
  which never run, are left out);
- imports flow downward as the README's layout table says: sync_protocol imports none of
  ours, edge_node / central_hub / provisioning import sync_protocol, kiosk_ui imports
  edge_node; the hub's domain modules import nothing of its web layer;
- Flask (and werkzeug) only in the web layers: edge_node/web, kiosk_ui, central_hub/web and
  the provisioning station;
- no module over 600 lines, and every module opens with a docstring saying what it owns.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sync_protocol", "edge_node", "central_hub", "kiosk_ui", "provisioning")
# Which of our packages each package may import (DESIGN.md section 3, README "Layout").
MAY_IMPORT = {
    "sync_protocol": set(),
    "edge_node": {"sync_protocol"},
    "central_hub": {"sync_protocol"},
    "provisioning": {"sync_protocol"},
    "kiosk_ui": {"edge_node", "sync_protocol"},
}
FLASK = ("flask", "werkzeug")
WEB_LAYERS = ("edge_node.web", "kiosk_ui", "central_hub.web", "provisioning.station")
# The hub's web layer is imported by the CLI (to serve) and by nothing else outside it.
HUB_WEB = "central_hub.web"
HUB_WEB_USERS = ("central_hub.cli",)
MAX_LINES = 600


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: int
    imports: list[tuple[str, int]] = field(default_factory=list)  # (module, line)


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def load(root: Path, packages: tuple[str, ...]) -> dict[str, Module]:
    """Every module of `packages` under `root`, with what it imports (resolved to modules of
    ours where it names one: `from . import x` is the module x when x is one)."""
    modules: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            text = path.read_text(encoding="utf-8")
            modules[name] = Module(name, path, ast.parse(text, str(path)),
                                   len(text.splitlines()))
    for module in modules.values():
        module.imports = _imports(module, modules)
    return modules


def _imports(module: Module, modules: dict[str, Module]) -> list[tuple[str, int]]:
    never_run = {id(node) for block in ast.walk(module.tree)
                 if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                 for statement in block.body for node in ast.walk(statement)}
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    found = []
    for node in ast.walk(module.tree):
        if id(node) in never_run:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append((submodule if submodule in modules else source, node.lineno))
    return found


def cycles(modules: dict[str, Module]) -> list[list[str]]:
    """The import circles: strongly connected groups of more than one module (Tarjan)."""
    graph = {name: sorted({target for target, _ in m.imports if target in modules
                           and target != name}) for name, m in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # iterative, so deep chains need no recursion limit
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return found


@pytest.fixture(scope="module")
def product() -> dict[str, Module]:
    return load(ROOT, PACKAGES)


def test_the_product_code_has_no_import_circles(product):
    assert len(product) > 100  # every package was read
    assert cycles(product) == []


def test_imports_flow_downward_as_the_layout_says(product):
    wrong = []
    for module in product.values():
        own = module.name.split(".")[0]
        for target, line in module.imports:
            top = target.split(".")[0]
            if top in MAY_IMPORT and top != own and top not in MAY_IMPORT[own]:
                wrong.append(f"{module.path.relative_to(ROOT)}:{line} imports {target}")
    assert wrong == []


def test_the_hubs_domain_modules_import_nothing_of_its_web_layer(product):
    wrong = [f"{m.path.relative_to(ROOT)}:{line} imports {target}"
             for m in product.values() if not within(m.name, HUB_WEB)
             and m.name not in HUB_WEB_USERS
             for target, line in m.imports if within(target, HUB_WEB)]
    assert wrong == []


def test_flask_is_imported_only_in_the_web_layers(product):
    wrong = [f"{m.path.relative_to(ROOT)}:{line} imports {target}"
             for m in product.values()
             if not any(within(m.name, layer) for layer in WEB_LAYERS)
             for target, line in m.imports if target.split(".")[0] in FLASK]
    assert wrong == []


def test_no_product_module_is_over_600_lines(product):
    long = {str(m.path.relative_to(ROOT)): m.lines for m in product.values()
            if m.lines > MAX_LINES}
    assert long == {}


def test_every_module_opens_with_a_docstring_saying_what_it_owns(product):
    bare = [str(m.path.relative_to(ROOT)) for m in product.values()
            if not (ast.get_docstring(m.tree) or "").strip()]
    assert bare == []


# -- the checks themselves, on a package made for them --------------------------------------

def test_the_checks_find_a_circle_a_lazy_import_and_flask(tmp_path):
    package = tmp_path / "demo"
    (package / "web").mkdir(parents=True)
    files = {
        "__init__.py": '"""Demo."""\n',
        "a.py": '"""A."""\nfrom . import b\n',
        "b.py": '"""B."""\n\ndef later():\n    from .c import thing\n',
        "c.py": '"""C."""\nfrom demo.a import x\nimport flask\n',
        "d.py": '"""D."""\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
                '    from .e import E\n',
        "e.py": "from .d import D\n",
        "web/__init__.py": '"""Web."""\nfrom flask import Flask\n',
    }
    for name, text in files.items():
        (package / name).write_text(text, encoding="utf-8")
    modules = load(tmp_path, ("demo",))
    assert cycles(modules) == [["demo.a", "demo.b", "demo.c"]]  # d <-> e only when type checking
    assert ("flask", 3) in modules["demo.c"].imports
    assert not ast.get_docstring(modules["demo.e"].tree)
