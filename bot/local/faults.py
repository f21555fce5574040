"""Failures on demand for the local stand-ins, so the bot's failure paths run before production
needs them.

A ``FaultPlan`` is a small frozen value: rules saying which calls fail (service and operation,
or GitHub's ``METHOD /path``), how (an AWS throttle or server error, a GitHub rate limit with
its headers, a slow or lost answer, an endpoint update that rolls back, an endpoint state),
how often (``times``, ``skip``, ``probability`` drawn from a seeded generator). The local AWS
(``bot.local.moto_gaps``, in process or behind ``local-aws --faults FILE``) and the local
GitHub (``bot.local.github``) each consume one through an ``Injector``, which counts what it
injected so a test can show the failures really happened.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.adapters import safe_yaml
from bot.adapters.request_files import model_problems
from bot.errors import InvalidRequest, Problem

Kind = Literal["error", "throttle", "server-error", "slow", "rate-limit", "endpoint",
               "endpoint-state"]
#: Kinds answered in front of a service; the endpoint kinds change how SageMaker behaves.
AWS_KINDS = frozenset({"error", "throttle", "server-error", "slow"})
GITHUB_KINDS = frozenset({"error", "server-error", "slow", "rate-limit"})


class Rule(BaseModel):
    """Which calls fail, how and how often."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: s3, ssm, sagemaker, sagemaker-runtime, stepfunctions, cloudwatch, or github
    service: str = "*"
    operation: str = "*"  # AWS operation (``PutParameter``, ``*Object``) or ``POST /repos/*``
    kind: Kind = "error"
    status: int | None = Field(default=None, ge=100, le=599)
    code: str | None = None  # AWS error code
    message: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    delay: float = Field(default=0.0, ge=0)  # seconds before answering
    after: bool = False  # do the call, then answer with the error: the answer is lost
    times: int | None = Field(default=None, ge=1)  # at most this many hits (None: no limit)
    skip: int = Field(default=0, ge=0)  # matching calls let through first
    probability: float = Field(default=1.0, ge=0, le=1)
    # GitHub rate limits: secondary (Retry-After if given) or primary (reset in N seconds).
    limit: Literal["primary", "secondary"] = "secondary"
    retry_after: int | None = Field(default=None, ge=0)
    reset_in: float = Field(default=3600.0, ge=0)
    # SageMaker: describes spent transitional, and how an endpoint change ends.
    polls: int | None = Field(default=1, ge=0)
    outcome: Literal["InService", "RolledBack", "UpdateRollbackFailed", "Failed"] = "InService"
    state: Literal["OutOfService", "SystemUpdating", "Failed", "UpdateRollbackFailed",
                   "RollingBack", "Updating"] | None = None
    reason: str | None = None

    def matches(self, service: str, operation: str) -> bool:
        return fnmatch.fnmatchcase(service, self.service) and fnmatch.fnmatchcase(
            operation, self.operation)


class FaultPlan(BaseModel):
    """Rules tried in order (the first that fires answers) and the seed of their draws."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    rules: tuple[Rule, ...] = ()

    @classmethod
    def load(cls, path: Path) -> FaultPlan:
        """Read a plan from a YAML (or JSON) file; every problem as ``PATH:LINE: FIELD: REASON``."""
        shown = str(path)
        document = safe_yaml.load_file(path, shown)
        problems = list(document.problems)
        if not problems and not isinstance(document.value, dict):
            problems.append(Problem(shown, document.lines.get("", 1), "",
                                    "must be a mapping with 'seed' and 'rules'"))
        if not problems:
            try:
                return cls.model_validate(document.value)
            except ValidationError as error:
                problems += model_problems(error, document.lines, shown, cls)
        raise InvalidRequest(problems)


@dataclass(frozen=True)
class Injected:
    """One failure the injector answered with."""

    service: str
    operation: str
    kind: str


class Injector:
    """A plan in use: counts matching calls per rule and decides, reproducibly, which fail."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._seen = [0] * len(plan.rules)
        self._fired = [0] * len(plan.rules)
        self._lock = threading.Lock()
        self._log: list[Injected] = []
        self._released = threading.Event()

    def pick(self, service: str, operation: str, kinds: frozenset[str]) -> Rule | None:
        """The rule that fails this call, if one does.

        The draw for a rule's n-th matching call depends only on the seed, the rule and n,
        so a run's failures do not depend on what other threads call meanwhile.
        """
        with self._lock:
            for index, rule in enumerate(self.plan.rules):
                if rule.kind not in kinds or not rule.matches(service, operation):
                    continue
                seen = self._seen[index]
                self._seen[index] += 1
                if seen < rule.skip or (rule.times is not None
                                        and self._fired[index] >= rule.times):
                    continue
                if rule.probability < 1.0 and random.Random(
                        f"{self.plan.seed}:{index}:{seen}").random() >= rule.probability:
                    continue
                self._fired[index] += 1
                self._log.append(Injected(service, operation, rule.kind))
                return rule
        return None

    def injected(self) -> list[Injected]:
        """Every failure injected so far, oldest first."""
        with self._lock:
            return list(self._log)

    def delay(self, rule: Rule) -> None:
        """Hold the answer ``rule.delay`` seconds, or until ``release``."""
        if rule.delay:
            self._released.wait(rule.delay)

    def release(self) -> None:
        """End every delay now and from now on: slow answers held "until released" go out."""
        self._released.set()


# -- AWS ------------------------------------------------------------------------------------

_active: Injector | None = None


def activate(plan: FaultPlan | None) -> Injector | None:
    """Make the local AWS (in-process moto and the server alike) answer by ``plan``."""
    global _active
    _active = Injector(plan) if plan is not None and plan.rules else None
    return _active


