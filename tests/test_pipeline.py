"""The retraining pipeline (10.1): started once per name, its status reported."""

from __future__ import annotations

import dataclasses

import pytest

from bot.adapters.aws import pipeline
from bot.errors import BotError
from bot.settings import Target


def test_start_is_idempotent_by_name(aws: Target) -> None:
    assert pipeline.find_execution(aws, "fraud-detection-abc-def") is None
    arn, started = pipeline.start(aws, "fraud-detection-abc-def", {"experiment_id": "e1"})
    assert started
    assert arn.endswith(":execution:fraud-detection-retraining:fraud-detection-abc-def")
    assert pipeline.find_execution(aws, "fraud-detection-abc-def") == arn
    assert pipeline.start(aws, "fraud-detection-abc-def", {"experiment_id": "e1"}) == (arn, False)


def test_execution_that_already_exists_counts_as_done(
        aws: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    arn, _ = pipeline.start(aws, "run-1", {"a": 1})
    # A concurrent run started it between our look and our start: Step Functions says so.
    monkeypatch.setattr(pipeline, "find_execution", lambda t, name: None)
    assert pipeline.start(aws, "run-1", {"a": 2}) == (arn, False)


def test_status_reports_seed_fields(aws: Target) -> None:
    arn, _ = pipeline.start(aws, "run-2", {"experiment_id": "e2"})
    status = pipeline.status(arn)
    assert status["execution_arn"] == arn
    assert status["status"] in ("RUNNING", "SUCCEEDED")
    assert status["start_date"].endswith("+00:00")
    assert set(status) == {"execution_arn", "status", "start_date", "stop_date", "output"}


def test_missing_state_machine_is_a_clear_error(aws: Target) -> None:
    other = dataclasses.replace(aws, state_machine_name="nope-retraining")
    with pytest.raises(BotError, match="state machine 'nope-retraining' not found in us-east-1"):
        pipeline.start(other, "run", {})
