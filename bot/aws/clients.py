"""Lazy boto3 clients: boto3 is imported on first use so the CLI starts fast.

boto3 itself honours ``AWS_ENDPOINT_URL``, so the same code talks to AWS or to moto's server.
"""

from __future__ import annotations

from typing import Any

from bot.settings import settings


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` in ``region`` (default: the settings' region)."""
    import boto3

    return boto3.client(service, region_name=region or settings().region)
