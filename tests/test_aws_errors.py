"""AWS's errors become ``AwsError`` in one place (``bot.adapters.aws.clients``): adapters
still see botocore's answers, flows and commands a ``BotError`` of one line."""

from __future__ import annotations

import socket

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from bot import cli
from bot.adapters.aws import lock
from bot.adapters.aws.clients import client, error_code, unreachable
from bot.errors import AwsError, BotError
from bot.settings import Target, settings, target


def test_a_refused_call_is_both_botocore_s_error_and_an_aws_error(aws: Target) -> None:
    s3 = client("s3")
    with pytest.raises(ClientError) as refused:
        s3.get_object(Bucket=aws.artifacts_bucket, Key="no/such/key")

    error = refused.value
    assert isinstance(error, s3.exceptions.NoSuchKey) and error_code(error) == "NoSuchKey"
    assert isinstance(error, AwsError) and isinstance(error, BotError)
    assert error.message == ("AWS request failed: An error occurred (NoSuchKey) when calling "
                             "the GetObject operation: The specified key does not exist.")


def test_pages_of_a_failing_listing_raise_aws_error(aws: Target) -> None:
    pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket="no-such-bucket-x")
    with pytest.raises(AwsError) as failed:
        list(pages)
    assert failed.value.message.startswith("AWS request failed: An error occurred (NoSuchBucket)")


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def nobody_answers(fake_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{unused_port()}")
    monkeypatch.setenv("PROMOTION_BOT_AWS_MAX_ATTEMPTS", "1")
    settings.cache_clear()


def test_unreachable_aws_is_an_aws_error_that_says_so(nobody_answers: None) -> None:
    with pytest.raises(AwsError) as failed:
        client("s3").list_buckets()

    assert isinstance(failed.value, EndpointConnectionError) and unreachable(failed.value)
    assert failed.value.explanation.startswith("cannot reach AWS (")


def test_a_command_says_what_failed_in_one_line(
        nobody_answers: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["break-lock", "fraud-detection"]) == 2

    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"promotion-bot break-lock: AWS failed while removing "
                             f"{lock.uri(target('fraud-detection'))}: cannot reach AWS (")
