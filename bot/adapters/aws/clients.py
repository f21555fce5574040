"""Lazy boto3 clients: boto3 is imported on first use so the CLI starts fast.

boto3 itself honours ``AWS_ENDPOINT_URL``, so the same code talks to AWS or to moto's server.
"""

from __future__ import annotations

import os
from typing import Any

from bot.settings import settings


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` in ``region`` (default: the settings' region).

    Clients are reused while the environment that configures them is the same: creating
    one costs more than most calls made with it.
    """
    import boto3

    key = (service, region or settings().region, id(boto3.DEFAULT_SESSION),
           *(os.environ.get(name) for name in _CONFIGURING))
    found = _clients.get(key)
    if found is None:
        found = _clients[key] = boto3.client(service, region_name=key[1])
    return found


_CONFIGURING = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION")
_clients: dict[tuple[Any, ...], Any] = {}


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ``ClientError`` (``NoSuchKey``...), else ''."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def forget() -> None:
    """Drop the cached clients (tests do, between moto sessions)."""
    _clients.clear()
