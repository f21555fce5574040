"""What guards an endpoint update: the ``DeploymentConfig`` that makes SageMaker roll a bad
update back itself, and ``RolledBack``, what an update SageMaker rolled back left."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.domain import EndpointSpec
from bot.errors import BotError

#: SageMaker's limits on a blue/green update
#: (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html,
#: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html):
#: the wait between traffic steps (the baking period) 0-3600 s, the whole deployment's
#: timeout 600-28800 s and longer than its waits.
MAX_BAKING_SECONDS = 3600
MIN_EXECUTION_TIMEOUT, MAX_EXECUTION_TIMEOUT = 600, 28800
#: Time a blue/green update may take beyond its baking period (provisioning the new fleet).
PROVISIONING_ALLOWANCE_SECONDS = 1800


@dataclass(frozen=True)
class Guardrails:
    """What guards an ``UpdateEndpoint``: the CloudWatch alarms that roll it back when one is
    in ALARM during the baking period, and that period's length."""

    alarms: tuple[str, ...] = ()
    baking_seconds: int = 600


RETRY = "fix the cause, then rerun apply to try again"


class RolledBack(BotError):
    """SageMaker rolled an update back to the config that served before (an alarm fired
    during the baking period, or the new fleet failed): production serves what it served."""

    def __init__(self, message: str, served: EndpointSpec, reason: str | None,
                 alarms: tuple[str, ...], deployment: dict[str, Any] | None,
                 actions: tuple[str, ...]) -> None:
        super().__init__(f"{message}; {RETRY}")
        self.summary = message  # what happened and what serves, without what to do
        self.served, self.reason, self.alarms, self.deployment = (
            served, reason, alarms, deployment)
        self.actions = actions  # what reconcile did before SageMaker rolled it back


def deployment_config(guardrails: Guardrails) -> dict[str, Any] | None:
    """``UpdateEndpoint``'s ``DeploymentConfig`` for ``guardrails``; None without alarms.

    A blue/green update with all-at-once traffic shifting: the new fleet takes all traffic,
    the alarms are watched for the baking period (``WaitIntervalInSeconds``), and if one is
    in ALARM SageMaker shifts all traffic back to the old fleet
    (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-all-at-once.html,
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeploymentConfig.html).
    Without alarms there is nothing to roll back on
    (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html),
    and SageMaker's default (blue/green, all at once) applies.
    """
    if not guardrails.alarms:
        return None
    baking = guardrails.baking_seconds
    if not 0 <= baking <= MAX_BAKING_SECONDS:
        raise BotError(f"the baking period must be 0 to {MAX_BAKING_SECONDS // 60} minutes "
                       f"(SageMaker's limit), got {baking} s")
    timeout = min(MAX_EXECUTION_TIMEOUT,
                  max(MIN_EXECUTION_TIMEOUT, baking + PROVISIONING_ALLOWANCE_SECONDS))
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE",
                                            "WaitIntervalInSeconds": baking},
            "TerminationWaitInSeconds": 0,
            "MaximumExecutionTimeoutInSeconds": timeout,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [{"AlarmName": name} for name in guardrails.alarms]},
    }


def rolled_back(served: EndpointSpec, described: dict[str, Any], guardrails: Guardrails,
                actions: tuple[str, ...]) -> RolledBack:
    """What an update SageMaker rolled back left (``described``: DescribeEndpoint's answer,
    ``served``: its variants): the config that serves, and why."""
    reason = described.get("FailureReason")
    deployment = described.get("LastDeploymentConfig")
    named = tuple((deployment or {}).get("AutoRollbackConfiguration", {}).get("Alarms") or ())
    watched = tuple(a.get("AlarmName", "") for a in named) or guardrails.alarms
    fired = tuple(name for name in watched if name and reason and name in reason)
    name = described["EndpointName"]
    if fired:
        why = (f"AWS rolled endpoint {name} back because alarm {', '.join(fired)} fired "
               "during the baking period")
    else:
        why = f"AWS rolled endpoint {name} back" + (f": {reason}" if reason else "")
    shares = ", ".join(f"{v.name} {v.weight}%" for v in served.variants)
    return RolledBack(
        f"{why}; production serves the previous models ({shares}, endpoint config "
        f"{described['EndpointConfigName']})", served, reason, fired, deployment, actions)
