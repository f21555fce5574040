"""The JSON Schemas of the formats, generated from their pydantic models (pure): what
``schemas/`` holds (``bot.report.schemas`` writes and checks it) and what apply checks the
production config against before writing it (``bot.adapters.aws.config_store``).
"""

from __future__ import annotations

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
