"""CloudWatch alarms: the states of the alarms guarding a challenger, and the bot's own.

The bot's alarms (``bot.core.alarms.owned``) are metric alarms on the challenger variant's
``AWS/SageMaker`` metrics: the error rate by metric math
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create-alarm-on-metric-math-expression.html),
the latency on ModelLatency's p99. Missing data is ``notBreaching``: a variant nobody calls
is not failing. ``PutMetricAlarm`` creates or replaces an alarm by name
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html),
so putting one again is idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from bot.adapters.aws.clients import client
from bot.core.alarms import STATES, AlarmSpec, AlarmState, State, owned_prefix
from bot.settings import Target

#: DescribeAlarms takes at most 100 names a call
#: (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html).
_NAMES_PER_CALL = 100


def _cloudwatch(region: str | None = None) -> Any:
    return client("cloudwatch", region)


def states(names: Sequence[str], region: str | None = None) -> dict[str, AlarmState]:
    """The state of each named alarm that exists (metric or composite); absent names are
    missing from the answer."""
    found: dict[str, AlarmState] = {}
    unique = list(dict.fromkeys(names))
    for start in range(0, len(unique), _NAMES_PER_CALL):
        batch = unique[start:start + _NAMES_PER_CALL]
        pages = _cloudwatch(region).get_paginator("describe_alarms").paginate(
            AlarmNames=batch, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        for page in pages:
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                found[alarm["AlarmName"]] = _state(alarm)
    return found


def _state(alarm: dict[str, Any]) -> AlarmState:
    value = alarm.get("StateValue")
    state: State = next((s for s in STATES if s == value), "INSUFFICIENT_DATA")
    return AlarmState(alarm["AlarmName"], state, str(alarm.get("StateReason", "")),
                      alarm.get("StateUpdatedTimestamp"))


def history(name: str, region: str | None = None, limit: int = 5) -> tuple[str, ...]:
    """The alarm's latest state changes, newest first, one line each (time, summary, reason):
    DescribeAlarmHistory's StateUpdate items
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarmHistory.html)."""
    found = _cloudwatch(region).describe_alarm_history(
        AlarmName=name, HistoryItemType="StateUpdate", ScanBy="TimestampDescending",
        MaxRecords=limit)
    lines = []
    for item in found.get("AlarmHistoryItems", [])[:limit]:
        try:
            reason = json.loads(item.get("HistoryData") or "{}")["newState"]["stateReason"]
        except (ValueError, KeyError, TypeError):
            reason = ""
        when = item.get("Timestamp")
        shown = when.isoformat(timespec="seconds") if hasattr(when, "isoformat") else str(when)
        lines.append(f"{shown} {item.get('HistorySummary', '')}" + (f": {reason}" if reason
                                                                    else ""))
    return tuple(lines)


def read_owned(t: Target, prefix: str) -> dict[str, dict[str, Any]]:
    """The metric alarms named with ``prefix`` (the bot's own for ``t``), as described."""
    pages = _cloudwatch(t.region).get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"])
    return {alarm["AlarmName"]: alarm for page in pages
            for alarm in page.get("MetricAlarms", [])}


def put(t: Target, spec: AlarmSpec) -> None:
    """Create or replace the alarm ``spec`` describes."""
    _cloudwatch(t.region).put_metric_alarm(**put_arguments(spec))


def put_arguments(spec: AlarmSpec) -> dict[str, Any]:
    """PutMetricAlarm's arguments for ``spec`` (also what a live alarm is compared with)."""
    dimensions = [{"Name": "EndpointName", "Value": spec.endpoint},
                  {"Name": "VariantName", "Value": spec.variant}]
    common: dict[str, Any] = {
        "AlarmName": spec.name,
        "AlarmDescription": spec.description,
        "ActionsEnabled": False,
        "EvaluationPeriods": spec.evaluation_periods,
        "Threshold": spec.threshold,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    if spec.metric == "latency":
        return {**common, "Namespace": "AWS/SageMaker", "MetricName": "ModelLatency",
                "Dimensions": dimensions, "ExtendedStatistic": "p99",
                "Period": spec.period_seconds, "Unit": "Microseconds"}

    def summed(metric_id: str, name: str) -> dict[str, Any]:
        return {"Id": metric_id, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": name,
                       "Dimensions": dimensions},
            "Period": spec.period_seconds, "Stat": "Sum"}}

    return {**common, "Metrics": [
        summed("errors", "Invocation5XXErrors"),
        summed("invocations", "Invocations"),
        {"Id": "rate", "Label": "5xx share of invocations", "ReturnData": True,
         "Expression": "IF(invocations > 0, errors / invocations, 0)"},
    ]}


def delete(t: Target, names: Sequence[str]) -> None:
    """Delete the named alarms (a name that no longer exists is not an error)."""
    names = list(names)
    for start in range(0, len(names), _NAMES_PER_CALL):
        _cloudwatch(t.region).delete_alarms(AlarmNames=names[start:start + _NAMES_PER_CALL])


def read_specs(t: Target, names: Sequence[str]) -> dict[str, AlarmSpec]:
    """The bot's own alarms of ``t`` that exist among ``names`` (one DescribeAlarms by their
    common prefix), each as the spec it was put from: what plan and apply compare."""
    found = read_owned(t, owned_prefix(t))
    return {name: _spec(found[name]) for name in names if name in found}


def _spec(alarm: dict[str, Any]) -> AlarmSpec:
    """A described metric alarm as an ``AlarmSpec`` (what PutMetricAlarm put; a field
    changed by hand reads differently, so it is put again)."""
    metrics = alarm.get("Metrics") or []
    stats = [m["MetricStat"] for m in metrics if m.get("MetricStat")]
    if alarm.get("MetricName") == "ModelLatency" and alarm.get("ExtendedStatistic") == "p99":
        metric: Literal["error-rate", "latency"] = "latency"
        period, dimensions = alarm.get("Period", 0), alarm.get("Dimensions") or []
    else:
        metric = "error-rate"
        period = stats[0].get("Period", 0) if stats else alarm.get("Period", 0)
        dimensions = stats[0]["Metric"].get("Dimensions", []) if stats else []
    named = {d["Name"]: d["Value"] for d in dimensions}
    spec = AlarmSpec(alarm["AlarmName"], metric, float(alarm.get("Threshold", 0.0)),
                     int(period), int(alarm.get("EvaluationPeriods", 0)),
                     named.get("EndpointName", ""), named.get("VariantName", ""))
    if _comparable(put_arguments(spec)) != _comparable(alarm):
        # Put the same way in every other respect? Else mark it changed (threshold unknown).
        return AlarmSpec(spec.name, spec.metric, float("nan"), spec.period_seconds,
                         spec.evaluation_periods, spec.endpoint, spec.variant)
    return spec


_COMPARED = ("ComparisonOperator", "TreatMissingData", "ActionsEnabled", "Namespace",
             "MetricName", "ExtendedStatistic", "Unit")


def _comparable(arguments: dict[str, Any]) -> tuple[Any, ...]:
    # Only what the bot puts: AWS may describe a query with more keys than were put.
    metrics = sorted(((m.get("Id"), m.get("Expression"), m.get("ReturnData"),
                      (m.get("MetricStat") or {}).get("Metric", {}).get("MetricName"),
                      (m.get("MetricStat") or {}).get("Stat"))
                      for m in arguments.get("Metrics") or []), key=str)
    return (*(arguments.get(key) for key in _COMPARED), metrics)
