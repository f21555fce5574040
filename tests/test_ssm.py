"""SSM Parameter Store: hyperparameters (8.1) and their timestamped backups (8.3)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

from bot.adapters.aws import ssm
from bot.errors import BotError
from bot.settings import Target

NOW = dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.UTC)


def test_write_puts_changed_and_deletes_unwanted(aws: Target) -> None:
    assert ssm.write(aws, {"eta": "0.1", "gamma": "1.0"}) == [
        "/fraud-detection/hyperparameters/eta", "/fraud-detection/hyperparameters/gamma"]
    changed = ssm.write(aws, {"eta": "0.2", "max_depth": "6"})
    assert changed == ["/fraud-detection/hyperparameters/eta",
                       "/fraud-detection/hyperparameters/max_depth",
                       "/fraud-detection/hyperparameters/gamma"]
    assert ssm.read(aws) == {"eta": "0.2", "max_depth": "6"}
    assert ssm.write(aws, {"eta": "0.2", "max_depth": "6"}) == []


def test_read_pages_through_many_parameters(aws: Target) -> None:
    values = {f"p{i:02}": str(i) for i in range(23)}
    ssm.write(aws, values)
    assert ssm.read(aws) == values


def test_backup_is_timestamped_json_and_never_overwritten(aws: Target) -> None:
    first = ssm.backup(aws, {"eta": "0.1"}, NOW)
    second = ssm.backup(aws, {"eta": "0.2"}, NOW)
    assert first == "/fraud-detection/backups/hyperparameters/20240115T103000.000000Z"
    assert second == "/fraud-detection/backups/hyperparameters/20240115T103000.000001Z"
    assert ssm.backups(aws) == [first, second]
    stored = boto3.client("ssm", region_name=aws.region).get_parameter(Name=first)["Parameter"]
    assert json.loads(stored["Value"]) == {"eta": "0.1"}
    assert ssm.read(aws) == {}  # backups live outside the hyperparameters path


def test_restore_backs_up_current_values_first(aws: Target) -> None:
    ssm.write(aws, {"eta": "0.1", "max_depth": "6"})
    key = ssm.backup(aws, ssm.read(aws), NOW)
    ssm.write(aws, {"eta": "0.3", "gamma": "2"})

    restored = ssm.restore(aws, key, NOW)

    assert ssm.read(aws) == {"eta": "0.1", "max_depth": "6"}
    assert restored.values == {"eta": "0.1", "max_depth": "6"}
    assert ssm.load_backup(aws, restored.backup_key) == {"eta": "0.3", "gamma": "2"}
    assert ssm.load_backup(aws, key.rsplit("/", 1)[1]) == restored.values  # timestamp alone


def test_restore_refuses_unknown_or_foreign_keys(aws: Target) -> None:
    with pytest.raises(BotError, match="no SSM backup named"):
        ssm.restore(aws, "/fraud-detection/backups/hyperparameters/20990101T000000.000000Z")
    with pytest.raises(BotError, match="not a backup of fraud-detection"):
        ssm.restore(aws, "/other/backups/hyperparameters/x")
    assert ssm.backups(aws) == []
