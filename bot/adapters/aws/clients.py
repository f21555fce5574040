"""Lazy boto3 clients with one retry policy and bounded timeouts for every AWS call.

boto3 is imported on first use so the CLI starts fast, and it honours ``AWS_ENDPOINT_URL``
itself, so the same code talks to AWS or to moto's server. Every client retries throttling
and transient errors the same way (adaptive mode, bounded attempts), and gives up on an
endpoint that does not answer after a few seconds instead of botocore's minute per attempt.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from bot.settings import settings


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` in ``region`` (default: the settings' region).

    Clients are reused while the environment that configures them is the same: creating
    one costs more than most calls made with it. A client may be used from several threads;
    creating one (in boto3's default session, which is not thread-safe) is done one at a time.
    """
    import boto3

    region = region or settings().region
    key = (service, region, id(boto3.DEFAULT_SESSION), id(settings()),
           *(os.environ.get(name) for name in _CONFIGURING))
    found = _clients.get(key)
    if found is None:
        with _creating:
            found = _clients.get(key)
            if found is None:
                found = _clients[key] = _create(service, region)
    return found


def _create(service: str, region: str) -> Any:
    import boto3

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
    import botocore.loaders

    core = session._session
    if _loader is None:
        _loader = botocore.loaders.create_loader(core.get_config_variable("data_path"))
    if core.get_component("data_loader") is not _loader:
        core.register_component("data_loader", _loader)


_loader: Any = None


def config() -> Any:
    """The botocore ``Config`` every client of the bot uses: the retry policy and timeouts."""
    from botocore.config import Config

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
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    return isinstance(error, ConnectTimeoutError | ReadTimeoutError)


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says AWS could not be reached at all (timeouts, refused connections):
    then every other call would fail the same way, so best-effort clean-up is skipped."""
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    return is_timeout(error) or isinstance(error, EndpointConnectionError
                                           | ConnectionClosedError)


def explain(error: BaseException) -> str:
    """One line for an AWS failure, naming the timeout settings when AWS did not answer."""
    from bot.errors import first_line

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
