"""The workflows and the AWS resources they rely on: who runs what with which credentials.

Pure Python: the workflow files and the CloudFormation template are read as data. The
linters (zizmor, actionlint, cfn-lint) run in ``.ci/run`` and the pre-commit hooks, not here.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("validate.yml", "plan.yml", "apply.yml", "watch.yml", "ci.yml")
FILES = [WORKFLOWS / name for name in NAMES]
TEMPLATE = ROOT / "deploy" / "promotion-bot.yaml"
AWS_ACTION = "aws-actions/configure-aws-credentials"
CHECKOUT = "actions/checkout@"
# The role each workflow assumes: plan a read-mostly one, apply the one that writes production.
ROLE_SECRETS = {"plan.yml": "PROMOTION_BOT_PLAN_ROLE_ARN",
                "apply.yml": "PROMOTION_BOT_APPLY_ROLE_ARN",
                "watch.yml": "PROMOTION_BOT_APPLY_ROLE_ARN"}
# The trusted plan job: where the default branch is checked out and where the PR's head is.
TRUSTED_DIR, DATA_DIR = "trusted", "pull-request"
HEAD_SHA = "${{ github.event.workflow_run.head_sha }}"
# The promotion-bot GitHub App's installation token: what the bot writes to GitHub with.
APP_TOKEN_ACTION = "actions/create-github-app-token@"
APP_TOKEN = "${{ steps.app-token.outputs.token }}"
APP_SLUG = "${{ steps.app-token.outputs.app-slug }}"
PLAN_ENVIRONMENT = "promotion-bot-plan"


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


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(action)


def uses_aws(job: dict[str, Any]) -> bool:
    return any(uses(step, AWS_ACTION + "@") for step in steps(job))


def all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in FILES
            for name, job in load(path)["jobs"].items()]


def test_the_four_workflows_exist() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == sorted(NAMES)


def test_every_workflow_and_job_declares_its_permissions() -> None:
    for path in FILES:
        workflow = load(path)
        assert workflow.get("permissions") == {}, f"{path.name}: top-level permissions: {{}}"
        for name, job in workflow["jobs"].items():
            assert isinstance(job.get("permissions"), dict), f"{path.name}: job {name}"
            assert "write-all" not in str(job["permissions"])


def test_only_jobs_that_assume_a_role_get_an_id_token() -> None:
    aws_jobs = []
    for workflow, name, job in all_jobs():
        permissions = job["permissions"]
        if uses_aws(job):
            aws_jobs.append((workflow, name))
            assert permissions.get("id-token") == "write", (workflow, name)
        else:
            assert "id-token" not in permissions, (workflow, name)
        assert permissions.get("contents") == "read", (workflow, name)
    assert sorted(aws_jobs) == [("apply.yml", "apply"), ("plan.yml", "plan"),
                                ("watch.yml", "watch")]


def test_no_long_lived_aws_keys_anywhere() -> None:
    forbidden = re.compile(
        r"aws-access-key-id|aws-secret-access-key|aws-session-token|AWS_ACCESS_KEY_ID|"
        r"AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AKIA[0-9A-Z]{16}", re.IGNORECASE)
    for path in FILES:
        assert not forbidden.search(path.read_text()), path.name
    for workflow, name, job in all_jobs():
        for step in steps(job):
            if uses(step, AWS_ACTION):
                assert set(step["with"]) <= {"role-to-assume", "role-session-name",
                                             "aws-region", "role-duration-seconds"}, (
                    workflow, name)
                secret = ROLE_SECRETS[workflow]
                assert step["with"]["role-to-assume"] == "${{ secrets." + secret + " }}", (
                    workflow, name)


def test_each_workflow_names_only_its_own_role() -> None:
    # The plan job never even names the apply role, nor the other way round.
    for path in FILES:
        named = set(re.findall(r"PROMOTION_BOT_(?:PLAN|APPLY)_ROLE_ARN", path.read_text()))
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
    used = [step["uses"] for _, _, job in all_jobs() for step in steps(job) if "uses" in step]
    assert seen == len(used) > 0


def test_checkout_never_keeps_the_token_on_disk() -> None:
    for workflow, name, job in all_jobs():
        for step in steps(job):
            if uses(step, CHECKOUT):
                assert step["with"]["persist-credentials"] is False, (workflow, name)


def test_no_expressions_inside_run_scripts() -> None:
    # Event values reach scripts through env: only (no template injection).
    for workflow, name, job in all_jobs():
        for step in steps(job):
            assert "${{" not in str(step.get("run", "")), (workflow, name, step.get("name"))


def test_no_workflow_runs_a_pull_request_with_the_base_branchs_privileges() -> None:
    for path in FILES:
        assert "pull_request_target" not in path.read_text(), path.name
        for job in load(path)["jobs"].values():
            for step in steps(job):
                assert not uses(step, "actions/download-artifact"), path.name
                assert not uses(step, "actions/cache"), path.name
                assert not str(step.get("uses", "")).startswith("./"), path.name
                assert "cache" not in step.get("with", {}), path.name


# -- who runs what with which credentials ----------------------------------------------

def test_the_untrusted_validation_gets_nothing_to_steal() -> None:
    # validate.yml runs the pull request's own code (its bot and its copy of this file).
    validate = load(WORKFLOWS / "validate.yml")
    assert set(triggers(validate)) == {"pull_request"}
    assert triggers(validate)["pull_request"]["paths"] == ["promotion-requests/**"]
    # closed too: its completion starts plan.yml, which stops the pull request's training jobs
    assert triggers(validate)["pull_request"]["types"] == ["opened", "synchronize",
                                                           "reopened", "closed"]
    text = (WORKFLOWS / "validate.yml").read_text()
    assert "secrets." not in text and "github.token" not in text
    (job,) = validate["jobs"].values()
    assert validate["name"] == "validate" and job["name"] == "validate"
    assert job["permissions"] == {"contents": "read"}
    assert not uses_aws(job) and "environment" not in job
    run = "\n".join(str(s.get("run", "")) for s in steps(job))
    assert "promotion-bot validate" in run and "promotion-bot plan" not in run


def test_the_validation_is_read_only_and_never_writes_to_github() -> None:
    # validate.yml runs the pull request's own copy: it must hold no token that writes, so
    # that neither it nor an edit of it in the pull request's branch (which GitHub runs too)
    # can set promotion-bot/plan or edit the bot's comment with *this* file's grants; and
    # what a branch's copy grants itself is the github-actions[bot] identity, which neither
    # branch protection (the status must come from the app) nor the bot (it knows its own
    # comment by the app's login) accepts.
    validate = load(WORKFLOWS / "validate.yml")
    assert validate["permissions"] == {}
    (job,) = validate["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    for step in steps(job):
        assert "env" not in step or not any(
            "token" in str(v).lower() or "secrets." in str(v) for v in step["env"].values())
        assert not any(uses(step, a) for a in (APP_TOKEN_ACTION, "actions/github-script@")), step
        for command in commands(str(step.get("run", ""))):
            assert command[0] not in ("gh", "curl", "wget", "hub"), command
            assert command[:2] != ["promotion-bot", "plan"], command
        assert str(step.get("uses", "")).split("@")[0] in (
            "", "actions/checkout", "actions/setup-python"), step
    text = (WORKFLOWS / "validate.yml").read_text()
    for write in ("statuses", "pull-requests: write", "issues: write", "GITHUB_TOKEN"):
        assert write not in text


def test_the_bot_writes_to_github_as_the_app_whose_key_only_the_default_branch_reads() -> None:
    # The app's key is an environment secret (promotion-bot-plan, production), both of which
    # admit only the default branch: no workflow of a pull request's branch can read it,
    # while it can read every repository secret.
    for workflow in ("plan.yml", "apply.yml"):
        (name, job), = load(WORKFLOWS / workflow)["jobs"].items()
        (token,) = [s for s in steps(job) if uses(s, APP_TOKEN_ACTION)]
        assert token["id"] == "app-token"
        assert token["with"]["client-id"] == "${{ secrets.PROMOTION_BOT_APP_CLIENT_ID }}"
        assert token["with"]["private-key"] == "${{ secrets.PROMOTION_BOT_APP_PRIVATE_KEY }}"
        granted = {k.removeprefix("permission-"): v for k, v in token["with"].items()
                   if k.startswith("permission-")}
        wanted = {"contents": "read", "pull-requests": "write", "statuses": "write"}
        if workflow == "apply.yml":  # code-owner teams: whether an approver is a member
            wanted["members"] = "read"
        assert granted == wanted, workflow
        assert job["environment"] in (PLAN_ENVIRONMENT, "production")
        users = [s for s in steps(job) if "GITHUB_TOKEN" in s.get("env", {})]
        assert users and all(s["env"]["GITHUB_TOKEN"] == APP_TOKEN for s in users), workflow
    for path in FILES:
        for name, job in load(path)["jobs"].items():
            if "PROMOTION_BOT_APP_PRIVATE_KEY" in json.dumps(job):
                assert job.get("environment") in (PLAN_ENVIRONMENT, "production"), (path, name)


def test_validation_of_a_closed_pull_request_does_nothing_and_succeeds() -> None:
    (job,) = load(WORKFLOWS / "validate.yml")["jobs"].values()
    closed, *validation = steps(job)
    # The one step that runs on close only says so; every other step is skipped then (a
    # job-level `if` would make the run's conclusion "skipped", and plan.yml needs "success").
    assert "if" not in job
    assert closed["if"] == "github.event.action == 'closed'"
    assert [c[0] for c in commands(closed["run"])] == ["echo"] and "uses" not in closed
    assert validation and all(s["if"] == "github.event.action != 'closed'"
                              for s in validation), validation


def plan_job() -> dict[str, Any]:
    plan = load(WORKFLOWS / "plan.yml")
    assert list(plan["jobs"]) == ["plan"]
    job: dict[str, Any] = plan["jobs"]["plan"]
    return job


def test_the_plan_job_is_started_by_validation_and_runs_the_default_branchs_file() -> None:
    plan = load(WORKFLOWS / "plan.yml")
    # workflow_run runs this file as it is on the default branch, whatever the PR changes.
    assert triggers(plan) == {"workflow_run": {"workflows": [load(WORKFLOWS / "validate.yml")
                                                             ["name"]],
                                               "types": ["completed"]}}
    condition = " ".join(plan_job()["if"].split())
    assert condition.split(" && ") == [
        "github.event.workflow_run.event == 'pull_request'",
        "github.event.workflow_run.conclusion == 'success'",
        # forks never get the plan role
        "github.event.workflow_run.head_repository.full_name == github.repository",
        # a pull request into the default branch, or none named: GitHub names none once the
        # pull request is closed, and then only its training jobs are stopped (see below)
        "(github.event.workflow_run.pull_requests[0].base.ref == "
        "github.event.repository.default_branch || !github.event.workflow_run.pull_requests[0])"]
    # The job's own token only reads: the bot writes as the GitHub App (see below).
    assert plan_job()["permissions"] == {"contents": "read", "id-token": "write",
                                         "pull-requests": "read"}


def test_the_credentialed_plan_job_runs_only_default_branch_code() -> None:
    job = plan_job()
    checkouts = [s for s in steps(job) if uses(s, CHECKOUT)]
    trusted = [s for s in checkouts if "ref" not in s["with"]]
    data = [s for s in checkouts if "ref" in s["with"]]
    # The code: GITHUB_SHA of a workflow_run, the default branch's tip.
    assert [s["with"]["path"] for s in trusted] == [TRUSTED_DIR]
    # The data: the pull request's head, beside it, never where anything is installed.
    assert [(s["with"]["ref"], s["with"]["path"]) for s in data] == [(HEAD_SHA, DATA_DIR)]
    text = (WORKFLOWS / "plan.yml").read_text()
    for head in ("pull_request.head.sha", "pull_request.head.ref", "workflow_run.head_branch"):
        assert head not in text
    # checkout ref, HEAD_SHA of the state step and of the plan step, concurrency
    assert text.count("workflow_run.head_sha") == 4

    installs = [s["run"] for s in steps(job) if "pip install" in str(s.get("run", ""))]
    assert installs == [f'python -m pip install "./{TRUSTED_DIR}[bot]"']
    for step in steps(job):
        if "run" not in step:
            assert any(uses(step, a) for a in (CHECKOUT, "actions/setup-python@", AWS_ACTION,
                                               "actions/upload-artifact@",
                                               APP_TOKEN_ACTION)), step
            continue
        assert step.get("working-directory", TRUSTED_DIR) == TRUSTED_DIR, step["run"]
        for command in commands(step["run"]):
            assert_runs_nothing_from_the_pull_request(command)


def commands(script: str) -> list[list[str]]:
    """The simple commands of a bash script, as words (enough for these scripts: one
    command list per line, ``\\`` continuations, ``$(...)`` and ``<(...)`` split out,
    redirection targets and ``for`` headers dropped)."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        tokens: list[str] = []
        for token in shlex.shlex(line, posix=True, punctuation_chars=True):
            if tokens and tokens[-1] == "$" and not token.startswith("("):
                tokens[-1] += token  # an unquoted $NAME is one word
            else:
                tokens.append(token)
        words: list[str] = []
        redirected = False
        for token in [*tokens, ";"]:
            if token == "$" or (token and set(token) <= set("();<>|&")):
                while words and words[0] in ("do", "done", "then", "else", "fi", "if", "while",
                                             "!"):
                    words = words[1:]
                # [[ tests only read; a for header only expands words.
                if words and "[" not in words and "]" not in words and words[0] != "for":
                    found.append(words)
                words = []
                redirected = token in (">", ">>", "<")  # the next word is a file
            elif redirected:
                redirected = False
            else:
                words.append(token)
    return found


