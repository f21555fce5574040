"""What is in AWS now for one target, read just before planning or applying."""

from __future__ import annotations

from types import EllipsisType

from bot.adapters.aws import config_store, pipeline, ssm
from bot.core.domain import EndpointSpec, LiveState
from bot.core.production_config import ProductionConfig
from bot.settings import Target


def _endpoint(t: Target) -> EndpointSpec | None:
    from bot.adapters.aws import endpoint

    return endpoint.read(t)


def read_live(t: Target, execution_name: str | None,
              config: ProductionConfig | EllipsisType | None = ...) -> LiveState:
    """SSM values, production config, endpoint variants and whether ``execution_name`` ran.

    ``config``: the production config as this run already read it (a plan compares with the
    champion it names, so its changes are computed from the same snapshot); read here if
    not given.
    """
    return LiveState(
        ssm=ssm.read(t),
        config=config_store.read(t) if isinstance(config, EllipsisType) else config,
        endpoint=_endpoint(t),
        execution_exists=(
            execution_name is not None and pipeline.find_execution(t, execution_name) is not None
        ),
    )
