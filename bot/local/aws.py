"""The embedded default: moto's server on 127.0.0.1, the SageMaker parts moto lacks, and
production set up as it is today.

moto 5.2 has no ``UpdateEndpoint``, reports no weight for a variant created with weight 0,
and answers ``InvokeEndpoint`` with canned text. ``install_moto_extensions`` points moto's
own URL dispatch tables at subclasses of its response classes that add those, serving real
predictions of the variant's ``model.tar.gz`` from moto's S3. The bot's boto3 code never
knows it talks to moto.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bot.errors import BotError
from bot.settings import Target, settings, target

if TYPE_CHECKING:
    from bot.core.request import Request

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: Environment variables LocalAWS sets (or clears) while it runs, restored afterwards.
_ENVIRONMENT = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE",
                "NO_PROXY", "no_proxy")
_TRANSITIONAL = ("Creating", "Updating")

#: The champion production runs today: weaker than the seed notebook's candidate.
CHAMPION_HYPERPARAMETERS: dict[str, Any] = {
    "objective": "binary:logistic",
    "num_round": 50,
    "max_depth": 4,
    "eta": 0.3,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
}
CHAMPION_EXPERIMENT = "exp-xgboost-baseline-20231001"
#: Fewest sample rows whose stratified test split still holds a fraud (0.172 % are fraud).
MIN_ROWS = 2_000

_install_lock = threading.Lock()
_installed = False
_boosters: dict[tuple[str, str], Any] = {}
_boosters_lock = threading.Lock()


def install_moto_extensions() -> None:
    """Add UpdateEndpoint, weight-0 variants and a real InvokeEndpoint to moto (idempotent).

    Both ``mock_aws`` (per request) and the server (per app it builds) look handlers up in
    ``moto.<service>.urls.url_paths``, so replacing the handlers there serves both.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        import moto.sagemaker.urls as sagemaker_urls
        import moto.sagemakerruntime.urls as runtime_urls

        sagemaker_response, runtime_response = _response_classes()
        for path in sagemaker_urls.url_paths:
            sagemaker_urls.url_paths[path] = sagemaker_response.dispatch
        for path in runtime_urls.url_paths:
            if path.endswith("/invocations$"):
                runtime_urls.url_paths[path] = runtime_response.dispatch
        _installed = True


