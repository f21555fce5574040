"""The base install (what the pre-commit hook and the validate workflow install) is enough
for ``validate``: it imports nothing outside the base dependencies, however it is run, and
a command that needs the bot's runtime says how to install it instead of failing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from conftest import GitRepo
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "promotion-requests" / "fraud-detection.yaml"
BAD = sorted((ROOT / "tests" / "bad_requests").glob("*.yaml"))

#: Runs the CLI, then prints the distributions of the modules it imported, as JSON.
RUN_AND_LIST = """
import json, sys
from importlib import metadata
started = set(sys.modules)  # the interpreter's own (and site's .pth hooks)
from bot.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exited:
    code = exited.code
owners = metadata.packages_distributions()
used = sorted({d for m in set(sys.modules) - started for d in owners.get(m.split(".")[0], [])})
print("USED " + json.dumps(used), file=sys.stderr)
sys.exit(code)
"""

#: Makes the bot's runtime (the modules given as JSON in argv[1]) impossible to import.
BLOCK_AND_RUN = """
import importlib.abc, json, sys
blocked = set(json.loads(sys.argv.pop(1)))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from bot.cli import main
sys.exit(main(sys.argv[1:]))
"""


def closure(requirements: list[str]) -> set[str]:
    """The distributions ``requirements`` install, transitively (their extras included)."""
    found: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in found:
            continue
        found |= {key, name}
        for text in metadata.requires(requirement.name) or []:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra})
                                            for extra in ["", *requirement.extras]):
                todo.append(needed)
    return {name for name in found if "[" not in name}


def base_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return closure(project["dependencies"]) | {"promotion-bot"}


def run(script: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def used(done: subprocess.CompletedProcess[str]) -> set[str]:
    [line] = [x for x in done.stderr.splitlines() if x.startswith("USED ")]
    return {canonicalize_name(name) for name in json.loads(line.removeprefix("USED "))}


def test_the_base_is_light() -> None:
    assert base_distributions() <= {
        "promotion-bot", "pydantic", "pydantic-core", "pydantic-settings", "python-dotenv",
        "typing-extensions", "typing-inspection", "annotated-types", "pyyaml",
    }


def test_validate_imports_only_the_base_dependencies() -> None:
    paths = [str(p.relative_to(ROOT)) for p in [SHIPPED, *BAD]]
    done = run(RUN_AND_LIST, "validate", *paths)
    assert done.returncode == 1, done.stderr
    assert used(done) <= base_distributions()
    assert "pydantic" in used(done)  # the check sees what validate imports


def test_validate_with_base_imports_only_the_base_dependencies(git_repo: GitRepo) -> None:
    git_repo.commit({"promotion-requests/fraud-detection.yaml": SHIPPED.read_text()}, "1%")
    done = run(RUN_AND_LIST, "validate", "--base", "main", cwd=git_repo.path)
    assert done.returncode == 0, done.stderr
    assert used(done) <= base_distributions()


def test_help_and_schemas_check_import_only_the_base_dependencies() -> None:
    for argv in (["--help"], ["plan", "--help"], ["schemas", "--check"]):
        done = run(RUN_AND_LIST, *argv)
        assert done.returncode == 0, done.stderr
        assert used(done) <= base_distributions(), argv


def runtime_modules() -> list[str]:
    """The top-level modules of the bot extra's distributions that the base lacks."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = closure(project["optional-dependencies"]["bot"]) - base_distributions()
    return sorted(module for module, owners in metadata.packages_distributions().items()
                  if {canonicalize_name(o) for o in owners} & runtime
                  and re.fullmatch(r"[A-Za-z_]\w*", module))


def test_without_the_runtime_validate_works_and_plan_says_what_to_install(
    tmp_path: Path
) -> None:
    blocked = json.dumps(runtime_modules())
    assert "boto3" in blocked and "xgboost" in blocked
    done = run(BLOCK_AND_RUN, blocked, "validate", str(SHIPPED))
    assert (done.returncode, done.stdout) == (0, "1 file ok\n"), done.stderr
    done = run(BLOCK_AND_RUN, blocked, "plan", str(SHIPPED), "--no-github",
               "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert re.fullmatch(r"promotion-bot plan: needs the bot's runtime, which this install "
                        r"lacks \(\w+(\.\w+)* is not installed\): pip install "
                        r"'promotion-bot\[bot\]'", line), line
