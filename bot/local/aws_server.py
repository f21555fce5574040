"""moto's threaded server on 127.0.0.1 with the gap-fills of ``bot.local.moto_gaps``: the
embedded default, reached by boto3 through ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from types import TracebackType
from typing import Any

import boto3
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from bot.errors import BotError
from bot.local import faults, training_runner
from bot.local.faults import FaultPlan, Injector
from bot.local.moto_gaps import install_moto_extensions
from bot.settings import settings

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: Environment variables LocalAWS sets (or clears) while it runs, restored afterwards.
_ENVIRONMENT = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE",
                "NO_PROXY", "no_proxy")

class LocalAWS:
    """moto's threaded server on 127.0.0.1 with the extensions, reached via AWS_ENDPOINT_URL.

    While active, the process environment points boto3 at it with fake credentials.
    """

    def __init__(self, port: int = 0, quiet: bool = True) -> None:
        """``faults`` are injected with ``inject`` once production is set up."""
        self.port = port
        self.quiet = quiet
        self.url = ""
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_sfn: Any = None
        self._saved_log_level: int | None = None

    def __enter__(self) -> LocalAWS:
        _check_port_free(self.port)
        install_moto_extensions()
        if self.quiet:
            werkzeug_log = logging.getLogger("werkzeug")
            self._saved_log_level = werkzeug_log.level
            werkzeug_log.setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        _, port = self._server.get_host_and_port()
        self.port = int(port)
        self.url = f"http://127.0.0.1:{self.port}"
        self._saved_sfn = default_user_config.get("stepfunctions")
        self._saved_env = {name: os.environ.get(name) for name in _ENVIRONMENT}
        try:
            # Executions run their (Pass-state) definition and finish, not RUNNING forever.
            self._moto_api("config", {"stepfunctions": {"execute_state_machine": True}})
        except BaseException:
            self._server.stop()
            raise
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
            os.environ.pop(name, None)
        for name in ("NO_PROXY", "no_proxy"):
            # A proxy in the environment must not carry requests meant for loopback.
            os.environ[name] = ",".join(filter(None, (os.environ.get(name), "127.0.0.1")))
        os.environ.update(self.environment())
        _reset_boto3_session()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        faults.activate(None)
        if self.quiet:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
        training_runner.shutdown()  # no worker process outlives the server
        try:
            self._moto_api("reset", None)
        finally:
            self._server.stop()
            if self._saved_sfn is None:
                default_user_config.pop("stepfunctions", None)
            else:
                default_user_config["stepfunctions"] = self._saved_sfn
            for name, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _reset_boto3_session()
            if self._saved_log_level is not None:
                logging.getLogger("werkzeug").setLevel(self._saved_log_level)

    def inject(self, plan: FaultPlan | None) -> Injector | None:
        """Answer by ``plan`` from now on (None: no failures); the injector counts them."""
        return faults.activate(plan)

    def environment(self) -> dict[str, str]:
        """What boto3 needs to reach this server."""
        return {"AWS_ENDPOINT_URL": self.url, **FAKE_CREDENTIALS,
                "AWS_DEFAULT_REGION": settings().region}

    def export_lines(self) -> list[str]:
        """Shell lines that point another terminal's boto3 (and the bot) at this server."""
        return [f"export {name}={value}" for name, value in self.environment().items()]

    def _moto_api(self, path: str, payload: dict[str, Any] | None) -> None:
        data = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(f"{self.url}/moto-api/{path}", data=data, method="POST")
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(request, timeout=30) as response:
            response.read()


def _check_port_free(port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise BotError(f"cannot listen on 127.0.0.1:{port} ({error.strerror}): "
                           "choose another --port") from None


def _reset_boto3_session() -> None:
    """Drop boto3's cached default session so new clients read the environment again."""
    boto3.DEFAULT_SESSION = None


