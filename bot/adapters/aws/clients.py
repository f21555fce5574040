"""boto3 clients, made on first use, with one retry policy and bounded timeouts for every
AWS call, whose failures are ``AwsError``.

boto3 honours ``AWS_ENDPOINT_URL`` itself, so the same code talks to AWS or to moto's
server. Every client retries throttling and transient errors the same way (adaptive mode,
bounded attempts), and gives up on an endpoint that does not answer after a few seconds
instead of botocore's minute per attempt. A call that still fails raises
``bot.errors.AwsError`` with one line saying why (see ``Calls``): the one place AWS's errors
become the bot's. (The CLI stays fast because it imports a command, and so boto3, only when
that command runs.)
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import botocore.loaders
from botocore.config import Config
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bot.errors import AwsError, first_line
from bot.settings import settings


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` in ``region`` (default: the settings' region).

    Clients are reused while the environment that configures them is the same: creating
    one costs more than most calls made with it. A client may be used from several threads;
    creating one (in boto3's default session, which is not thread-safe) is done one at a time.
    """
    region = region or settings().region
    key = (service, region, id(boto3.DEFAULT_SESSION), id(settings()),
           *(os.environ.get(name) for name in _CONFIGURING))
    found = _clients.get(key)
    if found is None:
        with _creating:
            found = _clients.get(key)
            if found is None:
                with aws_errors():
                    found = _clients[key] = Calls(_create(service, region))
    return found


class Calls:
    """A boto3 client (or its paginator or waiter) whose failed calls raise ``AwsError``.

    The error raised is botocore's own (or boto3's, or s3transfer's), made an instance of a
    subclass of both its class and ``AwsError``: an adapter still handles the answers it
    expects as botocore names them (``except ClientError`` and ``error_code``,
    ``client.exceptions.NoSuchKey``, ``unreachable``), and whatever it does not handle reaches
    flows and commands as a ``BotError`` with one line of explanation.
    """

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._real, name)
        if name in ("meta", "exceptions") or name.startswith("_") or not callable(value):
            return value
        if name == "paginate":
            return functools.partial(_pages, value)
        if name in ("get_paginator", "get_waiter"):
            return functools.partial(_wrapped, value)
        return functools.partial(_call, value)


def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with aws_errors():
        return method(*args, **kwargs)


def _wrapped(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Calls:
    with aws_errors():
        return Calls(factory(*args, **kwargs))


def _pages(paginate: Callable[..., Iterable[Any]], *args: Any, **kwargs: Any) -> Iterator[Any]:
    with aws_errors():
        yield from paginate(*args, **kwargs)


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Within it, an error of boto3, botocore or s3transfer becomes an ``AwsError`` (see
    ``Calls``); the same error object, raised on with its traceback."""
    try:
        yield
    except Exception as error:
        if not isinstance(error, AwsError) and _from_aws(error):
            explanation = explain(error)
            aws: Any = error
            aws.__class__ = _aws_class(type(aws))
            aws.explanation = explanation
            aws.message = f"AWS request failed: {explanation}"
        raise


def _from_aws(error: BaseException) -> bool:
    return type(error).__module__.startswith(("botocore.", "boto3.", "s3transfer."))


def _aws_class(kind: type[BaseException]) -> type[BaseException]:
    """``kind`` that is also an ``AwsError``, under the same name (made once per class)."""
    found = _aws_classes.get(kind)
    if found is None:
        found = _aws_classes[kind] = type(kind.__name__, (kind, AwsError), {
            "__module__": kind.__module__, "__qualname__": kind.__qualname__})
    return found


_aws_classes: dict[type[BaseException], type[BaseException]] = {}


def _create(service: str, region: str) -> Any:
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    _share_loader(boto3.DEFAULT_SESSION)
    created = boto3.client(service, region_name=region, config=config())
    service_id = created.meta.service_model.service_id.hyphenize()
    created.meta.events.register_first(f"needs-retry.{service_id}", _timeouts_retried_once)
    return created


_creating = threading.Lock()


def _share_loader(session: Any) -> None:
    """Give ``session`` the process's botocore data loader, so service models (megabytes of
    JSON) are parsed once per process, not again for every new session."""
    global _loader
    core = session._session
    if _loader is None:
        _loader = botocore.loaders.create_loader(core.get_config_variable("data_path"))
    if core.get_component("data_loader") is not _loader:
        core.register_component("data_loader", _loader)


_loader: Any = None


def config() -> Any:
    """The botocore ``Config`` every client of the bot uses: the retry policy and timeouts."""
    s = settings()
    return Config(
        retries={"mode": s.aws_retry_mode, "total_max_attempts": s.aws_max_attempts},
        connect_timeout=s.aws_connect_timeout_seconds,
        read_timeout=s.aws_read_timeout_seconds,
    )


def _timeouts_retried_once(attempts: int, caught_exception: Exception | None = None,
                           **_: Any) -> None:
    """Stop retrying a call that timed out ``aws_timeout_attempts`` times.

    A silent endpoint would otherwise cost ``max_attempts`` read timeouts per call. Raising
    from botocore's ``needs-retry`` event ends the call with the timeout itself.
    """
    if caught_exception is not None and is_timeout(caught_exception) and (
            attempts >= settings().aws_timeout_attempts):
        raise caught_exception


def is_timeout(error: BaseException) -> bool:
    """Whether AWS did not answer in time (connect or read timeout)."""
    return isinstance(error, ConnectTimeoutError | ReadTimeoutError)


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says AWS could not be reached at all (timeouts, refused connections):
    then every other call would fail the same way, so best-effort clean-up is skipped."""
    return is_timeout(error) or isinstance(error, EndpointConnectionError
                                           | ConnectionClosedError)


def explain(error: BaseException) -> str:
    """One line for an AWS failure, naming the timeout settings when AWS did not answer."""
    if is_timeout(error):
        s = settings()
        return (f"AWS did not answer in time ({first_line(error)}; tried "
                f"{s.aws_timeout_attempts}x with a {s.aws_connect_timeout_seconds:g} s connect "
                f"and {s.aws_read_timeout_seconds:g} s read timeout, see "
                "PROMOTION_BOT_AWS_READ_TIMEOUT_SECONDS)")
    if unreachable(error):
        return f"cannot reach AWS ({first_line(error)})"
    return first_line(error)


_CONFIGURING = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION")
_clients: dict[tuple[Any, ...], Any] = {}


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ``ClientError`` (``NoSuchKey``...), else ''."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def forget() -> None:
    """Drop the cached clients (tests do, between moto sessions)."""
    _clients.clear()