# What the plan job's scripts may run: the installed bot, git on the data, GitHub's CLI to
# read the pull request's state, shell built-ins.
ALLOWED_PROGRAMS = {"promotion-bot", "git", "gh", "echo", "basename", "read", "status=0",
                    "status=1", "continue", "python", "exit"}


def assert_runs_nothing_from_the_pull_request(words: list[str]) -> None:
    program = words[0]
    if "=" in program and not program.startswith(("'", '"')):  # an assignment
        assert DATA_DIR not in program.split("=", 1)[1] or program.startswith("data="), words
        return
    assert program in ALLOWED_PROGRAMS or program.startswith("IFS="), words
    if program == "python":
        assert words == ["python", "-m", "pip", "install", f"./{TRUSTED_DIR}[bot]"], words
    if program == "promotion-bot":
        assert words[1] in ("plan", "stop-training"), words
    if program == "git":
        # git reads the data's history; never a command that runs a configured program.
        assert words[1:3] == ["-C", "$data"] and words[3] in ("diff", "log", "show"), words
        assert "--no-ext-diff" in words and "--no-textconv" in words, words
    if program == "gh":
        # Reads (GET) this repository's pull requests, nothing else; no option that writes.
        assert words[1] == "api" and words[3] == "--jq" and len(words) == 5, words
        assert re.fullmatch(r"repos/\$GITHUB_REPOSITORY/pulls(/\$PULL_REQUEST|\?[\w=&]+)",
                            words[2]), words


