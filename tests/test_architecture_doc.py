"""docs/architecture.md stays true: every module is in its modules table, the plan.json
format it names is the one the code writes."""

from __future__ import annotations

import re
from pathlib import Path

from bot.core import plan_json

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def table_modules() -> set[str]:
    """The modules the ``## Modules`` table names in its first column."""
    section = DOC.read_text().split("## Modules", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names |= set(re.findall(r"`([a-z_/]+\.py)`", first))
    return names


def test_every_module_is_in_the_modules_table() -> None:
    bot = ROOT / "bot"
    modules = {str(p.relative_to(bot)) for p in bot.rglob("*.py")
               if p.name != "__init__.py" and p.parent != bot}
    listed = table_modules()
    assert sorted(modules - listed) == [], "add these to docs/architecture.md's modules table"
    assert sorted(listed - modules) == [], "docs/architecture.md lists modules that are gone"


def test_the_loose_modules_are_described() -> None:
    text = DOC.read_text()
    for path in sorted((ROOT / "bot").glob("*.py")):
        if path.name != "__init__.py":
            assert f"`bot/{path.name}`" in text, f"docs/architecture.md: describe bot/{path.name}"


def test_the_plan_format_is_the_code_s() -> None:
    found = re.findall(r"`format` \(now (\d+)\)", DOC.read_text())
    assert found == [str(plan_json.FORMAT)], (
        f"docs/architecture.md names plan.json format {found}; the code writes "
        f"{plan_json.FORMAT}")
