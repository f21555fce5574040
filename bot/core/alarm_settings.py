"""The request's alarm settings (``rollout.challenger.alarms``): thresholds of the bot's own
alarms on the challenger and the names of the team's."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from bot.core.hyperparameters import Strict

#: CloudWatch's rule for alarm names: 1..255 characters, no control characters.
#: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
AlarmName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Alarms(Strict):
    """CloudWatch alarms that guard the challenger while it serves.

    Apply keeps two alarms of its own on the challenger variant
    (``<target>-challenger-error-rate`` and ``<target>-challenger-latency``, from the
    endpoint's ``AWS/SageMaker`` invocation metrics:
    https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html) and watches
    them with the alarms listed in ``names``. While any of them is in ALARM no step raises the
    challenger's share; SageMaker rolls back an endpoint update whose alarm fires during its
    baking period, and ``promotion-bot watch`` takes the challenger's traffic to 0.
    """

    error_rate: float = Field(
        default=0.01, gt=0, le=1,
        description="Alarm when more than this share of the challenger's invocations are "
        "answered with a 5xx error (Invocation5XXErrors / Invocations), e.g. 0.01 for 1 %.",
    )
    latency_ms: float = Field(
        default=500.0, gt=0, le=60_000,
        description="Alarm when the challenger's 99th percentile model latency "
        "(ModelLatency, p99) exceeds this many milliseconds (at most 60,000, SageMaker's "
        "invocation timeout).",
    )
    period_minutes: int = Field(
        default=5, ge=1, le=60,
        description="Minutes of metrics each alarm evaluates at a time (1..60).",
    )
    evaluation_periods: int = Field(
        default=2, ge=1, le=24,
        description="Consecutive periods over the threshold before an alarm fires (1..24).",
    )
    baking_minutes: int = Field(
        default=10, ge=0, le=60,
        description="Minutes SageMaker watches the alarms after an endpoint update before "
        "it keeps the update (blue/green baking period, 0..60); an alarm firing in that "
        "time rolls the update back.",
    )
    #: At most 8: an update's AutoRollbackConfiguration names at most 10 alarms
    #: (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AutoRollbackConfig.html),
    #: and the bot's own two are among them.
    names: list[AlarmName] = Field(
        default_factory=list, max_length=8,
        description="Alarms of your own (e.g. a business metric) that also guard the "
        "challenger; the bot watches them but never creates or changes them.",
    )

    @field_validator("error_rate", mode="before")
    @classmethod
    def _a_share(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool) and 1 < value <= 100:
            raise ValueError(f"is a share of invocations, at most 1 (got {value:g}; for "
                             f"{value:g} % write {value / 100:g})")
        return value

    @field_validator("names")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"names each alarm once (repeated: {', '.join(repeated)})")
        return names