def test_the_plan_step_treats_the_pull_request_as_data() -> None:
    (step,) = [s for s in steps(plan_job()) if "promotion-bot plan" in str(s.get("run", ""))]
    env = step["env"]
    assert env["HEAD_SHA"] == HEAD_SHA
    assert env["BASE_SHA"] == "${{ github.sha }}"  # the default branch's tip
    assert env["PULL_REQUEST"] == "${{ github.event.workflow_run.pull_requests[0].number }}"
    # The comment and the status are the GitHub App's, which the bot knows itself as.
    assert env["GITHUB_TOKEN"] == APP_TOKEN and env["PROMOTION_BOT_APP_SLUG"] == APP_SLUG
    run = step["run"]
    assert f'data="$GITHUB_WORKSPACE/{DATA_DIR}"' in run
    (plan,) = [c for c in commands(run) if c[0] == "promotion-bot"]
    assert plan[:3] == ["promotion-bot", "plan", "$data/$path"]
    options = dict(zip(plan[3::2], plan[4::2], strict=True))
    assert options == {"--base": "$BASE_SHA", "--head": "$HEAD_SHA",
                       "--pull-request": "$PULL_REQUEST",
                       "--out": "$GITHUB_WORKSPACE/out/${name%.*}"}
    # A symlinked "request" could make the bot read (and report) a file outside the data.
    assert '[[ -L "$data/$path" || ! -f "$data/$path" ]]' in run
    (upload,) = [s for s in steps(plan_job()) if uses(s, "actions/upload-artifact@")]
    assert upload["with"]["path"] == "out/"


STATE = "steps.pull-request.outputs.action"


def test_the_plan_job_asks_github_first_whether_the_pull_request_is_still_open() -> None:
    first, *rest = steps(plan_job())
    assert first["id"] == "pull-request" and "uses" not in first
    # The job's token (pull-requests: read), and values GitHub sets; no secret.
    assert first["env"] == {
        "PULL_REQUEST": "${{ github.event.workflow_run.pull_requests[0].number }}",
        "HEAD_SHA": HEAD_SHA, "DEFAULT_BRANCH": "${{ github.event.repository.default_branch }}",
        "GH_TOKEN": "${{ github.token }}"}
    calls = [c for c in commands(first["run"]) if c[0] == "gh"]
    assert [c[2] for c in calls] == [
        "repos/$GITHUB_REPOSITORY/pulls/$PULL_REQUEST",
        "repos/$GITHUB_REPOSITORY/pulls?state=closed&sort=updated&direction=desc&per_page=100"]
    # Without a pull request in the event: closed ones into the default branch, from this
    # repository (never a fork's), whose head (or merge commit) is the validated commit.
    found = calls[1][4]
    for condition in ("select((.head.sha == env.HEAD_SHA or .merge_commit_sha == env.HEAD_SHA)",
                      "and .base.ref == env.DEFAULT_BRANCH",
                      "and .head.repo.full_name == env.GITHUB_REPOSITORY)"):
        assert condition in found
    for output in ('echo "action=$action" >> "$GITHUB_OUTPUT"',
                   'echo "closed=$closed" >> "$GITHUB_OUTPUT"'):
        assert output in first["run"]
    # Every later step depends on the answer: nothing runs for "none".
    assert all(STATE in str(step.get("if", "")) for step in rest), rest


def test_a_closed_pull_request_gets_its_training_jobs_stopped_instead_of_a_plan() -> None:
    job = steps(plan_job())
    conditions = {step.get("name", step.get("uses")): step.get("if") for step in job[1:]}
    for_any = f"{STATE} != 'none'"
    plan_only, stop_only = f"{STATE} == 'plan'", f"{STATE} == 'stop'"
    assert conditions == {
        "Get the promotion-bot app's installation token (the bot comments and sets statuses "
        "as the app)": plan_only,
        "Check out the default branch (the code that runs)": for_any,
        "Check out the pull request's head as data (nothing in it runs)": plan_only,
        "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065": for_any,
        "Install promotion-bot from the default branch": for_any,
        "Assume the promotion-bot plan role": for_any,
        "Stop the training jobs of the closed pull request": stop_only,
        "Plan each changed request": plan_only,
        "Upload the plans": "${{ !cancelled() && " + plan_only + " }}"}
    (stop,) = [s for s in job if "promotion-bot stop-training" in str(s.get("run", ""))]
    # From the trusted checkout (the default branch's request files name the targets), with
    # the pull requests' numbers from the state step and nothing else: no token, no secret
    # (the role's credentials come from the step that assumed it).
    assert stop.get("working-directory") == TRUSTED_DIR
    assert stop["env"] == {"CLOSED": "${{ steps.pull-request.outputs.closed }}"}
    assert [c for c in commands(stop["run"]) if c[0] == "promotion-bot"] == [
        ["promotion-bot", "stop-training", "--pull-request", "$number"]]
    assert "for number in $CLOSED; do" in stop["run"] and '|| status=1' in stop["run"]
    # Closing cancels the plan in flight (cancel-in-progress per pull request).
    plan = load(WORKFLOWS / "plan.yml")
    assert plan["concurrency"]["cancel-in-progress"] is True
    assert "pull_requests[0].number" in plan["concurrency"]["group"]


def test_apply_runs_in_production_one_at_a_time() -> None:
    apply = load(WORKFLOWS / "apply.yml")
    assert triggers(apply) == {"push": {"branches": ["main"],
                                        "paths": ["promotion-requests/**"]}}
    assert apply["concurrency"] == {"group": "promotion-bot-apply-${{ github.repository }}",
                                    "cancel-in-progress": False}
    job = apply["jobs"]["apply"]
    assert job["environment"] == "production"
    # Its own token only checks out: the bot reads teams and writes as the GitHub App.
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    checkout = [s for s in steps(job) if uses(s, CHECKOUT)]
    assert len(checkout) == 1 and checkout[0]["with"]["fetch-depth"] == 0
    assert "ref" not in checkout[0]["with"]  # the pushed commit of main
    # The credentials last as long as the job may (an endpoint update can take an hour).
    (aws,) = [s for s in steps(job) if uses(s, AWS_ACTION)]
    assert aws["with"]["role-duration-seconds"] == job["timeout-minutes"] * 60 == (
        stack().properties("ApplyRole")["MaxSessionDuration"])
    (step,) = [s for s in steps(job) if "promotion-bot apply" in str(s.get("run", ""))]
    assert step["run"] == 'promotion-bot apply --before "$BEFORE" --after "$AFTER"'
    assert step["env"]["BEFORE"] == "${{ github.event.before }}"
    assert step["env"]["AFTER"] == "${{ github.sha }}"
    assert step["env"]["GITHUB_TOKEN"] == APP_TOKEN
    assert step["env"]["PROMOTION_BOT_APP_SLUG"] == APP_SLUG


