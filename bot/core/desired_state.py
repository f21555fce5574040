"""The production state a request asks for, derived from the request and its stored plan.

Pure: plan shows the difference between this and live state; apply reconciles to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.domain import Approval, EndpointSpec, Plan, VariantSpec
from bot.core.hyperparameters import Hyperparameters
from bot.core.production_config import ChampionModel, ProductionConfig
from bot.core.request import Request, retraining_key
from bot.settings import Target


@dataclass(frozen=True)
class Desired:
    """Everything merging a request makes true in AWS."""

    ssm: dict[str, str]
    config: ProductionConfig
    pipeline_execution: str | None  # execution name to start, None when not asked
    endpoint: EndpointSpec | None  # None: leave the endpoint as it is


def ssm_values(hyperparameters: Hyperparameters) -> dict[str, str]:
    """Hyperparameters as SSM stores them: strings, by XGBoost name."""
    return {name: str(value) for name, value in hyperparameters.as_dict().items()}


def execution_name(target: Target, commit: str, request: Request) -> str:
    """Deterministic, so a re-run of apply never starts a second execution (max 80 chars).

    ``commit`` is the one that last changed what retraining depends on (see
    ``bot.rollout_history.retrain_commit``): one execution per such change, not per merge.
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


def desired(
    target: Target,
    request: Request,
    plan: Plan,
    live_config: ProductionConfig | None,
    commit: str,
    pull_request: int | None,
    approval: Approval,
    retrain_commit: str | None = None,
) -> Desired:
    """Desired state for ``request`` whose stored plan is ``plan``.

    ``retrain_commit`` names the retraining execution (default: ``commit``).
    """
    champion, previous = champions(request, plan, live_config)
    challenger = request.rollout.challenger
    share = challenger.traffic_percent if challenger and not challenger.promoted else None
    endpoint = endpoint_spec(target, request, plan, champion)
    if endpoint is not None and endpoint.variant("challenger") is None:
        share = None
    config = ProductionConfig(
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
    return Desired(ssm=ssm_values(request.hyperparameters), config=config,
                   pipeline_execution=pipeline_execution(target, request, commit, retrain_commit),
                   endpoint=endpoint)


def pipeline_execution(target: Target, request: Request, commit: str,
                       retrain_commit: str | None = None) -> str | None:
    """The retraining execution merging starts (``None`` when the request asks for none)."""
    if not request.rollout.pipeline:
        return None
    return execution_name(target, retrain_commit or commit, request)
