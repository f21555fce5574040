"""Shared fixtures: AWS in process (moto), real temporary git repositories, stored plans."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bot.core import names
from bot.core.domain import Plan
from bot.core.integrity import sha256_hex
from bot.core.request import Request
from bot.settings import Target, target

TARGET = "fraud-detection"


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    """Each test starts without boto3 clients or settings cached by an earlier one, and
    without a fault plan left active."""
    from bot.adapters.aws import clients
    from bot.local import faults
    from bot.settings import settings

    clients.forget()
    settings.cache_clear()
    yield
    faults.activate(None)
    clients.forget()
    settings.cache_clear()


@pytest.fixture
def no_github_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands run as by hand: no GitHub token, repository, event, API, run, base branch or
    commit around them."""
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_EVENT_PATH", "GITHUB_API_URL",
                 "GITHUB_RUN_ID", "GITHUB_BASE_REF", "GITHUB_SHA"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def production(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The embedded default (moto's server) with production set up, once per test module:
    ``PRODUCTION_ROWS`` rows of data (the module's, else 20,000: the test split then holds
    frauds, so a working candidate flags some). Yields the ``LocalAWS``."""
    from bot.local.aws_server import LocalAWS
    from bot.local.bootstrap import bootstrap

    with LocalAWS() as aws:
        bootstrap(rows=getattr(request.module, "PRODUCTION_ROWS", 20_000),
                  progress=lambda _: None)
        yield aws


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The local GitHub stand-in, named by the environment as GitHub Actions names it (the
    app's token, the repository, the API). Yields the ``LocalGitHub``."""
    from bot.local.github import LocalGitHub

    with LocalGitHub(repository="acme/fraud-models") as server:
        monkeypatch.setenv("GITHUB_TOKEN", server.token)
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme/fraud-models")
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        yield server


def run_plan(path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, bytes]:
    """``promotion-bot plan`` of the request at ``path`` into ``out``: its stderr and the
    plan.json it wrote (a plan that passes or fails its gates; anything else fails the test)."""
    from bot import cli

    capsys.readouterr()
    code = cli.main(["plan", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code in (0, 1), err
    return err, (out / "plan.json").read_bytes()


@pytest.fixture
def endpoint_polls_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's endpoint is Creating for one poll; don't wait the real 15 s between polls."""
    from bot.adapters.aws import endpoint

    monkeypatch.setattr(endpoint, "reconcile", functools.partial(endpoint.reconcile,
                                                                 wait_delay=0.01))


FEATURES = ["Time", *(f"V{i}" for i in range(1, 29)), "Amount"]


def small_params(rounds: int, depth: int) -> dict[str, str | int | float]:
    """Small models, one thread: the test machine has two cores shared with other work."""
    return {"objective": "binary:logistic", "num_round": rounds, "max_depth": depth, "nthread": 1}


def small_frame(rows: int, seed: int) -> Any:
    """Features like the fraud data's, a fifth of them positive, learnable from V1..V3."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, len(FEATURES)))
    data = pd.DataFrame(values, columns=FEATURES)
    data["Class"] = (values[:, 1] + values[:, 2] - values[:, 3]
                     + rng.standard_normal(rows) > 1.5).astype(int)
    return data


def compare_sampled(t: Target, features: Any, labels: Any, threshold: float,
                    legit_records: int = 20_000, seed: int = 0) -> Any:
    """The live comparison as plan makes it: ``runtime.sample`` chooses the rows (every fraud
    and ``legit_records`` legit ones), ``runtime.compare_endpoints`` sends them."""
    from bot.adapters.aws import runtime

    rows, weight = runtime.sample(labels, legit_records, seed, len(features))
    sent = None if labels is None else labels[rows]
    return runtime.compare_endpoints(t, features.iloc[rows], sent, threshold, weight, seed)


PASS_STATE_MACHINE = {"StartAt": "Retrain", "States": {"Retrain": {"Type": "Pass", "End": True}}}


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 goes to moto in this process: fake credentials, no endpoint or profile.

    SageMaker gets the actions moto lacks (``bot.local.moto_gaps``), as on the embedded default.
    """
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE",
                 "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    from bot.local.moto_gaps import install_moto_extensions

    install_moto_extensions()  # UpdateEndpoint and honest variant weights, as on AWS


@pytest.fixture
def aws(fake_credentials: None) -> Iterator[Target]:
    """moto with production's buckets, retraining state machine and plan-signing key; yields
    the target."""
    import boto3
    from moto import mock_aws

    from bot.local.bootstrap import create_signing_key

    t = target(TARGET)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        create_signing_key(t)
        s3 = boto3.client("s3", region_name=t.region)
        for bucket in (t.config_bucket, t.artifacts_bucket, t.data_bucket):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=t.config_bucket,
                                 VersioningConfiguration={"Status": "Enabled"})
        boto3.client("stepfunctions", region_name=t.region).create_state_machine(
            name=t.state_machine_name, definition=json.dumps(PASS_STATE_MACHINE),
            roleArn=f"arn:aws:iam::123456789012:role/{t.name}-stepfunctions",
        )
        yield t


@dataclass(frozen=True)
class GitRepo:
    """A real git repository in a temporary directory, with helpers to change it.

    ``plan_job`` holds what ``store_plan`` asked the plan job to plan: after every commit
    made here (``commit``, ``revert``) each of those request texts that the commit carries
    is planned at that commit, as the plan job plans every pushed head.
    """

    path: Path
    plan_job: list[Callable[[str], None]] = field(default_factory=list)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.path), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    def pushed(self) -> str:
        """The plan job runs on the new head; returns it."""
        head = self.head()
        for plan in self.plan_job:
            plan(head)
        return head

    def commit(self, files: dict[str, str | None], message: str,
               author: str = "Dana Scientist <dana@example.com>") -> str:
        """Write (or, for None, delete) ``files`` and commit them; return the commit id."""
        for name, text in files.items():
            path = self.path / name
            if text is None:
                self.git("rm", "-q", name)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                self.git("add", name)
        self.git("commit", "-q", "--author", author, "-m", message)
        return self.pushed()

    def revert(self, sha: str) -> str:
        self.git("revert", "--no-edit", sha)
        return self.pushed()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """An empty repository on ``main`` with ``promotion-requests/`` and one first commit."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    path = tmp_path / "repo"
    (path / "promotion-requests").mkdir(parents=True)
    repo = GitRepo(path)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.name", "Merge Bot")
    repo.git("config", "user.email", "merge@example.com")
    repo.git("config", "commit.gpgsign", "false")
    repo.commit({"README.md": "fraud models\n"}, "Start")
    return repo


def request_yaml(experiment: str = "exp-xgboost-1", eta: float = 0.1, max_depth: int = 6,
                 extra: str = "", rollout: str = "") -> str:
    """A valid promotion request; ``extra`` adds hyperparameter lines, ``rollout`` a block."""
    return (
        f"experiment_id: {experiment}\n"
        "algorithm: xgboost\n"
        "hyperparameters:\n"
        "  objective: binary:logistic\n"
        "  num_round: 100\n"
        f"  max_depth: {max_depth}\n"
        f"  eta: {eta}\n"
        "  subsample: 0.8\n"
        "  colsample_bytree: 0.8\n"
        f"{extra}"
        "data:\n"
        "  train: s3://fraud-detection-data/train.parquet\n"
        "  test: s3://fraud-detection-data/test.parquet\n"
        f"{rollout}"
    )


def a_plan(request: Request, t: str = "fraud-detection", passed: bool = True,
           accuracy: float = 0.999, artifact: str = "s3://fraud-detection-models/m/model.tar.gz",
           model_key: str = "k" * 64) -> Plan:
    """The smallest plan of ``request`` that apply accepts (or refuses: ``passed=False``)."""
    from bot.core.domain import (
        Champion,
        Comparison,
        ConfusionMatrix,
        Curve,
        Evaluation,
        GateResult,
    )

    evaluation = Evaluation({"accuracy": accuracy, "recall": 0.8}, ConfusionMatrix(1, 0, 0, 1),
                            Curve((0.0, 1.0), (0.0, 1.0)), Curve((0.0, 1.0), (1.0, 0.0)), 1, 2, 0.5)
    return Plan(
        target=t, request_path=f"promotion-requests/{t}.yaml",
        content_sha256=request.content_sha256(), experiment_id=request.experiment_id,
        model_key=model_key, artifact=artifact, evaluated_at="2024-01-15T10:00:00+00:00",
        trained=True, champion_identity="seed-baseline", evaluation=evaluation,
        champion=Champion("seed baseline", "seed", {}), comparison=Comparison(False, "none", {}),
        gates=(GateResult("accuracy >= 0.90", 0.9, accuracy, passed),),
    )


def put_plan(t: Target, text: str, passed: bool = True, accuracy: float = 0.999,
             head: str = "0" * 40, signed_at: str | None = None) -> Plan:
    """Store what ``plan`` stores (signed) for the request ``text`` of target ``t`` at the pull
    request head ``head``, judged against what production serves now, signed at
    ``signed_at`` (default: now)."""
    import datetime as dt

    import yaml

    from bot import __version__
    from bot.adapters.aws import artifacts, config_store, plan_store
    from bot.core.domain import PlanIdentity
    from bot.core.integrity import model_digest
    from bot.core.production_config import champion_identity

    request = Request.model_validate(yaml.safe_load(text))
    sha = request.content_sha256()
    versions = {"train": "v1", "test": "v1"}
    model_key = request.model_key(versions)
    artifact = artifacts.put_model(t, model_key, b"model.tar.gz of " + sha.encode())
    live, version = config_store.read_versioned(t)
    judged = champion_identity(live)
    plan = replace(a_plan(request, t.name, passed, accuracy, artifact, model_key),
                   champion_identity=judged)
    identity = PlanIdentity(
        head=head, data_versions=versions, champion_model_sha256=model_digest(judged),
        production_config_version=version, bot_version=__version__,
        signed_at=signed_at or dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"))
    plan_store.put_plan(t, replace(plan, identity=identity), {})
    return plan


def carries(repo: GitRepo, commit: str, t: Target, text: str) -> bool:
    """Whether ``commit`` has ``text`` as the request file of ``t``."""
    for suffix in (".yaml", ".yml"):
        shown = subprocess.run(
            ["git", "-C", str(repo.path), "show", f"{commit}:promotion-requests/{t.name}{suffix}"],
            capture_output=True, text=True, check=False)
        if shown.returncode == 0 and shown.stdout == text:
            return True
    return False


@pytest.fixture
def store_plan(aws: Target, request: pytest.FixtureRequest) -> Callable[..., Plan]:
    """``store_plan(request_text, passed=True, t=aws)``: the plan job plans that content, as
    ``plan`` stores it, at every head of ``git_repo`` that carries it, those there and those
    committed later (a test without ``git_repo``: at one head, all zeros)."""

    def store(text: str, passed: bool = True, accuracy: float = 0.999,
              t: Target | None = None) -> Plan:
        target_ = t or aws
        if "git_repo" not in request.fixturenames:
            return put_plan(target_, text, passed, accuracy)
        repo: GitRepo = request.getfixturevalue("git_repo")

        def plan_job(head: str) -> None:
            if carries(repo, head, target_, text):
                put_plan(target_, text, passed, accuracy, head=head)

        for commit in repo.git("rev-list", "--all").split():
            plan_job(commit)
        repo.plan_job.append(plan_job)
        return a_plan_of(target_, text, passed, accuracy)

    return store


def a_plan_of(t: Target, text: str, passed: bool = True, accuracy: float = 0.999) -> Plan:
    """The plan ``put_plan`` stores for ``text`` (its identity aside)."""
    import yaml

    request = Request.model_validate(yaml.safe_load(text))
    model_key = request.model_key({"train": "v1", "test": "v1"})
    model = b"model.tar.gz of " + request.content_sha256().encode()
    artifact = names.model_uri(t, sha256_hex(model))
    return a_plan(request, t.name, passed, accuracy, artifact, model_key)


@pytest.fixture
def champion_serving(aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan]) -> str:
    """A champion in production (planned, committed and applied); returns its commit."""
    from bot.flows.apply import apply  # the flows, and boto3 with them, only where used

    champion = request_yaml("exp-champion", eta=0.3)
    store_plan(champion)
    start = git_repo.head()
    git_repo.commit({"promotion-requests/fraud-detection.yaml": champion}, "Champion")
    apply(git_repo.path, start, "HEAD", None)
    return git_repo.head()


def model_key_of(t: Target, request: Request, repo: Path) -> str:
    """The model key a plan gives ``request`` with its data (in S3 or ``repo``) as it is now."""
    from bot.adapters import data_files
    from bot.flows.candidate import model_key

    uris = {"train": request.data.train, "test": request.data.test}
    with data_files.request_data(uris, repo, request.data.target_column) as tables:
        return model_key(t, request, tables.versions)
