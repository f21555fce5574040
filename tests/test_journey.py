"""The demo's journey end to end, asserting AWS after every step: the product's contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import yaml

from bot.local import demo
from bot.settings import target

T = target("fraud-detection")
SEED = {"objective": "binary:logistic", "num_round": "150", "max_depth": "7", "eta": "0.15",
        "subsample": "0.8", "colsample_bytree": "0.8"}


def aws_state() -> dict[str, Any]:
    """Everything a promotion touches, read straight from (local) AWS with boto3."""
    ssm, s3 = boto3.client("ssm"), boto3.client("s3")
    sfn, sm = boto3.client("stepfunctions"), boto3.client("sagemaker")
    params = ssm.get_parameters_by_path(Path=T.ssm_prefix, Recursive=True)["Parameters"]
    backups = ssm.get_parameters_by_path(Path=T.ssm_backup_prefix, Recursive=True)["Parameters"]
    config = yaml.safe_load(
        s3.get_object(Bucket=T.config_bucket, Key=T.config_key)["Body"].read())
    archive = s3.list_objects_v2(Bucket=T.config_bucket, Prefix=T.config_archive_prefix)
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                   if m["name"] == T.state_machine_name)
    endpoint = sm.describe_endpoint(EndpointName=T.endpoint_name)
    endpoint_config = sm.describe_endpoint_config(
        EndpointConfigName=endpoint["EndpointConfigName"])
    models = {v["VariantName"]: sm.describe_model(ModelName=v["ModelName"])[
        "PrimaryContainer"]["ModelDataUrl"] for v in endpoint_config["ProductionVariants"]}
    jobs = [sm.describe_training_job(TrainingJobName=j["TrainingJobName"])
            for j in sm.list_training_jobs()["TrainingJobSummaries"]]
    return {
        "ssm": {p["Name"].rsplit("/", 1)[1]: p["Value"] for p in params},
        "backups": len(backups),
        "config": config,
        "archived": archive.get("KeyCount", 0),
        "executions": len(sfn.list_executions(stateMachineArn=machine)["executions"]),
        "weights": {v["VariantName"]: v["CurrentWeight"] for v in endpoint["ProductionVariants"]},
        "models": models,
        "all_models": len(sm.list_models(NameContains=T.name)["Models"]),
        "all_configs": len(sm.list_endpoint_configs(NameContains=T.name)["EndpointConfigs"]),
        "training_jobs": {j["TrainingJobName"]: (j["TrainingJobStatus"],
                                                 j["ResourceConfig"]["InstanceCount"])
                          for j in jobs},
    }


def test_demo_journey_changes_production_exactly_as_planned(tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def after(step: str, journey: demo.Journey) -> None:
        seen.append((step, aws_state()))
        if step == "apply" and len([s for s, _ in seen if s == "apply"]) == 1:
            # Applying the same range again changes nothing and says so.
            before, after_sha = journey.git("rev-parse", "main~1"), journey.git("rev-parse",
                                                                                 "main")
            code = journey.bot("apply-again", "apply", "--repo", str(journey.repo), "--before",
                               before, "--after", after_sha)
            again = journey.outputs[f"{journey.step:02d}-apply-again"].read_text()
            assert code == 0 and "no changes" in again
            assert aws_state() == seen[-1][1]

    journey = demo.run(tmp_path / "demo", rows=4000, log=lambda _: None, after_step=after)
    applies = [state for step, state in seen if step == "apply"]
    plans = [state for step, state in seen if step.startswith("plan")]
    assert len(applies) == 7 and len(plans) == 7
    # Planning changes nothing in production.
    assert plans[0]["ssm"] != SEED and plans[0]["backups"] == 0

    first, second, reverted, at10, at50, promoted, unpromoted = applies
    assert first["ssm"] == SEED and first["backups"] == 1 and first["archived"] == 1
    assert first["config"]["experiment_id"] == "exp-xgboost-optimized-20240115"
    assert first["config"]["approvers"] == ["maria"]
    assert first["executions"] == 1
    assert first["weights"] == {"champion": 99.0, "challenger": 1.0}

    assert second["ssm"] == {**SEED, "num_round": "200", "max_depth": "9"}
    assert second["models"]["challenger"] != first["models"]["challenger"]
    # The second promotion was trained by a (local) training job on two instances, and
    # that job's model is what the challenger serves.
    trained_by = json.loads((journey.root / "outputs" / "plan-pr2" / "plan.json").read_text())
    assert trained_by["training"]["backend"] == "sagemaker"
    assert plans[0]["training_jobs"] == {}
    assert plans[1]["training_jobs"] == {trained_by["training"]["job"]: ("Completed", 2)}
    assert second["models"]["challenger"] == trained_by["artifact"]
    assert second["backups"] == 2 and second["executions"] == 2

    # The revert restores the exact previous parameters, config content and challenger.
    assert reverted["ssm"] == first["ssm"]
    same = ("experiment_id", "hyperparameters", "metrics", "model_artifact", "content_sha256",
            "champion", "challenger_traffic_percent")
    assert {k: reverted["config"][k] for k in same} == {k: first["config"][k] for k in same}
    assert reverted["models"] == first["models"]

    assert at10["weights"] == {"champion": 90.0, "challenger": 10.0}
    assert at50["weights"] == {"champion": 50.0, "challenger": 50.0}
    # Promotion: one clean endpoint serving the reviewed model, nothing left behind.
    assert promoted["weights"] == {"champion": 100.0}
    assert promoted["models"] == {"champion": first["models"]["challenger"]}
    assert promoted["all_models"] == 1 and promoted["all_configs"] == 1
    assert promoted["config"]["previous_champion"]["model_artifact"] == first["models"][
        "champion"]

    # Reverting the promotion brings the previous champion back at the previous share.
    assert unpromoted["weights"] == {"champion": 50.0, "challenger": 50.0}
    assert unpromoted["models"] == first["models"]
    assert unpromoted["config"]["champion"]["model_artifact"] == first["models"]["champion"]

    history = (journey.root / "outputs").glob("*-history.txt")
    assert "maria" in next(history).read_text()
    comment = json.loads(
        (journey.root / "outputs" / "plan-pr1" / "plan.json").read_text())["content_sha256"]
    assert len(comment) == 64
