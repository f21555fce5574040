"""What users read never cites a document they do not have: no section numbers such as
``(8.1)`` or ``(9.1–9.3)``, no ``issue 12``. Checked in the shipped request, the schemas
(editors show their descriptions), the README and docs, the hook and workflow files, and
every string and comment of the bot's code (help texts, messages, docstrings that become
schema descriptions)."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"\(\d+\.\d+(?:\s*[,–-]\s*\d+\.\d+)*\)|\bissues? #?\d+", re.IGNORECASE)


def text_files() -> list[Path]:
    found = [ROOT / "README.md", ROOT / ".pre-commit-hooks.yaml"]
    for pattern in ("schemas/*.json", "promotion-requests/**/*", "docs/**/*",
                    ".github/**/*.yml"):
        found += ROOT.glob(pattern)
    return sorted(p for p in found if p.is_file())


def references_in_text(text: str) -> list[str]:
    return [f"{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
            if REFERENCE.search(line)]


def references_in_code(source: str) -> list[str]:
    """References in the strings and comments of Python ``source`` (never in numbers, so a
    tuple ``(0.0, 1.0)`` is fine)."""
    kinds = {tokenize.STRING, tokenize.COMMENT, getattr(tokenize, "FSTRING_MIDDLE", -1)}
    return [f"{token.start[0]}: {token.string.strip()}"
            for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type in kinds and REFERENCE.search(token.string)]


@pytest.mark.parametrize("found", [
    'description="Start the retraining pipeline (10.1)."',
    "# written to SSM (8.1, 8.2)",
    '"""The production config YAML in S3 (9.1–9.3)."""',
    'help="SageMaker training jobs (issue 12)"',
    "x = f'see issue #9 for why'",
])
def test_the_scan_finds_a_reference(found: str) -> None:
    assert references_in_code(found + "\n") != []
    assert references_in_text(found) != []


def test_numbers_and_versions_are_not_references() -> None:
    assert references_in_code("BOX = (0.0, 1.0)\nchance = f'chance ({p:.2%})'\n") == []
    assert references_in_text("xgboost (3.1 and later); 20/20 (100.0%); 6.6 s") == []


@pytest.mark.parametrize("path", text_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_section_numbers_in_user_facing_files(path: Path) -> None:
    assert references_in_text(path.read_text(encoding="utf-8")) == []


def test_no_section_numbers_in_the_bots_strings_and_comments() -> None:
    found = {str(path.relative_to(ROOT)): hits for path in sorted((ROOT / "bot").rglob("*.py"))
             if (hits := references_in_code(path.read_text(encoding="utf-8")))}
    assert found == {}