def _response_classes() -> tuple[Any, Any]:
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    class LocalSageMakerResponse(SageMakerResponse):  # type: ignore[misc]
        """moto's SageMaker plus UpdateEndpoint, honest weights and Creating/Updating states.

        An endpoint reports Creating or Updating once, on the next DescribeEndpoint, and is
        InService from then on, so a caller's wait loop runs as it would against AWS.
        """

        def _endpoint(self, name: str) -> Any:
            endpoint = self.sagemaker_backend.endpoints.get(name)
            if endpoint is None:
                arn = FakeEndpoint.arn_formatter(name, self.current_account, self.region)
                raise ValidationError(message=f"Could not find endpoint '{arn}'.")
            return endpoint

        def _config(self, name: str) -> Any:
            config = self.sagemaker_backend.endpoint_configs.get(name)
            if config is None:
                arn = FakeEndpointConfig.arn_formatter(name, self.current_account, self.region)
                raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
            return config

        def _in_service(self, endpoint: Any) -> None:
            if endpoint.endpoint_status != "InService":
                raise ValidationError(
                    message=f"Cannot update in-progress endpoint '{endpoint.arn}'."
                )

        def create_endpoint(self) -> Any:
            name = self._get_param("EndpointName")
            if name in self.sagemaker_backend.endpoints:
                arn = FakeEndpoint.arn_formatter(name, self.current_account, self.region)
                raise ValidationError(message=f"Cannot create already existing endpoint '{arn}'.")
            result = super().create_endpoint()
            endpoint = self._endpoint(name)
            endpoint.production_variants = _variants(
                self._config(endpoint.endpoint_config_name).production_variants
            )
            endpoint.endpoint_status = "Creating"
            return result

        def describe_endpoint(self) -> Any:
            result = super().describe_endpoint()
            endpoint = self._endpoint(self._get_param("EndpointName"))
            if endpoint.endpoint_status in _TRANSITIONAL:
                endpoint.endpoint_status = "InService"
            return result

        def update_endpoint(self) -> Any:
            endpoint = self._endpoint(self._get_param("EndpointName"))
            self._in_service(endpoint)
            name = self._get_param("EndpointConfigName")
            config = self._config(name)
            endpoint.endpoint_config_name = name
            endpoint.production_variants = _variants(config.production_variants)
            endpoint.endpoint_status = "Updating"
            endpoint.last_modified_time = utcnow()
            return ActionResult({"EndpointArn": endpoint.arn})

        def update_endpoint_weights_and_capacities(self) -> Any:
            # moto's own sets an omitted instance count to None and skips "Updating".
            endpoint = self._endpoint(self._get_param("EndpointName"))
            self._in_service(endpoint)
            desired = self._get_param("DesiredWeightsAndCapacities") or []
            live = {v["VariantName"]: v for v in endpoint.production_variants}
            names = [d.get("VariantName") for d in desired]
            for name in names:
                if names.count(name) > 1:
                    raise ValidationError(
                        message=f'The variant name "{name}" was non-unique within the request.'
                    )
                if name not in live:
                    raise ValidationError(
                        message=f'The variant name(s) "{name}" is/are not present within '
                        f'endpoint configuration "{endpoint.endpoint_config_name}".'
                    )
            for change in desired:
                variant = live[change["VariantName"]]
                if change.get("DesiredWeight") is not None:
                    variant["CurrentWeight"] = variant["DesiredWeight"] = float(
                        change["DesiredWeight"])
                if change.get("DesiredInstanceCount") is not None:
                    variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = int(
                        change["DesiredInstanceCount"])
            endpoint.endpoint_status = "Updating"
            endpoint.last_modified_time = utcnow()
            return ActionResult({"EndpointArn": endpoint.arn})

    class LocalRuntimeResponse(SageMakerRuntimeResponse):  # type: ignore[misc]
        """InvokeEndpoint answered by the variant's model, as the XGBoost container would."""

        def invoke_endpoint(self) -> Any:
            from urllib.parse import unquote

            name = unquote(self.path.split("/")[2])
            try:
                variant, body = invoke(
                    self.current_account, self.region, name,
                    self.headers.get("X-Amzn-SageMaker-Target-Variant"),
                    self.headers.get("Content-Type") or "", self.raw_body,
                )
            except InvocationError as error:
                failure = JsonRESTError(error.code, error.message)
                failure.code = error.status
                raise failure from None
            return 200, {"Content-Type": "text/csv",
                         "x-Amzn-Invoked-Production-Variant": variant}, body

    return LocalSageMakerResponse, LocalRuntimeResponse


