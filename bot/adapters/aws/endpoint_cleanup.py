"""What the bot leaves behind on SageMaker: its own endpoint configs and models, tagged, and
deleted once the endpoint no longer uses them; nothing a person made is touched."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from bot.adapters.aws.clients import error_code
from bot.core.names import MANAGED_TAG
from bot.settings import Target


def clean_up(sm: Any, t: Target, config_in_use: str) -> list[str]:
    """Delete this bot's endpoint configs and models of the target that the endpoint does not use.

    Only names of the bot's own form (``<target>-<16 hex>``) that carry the managed tag are
    deleted; anything a person made by hand is left alone.
    """
    own = re.compile(rf"^{re.escape(t.name)}-[0-9a-f]{{16}}$")
    in_use = sm.describe_endpoint_config(EndpointConfigName=config_in_use)
    models_in_use = {v["ModelName"] for v in in_use["ProductionVariants"]}
    actions = []
    configs = [
        c for page in sm.get_paginator("list_endpoint_configs").paginate(NameContains=t.name)
        for c in page["EndpointConfigs"]
        if own.match(c["EndpointConfigName"]) and c["EndpointConfigName"] != config_in_use
    ]
    for config in configs:
        if managed(sm, config["EndpointConfigArn"]):
            _delete(sm.delete_endpoint_config, EndpointConfigName=config["EndpointConfigName"])
            actions.append(f"delete endpoint config {config['EndpointConfigName']}")
    models = [
        m for page in sm.get_paginator("list_models").paginate(NameContains=t.name)
        for m in page["Models"]
        if own.match(m["ModelName"]) and m["ModelName"] not in models_in_use
    ]
    for model in models:
        if managed(sm, model["ModelArn"]):
            _delete(sm.delete_model, ModelName=model["ModelName"])
            actions.append(f"delete model {model['ModelName']}")
    return actions


def _delete(call: Any, **name: str) -> None:
    """Delete; one that is gone already is done (a retried delete whose first answer was
    lost finds nothing: SageMaker answers ValidationException "Could not find ...", not
    ResourceNotFound: https://github.com/boto/boto3/issues/2886)."""
    try:
        call(**name)
    except ClientError as error:
        if error_code(error) != "ValidationException" or "Could not find" not in str(error):
            raise


def managed(sm: Any, arn: str) -> bool:
    """Whether the resource carries the bot's tag; one deleted meanwhile is not ours to delete."""
    try:
        tags = [
            tag for page in sm.get_paginator("list_tags").paginate(ResourceArn=arn)
            for tag in page["Tags"]
        ]
    except ClientError as error:
        if error_code(error) == "ValidationException":
            return False
        raise
    return any(tag["Key"] == MANAGED_TAG["Key"] and tag["Value"] == "true" for tag in tags)
