"""The package layout is the architecture: each layer imports only what it may.

import-linter checks the contracts in pyproject.toml (``[tool.importlinter]``: the layers, no
cycle, a pure core, report apart from flows, no stand-in in production code); these tests run
it, so pytest fails on a broken contract, and check what it cannot: that every module sits in
a layer the contracts name, that commands import the stand-ins only when they run, and that
imports sit at the top of their module but for a few measured heavy ones.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "bot"


def contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    found: list[dict[str, Any]] = config["contracts"]
    return found


def modules() -> list[Path]:
    return sorted(p for p in BOT.rglob("*.py") if p.name != "__init__.py")


def test_the_import_contracts_hold() -> None:
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_the_linter_sees_what_a_contract_forbids(tmp_path: Path) -> None:
    """A contract the code breaks fails: the linter reads every import, outside ones too."""
    config = (ROOT / "pyproject.toml").read_text() + (
        '\n[[tool.importlinter.contracts]]\nname = "broken on purpose"\ntype = "forbidden"\n'
        'source_modules = ["bot.core"]\nforbidden_modules = ["pydantic"]\n')
    (tmp_path / "pyproject.toml").write_text(config)
    assert lint_imports(config_filename=str(tmp_path / "pyproject.toml"), no_cache=True) == 1


def test_every_module_sits_in_a_layer() -> None:
    layers = next(c for c in contracts() if c["type"] == "layers")["layers"]
    named = {part.strip() for layer in layers for part in layer.replace(":", "|").split("|")}
    packages = {f"bot.{p.name}" for p in BOT.iterdir() if (p / "__init__.py").is_file()}
    loose = {f"bot.{p.stem}" for p in BOT.glob("*.py") if p.name != "__init__.py"}
    assert named == packages | loose


def test_core_is_forbidden_the_outside_systems() -> None:
    core = next(c for c in contracts() if c.get("source_modules") == ["bot.core"])
    assert {"boto3", "botocore", "github", "requests", "subprocess", "http"} <= set(
        core["forbidden_modules"])


@pytest.mark.parametrize("path", [p for p in modules() if p.parent.name == "core"],
                         ids=lambda p: p.name)
def test_core_opens_no_file(path: Path) -> None:
    text = path.read_text()
    assert "open(" not in text.replace("tarfile.open(", ""), f"{path.name} opens files"


def eager_imports(path: Path) -> list[str]:
    """The modules ``path`` imports when it is imported (its top level, ``try`` and ``if``
    included; not inside functions or under ``if TYPE_CHECKING``)."""
    found = []
    pending: list[ast.stmt] = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody
            pending += [n for handler in node.handlers for n in handler.body]
    return found


@pytest.mark.parametrize("path", [p for p in modules() if p.parent.name == "commands"],
                         ids=lambda p: p.name)
def test_commands_import_the_stand_ins_only_when_they_run(path: Path) -> None:
    eager = [m for m in eager_imports(path) if m.startswith("bot.local")]
    assert eager == [], f"{path.name} imports {eager} at import time"


def test_no_module_outside_local_is_over_400_lines() -> None:
    long = {str(p.relative_to(BOT)): n for p in modules() if p.parent.name != "local"
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


#: The imports made inside functions, each for a measured reason: the CLI imports a command
#: only when chosen (``bot/cli.py``), commands import the stand-ins only when they run them, and
#: xgboost (over a second) waits until a model is trained, read or served; everything else
#: imports at the top of its module, where the dependency graph can be read.
LAZY = {
    "core/training.py": {"xgboost"},  # about 1 s: only to train, read or score a model
    "adapters/aws/images.py": {"sagemaker.core"},  # over 1 s: only to look an image up
    "commands/plan.py": {"bot.local.aws_server", "bot.local.bootstrap"},  # stand-ins
    "commands/demo.py": {"bot.local", "bot.local.faults"},  # stand-ins
    "commands/local_aws.py": {"bot.local.aws_server", "bot.local.bootstrap",
                              "bot.local.faults"},  # stand-ins
    # Every local AWS imports these; few of its runs serve a model or train on several
    # instances, so xgboost waits for those.
    "local/moto_gaps.py": {"xgboost"},
    "local/training_runner.py": {"xgboost.tracker"},
}


def function_import_nodes(path: Path) -> list[ast.Import | ast.ImportFrom]:
    """The import statements inside the functions of ``path`` (each once)."""
    found: dict[int, ast.Import | ast.ImportFrom] = {}
    for function in ast.walk(ast.parse(path.read_text())):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    found[node.lineno] = node
    return [found[line] for line in sorted(found)]


def function_imports(path: Path) -> set[str]:
    """The modules ``path`` imports inside functions."""
    found = set()
    for node in function_import_nodes(path):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif node.module:
            found.add(node.module)
    return found


def test_imports_sit_at_the_top_but_for_the_measured_heavy_ones_and_the_stand_ins() -> None:
    found = {str(p.relative_to(BOT)): imported for p in modules()
             if (imported := function_imports(p))}
    assert found == LAZY


def test_an_import_that_waits_says_why_on_its_line() -> None:
    """Outside the commands (whose stand-ins wait by rule), a function's import carries its
    reason: a comment on the same line."""
    silent = []
    for path in modules():
        if path.parent.name == "commands":
            continue
        lines = path.read_text().splitlines()
        for node in function_import_nodes(path):
            if "#" not in lines[(node.end_lineno or node.lineno) - 1]:
                silent.append(f"{path.relative_to(BOT)}:{node.lineno}")
    assert silent == []
