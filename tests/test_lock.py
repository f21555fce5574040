"""One apply at a time per target: the S3 lock, its expiry and break-lock."""

from __future__ import annotations

import argparse
import dataclasses
import json

import boto3
import pytest

from bot.adapters.aws import lock
from bot.commands import break_lock
from bot.errors import LockHeld
from bot.settings import Target


def test_second_holder_is_refused_with_who_and_since_when(aws: Target) -> None:
    with lock.acquire(aws, "alice (run 1)"):
        with pytest.raises(LockHeld, match=r"being applied by alice \(run 1\) since 20") as error, \
                lock.acquire(aws, "bob (run 2)"):
            pass
        assert "promotion-bot break-lock fraud-detection" in error.value.message
        assert lock.holder(aws) is not None
    assert lock.holder(aws) is None  # released


def test_lock_object_records_owner_time_and_expiry(aws: Target) -> None:
    with lock.acquire(aws, "alice"):
        body = boto3.client("s3").get_object(
            Bucket="fraud-detection-models", Key="promotion-bot/locks/fraud-detection.json")
        data = json.loads(body["Body"].read())
    assert data["owner"] == "alice"
    assert data["expires_at"] > data["acquired_at"]


def test_lock_is_released_when_the_work_fails(aws: Target) -> None:
    with pytest.raises(RuntimeError), lock.acquire(aws, "alice"):
        raise RuntimeError("boom")
    assert lock.holder(aws) is None


def test_expired_lock_is_taken_over_with_a_warning(aws: Target) -> None:
    stale = dataclasses.replace(aws, lock_ttl_seconds=-1)
    warnings: list[str] = []
    with lock.acquire(stale, "crashed run", warn=warnings.append):
        with lock.acquire(aws, "new run", warn=warnings.append) as held:
            assert held.holder.owner == "new run"
        assert warnings == [
            "took over the expired apply lock of fraud-detection held by crashed run since "
            + warnings[0].split(" since ", 1)[1]]
    assert "taken over or broken" in warnings[-1]  # the old run notices it lost the lock


def test_refresh_fails_once_the_lock_was_broken(aws: Target) -> None:
    with pytest.raises(LockHeld, match="lost the apply lock"), \
            lock.acquire(aws, "alice", warn=lambda _: None) as held:
        lock.break_lock(aws)
        held.refresh()


def test_break_lock_command(aws: Target, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(target="fraud-detection")
    assert break_lock.run(args) == 0
    assert "no apply lock" in capsys.readouterr().out
    with lock.acquire(aws, "alice", warn=lambda _: None):
        assert break_lock.run(args) == 0
        assert "removed the apply lock held by alice since" in capsys.readouterr().out
        with lock.acquire(aws, "bob"):
            pass
