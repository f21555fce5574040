"""The production SageMaker endpoint: read its variants, reconcile them to an ``EndpointSpec``.

Champion and challenger are production variants of one endpoint, so SageMaker itself splits
the traffic by weight. Models and endpoint configs are named by hash, tagged as ours, and
the ones the endpoint no longer uses are deleted, so a rerun converges and nothing is left
behind.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bot.adapters.aws.clients import client, error_code
from bot.adapters.aws.endpoint_cleanup import clean_up
from bot.adapters.aws.endpoint_guardrails import Guardrails, deployment_config, rolled_back
from bot.adapters.aws.images import xgboost_image
from bot.core.domain import EndpointSpec, VariantSpec
from bot.core.names import MANAGED_TAG
from bot.errors import BotError
from bot.settings import Target, settings

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
#: States SageMaker leaves by itself: wait for InService.
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
#: What each state that needs a person means, and what to do about it.
STUCK = {
    "Failed": "SageMaker allows only DeleteEndpoint on a failed endpoint: delete it, then rerun "
              "apply to recreate it",
    "UpdateRollbackFailed": "both the update and its automatic rollback failed, so it serves a "
                            "mix of the old and new configs: update it to one config in the "
                            "SageMaker console (or delete it), then rerun apply",
    "OutOfService": "it takes no requests: bring it back or delete it, then rerun apply",
    "Deleting": "it is being deleted: rerun apply once it is gone to recreate it",
}
Guard = Callable[[], None]
@dataclass(frozen=True)
class EndpointOutcome:
    """What reconcile did and what the endpoint serves afterwards."""

    endpoint_name: str
    variants: tuple[VariantSpec, ...]
    actions: tuple[str, ...]
    status: str


def model_name(t: Target, model_data_url: str) -> str:
    """The SageMaker model serving ``model_data_url`` in the target's XGBoost container:
    same artifact and container, same name (another container version: another model)."""
    return _checked_name(f"{t.name}-{_sha256(f'{t.xgboost_container} {model_data_url}')[:16]}")


def config_name(t: Target, spec: EndpointSpec) -> str:
    """The endpoint config for ``spec``: same variants, weights and models, same name."""
    content = [
        [v.name, model_name(t, v.model_data_url), v.weight, v.instance_type, v.instance_count]
        for v in spec.variants
    ]
    return _checked_name(f"{t.name}-{_sha256(json.dumps(content))[:16]}")


def read(t: Target) -> EndpointSpec | None:
    """The live variants of the target's endpoint, weights as percents; None when absent."""
    sm = client("sagemaker", t.region)
    described = _describe_endpoint(sm, t.endpoint_name)
    return None if described is None else _live_spec(sm, described)


def reconcile(
    t: Target, spec: EndpointSpec, wait_delay: float = 15.0, wait_timeout: float | None = None,
    guard: Guard | None = None, alive: Guard | None = None,
    guardrails: Guardrails | None = None,
) -> EndpointOutcome:
    """Make the endpoint serve ``spec``, wait until it is InService, verify, clean up.

    Idempotent: with nothing to do it changes nothing. Resumable: every step first looks
    at what exists, so a rerun after a crash between steps finishes the job. ``guard`` runs
    before every change and ``alive`` before every poll (apply's lock checks: they raise when
    the lock was lost, so nothing is written and nobody waits without it); ``wait_timeout``
    defaults to the settings'.

    ``guardrails``: every ``UpdateEndpoint`` carries a ``DeploymentConfig`` naming its alarms
    (``deployment_config``), so SageMaker itself rolls a bad update back; a weight-only
    change (``UpdateEndpointWeightsAndCapacities``, which takes no deployment config) is not
    guarded by SageMaker. An update SageMaker rolled back raises ``RolledBack``.
    """
    if wait_timeout is None:
        wait_timeout = settings().endpoint_wait_seconds
    check: Guard = guard or (lambda: None)
    polling: Guard = alive or (lambda: None)
    if spec.endpoint_name != t.endpoint_name:
        raise BotError(
            f"endpoint spec is for {spec.endpoint_name!r}, target {t.name!r} serves "
            f"{t.endpoint_name!r}"
        )
    _check_spec(spec)
    sm = client("sagemaker", t.region)
    described = _describe_endpoint(sm, spec.endpoint_name)
    if described is not None and described["EndpointStatus"] != "InService":
        described = _wait(sm, spec.endpoint_name, wait_delay, wait_timeout, polling)
    live = _live_spec(sm, described) if described is not None else None

    actions: list[str] = []
    if described is not None and live is not None and _same(live, spec):
        verified = live
    else:
        weights_only = live is not None and _same_but_weights(live, spec)
        check()
        if live is not None and weights_only:
            actions += _set_weights(sm, spec, live)
        else:
            actions += _deploy(sm, t, spec, exists=described is not None, guard=check,
                               guardrails=guardrails or Guardrails())
        described = _wait(sm, spec.endpoint_name, wait_delay, wait_timeout, polling)
        if not weights_only and described["EndpointConfigName"] != config_name(t, spec):
            raise rolled_back(_live_spec(sm, described), described,
                              guardrails or Guardrails(), tuple(actions))
        verified = _live_spec(sm, described)
        if not _same(verified, spec):
            undone = " (the change was rolled back" + _reason(described) + ")" if (
                described.get("FailureReason")) else ""
            raise BotError(
                f"endpoint {spec.endpoint_name} does not serve what was asked after "
                f"reconciling{undone}: live {_describe_variants(verified)}, "
                f"desired {_describe_variants(spec)}"
            )
    check()
    actions += clean_up(sm, t, described["EndpointConfigName"])
    return EndpointOutcome(
        endpoint_name=spec.endpoint_name,
        variants=verified.variants,
        actions=tuple(actions),
        status=described["EndpointStatus"],
    )


