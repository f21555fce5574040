"""The embedded default: moto's server on 127.0.0.1, the SageMaker parts moto lacks, and
production set up as it is today.

moto 5.2 has no ``UpdateEndpoint``, reports no weight for a variant created with weight 0,
answers ``InvokeEndpoint`` with canned text and crashes on ``ListTags`` of a deleted resource.
``install_moto_extensions`` points moto's own URL dispatch tables at subclasses of its
response classes that add those, serving real predictions of the variant's ``model.tar.gz``
from moto's S3, and puts the fault plan of ``bot.local.faults`` in front of every service
the bot uses. The bot's boto3 code never knows it talks to moto.

Endpoints change as SageMaker's do: an update keeps the old config serving (with a
``PendingDeploymentSummary``) until the new one is InService, and a fault plan can make it
take longer, roll back, fail, or report maintenance states. An update with a
``DeploymentConfig`` naming alarms has a baking period (``BAKING_POLLS`` DescribeEndpoint
polls once the new fleet is up) in which those alarms are read from moto's CloudWatch: one in
ALARM rolls the endpoint back to the config that served before (RollingBack, then InService),
and DescribeEndpoint shows ``LastDeploymentConfig`` and a ``FailureReason`` naming the alarm
(https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-all-at-once.html).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import json
import random
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import moto.cloudwatch.urls as cloudwatch_urls
import moto.sagemaker.urls as sagemaker_urls
import moto.sagemakerruntime.urls as runtime_urls
import numpy as np
from moto.cloudwatch.models import cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse
from moto.utilities.utils import get_partition

from bot.core.training import load_model
from bot.errors import BotError
from bot.local.faults import active, wrap_aws
from bot.local.model_registry import ModelRegistryActions
from bot.local.training_runner import TrainingJobActions, emulated

#: The services whose handlers answer by the fault plan: moto's module and the service name.
_FAULTY_SERVICES = (("s3", "s3"), ("ssm", "ssm"), ("stepfunctions", "stepfunctions"),
                    ("sagemaker", "sagemaker"), ("sagemakerruntime", "sagemaker-runtime"),
                    ("cloudwatch", "cloudwatch"))

_install_lock = threading.Lock()
_installed = False
_boosters: dict[tuple[str, str], Any] = {}
_boosters_lock = threading.Lock()
#: DescribeEndpoint polls an update with alarms spends baking once its new fleet is up.
BAKING_POLLS = 1


def install_moto_extensions() -> None:
    """Add UpdateEndpoint, weight-0 variants, a real InvokeEndpoint, ListTags of deleted
    resources and the fault plan in front of every service the bot uses (idempotent).

    Both ``mock_aws`` (per request) and the server (per app it builds) look handlers up in
    ``moto.<service>.urls.url_paths``, so replacing the handlers there serves both.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        for path in sagemaker_urls.url_paths:
            sagemaker_urls.url_paths[path] = LocalSageMakerResponse.dispatch
        for path in runtime_urls.url_paths:
            if path.endswith("/invocations$"):
                runtime_urls.url_paths[path] = LocalRuntimeResponse.dispatch
        for path in cloudwatch_urls.url_paths:
            cloudwatch_urls.url_paths[path] = LocalCloudWatchResponse.dispatch
        _install_faults()
        _installed = True


class LocalCloudWatchResponse(CloudWatchResponse):  # type: ignore[misc]
    """CloudWatch with DescribeAlarmHistory, which moto lacks: an alarm's state changes,
    newest first, from the previous states moto keeps
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarmHistory.html)."""

    def describe_alarm_history(self) -> ActionResult:
        name = self._get_param("AlarmName")
        limit = int(self._get_param("MaxRecords") or 100)
        alarm = self.cloudwatch_backend.alarms.get(name)
        items = []
        if alarm is not None:
            states = [(value, reason, when) for _, reason, _, value, when in alarm.history]
            states.append((alarm.state_value, alarm.state_reason,
                           alarm.state_updated_timestamp))
            for (old, _, _), (new, reason, when) in itertools.pairwise(states):
                items.append({
                    "AlarmName": name, "AlarmType": "MetricAlarm", "Timestamp": when,
                    "HistoryItemType": "StateUpdate",
                    "HistorySummary": f"Alarm updated from {old} to {new}",
                    "HistoryData": json.dumps({
                        "version": "1.0", "oldState": {"stateValue": old},
                        "newState": {"stateValue": new, "stateReason": reason}})})
        items.reverse()  # ScanBy TimestampDescending, the default
        return ActionResult({"AlarmHistoryItems": items[:limit]})