def test_the_watcher_runs_every_ten_minutes_in_production_one_at_a_time() -> None:
    watch = load(WORKFLOWS / "watch.yml")
    assert triggers(watch) == {"schedule": [{"cron": "*/10 * * * *"}],
                               "workflow_dispatch": None}
    # Never two at once (one brake, one revert pull request), never cancelled half-way.
    assert watch["concurrency"] == {"group": "promotion-bot-watch-${{ github.repository }}",
                                    "cancel-in-progress": False}
    job = watch["jobs"]["watch"]
    assert job["environment"] == "production"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    (checkout,) = [s for s in steps(job) if uses(s, CHECKOUT)]
    assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}
    (aws,) = [s for s in steps(job) if uses(s, AWS_ACTION)]
    assert aws["with"]["role-to-assume"] == "${{ secrets.PROMOTION_BOT_APPLY_ROLE_ARN }}"
    # The app's token pushes the revert branch and opens its pull request: nothing more.
    (token,) = [s for s in steps(job) if uses(s, APP_TOKEN_ACTION)]
    assert token["id"] == "app-token"
    assert {k: v for k, v in token["with"].items() if k.startswith("permission-")} == {
        "permission-contents": "write", "permission-pull-requests": "write"}
    (step,) = [s for s in steps(job) if "promotion-bot watch" in str(s.get("run", ""))]
    assert step["run"] == "promotion-bot watch"
    assert step["env"]["GITHUB_TOKEN"] == APP_TOKEN
    assert step["env"]["PROMOTION_BOT_APP_SLUG"] == APP_SLUG
    # The remote's URL carries no token: git sends it as a header from the environment.
    assert step["env"]["PROMOTION_BOT_GIT_REMOTE"] == (
        "${{ github.server_url }}/${{ github.repository }}.git")


def test_ci_runs_the_project_checks() -> None:
    ci = load(WORKFLOWS / "ci.yml")
    assert set(triggers(ci)) == {"push", "pull_request"}
    (job,) = ci["jobs"].values()
    assert any(s.get("run") == "bash .ci/run" for s in steps(job))
    assert not uses_aws(job)
    python = [s for s in steps(job) if uses(s, "actions/setup-python@")]
    assert python[0]["with"]["python-version"] == "3.11"


# -- the linters run in CI and pre-commit, through the repository's own wrapper -----------

def test_the_linters_run_in_ci_and_pre_commit_through_the_repositorys_wrapper() -> None:
    wrapper = ROOT / "tools" / "actionlint"
    assert os.access(wrapper, os.X_OK), "tools/actionlint must be executable"
    version = re.search(r"^version=(\d+)\.(\d+)\.(\d+)$", wrapper.read_text(), re.MULTILINE)
    assert version and tuple(map(int, version.groups())) >= (2, 0, 6)
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("tools/actionlint", "zizmor --offline", "cfn-lint"):
        assert command in ci, command
    assert "pip install --quiet -e '.[dev]'" in ci and "\npytest\n" in ci
    hooks = {hook["id"]: hook for repo in load(ROOT / ".pre-commit-config.yaml")["repos"]
             for hook in repo["hooks"]}
    assert hooks["actionlint"]["entry"] == "tools/actionlint"
    assert hooks["zizmor"]["entry"].startswith("zizmor --offline")
    assert hooks["cfn-lint"]["entry"].startswith("cfn-lint")


def test_nothing_reads_outside_the_repository() -> None:
    outside = ".." + "/shared"
    skip = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
            ".pytest_cache", "build"}
    offenders = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder, name)
            try:
                if outside in path.read_text(encoding="utf-8"):
                    offenders.append(str(path.relative_to(ROOT)))
            except (UnicodeDecodeError, OSError):
                continue
    assert offenders == []


def test_the_linters_are_no_test_dependency() -> None:
    project = load_pyproject()["project"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[^A-Za-z0-9_.-]", r, maxsplit=1)[0].lower() for r in requirements}

    assert not names(extras["dev"]) & {"cfn-lint", "zizmor"}
    assert names(extras["lint"]) >= {"cfn-lint", "zizmor"}
    # moto[server] pulls cfn-lint, sympy and networkx; the bot names the services it uses.
    assert not [d for d in [*project["dependencies"], *extras["bot"]]
                if re.match(r"moto\[.*server", d)]


def test_each_workflow_installs_what_it_runs() -> None:
    """validate needs only the light base (the hook's install); plan and apply the bot."""
    def installs(name: str) -> list[str]:
        return [s["run"] for job in load(WORKFLOWS / name)["jobs"].values()
                for s in job["steps"] if "pip install" in str(s.get("run", ""))]

    assert installs("validate.yml") == ["python -m pip install ."]
    assert installs("apply.yml") == ['python -m pip install ".[bot]"']
    assert installs("watch.yml") == ['python -m pip install ".[bot]"']
    assert installs("plan.yml") == [f'python -m pip install "./{TRUSTED_DIR}[bot]"']
    extras = load_pyproject()["project"]["optional-dependencies"]
    assert "promotion-bot[bot]" in extras["dev"]  # the README's test install has it all


def load_pyproject() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# -- the CloudFormation template --------------------------------------------------------

class CfnLoader(yaml.SafeLoader):
    """Safe YAML plus CloudFormation's short-form tags, read as their long forms."""


def _intrinsic(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CfnLoader.add_multi_constructor("!", _intrinsic)

REGION, ACCOUNT, REPOSITORY = "us-east-1", "123456789012", "acme/fraud-models"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "promotion-bot"}
NO_VALUE = object()


@functools.cache
def template_document() -> dict[str, Any]:
    data = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)  # a SafeLoader
    assert isinstance(data, dict)
    return data