def _variants(config_variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An endpoint's variants as DescribeEndpoint shows them, weight 0 included."""
    variants = []
    for v in config_variants:
        weight = float(v.get("InitialVariantWeight", 1.0))
        variant: dict[str, Any] = {"VariantName": v["VariantName"], "CurrentWeight": weight,
                                   "DesiredWeight": weight}
        if v.get("InitialInstanceCount") is not None:
            variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = int(
                v["InitialInstanceCount"])
        if v.get("ServerlessConfig"):
            variant["CurrentServerlessConfig"] = variant["DesiredServerlessConfig"] = v[
                "ServerlessConfig"]
        variants.append(variant)
    return variants


class InvocationError(Exception):
    """An InvokeEndpoint failure as SageMaker reports it: error code, HTTP status, message."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def invoke(
    account: str, region: str, endpoint_name: str, target_variant: str | None,
    content_type: str, body: bytes | str | None,
) -> tuple[str, str]:
    """Score ``body`` (CSV rows of features) with a variant of the endpoint in moto's backend.

    Returns the variant's name and one prediction per line; raises ``InvocationError``.
    """
    import random

    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[account][region]
    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        raise InvocationError("ValidationError", 400,
                              f"Endpoint {endpoint_name} of account {account} not found.")
    variants = endpoint.production_variants
    if target_variant:
        chosen = next((v for v in variants if v["VariantName"] == target_variant), None)
        if chosen is None:
            raise InvocationError(
                "ValidationError", 400,
                f"Variant {target_variant} not found for endpoint {endpoint_name}.",
            )
    else:
        weights = [float(v.get("CurrentWeight") or 0.0) for v in variants]
        if not variants or sum(weights) <= 0:
            raise InvocationError("ValidationError", 400,
                                  f"Endpoint {endpoint_name} has no variant with traffic.")
        chosen = random.choices(variants, weights)[0]
    variant_name = str(chosen["VariantName"])
    config = backend.endpoint_configs[endpoint.endpoint_config_name]
    model_name = next(v["ModelName"] for v in config.production_variants
                      if v["VariantName"] == variant_name)
    model = backend._models.get(model_name)
    container = (model.primary_container or (model.containers or [{}])[0]) if model else {}
    url = str(container.get("ModelDataUrl", ""))
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise _model_error(415, f"Content-type {content_type or '(none)'} not supported. "
                           "Supported content-type is text/csv")
    raw = body.encode() if isinstance(body, str) else (body or b"")
    return variant_name, _predict(_booster(account, region, url), raw)


def _model_error(status: int, message: str) -> InvocationError:
    return InvocationError(
        "ModelError", 424,
        f"Received client error ({status}) from primary with message \"{message}\".",
    )


def _booster(account: str, region: str, url: str) -> Any:
    """The booster in the ``model.tar.gz`` at ``url`` in moto's S3, cached by URL and ETag."""
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    from bot.core.training import load_model

    bucket, _, key = url.removeprefix("s3://").partition("/")
    try:
        stored = s3_backends[account][get_partition(region)].get_object(bucket, key)
    except Exception as error:  # moto raises its own S3 errors; any of them means "no model"
        raise _model_error(500, f"Unable to load model from {url}: {error}") from None
    if stored is None:
        raise _model_error(500, f"Unable to load model from {url}: no such object")
    cache_key = (url, str(stored.etag))
    with _boosters_lock:
        booster = _boosters.get(cache_key)
    if booster is None:
        try:
            booster = load_model(stored.value)
        except BotError as error:
            raise _model_error(500, f"Unable to load model: {error.message}") from None
        # As the container does: requests are small, and threads would only add latency.
        booster.set_param({"nthread": 1})
        with _boosters_lock:
            _boosters[cache_key] = booster
    return booster


def _predict(booster: Any, body: bytes) -> str:
    """What the container's ``booster.predict`` returns, one value per line."""
    import io

    import numpy as np
    import xgboost

    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return ""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            rows = np.genfromtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise _model_error(415, f"Loading csv data failed: {error}") from None
    if rows.shape[1] != booster.num_features():
        raise _model_error(
            400, f"Feature size of csv inference data {rows.shape[1]} is not consistent with "
            f"feature size of trained model {booster.num_features()}."
        )
    predictions = booster.predict(xgboost.DMatrix(rows, nthread=1), validate_features=False)
    return "\n".join(map(str, predictions.tolist()))


class LocalAWS:
    """moto's threaded server on 127.0.0.1 with the extensions, reached via AWS_ENDPOINT_URL.

    While active, the process environment points boto3 at it with fake credentials.
    """

    def __init__(self, port: int = 0, quiet: bool = True) -> None:
        self.port = port
        self.quiet = quiet
        self.url = ""
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_sfn: Any = None
        self._saved_log_level: int | None = None

    def __enter__(self) -> LocalAWS:
        import logging

        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

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
        import logging

        from moto.core.config import default_user_config

        if self.quiet:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
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

    def environment(self) -> dict[str, str]:
        """What boto3 needs to reach this server."""
        return {"AWS_ENDPOINT_URL": self.url, **FAKE_CREDENTIALS,
                "AWS_DEFAULT_REGION": settings().region}

    def export_lines(self) -> list[str]:
        """Shell lines that point another terminal's boto3 (and the bot) at this server."""
        return [f"export {name}={value}" for name, value in self.environment().items()]

    def _moto_api(self, path: str, payload: dict[str, Any] | None) -> None:
        import urllib.request

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
    import boto3

    boto3.DEFAULT_SESSION = None


STATE_MACHINE_DEFINITION = {
    "Comment": "Retrain the production model (local stand-in for the real pipeline).",
    "StartAt": "PrepareData",
    "States": {
        "PrepareData": {"Type": "Pass", "Next": "TrainModel"},
        "TrainModel": {"Type": "Pass", "Next": "EvaluateModel"},
        "EvaluateModel": {"Type": "Pass", "Next": "RegisterModel"},
        "RegisterModel": {"Type": "Pass", "Result": {"status": "registered"}, "End": True},
    },
}


def bootstrap(
    target_name: str = "fraud-detection", rows: int = 284_807, seed: int = 0,
    progress: Callable[[str], None] = print,
) -> None:
    """Create production as it is today in the AWS that boto3 reaches (the local server).

    Buckets, sample data, role, retraining state machine, the champion's SSM parameters,
    model and production config, and the endpoint serving it. The sample data uploads on a
    thread while the champion trains; the trained champion is cached on disk by everything
    that determines it, so a rerun skips training.
    """
    from bot.adapters import data_files as data
    from bot.adapters.aws import artifacts, config_store, endpoint, ssm
    from bot.adapters.aws.clients import client
    from bot.core.desired_state import ssm_values
    from bot.core.domain import EndpointSpec, VariantSpec
    from bot.core.production_config import ChampionModel, ProductionConfig

    if rows < MIN_ROWS:
        raise BotError(f"bootstrap needs at least {MIN_ROWS:,} rows of sample data, so that "
                       f"its test split holds a fraud to evaluate the champion on; not {rows:,}")
    started = time.monotonic()
    t = target(target_name)
    s3 = client("s3", t.region)
    for bucket in (t.data_bucket, t.config_bucket, t.artifacts_bucket):
        _create_bucket(s3, bucket, t.region)
    s3.put_bucket_versioning(Bucket=t.config_bucket,
                             VersioningConfiguration={"Status": "Enabled"})
    request = champion_request(t)

    progress(f"writing {rows:,} rows of sample data to s3://{t.data_bucket}/processed/ ...")
    with ThreadPoolExecutor(max_workers=1) as pool:
        upload = pool.submit(data.write_sample, f"s3://{t.data_bucket}/processed", rows, seed)
        _create_role_and_pipeline(t)
        ssm.write(t, ssm_values(request))
        model, metrics = _champion(rows, seed, progress)
        upload.result()
    versions = {
        "train": data.data_version(request.data.train, Path(".")),
        "test": data.data_version(request.data.test, Path(".")),
    }
    model_key = request.model_key(versions)
    artifact = artifacts.put_model(t, model_key, model)
    champion = ChampionModel(experiment_id=request.experiment_id, model_artifact=artifact,
                             model_key=model_key, metrics=metrics)
    config = ProductionConfig(
        target=t.name, algorithm=request.algorithm, experiment_id=request.experiment_id,
        hyperparameters=request.hyperparameters, metrics=metrics,
        test_date=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        approvers=["data-science-team"], approval_source="seed", commit="0000000",
        content_sha256=request.content_sha256(), model_artifact=artifact,
        model_key=model_key, champion=champion,
    )
    config_store.write(t, config)
    progress(f"deploying the champion on {t.endpoint_name} ...")
    endpoint.reconcile(t, EndpointSpec(t.endpoint_name, (VariantSpec("champion", artifact, 100),)),
                       wait_delay=0.0)
    progress(f"production is set up in {time.monotonic() - started:.1f}s: champion "
             f"{request.experiment_id}, PR AUC {metrics['pr_auc']:.3f}")


def champion_request(t: Target) -> Request:
    """The request production's champion would have come from: hyperparameters and data."""
    from bot.core.request import Request

    return Request.model_validate({
        "experiment_id": CHAMPION_EXPERIMENT,
        "description": "The model in production before the bot: the notebook's baseline.",
        "algorithm": "xgboost",
        "hyperparameters": CHAMPION_HYPERPARAMETERS,
        "data": {"train": f"s3://{t.data_bucket}/processed/train.parquet",
                 "test": f"s3://{t.data_bucket}/processed/test.parquet"},
    })


def _champion(rows: int, seed: int, progress: Callable[[str], None]
              ) -> tuple[bytes, dict[str, float]]:
    """The champion's ``model.tar.gz`` and test metrics: from the cache, or trained now."""
    path = _cache_dir() / f"champion-{_champion_cache_key(rows, seed)[:32]}.json"
    cached = _read_cache(path)
    if cached is not None:
        progress(f"reusing the champion trained earlier ({path})")
        return cached
    from bot.adapters import data_files as data
    from bot.core import evaluation, training

    progress("training the current champion (num_round 50, max_depth 4) ...")
    train_df, test_df = data.split(data.generate_sample(rows, seed), seed=seed)
    # One thread: the sample data uploads meanwhile, and OpenMP threads that must share a
    # core with it wait on each other (measured: 11 s on two threads, 3 s on one).
    booster = training.train({**CHAMPION_HYPERPARAMETERS, "nthread": 1}, train_df, data.TARGET)
    del train_df
    scores = training.score(booster, test_df, training.feature_columns(test_df, data.TARGET))
    metrics = evaluation.evaluate(test_df[data.TARGET].to_numpy(), scores).metrics
    model = training.package_model(booster)
    _write_cache(path, model, metrics)
    return model, metrics


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "promotion-bot"


def _champion_cache_key(rows: int, seed: int) -> str:
    """Everything the champion's bytes and metrics depend on, code and library versions too."""
    import hashlib
    import importlib.metadata

    from bot.adapters import data_files as data
    from bot.core import evaluation, training

    sources = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
               for path in (Path(str(m.__file__)) for m in (data, training, evaluation))}
    sources[Path(__file__).name] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    versions = {}
    for dist in ("xgboost", "xgboost-cpu", "numpy", "pandas", "scikit-learn"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    key = {"rows": rows, "seed": seed, "hyperparameters": CHAMPION_HYPERPARAMETERS,
           "sources": sources, "versions": versions}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path) -> tuple[bytes, dict[str, float]] | None:
    import base64
    import hashlib

    try:
        entry = json.loads(path.read_text())
        model = base64.b64decode(entry["model"])
        if hashlib.sha256(model).hexdigest() != entry["sha256"]:
            return None
        return model, {str(k): float(v) for k, v in entry["metrics"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_cache(path: Path, model: bytes, metrics: dict[str, float]) -> None:
    """Best effort: a cache that cannot be written only costs the next run its training."""
    import base64
    import hashlib

    entry = {"model": base64.b64encode(model).decode(), "metrics": metrics,
             "sha256": hashlib.sha256(model).hexdigest()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(entry))
        os.replace(partial, path)
    except OSError:
        pass


def _create_bucket(s3: Any, bucket: str, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket,
                         CreateBucketConfiguration={"LocationConstraint": region})


def _create_role_and_pipeline(t: Target) -> None:
    from bot.adapters.aws.clients import client

    role_name = t.sagemaker_role_arn.rsplit("/", 1)[-1]
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": ["sagemaker.amazonaws.com", "states.amazonaws.com"]},
    }]}
    role = client("iam", t.region).create_role(
        RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    client("stepfunctions", t.region).create_state_machine(
        name=t.state_machine_name, definition=json.dumps(STATE_MACHINE_DEFINITION),
        roleArn=role["Arn"],
    )
