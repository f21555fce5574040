"""The JSON Schemas in schemas/ are the models' own, described for editors, never stale."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.adapters.request_files import load_request, parse_request_text
from bot.adapters.safe_yaml import load_file
from bot.cli import main
from bot.core import schemas as models
from bot.core.request_values import DATA_URI_PATTERN, check_data_uri
from bot.errors import InvalidRequest
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


# The schema is as strict as validate wherever JSON Schema can say it.

BAD = sorted((ROOT / "tests" / "bad_requests").glob("*.yaml"))

#: The bad requests that validate refuses and the schema cannot, and why.
ONLY_VALIDATE = {
    # Rules about the YAML itself, which a YAML loader settles before a schema sees data.
    "anchors-and-aliases": "a YAML loader resolves anchors and aliases",
    "duplicate-key": "a YAML loader keeps one of the two values",
    # (multiple-documents is caught only because its second document is incomplete.)
    # JSON's data model has one kind of number: 150.0 is the integer 150 to JSON Schema.
    "hyperparameter-num-round-float": "150.0 is an integer to JSON Schema",
    # JSON Schema compares a value with constants, never with another part of the data.
    "traffic-not-among-custom-steps": "the share against the request's own steps",
    "rollout-steps-not-increasing": "the steps' order",
}

#: Not YAML a plain (safe) loader reads: every tool refuses them before any schema.
NOT_PLAIN_YAML = {"explicit-tag", "malformed-yaml", "python-tag", "tab-indentation",
                  "unclosed-bracket"}


def schema_refuses(text: str) -> bool | None:
    """Whether the JSON Schema refuses the request ``text`` as a plain YAML loader reads it
    (as check-jsonschema and editors do); None when that loader cannot read it."""
    try:
        documents = list(yaml.safe_load_all(text)) or [None]
    except yaml.YAMLError:
        return None
    return not all(request_validator().is_valid(document) for document in documents)


def test_validate_and_the_schema_differ_only_where_json_schema_cannot_say_it() -> None:
    only_validate, unreadable = set(), set()
    for path in BAD:
        with pytest.raises(InvalidRequest):  # validate refuses every case
            load_request(path, path.name)
        refused = schema_refuses(path.read_text())
        if refused is None:
            unreadable.add(path.stem)
        elif not refused:
            only_validate.add(path.stem)
    assert sorted(only_validate) == sorted(ONLY_VALIDATE)
    assert sorted(unreadable) == sorted(NOT_PLAIN_YAML)


DELETE = object()


def shipped(**changes: Any) -> str:
    document = yaml.safe_load((ROOT / "promotion-requests" / "fraud-detection.yaml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(document)


@pytest.mark.parametrize("changes, refused", [
    ({"training__backend": "sagemaker", "training__instance_count": 2}, False),
    ({"training__instance_count": 2}, True),  # local, the default
    ({"training__backend": "local", "training__volume_gb": 50}, True),
    ({"training__backend": "local"}, False),
    ({"rollout__challenger__steps": DELETE,  # the default steps
      "rollout__challenger__traffic_percent": 10}, False),
    ({"rollout__challenger__steps": DELETE, "rollout__challenger__traffic_percent": 5}, True),
    ({"rollout__challenger__steps": [{"percent": 5}, {"percent": 50}],
      "rollout__challenger__traffic_percent": 5}, True),  # steps that never reach 100
    ({"rollout__challenger__steps": [{"percent": 5}, {"percent": 100}],
      "rollout__challenger__traffic_percent": 5}, False),
    ({"data__train": "data/../train.parquet"}, True),
])
def test_the_schema_refuses_what_validate_refuses(changes: dict[str, Any], refused: bool) -> None:
    text = shipped(**changes)
    assert schema_refuses(text) is refused
    assert bool(problems_of(text)) is refused


def problems_of(text: str) -> list[str]:
    try:
        parse_request_text(text, "r.yaml")
    except InvalidRequest as error:
        return [str(p) for p in error.problems]
    return []


@pytest.mark.parametrize("uri", [
    "s3://bucket/key.parquet", "s3://fraud-detection-data/processed/train.parquet",
    "data/train.parquet", "./data/train.parquet", "train.parquet", "data/..hidden/x.parquet",
    "a..b.parquet", "s3:bucket/key", "data/x..", "my data/t.parquet", "données/t.parquet",
    "s3://bucket/../key",  # an S3 key, not a path: '..' is a name there
    "/etc/passwd", "\\\\share\\x", "~/x", "C:/x", "c:x", "file:t.parquet", "file:///t",
    "https://example.com/x", "http:x", "ftp://x/y", "data:abc", "gs://bucket/key", "x://y",
    "data/../../secrets", "..", "../x", "a/..", "a\\..\\b", "s3://bucket", "s3://bucket/",
    "s3:///key", "", "   ", "data/\u202etxt.parquet", "data/t\u200b.parquet", "s3://b/k\n",
    "a\tb", "a\nb", "s3://b/\x7fk",
])
def test_the_data_pattern_answers_as_validate_does(uri: str) -> None:
    try:
        check_data_uri(uri)
    except ValueError:
        valid = False
    else:
        valid = True
    schema = {"type": "string", "pattern": DATA_URI_PATTERN}
    assert jsonschema.Draft202012Validator(schema).is_valid(uri) is valid
    assert (re.search(DATA_URI_PATTERN, uri) is not None) is valid