class Stack:
    """The template's resources as deployed with ``parameters`` (defaults otherwise): the
    intrinsic functions the template uses are evaluated, pseudo parameters get fixed values."""

    def __init__(self, **parameters: str) -> None:
        self.doc = template_document()
        given = {"GitHubRepository": REPOSITORY, **parameters}
        self.parameters = {name: given.get(name, spec.get("Default"))
                           for name, spec in self.doc["Parameters"].items()}
        assert None not in self.parameters.values(), self.parameters
        self.resources = {name: resource for name, resource in self.doc["Resources"].items()
                          if "Condition" not in resource or self.condition(resource["Condition"])}

    def condition(self, name: str) -> bool:
        return bool(self.value(self.doc["Conditions"][name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else arg
                names = {k: self.value(v) for k, v in names.items()}
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(
                    names[m[1]] if m[1] in names else self.sub(m[1])), text)
            if key == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                first, second = (self.value(a) for a in arg)
                return first == second
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::GetAtt":
                return self.attribute(*arg)
            if key == "Condition":
                return self.condition(arg)
            assert not key.startswith("Fn::"), f"the test does not evaluate {key}"
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items())
                if v is not NO_VALUE}

    def sub(self, name: str) -> str:
        if "." in name:
            return str(self.attribute(*name.split(".", 1)))
        return str(self.ref(name))

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.resources[name]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::OIDCProvider":
            return f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
        if kind == "AWS::IAM::Role":
            return self.value(props["RoleName"])
        if kind == "AWS::S3::Bucket":
            return self.value(props["BucketName"])
        return f"{name}-id"

    def attribute(self, name: str, attribute: str) -> str:
        assert attribute == "Arn", attribute
        kind = self.resources[name]["Type"]
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{self.ref(name)}"
        if kind == "AWS::KMS::Key":
            return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{self.ref(name)}"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{self.ref(name)}"
        raise AssertionError(f"no Arn for {kind}")

    def properties(self, name: str) -> dict[str, Any]:
        resource = self.resources[name]
        props: dict[str, Any] = self.value(resource.get("Properties", {}))
        return props

    def of_type(self, kind: str) -> list[str]:
        return [n for n, r in self.resources.items() if r["Type"] == kind]

    def role_arn(self, name: str) -> str:
        return self.attribute(name, "Arn")

    def statements(self, role: str) -> list[dict[str, Any]]:
        """What a role may do: its own policies, and the key policies that name it (KMS
        grants the roles their use of the key through the key policy alone)."""
        found = [s for policy in self.properties(role).get("Policies", [])
                 for s in policy["PolicyDocument"]["Statement"]]
        arn = self.role_arn(role)
        for key in self.of_type("AWS::KMS::Key"):
            for s in self.properties(key)["KeyPolicy"]["Statement"]:
                principals = as_list(s["Principal"].get("AWS", [])) if isinstance(
                    s["Principal"], dict) else []
                if s["Effect"] == "Allow" and arn in principals:
                    found.append({**s, "Resource": [self.attribute(key, "Arn")],
                                  "Sid": f"key policy: {s['Sid']}"})
        return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(stack: Stack, role: str) -> list[tuple[str, list[str], dict[str, Any]]]:
    return [(action, as_list(s["Resource"]), s.get("Condition", {}))
            for s in stack.statements(role) for action in as_list(s["Action"])]


@functools.cache
def stack() -> Stack:
    return Stack()


def default_target() -> Any:
    """The AWS names of the reference target under the default settings (no environment)."""
    from bot.settings import Settings, target

    return target("fraud-detection", Settings.model_construct())


def test_deploy_holds_the_template_only() -> None:
    assert sorted(p.name for p in (ROOT / "deploy").iterdir()) == [TEMPLATE.name]


def test_the_template_names_follow_the_bots_settings() -> None:
    t = default_target()
    s = stack()
    assert s.parameters["TargetName"] == t.name
    buckets = {s.properties(b)["BucketName"] for b in s.of_type("AWS::S3::Bucket")}
    assert buckets == {t.config_bucket, t.artifacts_bucket}
    assert s.ref("ModelRole") == t.sagemaker_role_arn.rsplit("/", 1)[1]
    assert sorted(s.of_type("AWS::IAM::Role")) == ["ApplyRole", "ModelRole", "PlanRole",
                                                   "TrainingRole"]
    # With an existing provider and model role, the stack creates neither.
    given = Stack(GitHubOidcProviderArn="arn:aws:iam::1:oidc-provider/x",
                  ModelExecutionRoleArn="arn:aws:iam::1:role/x")
    assert "GitHubOidcProvider" not in given.resources and "ModelRole" not in given.resources


def trust(s: Stack, role: str) -> dict[str, Any]:
    (statement,) = s.properties(role)["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    return statement  # type: ignore[no-any-return]


def github_subject(s: Stack, role: str) -> str | list[str]:
    statement = trust(s, role)
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {
        "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"}
    assert set(statement["Condition"]) == {"StringEquals"}  # no StringLike wildcards
    equals = statement["Condition"]["StringEquals"]
    assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    subject = equals["token.actions.githubusercontent.com:sub"]
    for one in subject if isinstance(subject, list) else [subject]:
        assert isinstance(one, str) and "*" not in one
    assert isinstance(subject, (str, list))
    return subject


def test_the_plan_role_trusts_only_the_plan_workflow_on_the_default_branch() -> None:
    # plan.yml runs on workflow_run: GITHUB_REF is the default branch and the file is its copy.
    assert set(triggers(load(WORKFLOWS / "plan.yml"))) == {"workflow_run"}
    workflow = f"{REPOSITORY}/.github/workflows/plan.yml@refs/heads/main"
    # The job runs in the plan environment, which admits only the default branch.
    assert plan_job()["environment"] == PLAN_ENVIRONMENT
    assert github_subject(stack(), "PlanRole") == (
        f"repo:{REPOSITORY}:environment:{PLAN_ENVIRONMENT}:job_workflow_ref:{workflow}")
    # Without the repository's job_workflow_ref subject template: the environment only.
    assert github_subject(Stack(SubjectIncludesWorkflow="false"), "PlanRole") == (
        f"repo:{REPOSITORY}:environment:{PLAN_ENVIRONMENT}")
    # Never the subject of a pull_request run (which runs the PR's own workflow file).
    for s in (stack(), Stack(SubjectIncludesWorkflow="false")):
        assert "pull_request" not in github_subject(s, "PlanRole")
    immutable = Stack(GitHubSubjectRepository="acme@1/fraud-models@2", DefaultBranch="trunk")
    assert github_subject(immutable, "PlanRole") == (
        f"repo:acme@1/fraud-models@2:environment:{PLAN_ENVIRONMENT}:job_workflow_ref:"
        f"{REPOSITORY}/.github/workflows/plan.yml@refs/heads/trunk")


def test_the_apply_role_trusts_only_the_production_environment() -> None:
    """Apply's workflow and the watcher's, each in production, on the default branch."""
    environment = load(WORKFLOWS / "apply.yml")["jobs"]["apply"]["environment"]
    assert load(WORKFLOWS / "watch.yml")["jobs"]["watch"]["environment"] == environment
    assert github_subject(stack(), "ApplyRole") == [
        f"repo:{REPOSITORY}:environment:{environment}:job_workflow_ref:{REPOSITORY}"
        f"/.github/workflows/{name}@refs/heads/main" for name in ("apply.yml", "watch.yml")]
    assert github_subject(Stack(SubjectIncludesWorkflow="false"), "ApplyRole") == (
        f"repo:{REPOSITORY}:environment:{environment}")


def test_sagemaker_roles_are_assumed_by_sagemaker_of_this_account_only() -> None:
    s = stack()
    for role in ("TrainingRole", "ModelRole"):
        statement = trust(s, role)
        assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        assert statement["Action"] == "sts:AssumeRole"
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert trust(s, "TrainingRole")["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/fraud-detection-*"}


# Actions AWS cannot scope to a resource; they only list names (the service authorization
# reference lists no resource type for them:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html).
UNSCOPABLE = {"states:ListStateMachines", "sagemaker:ListModels", "sagemaker:ListEndpointConfigs",
              "sagemaker:ListTrainingJobs", "sagemaker:ListModelPackages"}
BOT_ROLES = ("PlanRole", "ApplyRole")


@pytest.mark.parametrize("role", BOT_ROLES)
def test_bot_roles_are_scoped_to_the_targets_names_region_and_account(role: str) -> None:
    s = stack()
    for statement in s.statements(role):
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition",
                                  "Principal"}
        actions, resources = as_list(statement["Action"]), as_list(statement["Resource"])
        assert all("*" not in action for action in actions), actions
        if resources == ["*"]:
            assert set(actions) <= UNSCOPABLE, statement["Sid"]
            continue
        for resource in resources:
            arn = resource.split(":", 5)
            assert arn[:2] == ["arn", "aws"], resource
            if arn[2] == "s3":
                assert arn[3:5] == ["", ""], resource
            elif arn[2] == "iam":
                assert arn[3:5] == ["", ACCOUNT], resource
            else:
                assert arn[3:5] == [REGION, ACCOUNT], resource
            if arn[2] == "kms":  # the plan-signing key, named by its id
                assert resource == s.attribute("PlanSigningKey", "Arn"), resource
                continue
            assert "fraud-detection" in arn[5], resource
    data_writes = [a for a, resources, _ in grants(s, role)
                   if any("fraud-detection-data" in r for r in resources)
                   and not re.match(r"s3:(Get|List)", a)]
    assert data_writes == []


