"""The package layout is the architecture: each layer imports only what it may.

core is pure (no outside system, no file or process I/O); adapters talk to one outside system
each; flows combine them; report formats output; local holds the stand-ins, which production
code never imports (only the commands that start them do, inside the function that runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"
LAYERS = ("core", "adapters", "flows", "report", "local", "commands")
#: Modules no core module may import: outside systems, processes and files.
NOT_IN_CORE = ("boto3", "botocore", "github", "subprocess", "shutil", "tempfile", "pathlib",
               "socket", "urllib", "requests", "moto")
#: What each layer may import from the package (besides itself and bot.errors/bot.settings).
ALLOWED = {
    "core": set(),
    "adapters": {"core", "report"},  # report: plan.json and schemas are read back by adapters
    "flows": {"core", "adapters", "report"},
    "report": {"core", "flows"},  # flows: the audit trail's entries
    "local": {"core", "adapters", "flows", "report", "commands", "local"},
    "commands": {"core", "adapters", "flows", "report", "local"},
}


def modules() -> list[Path]:
    return sorted(p for p in BOT.rglob("*.py") if p.name != "__init__.py")


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(module, at top level) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
            if node.module == "bot":
                found += [(f"bot.{alias.name}", id(node) in top) for alias in node.names]
    return found


def layer_of(path: Path) -> str | None:
    parts = path.relative_to(BOT).parts
    return parts[0] if len(parts) > 1 and parts[0] in LAYERS else None


def test_every_module_sits_in_a_layer() -> None:
    loose = [p.name for p in BOT.glob("*.py")]
    assert sorted(loose) == ["__init__.py", "cli.py", "errors.py", "settings.py"]
    assert all(layer_of(p) for p in modules() if p.parent != BOT)


@pytest.mark.parametrize("path", [p for p in modules() if layer_of(p) == "core"],
                         ids=lambda p: p.name)
def test_core_touches_no_outside_system(path: Path) -> None:
    bad = [m for m, _ in imports_of(path) if m.split(".")[0] in NOT_IN_CORE]
    assert bad == [], f"{path.name} imports {bad}"
    text = path.read_text()
    assert "open(" not in text.replace("tarfile.open(", ""), f"{path.name} opens files"


@pytest.mark.parametrize("path", [p for p in modules() if layer_of(p)], ids=lambda p: str(
    p.relative_to(BOT)))
def test_layers_import_only_what_they_may(path: Path) -> None:
    layer = layer_of(path)
    assert layer is not None
    used = {m.split(".")[1] for m, _ in imports_of(path)
            if m.startswith("bot.") and m.split(".")[1] in LAYERS}
    assert used - {layer} <= ALLOWED[layer], f"{path.relative_to(BOT)} imports {used}"


@pytest.mark.parametrize("path", [p for p in modules() if layer_of(p) == "commands"],
                         ids=lambda p: p.name)
def test_commands_import_the_stand_ins_only_when_they_run(path: Path) -> None:
    eager = [m for m, top in imports_of(path) if m.startswith("bot.local") and top]
    assert eager == [], f"{path.name} imports {eager} at import time"


def test_the_cli_does_not_import_the_stand_ins() -> None:
    assert not [m for m, _ in imports_of(BOT / "cli.py") if m.startswith("bot.local")]


def test_no_module_outside_local_is_over_400_lines() -> None:
    long = {str(p.relative_to(BOT)): n for p in modules() if layer_of(p) != "local"
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
