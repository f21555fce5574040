"""JSON Schemas generated from the pydantic models, so editors and other tools share the format.

The models stay the single source of truth; ``schemas/`` holds their committed output,
and a test fails when it drifts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.core.production_config import ProductionConfig
from bot.core.request import Request

_DIALECT = "https://json-schema.org/draft/2020-12/schema"

MODELS: dict[str, tuple[type[BaseModel], str]] = {
    "promotion-request.schema.json": (
        Request, "Promotion request: one file per target under promotion-requests/."
    ),
    "production-config.schema.json": (
        ProductionConfig, "Production model config written to S3 by promotion-bot apply."
    ),
}


def generate() -> dict[str, dict[str, Any]]:
    """Each schema file's name and content, as the models define them today."""
    schemas = {}
    for name, (model, title) in MODELS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schemas[name] = {"$schema": _DIALECT, **schema, "title": title}
    return schemas


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    """Write every schema into ``directory``; return the files whose content changed."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = directory / name
        text = _text(schema)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def check(directory: Path) -> list[str]:
    """The schema files in ``directory`` that are missing or differ from the models."""
    return [
        name for name, schema in generate().items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != _text(schema)
    ]