def test_sagemaker_grants_name_only_the_bots_own_resources() -> None:
    t = default_target()
    hashed = "fraud-detection-" + "?" * 16  # <target>-<sha256[:16]>, see bot/aws/endpoint.py
    prefix = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
    allowed = {f"{prefix}endpoint/{t.endpoint_name}", f"{prefix}model/{hashed}",
               f"{prefix}endpoint-config/{hashed}",
               f"{prefix}training-job/fraud-detection-*",
               # the Model Registry: the target's group and its versions
               f"{prefix}model-package-group/fraud-detection",
               f"{prefix}model-package/fraud-detection/*"}
    for role in BOT_ROLES:
        for action, resources, _ in grants(stack(), role):
            if action.startswith("sagemaker:") and resources != ["*"]:
                assert set(resources) <= allowed, (role, action, resources)
                if action == "sagemaker:InvokeEndpoint":
                    assert resources == [f"{prefix}endpoint/{t.endpoint_name}"]


def test_no_role_deletes_models_plans_archives_or_apply_records() -> None:
    t = default_target()
    s = stack()
    lock = f"arn:aws:s3:::{t.artifacts_bucket}/{t.artifacts_prefix}/locks/{t.name}.json"
    for role in s.of_type("AWS::IAM::Role"):
        for action, resources, _ in grants(s, role):
            if re.match(r"s3:(Delete|PutLifecycle|PutBucket|PutObjectRetention|Bypass)", action):
                # Only apply deletes, and only its lock (see bot/aws/lock.py).
                assert (role, action, resources) == ("ApplyRole", "s3:DeleteObject", [lock])
    models = bucket_policy_statements(s, "ModelsBucket")
    denied = models["ModelsPlansAndApplyRecordsAreNeverDeleted"]
    assert denied["Effect"] == "Deny" and denied["Principal"] == "*"
    assert set(denied["Action"]) == {"s3:DeleteObject", "s3:DeleteObjectVersion"}
    assert sorted(denied["Resource"]) == [
        f"arn:aws:s3:::{t.artifacts_bucket}/{t.artifacts_prefix}/{p}/*"
        for p in ("applies", "incidents", "models", "plans")]
    config = bucket_policy_statements(s, "ConfigBucket")["TheBotNeverDeletesTheConfigOrItsArchive"]
    assert config["Effect"] == "Deny" and config["Resource"] == [
        f"arn:aws:s3:::{t.config_bucket}/*"]
    assert sorted(config["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == sorted(
        s.role_arn(r) for r in BOT_ROLES)


def test_apply_role_grants_no_endpoint_deletion_invocation_or_parameter_deletion() -> None:
    t = default_target()
    granted = {a: r for a, r, _ in grants(stack(), "ApplyRole")}
    for forbidden in ("sagemaker:DeleteEndpoint", "sagemaker:InvokeEndpoint",
                      "ssm:DeleteParameter", "s3:DeleteObjectVersion", "iam:CreateRole"):
        assert forbidden not in granted
    # It deletes only hyperparameters a request no longer sets (never a backup).
    ssm = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{t.ssm_prefix}"
    assert sorted(granted["ssm:DeleteParameters"]) == [ssm, f"{ssm}/*"]


def bucket_policy_statements(s: Stack, bucket: str) -> dict[str, dict[str, Any]]:
    (policy,) = [p for p in s.of_type("AWS::S3::BucketPolicy")
                 if s.resources[p]["Properties"]["Bucket"] == {"Ref": bucket}]
    return {st["Sid"]: st for st in s.properties(policy)["PolicyDocument"]["Statement"]}


def test_models_are_written_once_and_plans_only_by_the_plan_role() -> None:
    t = default_target()
    s = stack()
    where = f"arn:aws:s3:::{t.artifacts_bucket}/{t.artifacts_prefix}"
    puts = [(resources, condition) for a, resources, condition in grants(s, "PlanRole")
            if a == "s3:PutObject"]
    # Model bytes and plans (each under its digest, and the entries that list it by head and
    # content): never over an existing object. The model index: rewritten by re-training,
    # trusted only through its signature (the plan role alone may sign).
    once = [f"{where}/models/sha256/*", f"{where}/plans/sha256/*", f"{where}/plans/heads/*",
            f"{where}/plans/contents/*"]
    assert puts == [(once, {"StringEquals": {"s3:if-none-match": "*"}}),
                    ([f"{where}/models/keys/*"], {}),
                    ([f"{where}/training-data/*"], {})]  # shards a training job reads
    # The bucket refuses any other write of model bytes or plans, whoever makes it.
    deny = bucket_policy_statements(s, "ModelsBucket")["ModelsAreWriteOnceForEveryone"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:PutObject")
    # The watcher's incident records too (the apply role writes them, once).
    assert deny["Resource"] == [*once, f"{where}/incidents/*"]
    assert deny["Condition"] == {"StringNotEquals": {"s3:if-none-match": "*"}}
    # Nobody else may write there at all.
    for role in s.of_type("AWS::IAM::Role"):
        if role == "PlanRole":
            continue
        for action, resources, _ in grants(s, role):
            if action.startswith("s3:Put"):
                assert not any(fnmatch.fnmatchcase(r, w) or fnmatch.fnmatchcase(w, r)
                               for r in resources for w in (f"{where}/models/*",
                                                            f"{where}/plans/*")), (role, resources)


def test_the_bots_buckets_are_versioned_private_and_tls_only() -> None:
    s = stack()
    for bucket in s.of_type("AWS::S3::Bucket"):
        props = s.properties(bucket)
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
             "RestrictPublicBuckets"), True)
        assert s.resources[bucket]["DeletionPolicy"] == "Retain"
        tls = bucket_policy_statements(s, bucket)["TlsOnly"]
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_plan_role_signs_plans_and_both_roles_verify() -> None:
    s = stack()
    (key,) = s.of_type("AWS::KMS::Key")
    props = s.properties(key)
    assert (props["KeySpec"], props["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    plan, apply = s.role_arn("PlanRole"), s.role_arn("ApplyRole")
    allowed: dict[str, set[str]] = {}
    for statement in props["KeyPolicy"]["Statement"]:
        principals = as_list(statement["Principal"]["AWS"])
        for action in as_list(statement["Action"]):
            assert "*" not in action, action
            if statement["Effect"] == "Allow":
                allowed.setdefault(action, set()).update(principals)
    assert allowed["kms:Sign"] == {plan}
    assert allowed["kms:Verify"] == allowed["kms:GetPublicKey"] == {plan, apply}
    assert "kms:CreateGrant" not in allowed and "kms:Decrypt" not in allowed
    denied = {st["Sid"]: st for st in props["KeyPolicy"]["Statement"] if st["Effect"] == "Deny"}
    others = denied["NobodyElseSignsEvenWithAnIamGrant"]
    assert (others["Action"], others["Principal"]) == ("kms:Sign", {"AWS": "*"})
    assert others["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": plan}}


def test_each_role_passes_only_its_sagemaker_role_to_sagemaker_only() -> None:
    s = stack()
    expected = {"PlanRole": s.role_arn("TrainingRole"), "ApplyRole": s.role_arn("ModelRole")}
    for role in s.of_type("AWS::IAM::Role"):
        passes = [(r, c) for a, r, c in grants(s, role) if a.startswith("iam:")]
        only_to_sagemaker = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
        if role in expected:
            assert passes == [([expected[role]], only_to_sagemaker)]
        else:
            assert passes == []


# What the plan role may do besides reading: store under two prefixes, call the endpoint,
# sign, and run training jobs.
PLAN_READS = re.compile(r"^(s3:(Get|List|Head)|ssm:Get|states:(Describe|List)|"
                        r"sagemaker:(Describe|List)|kms:(Verify|GetPublicKey)|"
                        r"cloudwatch:Describe)")
PLAN_ALSO = {"s3:PutObject", "sagemaker:InvokeEndpoint", "kms:Sign", "iam:PassRole",
             "sagemaker:CreateTrainingJob", "sagemaker:StopTrainingJob",
             "sagemaker:AddTags",  # marks a training job with its pull request
             # registers a planned model, only as PendingManualApproval (checked below)
             "sagemaker:CreateModelPackageGroup", "sagemaker:CreateModelPackage"}


def test_only_the_apply_role_approves_or_rejects_a_registered_model() -> None:
    """The plan role, which runs for any pull request, registers models only as
    PendingManualApproval; approving and rejecting is the apply role's (the condition key
    sagemaker:ModelApprovalStatus: https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-approve.html)."""
    s = stack()
    plan = {a: c for a, _, c in grants(s, "PlanRole")}
    assert plan["sagemaker:CreateModelPackage"] == {
        "StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}
    assert "sagemaker:UpdateModelPackage" not in plan
    apply = {a: c for a, _, c in grants(s, "ApplyRole")}
    assert "sagemaker:CreateModelPackage" not in apply
    assert apply["sagemaker:UpdateModelPackage"] == {
        "StringEquals": {"sagemaker:ModelApprovalStatus": ["Approved", "Rejected"]}}


def test_plan_role_writes_nothing_outside_the_models_and_plans_prefixes() -> None:
    t = default_target()
    s = stack()
    for action, resources, _ in grants(s, "PlanRole"):
        assert action in PLAN_ALSO or PLAN_READS.match(action), f"{action} is not a read"
        # Reads of production state: only the hyperparameters and the config object itself.
        if action.startswith("ssm:"):
            ssm = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{t.ssm_prefix}"
            assert sorted(resources) == [ssm, f"{ssm}/*"]
        if action == "s3:GetObject":
            config = [r for r in resources if f":::{t.config_bucket}" in r]
            assert config in ([], [f"arn:aws:s3:::{t.config_bucket}/{t.config_key}"])
            assert not [r for r in resources if "/locks/" in r]


# -- every AWS call the bot makes is granted, and every grant is used -------------------

# boto3 calls whose IAM actions are not just "<service>:<OperationName>".
S3_ACTIONS = {
    "head_object": ["s3:GetObject"], "get_object": ["s3:GetObject"],
    "put_object": ["s3:PutObject"],
    # The config's archive is a copy of one version of the config (CopySource VersionId).
    "copy_object": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
    "delete_object": ["s3:DeleteObject"], "delete_objects": ["s3:DeleteObject"],
    "list_objects": ["s3:ListBucket"], "list_objects_v2": ["s3:ListBucket"],
    "head_bucket": ["s3:ListBucket"], "list_object_versions": ["s3:ListBucketVersions"],
    "upload_file": ["s3:PutObject"], "upload_fileobj": ["s3:PutObject"],
    "download_file": ["s3:GetObject"], "download_fileobj": ["s3:GetObject"],
}
# Actions a call needs besides its own: SageMaker checks AddTags for Tags= on create, and
# PassRole for the role a model or training job runs as.
ALSO_NEEDED = {
    "create_model": ["sagemaker:AddTags", "iam:PassRole"],
    "create_endpoint_config": ["sagemaker:AddTags"],
    "create_endpoint": ["sagemaker:AddTags"],
    "create_training_job": ["iam:PassRole"],
}
SERVICES = ("ssm", "s3", "stepfunctions", "sagemaker", "sagemaker-runtime", "kms", "cloudwatch")
# The local stand-ins (bot/local) and the sample-data command are not what the roles run.
NOT_THE_ROLE = {"local", "sample_data.py", "sample_data"}
# What each role's job runs: (module, function) entry points.
PLAN_ENTRY = [("bot.commands.plan", "run"),
              # plan.yml runs it instead of plan when the pull request is closed
              ("bot.commands.stop_training", "run")]
APPLY_ENTRY = [("bot.commands.apply", "run"),
               # what a person runs with the apply role, per docs/github-setup.md
               ("bot.commands.rollback_parameters", "run"), ("bot.commands.break_lock", "run"),
               ("bot.commands.history", "run"),
               # watch.yml runs it with the apply role
               ("bot.commands.watch", "run")]


@functools.cache
def boto3_operations() -> tuple[dict[str, list[list[str]]], dict[str, list[list[str]]]]:
    """boto3 operation and waiter names (snake case) of the services the bot uses, with the
    IAM actions each needs (one list per service that has the name)."""
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    needed: dict[str, list[list[str]]] = {}
    waiters: dict[str, list[list[str]]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        # CloudWatch signs as "monitoring"; its IAM actions are "cloudwatch:...".
        prefix = "cloudwatch" if service == "cloudwatch" else model.signing_name
        for operation in model.operation_names:
            snake = xform_name(operation)
            actions = (S3_ACTIONS.get(snake, [f"s3:{operation}"]) if service == "s3"
                       else [f"{prefix}:{operation}", *ALSO_NEEDED.get(snake, [])])
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
    names |= set(re.findall(r"\.(sign|verify)\(", text))  # KMS operations of one word
    names |= set(re.findall(r"get_paginator\(\s*[\"'](\w+)[\"']", text))
    for name in names:
        found.setdefault(f"{where}: {name}", set()).update(
            json.dumps(alternative) for alternative in needed.get(name, [[f"? {name}"]]))
    for waiter in re.findall(r"get_waiter\(\s*[\"'](\w+)[\"']", text):
        found.setdefault(f"{where}: waiter {waiter}", set()).update(
            json.dumps(alternative) for alternative in waiters.get(waiter, [[f"? {waiter}"]]))


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
    defs: dict[str, Any] = {node.name: node for node in tree.body
                            if isinstance(node, Definition)}
    # Module-level values too (a registry listing modules: ``REGISTRY = [ssm, config]``).
    defs.update({node.target.id if isinstance(node, ast.AnnAssign) else node.targets[0].id: node
                 for node in tree.body
                 if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name))
                 or (isinstance(node, ast.Assign) and len(node.targets) == 1
                 and isinstance(node.targets[0], ast.Name))})
    imports: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "bot" or node.module.startswith("bot.")):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                imports[alias.asname or alias.name] = (
                    (full, "") if _module_file(full) else (node.module, alias.name))
    return text, defs, imports