def _install_faults() -> None:
    """Put the fault plan in front of every handler of the services the bot calls."""
    # moto reloads its S3 URL table on every request, so S3's handlers are wrapped where the
    # table takes them from.
    for name in ("bucket_dispatch", "ambiguous_dispatch", "key_dispatch"):
        setattr(S3Response, name, staticmethod(wrap_aws("s3", getattr(S3Response, name))))
    for module_name, service in _FAULTY_SERVICES:
        urls = importlib.import_module(f"moto.{module_name}.urls")
        for path, handler in list(urls.url_paths.items()):
            urls.url_paths[path] = wrap_aws(service, handler)


class LocalSageMakerResponse(TrainingJobActions, ModelRegistryActions,  # type: ignore[misc]
                             SageMakerResponse):
    """moto's SageMaker plus UpdateEndpoint, honest weights and SageMaker's endpoint states.

    A change reports its transitional state (Creating, Updating) on the next
    DescribeEndpoint and is done on the one after (longer, or failing, by the fault
    plan), so a caller's wait loop runs as it would against AWS.
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
        _begin(endpoint, "Creating", _fault("CreateEndpoint"), None)
        return result

    def describe_endpoint(self) -> Any:
        name = self._get_param("EndpointName")
        endpoint = self._endpoint(name)
        _advance(endpoint)
        response = dict(self.sagemaker_backend.describe_endpoint(name))
        deployment = _deployments.get(endpoint.arn)
        if deployment is not None:
            response["LastDeploymentConfig"] = deployment
        change = _change(endpoint)
        if change is not None and change.config is not None:
            response["PendingDeploymentSummary"] = {
                "EndpointConfigName": change.config,
                "ProductionVariants": [
                    {"VariantName": v["VariantName"], "DesiredWeight": v["DesiredWeight"],
                     **({"DesiredInstanceCount": v["DesiredInstanceCount"]}
                        if "DesiredInstanceCount" in v else {})}
                    for v in change.variants],
                "StartTime": change.started,
            }
        return ActionResult(response)

    def update_endpoint(self) -> Any:
        endpoint = self._endpoint(self._get_param("EndpointName"))
        self._in_service(endpoint)
        name = self._get_param("EndpointConfigName")
        config = self._config(name)
        deployment = self._get_param("DeploymentConfig")
        if not deployment and self._get_param("RetainDeploymentConfig"):
            deployment = _deployments.get(endpoint.arn)
        if deployment:  # kept for DescribeEndpoint's LastDeploymentConfig
            _deployments[endpoint.arn] = deployment
        else:
            _deployments.pop(endpoint.arn, None)
        # The old config keeps serving until the new one is InService.
        _begin(endpoint, "Updating", _fault("UpdateEndpoint"), _Change(
            config=name, variants=_variants(config.production_variants), started=utcnow(),
            alarms=_alarm_names(deployment), account=self.current_account,
            region=self.region))
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
        # Desired now, current once the update is done (or the old values on rollback).
        for change in desired:
            variant = live[change["VariantName"]]
            if change.get("DesiredWeight") is not None:
                variant["DesiredWeight"] = float(change["DesiredWeight"])
            if change.get("DesiredInstanceCount") is not None:
                variant["DesiredInstanceCount"] = int(change["DesiredInstanceCount"])
        _begin(endpoint, "Updating", _fault("UpdateEndpointWeightsAndCapacities"), None)
        endpoint.last_modified_time = utcnow()
        return ActionResult({"EndpointArn": endpoint.arn})

    def list_tags(self) -> Any:
        # moto crashes (500) on a resource that no longer exists; SageMaker refuses it.
        arn = self._get_param("ResourceArn")
        try:
            found = self.sagemaker_backend._get_resource_from_arn(arn)
        except Exception:  # moto raises its own errors for ARNs of unknown kinds
            found = None
        if found is None:
            raise ValidationError(message=f"Resource {arn} does not exist.")
        return super().list_tags()


class LocalRuntimeResponse(SageMakerRuntimeResponse):  # type: ignore[misc]
    """InvokeEndpoint answered by the variant's model, as the XGBoost container would."""

    def invoke_endpoint(self) -> Any:
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


@dataclass
class _Change:
    """An endpoint change under way: what it deploys and how it ends (by the fault plan)."""

    config: str | None = None  # UpdateEndpoint: the config deployed
    variants: list[dict[str, Any]] = field(default_factory=list)
    started: Any = None
    polls: int | None = 1  # describes left in the transitional state (None: stays)
    outcome: str = "InService"
    reason: str | None = None
    resume: str | None = None  # endpoint-state: the status to go back to
    alarms: tuple[str, ...] = ()  # AutoRollbackConfiguration's alarms, read while baking
    baking: int | None = None  # polls of baking left (None: not baking yet)
    account: str = ""
    region: str = ""


#: The change under way per endpoint ARN (kept off moto's objects, which it serialises whole).
_changes: dict[str, _Change] = {}
#: The DeploymentConfig of each endpoint's last UpdateEndpoint that had one, per ARN.
_deployments: dict[str, dict[str, Any]] = {}