def brake(t: Target, wait_delay: float = 2.0, wait_timeout: float | None = None
          ) -> EndpointSpec:
    """The watcher's brake: the challenger variant at weight 0 and the champion at 100, at
    once, with ``UpdateEndpointWeightsAndCapacities`` (no new instances, no new config:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpointWeightsAndCapacities.html),
    then wait until the endpoint is InService again; what it serves then."""
    if wait_timeout is None:
        wait_timeout = settings().endpoint_wait_seconds
    sm = client("sagemaker", t.region)
    described = _describe_endpoint(sm, t.endpoint_name)
    if described is None:
        raise BotError(f"endpoint {t.endpoint_name} does not exist: nothing to brake")
    if described["EndpointStatus"] != "InService":
        described = _wait(sm, t.endpoint_name, wait_delay, wait_timeout, lambda: None)
    live = _live_spec(sm, described)
    if live.variant("challenger") is None or live.variant("champion") is None:
        raise BotError(f"endpoint {t.endpoint_name} serves no champion and challenger pair: "
                       "nothing to brake")
    sm.update_endpoint_weights_and_capacities(
        EndpointName=t.endpoint_name,
        DesiredWeightsAndCapacities=[
            {"VariantName": "champion", "DesiredWeight": 100.0},
            {"VariantName": "challenger", "DesiredWeight": 0.0},
        ],
    )
    described = _wait(sm, t.endpoint_name, wait_delay, wait_timeout, lambda: None)
    return _live_spec(sm, described)


def _set_weights(sm: Any, spec: EndpointSpec, live: EndpointSpec) -> list[str]:
    """Shift traffic between the variants already deployed: no new instances."""
    sm.update_endpoint_weights_and_capacities(
        EndpointName=spec.endpoint_name,
        DesiredWeightsAndCapacities=[
            {"VariantName": v.name, "DesiredWeight": float(v.weight)} for v in spec.variants
        ],
    )
    return ["set weights " + ", ".join(
        f"{v.name} {_weight(live, v.name)}% → {v.weight}%" for v in spec.variants)]


def _deploy(sm: Any, t: Target, spec: EndpointSpec, exists: bool, guard: Guard,
            guardrails: Guardrails) -> list[str]:
    """Models and endpoint config for ``spec`` (those missing), then switch the endpoint."""
    config = config_name(t, spec)
    actions = []
    for variant in spec.variants:
        actions += _ensure_model(sm, t, variant.model_data_url)
    actions += _ensure_config(sm, t, spec, config)
    guard()
    if exists:
        deployment = deployment_config(guardrails)
        sm.update_endpoint(EndpointName=spec.endpoint_name, EndpointConfigName=config,
                           **({"DeploymentConfig": deployment} if deployment else {}))
        actions.append(f"update endpoint {spec.endpoint_name} to config {config}" + (
            f", rolled back by SageMaker if alarm {', '.join(guardrails.alarms)} fires in "
            f"{guardrails.baking_seconds / 60:g} min of baking" if deployment else ""))
    else:  # no DeploymentConfig: a new endpoint has no previous config to roll back to
        sm.create_endpoint(
            EndpointName=spec.endpoint_name, EndpointConfigName=config, Tags=[MANAGED_TAG]
        )
        actions.append(f"create endpoint {spec.endpoint_name} with config {config}")
    return actions


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _checked_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise BotError(
            f"{name!r} is not a valid SageMaker name (letters, digits and single hyphens, "
            "at most 63 characters): use a shorter target name"
        )
    return name


def _check_spec(spec: EndpointSpec) -> None:
    names = [v.name for v in spec.variants]
    if not names:
        raise BotError(f"endpoint {spec.endpoint_name}: at least one variant is needed")
    if len(set(names)) != len(names):
        raise BotError(f"endpoint {spec.endpoint_name}: variant names repeat: {names}")
    if any(v.weight < 0 for v in spec.variants) or sum(v.weight for v in spec.variants) != 100:
        raise BotError(
            f"endpoint {spec.endpoint_name}: variant weights must be >= 0 and add up to 100, "
            f"got {[v.weight for v in spec.variants]}"
        )
    for name in [spec.endpoint_name, *names]:
        _checked_name(name)