def code_reached_from(entries: list[tuple[str, str]]) -> dict[str, str]:
    """The source of every bot function and class that the ``(module, function)`` entries
    may reach.

    An over-approximation by name: any bot function or class a reached body names (called or
    passed), directly or as ``module_alias.name``, is reached; a reached class brings all of
    its methods; a module named as a value (a registry of resource modules) brings those of
    its functions that reached code calls on a value by name (``resource.read(...)``). The
    modules of the local stand-ins are never followed.
    """
    reached: dict[str, str] = {}
    todo = list(entries)
    valued: set[str] = set()  # modules named as values (a registry's entries)
    called: set[str] = set()  # attributes called on values (``resource.read(...)``)
    while todo:
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
            qualifiers = {id(n.value) for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name):
                    if inner.id in defs and inner.id != name:
                        todo.append((module, inner.id))
                    elif inner.id in imports and imports[inner.id][1]:
                        todo.append(imports[inner.id])
                    elif inner.id in imports and id(inner) not in qualifiers:
                        valued.add(imports[inner.id][0])
                elif isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name):
                    target = imports.get(inner.value.id)
                    if target is not None and not target[1]:
                        todo.append((target[0], inner.attr))
                    elif target is None and inner.value.id not in defs:
                        called.add(inner.attr)
        # A module named as a value: the functions the reached code calls on values.
        todo = [(m, a) for m in sorted(valued) for a in sorted(called)
                if a in _definitions(m)[1] and f"{m}.{a}" not in reached]
    return {key: source for key, source in reached.items() if source}