def _alarm_names(deployment: dict[str, Any] | None) -> tuple[str, ...]:
    rollback = (deployment or {}).get("AutoRollbackConfiguration") or {}
    return tuple(str(a["AlarmName"]) for a in rollback.get("Alarms") or () if a.get("AlarmName"))


def _firing(change: _Change) -> tuple[str, ...]:
    """The change's rollback alarms in ALARM now in moto's CloudWatch (an alarm that does
    not exist is not in ALARM)."""
    alarms = cloudwatch_backends[change.account][change.region].alarms
    return tuple(name for name in change.alarms
                 if name in alarms and alarms[name].state_value == "ALARM")


def _change(endpoint: Any) -> _Change | None:
    return _changes.get(endpoint.arn)


def _set_change(endpoint: Any, change: _Change | None) -> None:
    if change is None:
        _changes.pop(endpoint.arn, None)
    else:
        _changes[endpoint.arn] = change


def _fault(operation: str) -> Any:
    injector = active()
    return None if injector is None else injector.pick("sagemaker", operation,
                                                       frozenset({"endpoint"}))


def _begin(endpoint: Any, status: str, rule: Any, change: _Change | None) -> None:
    """Start a change: ``status`` until it is done, then the rule's outcome (InService)."""
    change = change or _Change()
    if rule is not None:
        change.polls, change.outcome, change.reason = rule.polls, rule.outcome, rule.reason
    endpoint.endpoint_status = status
    _set_change(endpoint, change)


def _state_fault(endpoint: Any) -> None:
    """A fault plan's endpoint state (maintenance, out of service...) starting now."""
    injector = active()
    rule = None if injector is None or _change(endpoint) is not None else (
        injector.pick("sagemaker", "DescribeEndpoint", frozenset({"endpoint-state"})))
    if rule is None or rule.state is None:
        return
    if rule.polls is None:  # for good, as a Failed endpoint stays Failed
        endpoint.endpoint_status, endpoint.failure_reason = rule.state, rule.reason
        return
    change = _Change(polls=rule.polls, outcome="resume", reason=rule.reason,
                     resume=endpoint.endpoint_status)
    endpoint.endpoint_status = rule.state
    _set_change(endpoint, change)


def _advance(endpoint: Any) -> None:
    """One DescribeEndpoint's worth of progress of the change under way, if any."""
    _state_fault(endpoint)
    change: _Change | None = _change(endpoint)
    if change is None:
        return
    if change.polls is None:
        return
    if change.polls > 0:
        change.polls -= 1
        return
    _set_change(endpoint, None)
    if change.outcome == "resume":
        endpoint.endpoint_status = change.resume or "InService"
        return
    if change.outcome == "InService" and change.alarms:
        # The new fleet takes the traffic and bakes: an alarm in ALARM rolls it back.
        if change.baking is None:
            change.baking = BAKING_POLLS
            _set_change(endpoint, change)
            return
        fired = _firing(change)
        if fired:
            change.outcome = "RolledBack"
            change.reason = (
                f"Deployment rolled back: CloudWatch alarm(s) {', '.join(fired)} went into "
                "ALARM state during the baking period")
        elif change.baking > 0:
            change.baking -= 1
            _set_change(endpoint, change)
            return
    if change.outcome == "InService":
        if change.config is not None:
            endpoint.endpoint_config_name = change.config
            endpoint.production_variants = change.variants
        for variant in endpoint.production_variants:
            variant["CurrentWeight"] = variant.get("DesiredWeight", variant.get("CurrentWeight"))
            if "DesiredInstanceCount" in variant:
                variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"]
        endpoint.endpoint_status, endpoint.failure_reason = "InService", None
        return
    reason = change.reason or "the new production variants failed their health checks"
    if change.outcome == "RolledBack":
        # Rolling back to the config and weights that served all along, then InService.
        for variant in endpoint.production_variants:
            variant["DesiredWeight"] = variant.get("CurrentWeight")
            if "CurrentInstanceCount" in variant:
                variant["DesiredInstanceCount"] = variant["CurrentInstanceCount"]
        endpoint.failure_reason = reason
        endpoint.endpoint_status = "RollingBack"
        _set_change(endpoint, _Change(polls=0, outcome="resume", resume="InService"))
        return
    endpoint.endpoint_status, endpoint.failure_reason = change.outcome, reason


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
    image = str(container.get("Image", ""))
    if not emulated(image):  # serving in another container than the one that trains
        raise _model_error(500, "local-aws serves models in the XGBoost 3 container "
                           f"(sagemaker-xgboost:3.0-5 and later), not {image or '(no image)'}")
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
    import xgboost  # lazy: ~1.5 s; every local AWS imports this module, few serve a model

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


