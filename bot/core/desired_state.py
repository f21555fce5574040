"""The production state a request asks for, derived from the request and its stored plan.

Pure: plan shows the difference between this and live state; apply reconciles to it.
"""

from __future__ import annotations

from typing import Any

from bot.core.domain import Approval, EndpointSpec, Plan, VariantSpec
from bot.core.hyperparameters import Hyperparameters
from bot.core.production_config import ChampionModel, ProductionConfig
from bot.core.request import Request, retraining_key
from bot.settings import Target

#: Everything merging a request makes true in AWS: one entry per resource kind, in apply's
#: order (``bot.flows.resources``); None: leave that resource as it is.
Desired = dict[str, Any]


def ssm_values(hyperparameters: Hyperparameters) -> dict[str, str]:
    """Hyperparameters as SSM stores them: strings, by XGBoost name."""
    return {name: str(value) for name, value in hyperparameters.as_dict().items()}


def execution_name(target: Target, commit: str, request: Request) -> str:
    """Deterministic, so a re-run of apply never starts a second execution (max 80 chars).

    ``commit`` is the one that last changed what retraining depends on (see
    ``bot.core.request_history.retrain_commit``): one execution per such change, not per merge.
    """
    return f"{target.name}-{commit[:12]}-{retraining_key(request)[:12]}"[:80]


def candidate_model(request: Request, plan: Plan) -> ChampionModel:
    return ChampionModel(
        experiment_id=request.experiment_id,
        model_artifact=plan.artifact,
        model_key=plan.model_key,
        metrics=plan.metrics,
    )


def champions(
    request: Request, plan: Plan, live: ProductionConfig | None
) -> tuple[ChampionModel | None, ChampionModel | None]:
    """Champion and previous champion after this request is applied.

    A promotion (share 100) makes the candidate champion and keeps the old one for rollback;
    a request whose candidate *is* the live champion at a share below 100 is the revert of a
    promotion, so the previous champion comes back.
    """
    candidate = candidate_model(request, plan)
    current = live.champion if live else None
    previous = live.previous_champion if live else None
    challenger = request.rollout.challenger
    is_current = current is not None and current.model_artifact == candidate.model_artifact
    if challenger is not None and challenger.promoted:
        return candidate, (previous if is_current else current)
    if is_current and challenger is not None and previous is not None:
        return previous, None
    if current is None:
        # Nothing serves production yet: the first reviewed model becomes the champion.
        return candidate, None
    return current, previous


def endpoint_spec(
    target: Target, request: Request, plan: Plan, champion: ChampionModel | None
) -> EndpointSpec | None:
    challenger = request.rollout.challenger
    if champion is None:
        return None
    instance = (challenger.instance_type, challenger.instance_count) if challenger else (
        "ml.m5.xlarge", 1)
    if challenger is None or challenger.promoted or (
        champion.model_artifact == plan.artifact
    ):
        return EndpointSpec(target.endpoint_name, (
            VariantSpec("champion", champion.model_artifact, 100, *instance),))
    share = challenger.traffic_percent
    return EndpointSpec(target.endpoint_name, (
        VariantSpec("champion", champion.model_artifact, 100 - share, *instance),
        VariantSpec("challenger", plan.artifact, share, *instance),
    ))


def production_config(
    target: Target,
    request: Request,
    plan: Plan,
    live_config: ProductionConfig | None,
    commit: str,
    pull_request: int | None,
    approval: Approval,
) -> ProductionConfig:
    """The production config merging ``request`` (whose stored plan is ``plan``) writes."""
    champion, previous = champions(request, plan, live_config)
    challenger = request.rollout.challenger
    share = challenger.traffic_percent if challenger and not challenger.promoted else None
    endpoint = endpoint_spec(target, request, plan, champion)
    if endpoint is not None and endpoint.variant("challenger") is None:
        share = None
    return ProductionConfig(
        target=target.name,
        algorithm=request.algorithm,
        experiment_id=request.experiment_id,
        hyperparameters=request.hyperparameters,
        metrics=plan.metrics,
        test_date=plan.evaluated_at,
        approvers=list(approval.approvers),
        approval_source=approval.source,
        commit=commit,
        pull_request=pull_request,
        content_sha256=plan.content_sha256,
        model_artifact=plan.artifact,
        model_key=plan.model_key,
        champion=champion,
        previous_champion=previous,
        challenger_traffic_percent=share,
    )


def retired_endpoint(target: Target, config: ProductionConfig | None,
                     live: EndpointSpec | None) -> EndpointSpec | None:
    """A deleted request retires the challenger: the champion alone serves, on the instances
    it has now (None: leave the endpoint as it is)."""
    if config is None or config.champion is None:
        return None
    if live is None:
        return None
    served = live.variant("champion")
    return EndpointSpec(target.endpoint_name, (VariantSpec(
        "champion", config.champion.model_artifact, 100,
        served.instance_type if served else "ml.m5.xlarge",
        served.instance_count if served else 1),))


def pipeline_execution(target: Target, request: Request, commit: str,
                       retrain_commit: str | None = None) -> str | None:
    """The retraining execution merging starts (``None`` when the request asks for none)."""
    if not request.rollout.pipeline:
        return None
    return execution_name(target, retrain_commit or commit, request)
