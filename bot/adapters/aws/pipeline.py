"""The production retraining pipeline in Step Functions: idempotent start, status.

Executions are named from commit and request content, and Step Functions never reuses a
name, so a rerun of apply finds the execution it started instead of starting another.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from bot.adapters.aws.clients import client, error_code
from bot.errors import AwsError, BotError
from bot.settings import Target


def _sfn(region: str | None = None) -> Any:
    return client("stepfunctions", region)




def state_machine_arn(t: Target) -> str:
    """The ARN of the target's retraining state machine; a clear error when it is missing."""
    for page in _sfn(t.region).get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == t.state_machine_name:
                return str(machine["stateMachineArn"])
    raise BotError(
        f"Step Functions state machine {t.state_machine_name!r} not found in {t.region}: "
        "create it or set PROMOTION_BOT_STATE_MACHINE_NAME"
    )


def execution_arn(machine_arn: str, name: str) -> str:
    """The ARN an execution named ``name`` of ``machine_arn`` has (or would have)."""
    return f"{machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def find_execution(t: Target, name: str) -> str | None:
    """The ARN of the execution called ``name``, or None when it was never started."""
    arn = execution_arn(state_machine_arn(t), name)
    try:
        _sfn(t.region).describe_execution(executionArn=arn)
    except AwsError as error:
        if error_code(error) == "ExecutionDoesNotExist":
            return None
        raise
    return arn


def start(t: Target, name: str, payload: dict[str, Any],
          before_write: Callable[[], None] | None = None) -> tuple[str, bool]:
    """Start the execution ``name`` unless it exists; return its ARN and whether it started now.

    ``before_write`` runs before the start (apply's lock check).
    """
    machine = state_machine_arn(t)
    existing = find_execution(t, name)
    if existing is not None:
        return existing, False
    if before_write is not None:
        before_write()
    try:
        started = _sfn(t.region).start_execution(
            stateMachineArn=machine, name=name, input=json.dumps(payload, sort_keys=True)
        )
    except AwsError as error:
        if error_code(error) == "ExecutionAlreadyExists":
            return execution_arn(machine, name), False
        raise
    return str(started["executionArn"]), True


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return None if value is None else str(value)


def status(arn: str) -> dict[str, Any]:
    """The seed's ``check_pipeline_status``: status, start and stop date, output (parsed JSON)."""
    region = arn.split(":")[3] if arn.count(":") >= 4 else None
    described = _sfn(region or None).describe_execution(executionArn=arn)
    output = described.get("output")
    if output is not None:
        with contextlib.suppress(ValueError):
            output = json.loads(output)
    return {
        "execution_arn": arn,
        "status": described["status"],
        "start_date": _iso(described.get("startDate")),
        "stop_date": _iso(described.get("stopDate")),
        "output": output,
    }
