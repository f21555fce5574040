"""Production as it is today, created in the AWS boto3 reaches (the local server): buckets,
the plan-signing key, sample data, the retraining state machine, the champion's parameters,
model, config and endpoint. The champion is trained once and cached on disk."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.adapters import data_files as data
from bot.adapters.aws import artifacts, config_store, endpoint, ssm
from bot.adapters.aws.clients import client
from bot.core import evaluation, training
from bot.core.desired_state import ssm_values
from bot.core.domain import EndpointSpec, VariantSpec
from bot.core.production_config import ChampionModel, ProductionConfig
from bot.core.request import Request
from bot.errors import BotError
from bot.settings import Target, target

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

    Buckets, the plan-signing KMS key, sample data, role, retraining state machine, the
    champion's SSM parameters, model (stored by digest) and production config, and the
    endpoint serving it. The sample data uploads on a
    thread while the champion trains; the trained champion is cached on disk by everything
    that determines it, so a rerun skips training.
    """
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
    create_signing_key(t)
    request = champion_request(t)

    progress(f"writing {rows:,} rows of sample data to s3://{t.data_bucket}/processed/ ...")
    with ThreadPoolExecutor(max_workers=1) as pool:
        upload = pool.submit(data.write_sample, f"s3://{t.data_bucket}/processed", rows, seed)
        _create_role_and_pipeline(t)
        ssm.write(t, ssm_values(request.hyperparameters))
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


def create_signing_key(t: Target) -> str:
    """The plan-signing key: asymmetric (ECC P-256), for signing and verifying, under the
    alias the settings name. Returns its key id."""
    if not t.signing_key.startswith("alias/"):
        raise BotError(f"the embedded default creates the signing key under an alias; "
                       f"PROMOTION_BOT_SIGNING_KEY is {t.signing_key!r}")
    kms = client("kms", t.region)
    key = kms.create_key(
        KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY",
        Description=f"promotion-bot: signs the stored plans of {t.name} (plan role only)",
    )["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=t.signing_key, TargetKeyId=key)
    return str(key)


def champion_request(t: Target) -> Request:
    """The request production's champion would have come from: hyperparameters and data."""
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
    sources = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
               for path in (Path(str(m.__file__)) for m in (data, training, evaluation))}
    sources[Path(__file__).name] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    versions = {}
    for dist in ("xgboost", "xgboost-cpu", "numpy", "pandas"):  # whichever are installed
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    key = {"rows": rows, "seed": seed, "hyperparameters": CHAMPION_HYPERPARAMETERS,
           "sources": sources, "versions": versions}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path) -> tuple[bytes, dict[str, float]] | None:
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
    role_name = t.sagemaker_role_arn.rsplit("/", 1)[-1]
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": ["sagemaker.amazonaws.com", "states.amazonaws.com"]},
    }]}
    iam = client("iam", t.region)
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    # The role training jobs run as (training.backend: sagemaker), passed by the plan.
    training_role = t.training_role_arn.rsplit("/", 1)[-1]
    if training_role != role_name:
        iam.create_role(RoleName=training_role, AssumeRolePolicyDocument=json.dumps(trust))
    client("stepfunctions", t.region).create_state_machine(
        name=t.state_machine_name, definition=json.dumps(STATE_MACHINE_DEFINITION),
        roleArn=role["Arn"],
    )