@functools.cache
def boto3_calls_from(entries: tuple[tuple[str, str], ...]) -> dict[str, set[str]]:
    """The boto3 operations the code reached from ``entries`` can make."""
    found: dict[str, set[str]] = {}
    for key, source in sorted(code_reached_from(list(entries)).items()):
        boto3_calls_in(source, key, found)
    return found


def plan_calls() -> dict[str, set[str]]:
    return boto3_calls_from(tuple(PLAN_ENTRY))


def apply_calls() -> dict[str, set[str]]:
    return boto3_calls_from(tuple(APPLY_ENTRY))


def refused_calls(role: str, calls: dict[str, set[str]]) -> dict[str, list[str]]:
    granted = [a for a, _, _ in grants(stack(), role)]

    def allowed(action: str) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), g.lower()) for g in granted)

    return {call: sorted(alternatives) for call, alternatives in calls.items()
            if not any(all(allowed(a) for a in json.loads(alternative))
                       for alternative in alternatives)}


def operations(calls: dict[str, set[str]]) -> set[str]:
    return {call.rsplit(": ", 1)[1] for call in calls}


def used_actions(calls: dict[str, set[str]]) -> set[str]:
    return {a for alternatives in calls.values() for alternative in alternatives
            for a in json.loads(alternative)}


def test_the_plan_path_only_reads_stores_to_s3_and_invokes_the_endpoint() -> None:
    found = operations(plan_calls())
    # What the walk must find, else it lost its way (and the checks below would pass vacuously).
    assert {"get_object", "head_object", "put_object", "get_parameters_by_path",
            "list_state_machines", "describe_execution", "describe_endpoint",
            "describe_endpoint_config", "describe_model", "invoke_endpoint"} <= found, found
    writes = {op for op in found if not re.match(r"(get|list|describe|head)_", op)}
    # download_file is a read (GetObject); upload_file writes training shards; add_tags
    # marks a training job with its pull request.
    assert writes <= {"put_object", "invoke_endpoint", "sign", "verify", "create_training_job",
                      "create_model_package_group", "create_model_package",
                      "stop_training_job", "add_tags", "upload_file", "download_file"}


def test_stop_training_only_lists_tags_and_stops_training_jobs_with_the_plan_role() -> None:
    calls = boto3_calls_from((("bot.commands.stop_training", "run"),))
    # list_training_jobs through its paginator; add_tags marks a shared job released.
    assert operations(calls) == {"list_training_jobs", "list_tags", "stop_training_job",
                                 "add_tags"}, operations(calls)
    assert refused_calls("PlanRole", calls) == {}
    assert set(calls) <= set(plan_calls())  # what the plan job's role is checked against


def test_the_apply_path_is_found() -> None:
    found = operations(apply_calls())
    assert {"put_parameter", "delete_parameters", "get_parameter", "copy_object",
            "put_object", "delete_object", "start_execution", "create_model",
            "create_endpoint_config", "update_endpoint_weights_and_capacities",
            "delete_model", "list_objects_v2"} <= found, found
    assert "invoke_endpoint" not in found


def test_plan_role_allows_every_aws_call_of_the_plan_path() -> None:
    assert refused_calls("PlanRole", plan_calls()) == {}


def test_apply_role_allows_every_aws_call_of_apply_and_the_manual_commands() -> None:
    assert refused_calls("ApplyRole", apply_calls()) == {}


# Grants that no call of the bot names today, and why each is there. Remove an entry when
# the call lands (the tests then require it to be used), or the grant if the plan changes.
NOT_A_CALL = {
    # S3 answers 403 rather than 404 for a missing object without it, and the bot relies on
    # the 404 ("no config yet", "model not trained yet", "content not planned yet").
    "s3:ListBucket": "missing objects read as 404",
}
FUTURE = {
    "PlanRole": {
        "kms:GetPublicKey": "the public key, so that a signature can be checked anywhere",
    },
    "ApplyRole": {
        "kms:GetPublicKey": "the public key, so that a signature can be checked anywhere",
    },
}


@pytest.mark.parametrize("role", BOT_ROLES)
def test_every_grant_is_used_by_the_bot_or_listed_as_coming(role: str) -> None:
    used = used_actions(plan_calls() if role == "PlanRole" else apply_calls())
    unused = {a for a, _, _ in grants(stack(), role)} - used
    assert unused <= set(NOT_A_CALL) | set(FUTURE[role]), (
        f"{role} grants what its job never calls: {sorted(unused - set(NOT_A_CALL))}")
    # A future grant that is called now belongs to the bot's calls, not to this list.
    assert not set(FUTURE[role]) & used, sorted(set(FUTURE[role]) & used)
