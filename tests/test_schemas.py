"""The JSON Schemas in schemas/ are the models' own, described for editors, never stale."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.adapters.safe_yaml import load_file
from bot.cli import main
from bot.core import schemas as models
from bot.report import schemas

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
REQUEST_SCHEMA = "promotion-request.schema.json"


def test_committed_schemas_match_the_models() -> None:
    assert schemas.check(SCHEMAS) == [], "run `promotion-bot schemas` and commit schemas/"


def test_check_finds_a_stale_or_missing_schema(tmp_path: Path) -> None:
    assert schemas.check(tmp_path) == list(models.MODELS)
    schemas.write(tmp_path)
    assert schemas.check(tmp_path) == []
    stale = tmp_path / REQUEST_SCHEMA
    stale.write_text(stale.read_text().replace('"maximum": 20', '"maximum": 25'))
    assert schemas.check(tmp_path) == [REQUEST_SCHEMA]


def test_write_rewrites_only_what_changed(tmp_path: Path) -> None:
    assert sorted(p.name for p in schemas.write(tmp_path)) == sorted(models.MODELS)
    assert schemas.write(tmp_path) == []
    (tmp_path / REQUEST_SCHEMA).write_text("{}")
    assert schemas.write(tmp_path) == [tmp_path / REQUEST_SCHEMA]


def test_schemas_command_check_fails_on_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schemas", "--check", "--dir", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().out
    assert main(["schemas", "--dir", str(tmp_path)]) == 0
    assert main(["schemas", "--check", "--dir", str(tmp_path)]) == 0


def properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for definition in [schema, *schema.get("$defs", {}).values()]:
        for name, prop in definition.get("properties", {}).items():
            yield f"{definition.get('title')}.{name}", prop


def test_every_request_field_has_a_description_for_editors() -> None:
    schema = models.generate()[REQUEST_SCHEMA]
    undescribed = [name for name, prop in properties(schema) if not prop.get("description")]
    assert undescribed == []
    assert all(d.get("description") for d in schema["$defs"].values())


def test_every_request_field_is_documented() -> None:
    doc = (ROOT / "docs" / "request-format.md").read_text()
    names = {name.split(".")[-1] for name, _ in properties(models.generate()[REQUEST_SCHEMA])}
    assert sorted(n for n in names if f"| `{n}` |" not in doc) == []


def request_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / REQUEST_SCHEMA).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_shipped_request_satisfies_the_json_schema() -> None:
    document = load_file(ROOT / "promotion-requests" / "fraud-detection.yaml", "r.yaml")
    assert list(request_validator().iter_errors(document.value)) == []


@pytest.mark.parametrize("name", [
    "hyperparameter-max-depth-too-deep", "hyperparameter-unknown-name", "missing-top-level",
    "unknown-gate-metric", "wrong-types",
])
def test_editors_flag_what_the_bot_refuses(name: str) -> None:
    document = load_file(ROOT / "tests" / "bad_requests" / f"{name}.yaml", "r.yaml")
    assert list(request_validator().iter_errors(document.value)) != []