def active() -> Injector | None:
    """The injector the local AWS answers by now, if any (it counts what it injected)."""
    return _active


@contextlib.contextmanager
def injected(plan: FaultPlan) -> Iterator[Injector]:
    """Faults for the ``with`` block; the injector tells what was injected."""
    global _active
    previous = _active
    injector = activate(plan) or Injector(plan)
    try:
        yield injector
    finally:
        _active = previous


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No failures for the ``with`` block (a test reading state back); the same plan, with its
    counts, resumes after it."""
    global _active
    previous, _active = _active, None
    try:
        yield
    finally:
        _active = previous


Handler = Callable[[Any, str, Any], Any]


def wrap_aws(service: str, handler: Handler) -> Handler:
    """``handler`` (a moto URL handler) answering by the active plan first."""
    if getattr(handler, "_faulty", False):
        return handler

    def faulty(request: Any, full_url: str, headers: Any) -> Any:
        injector = _active
        if injector is None:
            return handler(request, full_url, headers)
        operation = aws_operation(service, getattr(request, "method", "GET"), full_url, headers)
        rule = injector.pick(service, operation, AWS_KINDS)
        if rule is None:
            return handler(request, full_url, headers)
        injector.delay(rule)
        if rule.kind == "slow":
            return handler(request, full_url, headers)
        if rule.after:
            with contextlib.suppress(Exception):  # the call happens; its answer is lost
                handler(request, full_url, headers)
        return aws_error(service, rule)

    faulty._faulty = True  # type: ignore[attr-defined]
    return faulty


def aws_operation(service: str, method: str, url: str, headers: Any) -> str:
    """The API operation of a request to the local AWS, from its target header or its path."""
    target = headers.get("X-Amz-Target") if headers is not None else None
    if target:
        return str(target).rsplit(".", 1)[-1]
    if service == "sagemaker-runtime":
        return "InvokeEndpointAsync" if "/async-invocations" in url else "InvokeEndpoint"
    if service != "s3":
        return method.upper()
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    host = parts.hostname or ""
    segments = [p for p in parts.path.split("/") if p]
    virtual = ".s3" in host and not host.startswith("s3")  # bucket.s3.amazonaws.com
    has_key = len(segments) >= (1 if virtual else 2)
    method = method.upper()
    if has_key:
        if "uploads" in query or "uploadId" in query:
            return "MultipartUpload"
        copy = headers is not None and headers.get("x-amz-copy-source")
        return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject",
                "PUT": "CopyObject" if copy else "PutObject"}.get(method, f"{method}Object")
    if "versioning" in query:
        return "PutBucketVersioning" if method == "PUT" else "GetBucketVersioning"
    if "versions" in query:
        return "ListObjectVersions"
    if "delete" in query:
        return "DeleteObjects"
    if method == "GET":
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(
        method, f"{method}Bucket")


def aws_error(service: str, rule: Rule) -> tuple[int, dict[str, str], str]:
    """The error answer of ``rule`` as the service's protocol writes it."""
    s3 = service == "s3"
    if rule.kind == "throttle":
        code = rule.code or ("SlowDown" if s3 else "ThrottlingException")
        status = rule.status or (503 if s3 else 400)
        message = rule.message or ("Please reduce your request rate." if s3 else
                                   "Rate exceeded")
    elif rule.kind == "server-error":
        code = rule.code or ("InternalError" if s3 else "InternalFailure")
        status = rule.status or 500
        message = rule.message or ("We encountered an internal error. Please try again."
                                   if s3 else "The request processing has failed because of "
                                   "an unknown error, exception or failure.")
    else:
        code = rule.code or "ValidationException"
        status = rule.status or 400
        message = rule.message or f"injected {code}"
    if s3:
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                f"{_xml(code)}</Code><Message>{_xml(message)}</Message>"
                "<RequestId>injected</RequestId></Error>")
        return status, {"Content-Type": "application/xml", **rule.headers}, body
    # CloudWatch answers in JSON 1.0 (awsJson1_0), the others the bot calls in JSON 1.1.
    content_type = {"sagemaker-runtime": "application/json",
                    "cloudwatch": "application/x-amz-json-1.0"}.get(
                        service, "application/x-amz-json-1.1")
    return status, {"Content-Type": content_type, "x-amzn-ErrorType": code, **rule.headers}, \
        json.dumps({"__type": code, "message": message})


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- GitHub ---------------------------------------------------------------------------------

def github_error(rule: Rule, now: float | None = None
                 ) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The answer of ``rule`` as GitHub writes it: (status, JSON body, headers)."""
    now = time.time() if now is None else now
    docs = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
    headers = dict(rule.headers)
    if rule.kind == "rate-limit":
        reset = int(now + rule.reset_in)
        if rule.limit == "primary":
            message = rule.message or ("API rate limit exceeded for installation ID 1. "
                                       "(But here's the good news: ...)")
            headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Used": "5000", "X-RateLimit-Reset": str(reset),
                       "X-RateLimit-Resource": "core", **headers}
        else:
            message = rule.message or (
                "You have exceeded a secondary rate limit. Please wait a few minutes before "
                "you try again. If you reach out to GitHub Support for help, please include "
                "the request ID injected.")
            headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4000",
                       "X-RateLimit-Reset": str(reset), "X-RateLimit-Resource": "core",
                       **({"Retry-After": str(rule.retry_after)}
                          if rule.retry_after is not None else {}), **headers}
        return rule.status or 403, {"message": message, "documentation_url": docs}, headers
    if rule.kind == "server-error":
        status = rule.status or 502
        return status, {"message": rule.message or "Server Error"}, headers
    status = rule.status or 422
    return status, {"message": rule.message or "Validation Failed",
                    "documentation_url": "https://docs.github.com/rest"}, headers