def _describe_endpoint(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if error_code(error) == "ValidationException" and "Could not find" in str(error):
            return None
        raise
    return described


def _live_spec(sm: Any, described: dict[str, Any]) -> EndpointSpec:
    """Models and instances from the endpoint config, weights from the endpoint itself."""
    config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    live = {v["VariantName"]: v for v in described.get("ProductionVariants", [])}
    raw_weights: dict[str, float] = {}
    variants = []
    for variant in config["ProductionVariants"]:
        name = variant["VariantName"]
        current = live.get(name, {})
        weight = current.get("CurrentWeight", current.get("DesiredWeight"))
        raw_weights[name] = float(
            weight if weight is not None else variant.get("InitialVariantWeight", 1.0)
        )
        model = sm.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        variants.append((
            name,
            str(container.get("ModelDataUrl", "")),
            str(variant.get("InstanceType", "")),
            int(current.get("CurrentInstanceCount") or variant.get("InitialInstanceCount") or 0),
        ))
    percents = _percents(raw_weights)
    return EndpointSpec(
        endpoint_name=described["EndpointName"],
        variants=tuple(
            VariantSpec(name, url, percents[name], instance_type, count)
            for name, url, instance_type, count in variants
        ),
    )


def _percents(weights: dict[str, float]) -> dict[str, int]:
    """Weights as integer percents adding up to 100 (largest remainder); zeros if all zero."""
    total = sum(weights.values())
    if total <= 0:
        return dict.fromkeys(weights, 0)
    exact = {name: 100 * w / total for name, w in weights.items()}
    percents = {name: int(e) for name, e in exact.items()}
    by_remainder = sorted(exact, key=lambda n: exact[n] - percents[n], reverse=True)
    for name in by_remainder[: 100 - sum(percents.values())]:
        percents[name] += 1
    return percents


def _key(spec: EndpointSpec) -> dict[str, tuple[str, str, int]]:
    return {v.name: (v.model_data_url, v.instance_type, v.instance_count) for v in spec.variants}


def _same_but_weights(live: EndpointSpec, spec: EndpointSpec) -> bool:
    return _key(live) == _key(spec)


def _same(live: EndpointSpec, spec: EndpointSpec) -> bool:
    return _same_but_weights(live, spec) and all(
        _weight(live, v.name) == v.weight for v in spec.variants
    )


def _weight(spec: EndpointSpec, name: str) -> int | None:
    variant = spec.variant(name)
    return variant.weight if variant else None


def _describe_variants(spec: EndpointSpec) -> str:
    return ", ".join(
        f"{v.name}={v.model_data_url}@{v.weight}% ({v.instance_count}x {v.instance_type})"
        for v in spec.variants
    )


def _reason(described: dict[str, Any]) -> str:
    reason = described.get("FailureReason")
    return f": {reason}" if reason else ""


def _wait(sm: Any, name: str, delay: float, timeout: float, guard: Guard) -> dict[str, Any]:
    """Poll until the endpoint is InService; a clear error when it failed or took too long.

    Polls back off from half a second up to ``delay``: a weight change is often done in
    seconds, a new variant takes minutes. ``guard`` runs before every poll.
    """
    deadline = time.monotonic() + timeout
    pause = min(0.5, delay)
    while True:
        guard()
        described = _describe_endpoint(sm, name)
        if described is None:
            raise BotError(f"endpoint {name} disappeared while waiting for it to be InService")
        status = described["EndpointStatus"]
        if status == "InService":
            return described
        if status in STUCK:
            raise BotError(f"endpoint {name} is {status}{_reason(described)}; {STUCK[status]}")
        if status not in IN_PROGRESS:
            raise BotError(f"endpoint {name} is {status}{_reason(described)}")
        if time.monotonic() >= deadline:
            raise BotError(
                f"endpoint {name} still {status} after {timeout:.0f} s "
                "(PROMOTION_BOT_ENDPOINT_WAIT_SECONDS); rerun apply to continue once it is "
                "InService"
            )
        time.sleep(pause)
        pause = min(pause * 2, delay)


def _ensure_model(sm: Any, t: Target, model_data_url: str) -> list[str]:
    """The model serving ``model_data_url`` with the XGBoost container that trains too
    (``bot.adapters.aws.images``), the region's image of that version."""
    name = model_name(t, model_data_url)
    try:
        sm.describe_model(ModelName=name)
        return []
    except ClientError as error:
        if error_code(error) != "ValidationException":
            raise
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": xgboost_image(t), "ModelDataUrl": model_data_url},
        ExecutionRoleArn=t.sagemaker_role_arn,
        Tags=[MANAGED_TAG],
    )
    return [f"create model {name} for {model_data_url}"]


def _ensure_config(sm: Any, t: Target, spec: EndpointSpec, name: str) -> list[str]:
    try:
        sm.describe_endpoint_config(EndpointConfigName=name)
        return []
    except ClientError as error:
        if error_code(error) != "ValidationException":
            raise
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": v.name,
                "ModelName": model_name(t, v.model_data_url),
                "InitialInstanceCount": v.instance_count,
                "InstanceType": v.instance_type,
                "InitialVariantWeight": float(v.weight),
            }
            for v in spec.variants
        ],
        Tags=[MANAGED_TAG],
    )
    return [f"create endpoint config {name}: {_describe_variants(spec)}"]
