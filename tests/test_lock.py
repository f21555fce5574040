"""One apply at a time per target: the S3 lock, its expiry and break-lock."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import boto3
import pytest

from bot import cli
from bot.adapters.aws import lock
from bot.commands import break_lock
from bot.errors import LockHeld, LockLost
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


def test_the_heartbeat_keeps_the_lock_past_its_expiry(aws: Target) -> None:
    short = dataclasses.replace(aws, lock_ttl_seconds=1, lock_heartbeat_seconds=0.2)
    with lock.acquire(short, "alice", commit="c1") as held:
        first = held.holder.expires_at
        time.sleep(1.5)  # longer than the lock lives without renewals
        with pytest.raises(LockHeld, match="being applied by alice") as refused, \
                lock.acquire(short, "bob"):
            pass
        held.alive()  # still ours
        assert held.holder.expires_at > first
    assert refused.value.commit == "c1"
    assert lock.holder(aws) is None


def test_a_holder_whose_lock_was_broken_stops_before_its_next_write(aws: Target) -> None:
    warnings: list[str] = []
    beating = dataclasses.replace(aws, lock_heartbeat_seconds=0.1)
    with pytest.raises(LockLost) as lost, lock.acquire(beating, "alice",
                                                       warn=warnings.append) as held:
        lock.break_lock(aws)
        for _ in range(100):  # the heartbeat notices within a beat or two
            if held.lost:
                break
            time.sleep(0.05)
        held.alive()
    assert "lost the apply lock of fraud-detection" in lost.value.message
    assert "stopped before writing anything more" in lost.value.message
    assert warnings == []  # the loss is the error, said once


def test_a_holder_whose_expired_lock_was_taken_over_learns_who_has_it(aws: Target) -> None:
    quiet: list[str] = []
    expiring = dataclasses.replace(aws, lock_ttl_seconds=1, lock_heartbeat_seconds=3600)
    with lock.acquire(expiring, "alice", warn=quiet.append) as held:
        time.sleep(1.1)  # the heartbeat would renew it only in an hour: it expires
        with lock.acquire(aws, "bob", warn=quiet.append, commit="c2"), \
                pytest.raises(LockLost) as lost:
            held.check()
    assert "bob since" in lost.value.message and lost.value.commit == "c2"
    assert quiet[0].startswith("took over the expired apply lock of fraud-detection")


def test_a_lock_shorter_than_the_endpoint_wait_is_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PROMOTION_BOT_LOCK_TTL_SECONDS", "1800")
    assert cli.main(["break-lock", "fraud-detection"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("promotion-bot break-lock: settings: lock_ttl_seconds (1800) must be longer "
                   "than endpoint_wait_seconds (3600): a lock that expires while apply waits "
                   "lets a second apply take it over")


def test_a_setting_that_is_not_a_number_is_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PROMOTION_BOT_AWS_READ_TIMEOUT_SECONDS", "soon")
    assert cli.main(["break-lock", "fraud-detection"]) == 2
    assert capsys.readouterr().err.startswith(
        "promotion-bot break-lock: settings: PROMOTION_BOT_AWS_READ_TIMEOUT_SECONDS: Input "
        "should be a valid number")
