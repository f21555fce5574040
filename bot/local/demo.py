"""The whole journey on the embedded default, with real git, moto's server and a local GitHub.

Request PR → plan comment → approval → merge → apply → a second promotion → revert → apply →
staged rollout 1 % → 10 % (with a forged plan that apply refuses; then an alarm fires, the
watcher brakes the challenger and opens the revert, which is merged and applied) → 10 %
again → 50 % → promoted → revert
→ two pull requests with the same request and different data (the second one's plan does
not change what the first one's merge deploys) → history. Every step runs the same command
a GitHub Actions workflow runs; only the outside systems are local. Plans are signed with the
embedded KMS key, models stored by digest, approvals counted by GitHub's rules (maria has
write access and is a code owner).

The local GitHub is as strict as GitHub, and each command runs with the token its job has
in a real deployment (docs/github-setup.md): plan and apply write as the promotion-bot
GitHub App, with an installation token of the permissions each job asks for (only apply's
may read the organization's teams); the Actions GITHUB_TOKEN of each job only reads.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from bot import cli
from bot.adapters import git
from bot.adapters.aws import artifacts, clients, config_store, plan_store, registry, s3
from bot.adapters.aws.alarms import put
from bot.adapters.aws.clients import client
from bot.adapters.data_files import FRAUD_RATE
from bot.core import plan_json
from bot.core.alarm_settings import Alarms
from bot.core.alarms import owned
from bot.core.changes import counted
from bot.core.comparison import MIN_FRAUDS
from bot.core.domain import Outcome, Plan
from bot.core.integrity import model_digest
from bot.errors import BotError
from bot.local.aws_server import LocalAWS
from bot.local.bootstrap import bootstrap
from bot.local.faults import FaultPlan
from bot.local.github import LocalGitHub
from bot.report.apply_outcome import kept, missed_line, outcomes_from_json
from bot.settings import target

REQUEST = "promotion-requests/fraud-detection.yaml"
AUTHORS = {"dana": "Dana Scientist <dana@example.com>", "mallory": "Mallory <mallory@example.com>"}
TRAIN_IN_REPOSITORY = "data/train.parquet"
DEMO_OVERRIDE = "demo: no live traffic to soak, so soak times are skipped"
CODE_OWNERS = "acme/model-risk"
APP_SLUG = "promotion-bot"
#: The installation tokens the workflows make (actions/create-github-app-token), and the
#: permissions each asks for: plan.yml's and apply.yml's.
PLAN_TOKEN, APPLY_TOKEN = "ghs_demo-plan-job-app-token", "ghs_demo-apply-job-app-token"
WATCH_TOKEN = "ghs_demo-watch-job-app-token"  # watch.yml's: push the revert, open its PR
TOKENS = {
    WATCH_TOKEN: {"contents": "write", "metadata": "read", "pull_requests": "write"},
    PLAN_TOKEN: {"contents": "read", "metadata": "read", "pull_requests": "write",
                 "statuses": "write"},
    APPLY_TOKEN: {"contents": "read", "metadata": "read", "pull_requests": "write",
                  "statuses": "write", "members": "read"},
}
TRAINING_JOB = """
# Train with a SageMaker training job on two instances instead of in the runner.
training:
  backend: sagemaker
  instance_count: 2
"""


def _say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Journey:
    """A demo repository with its local GitHub, and the steps a team takes on it."""

    root: Path
    github: LocalGitHub
    log: Callable[[str], None] = _say
    after_step: Callable[[str, Journey], None] = lambda name, journey: None
    outputs: dict[str, Path] = field(default_factory=dict)
    step: int = 0

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    def git(self, *args: str) -> str:
        return git.output(self.repo, *args).strip()

    def header(self, title: str) -> None:
        self.step += 1
        self.log(f"\n== {self.step}. {title}")

    def bot(self, name: str, *argv: str, event: dict[str, Any] | None = None) -> int:
        """Run a promotion-bot command as the workflow would, its output kept in a file."""
        out = self.root / "outputs" / f"{self.step:02d}-{name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        # The job's token: the app's, with the permissions that job's workflow asks for.
        env = {"GITHUB_TOKEN": WATCH_TOKEN if argv[0] == "watch" else
               APPLY_TOKEN if argv[0] in ("apply", "history") else PLAN_TOKEN}
        if event is not None:
            event_path = out.with_suffix(".event.json")
            event_path.write_text(json.dumps(event))
            env["GITHUB_EVENT_PATH"] = str(event_path)
        buffer = io.StringIO()
        clients.forget()  # each command starts afresh, as each workflow step is a new process
        with _environ(env), contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            code = cli.main(list(argv))
        out.write_text(buffer.getvalue())
        self.outputs[f"{self.step:02d}-{name}"] = out
        return code

    def open_pull(self, branch: str, title: str, edit: Callable[[str], str],
                  files: dict[str, bytes] | None = None, author: str = "dana") -> int:
        """A branch from main with the request edited (and ``files`` written), and its PR."""
        self.git("checkout", "-q", "-b", branch, "main")
        path = self.repo / REQUEST
        path.write_text(edit(path.read_text() if path.exists() else ""))
        for name, data in (files or {}).items():
            (self.repo / name).parent.mkdir(parents=True, exist_ok=True)
            (self.repo / name).write_bytes(data)
        self.git("add", REQUEST, *(files or {}))
        self.git("commit", "-q", "-m", title, "--author", AUTHORS[author])
        number: int = self.github.open_pull(head_sha=self.git("rev-parse", "HEAD"),
                                            author=author, title=title)
        self.log(f"PR #{number} '{title}' opened by {author} (branch {branch})")
        return number

    def plan(self, number: int, base: str | None = None) -> Plan:
        """Plan PR ``number`` at the checked-out head against ``base`` (default: main)."""
        head = self.git("rev-parse", "HEAD")
        out = self.root / "outputs" / f"plan-pr{number}"
        started = time.monotonic()
        # As the plan workflow runs it: the rollout rules read main's history (--base).
        code = self.bot(f"plan-pr{number}", "plan", str(self.repo / REQUEST), "--out", str(out),
                        "--base", base or self.git("rev-parse", "main"),
                        event={"pull_request": {"number": number, "head": {"sha": head}}})
        if code == 2:
            log_file = self.outputs[f"{self.step:02d}-plan-pr{number}"]
            raise BotError(f"plan of PR #{number} failed: see {log_file}")
        plan = plan_json.from_bytes((out / "plan.json").read_bytes(), str(out / "plan.json"))
        failed = [g.name for g in plan.gates if not g.passed]
        gates = (f"all {len(plan.gates)} pass" if not failed
                 else f"{len(failed)} of {len(plan.gates)} FAILED: " + "; ".join(failed))
        m = plan.metrics
        how = plan.training or {}
        trained = ("trained by training job " + str(how.get("job")) + f" on "
                   f"{how.get('instance_count')} x {how.get('instance_type')}"
                   if how.get("backend") == "sagemaker" else "trained")
        self.log(
            f"plan ({time.monotonic() - started:.1f}s, "
            f"{trained if plan.trained else 'model reused'}): "
            f"PR AUC {m['pr_auc']:.3f}, ROC AUC {m['auc_roc']:.3f}, recall {m['recall']:.3f}; "
            f"gates: {gates}"
        )
        self.log(f"  merging would change {len(counted(plan.changes))} thing(s): "
                 + ", ".join(sorted({c.target for c in plan.changes})))
        if plan.endpoint_comparison is not None:
            self.log(f"  live endpoints: {plan.endpoint_comparison.verdict}")
        comments = self.github.comments(number)
        self.log(f"  PR #{number} has {len(comments)} bot comment(s); status "
                 f"promotion-bot/plan = {self.github.statuses(head)[-1]['state']}"
                 f"; comment in {out / 'comment.md'}")
        self.after_step(f"plan-pr{number}", self)
        return plan

    def approve_and_merge(self, number: int, branch: str) -> str:
        before, after = self.approve_then_merge(number, branch)
        return self.apply(before, after)

    def approve_then_merge(self, number: int, branch: str) -> tuple[str, str]:
        """maria approves the PR's head and merges it; returns the pushed range."""
        self.github.review(number, "maria", "APPROVED")
        self.log(f"maria approves PR #{number}")
        before = self.git("rev-parse", "main")
        self.git("checkout", "-q", "main")
        self.git("merge", "-q", "--no-ff", branch, "-m", f"Merge pull request #{number}")
        after = self.git("rev-parse", "HEAD")
        self.github.merge_pull(number, after)
        self.log(f"PR #{number} merged as {after[:8]}")
        return before, after

    def refused_apply(self, before: str, after: str) -> str:
        """Run apply on ``before..after`` expecting a refusal; return its one line."""
        code = self.bot("apply-refused", "apply", "--repo", str(self.repo), "--before", before,
                        "--after", after, event={"before": before, "after": after})
        log_file = self.outputs[f"{self.step:02d}-apply-refused"]
        said = log_file.read_text().strip().splitlines()
        if code != 1 or not said:
            raise BotError(f"apply was expected to refuse (exit 1), it exited {code}: "
                           f"see {log_file}")
        self.log("apply: REFUSED (exit 1), nothing changed: "
                 + said[-1].removeprefix("promotion-bot apply: "))
        self.after_step("apply-refused", self)
        return said[-1]

    def forge_plan(self, plan: Plan) -> None:
        """What someone who can push a branch could do with the plan role's S3 access (were
        the bucket not to refuse overwrites): store a model of their own and rewrite the
        reviewed plan.json to deploy it."""
        t = target(plan.target)
        assert plan.identity is not None
        stored = plan_store.plan_of_head(t, plan.identity.head)
        if stored is None:
            raise BotError(f"no stored plan of PR head {plan.identity.head[:12]} to forge")
        theirs = artifacts.store_model(t, artifacts.read_model(plan.artifact) + b"\0mallory")
        bucket, key = s3.split_uri(stored.uri)
        client("s3", t.region).put_object(
            Bucket=bucket, Key=key, Body=plan_json.to_bytes(replace(stored.plan, artifact=theirs)))
        self.log(f"mallory stores her own model and rewrites s3://{bucket}/{key} to deploy it "
                 f"(plan.sig left as it was)")

    def apply(self, before: str, after: str) -> str:
        outcomes = self.root / "outputs" / f"{self.step:02d}-apply.outcomes.json"
        code = self.bot("apply", "apply", "--repo", str(self.repo), "--before", before,
                        "--after", after, "--outcomes", str(outcomes),
                        event={"before": before, "after": after})
        log_file = self.outputs[f"{self.step:02d}-apply"]
        self.log("apply: " + ("ok" if code == 0 else f"FAILED (exit {code})")
                 + f"; full outcome in {log_file}")
        if outcomes.is_file():
            for line in summarize_apply(outcomes_from_json(json.loads(outcomes.read_text()))):
                self.log(f"  {line}")
        if code != 0:
            raise BotError(f"apply failed: see {self.outputs[f'{self.step:02d}-apply']}")
        self.after_step("apply", self)
        return after

    def promote(self, branch: str, title: str, edit: Callable[[str], str]) -> Plan:
        number = self.open_pull(branch, title, edit)
        plan = self.plan(number)
        self.approve_and_merge(number, branch)
        return plan

    def revert(self, merge_sha: str, branch: str) -> None:
        self.git("checkout", "-q", "-b", branch, "main")
        self.git("revert", "--no-edit", "-m", "1", merge_sha)
        number: int = self.github.open_pull(head_sha=self.git("rev-parse", "HEAD"),
                                            author="dana", title=f"Revert {merge_sha[:8]}")
        self.log(f"PR #{number} reverts {merge_sha[:8]}")
        self.plan(number)
        self.approve_and_merge(number, branch)


def summarize_apply(outcomes: list[Outcome]) -> list[str]:
    """Apply's outcome in a few lines: what changed where, backup, pipeline, endpoint."""
    lines = []
    for o in outcomes:
        if o.caught_up:
            lines.append(missed_line(o.path, o.caught_up))
        if o.noop:
            lines.append(f"{o.target}: no changes: production already matches")
            continue
        counts: dict[str, int] = {}
        for c in counted(o.changes):  # as the plan counted them: who approved is its own line
            counts[c.target] = counts.get(c.target, 0) + 1
        lines.append(f"{o.target}: changed {sum(counts.values())}: " + ", ".join(
            f"{n} {where}" for where, n in counts.items()))
        lines.append(f"approved by {', '.join(o.approval.approvers)} ({o.approval.source})")
        if o.retired:
            lines.append("request file deleted: challenger retired")
        lines += [f"DRIFT {c.key} overwritten ({kept(c)})" for c in o.drift]
        if o.backup_key:
            lines.append(f"backup: {o.backup_key}")
        started = o.resource("pipeline")
        if o.execution_arn and started is not None and started.changes:
            lines.append(f"pipeline: {o.execution_arn} {o.execution_status}")
        if o.endpoint:
            lines.append(f"endpoint {o.endpoint}: " + ", ".join(
                f"{v.name} {v.weight}%" for v in o.variants))
    return lines


def set_field(text: str, key: str, value: str) -> str:
    """Replace the first ``key: ...`` line's value, keeping comments and layout."""
    out, done = [], False
    for line in text.splitlines():
        stripped = line.lstrip()
        if not done and stripped.startswith(f"{key}:"):
            indent = line[: len(line) - len(stripped)]
            comment = "  #" + line.split("  #", 1)[1] if "  #" in line else ""
            line, done = f"{indent}{key}: {value}{comment}", True
        out.append(line)
    if not done:
        raise ValueError(f"{key} not found")
    return "\n".join(out) + "\n"


def with_override(text: str) -> str:
    if "override_reason:" in text:
        return set_field(text, "override_reason", json.dumps(DEMO_OVERRIDE))
    reason = f"    override_reason: {json.dumps(DEMO_OVERRIDE)}\n"
    return text.replace("    traffic_percent:", reason + "    traffic_percent:", 1)


def rollout_to(share: int) -> Callable[[str], str]:
    def edit(text: str) -> str:
        return with_override(set_field(text, "traffic_percent", str(share)))

    return edit


ALARM_REASON = ("Threshold Crossed: 2 datapoints [0.034, 0.051] were greater than the "
                "threshold 0.01.")


def watcher_brakes(j: Journey) -> None:
    """During the 10 % step the challenger's error-rate alarm fires: ``promotion-bot watch``
    (what watch.yml runs every 10 minutes) brakes it and opens the revert pull request, which
    is planned, approved, merged and applied like any other."""
    j.header("During the 10 % step an alarm fires: the watcher brakes the challenger and "
             "opens the revert, which is merged")
    t = target("fraud-detection")
    j.git("checkout", "-q", "main")  # watch.yml's checkout: the default branch
    j.git("push", "-q", "origin", "main")  # what GitHub (the remote) has
    cloudwatch = client("cloudwatch", t.region)
    spec = owned(t, Alarms())[0]  # <target>-challenger-error-rate
    if not cloudwatch.describe_alarms(AlarmNames=[spec.name])["MetricAlarms"]:
        put(t, spec)  # as apply keeps it while a challenger serves
    cloudwatch.set_alarm_state(AlarmName=spec.name, StateValue="ALARM", StateReason=ALARM_REASON)
    j.log(f"CloudWatch: {spec.name} is in ALARM: {ALARM_REASON}")
    for attempt in (1, 2):  # a run that could not reach GitHub: the next one opens the PR
        code = j.bot("watch", "watch", "--repo", str(j.repo))
        said = j.outputs[f"{j.step:02d}-watch"].read_text().strip()
        j.log(f"watch (exit {code}): " + said.replace("\n", "\n  "))
        if code == 0:
            break
        if attempt == 2:
            raise BotError(f"watch failed twice: see {j.outputs[f'{j.step:02d}-watch']}")
    j.after_step("watch", j)
    [revert] = [p for p in j.github.pulls()
                if p["head"]["ref"].startswith("promotion-bot/brake-")]
    number, branch = int(revert["number"]), str(revert["head"]["ref"])
    j.log(f"PR #{number} '{revert['title']}' opened by {revert['user']['login']} "
          f"(branch {branch})")
    # No traffic, no errors: the alarm is OK again once the brake has taken hold.
    cloudwatch.set_alarm_state(AlarmName=spec.name, StateValue="OK",
                               StateReason="no invocations: not breaching")
    j.git("fetch", "-q", "origin", f"{branch}:{branch}")
    j.git("checkout", "-q", branch)
    j.plan(number)
    j.approve_and_merge(number, branch)


def same_request_other_data(j: Journey) -> None:
    """Two pull requests carry the same request bytes and different training data in the
    repository: the second one's (relabelled) plan does not change what the first one's
    approved merge deploys, because apply takes the plan of the merged head."""
    j.header("Two pull requests, the same request, different data: the second one's plan "
             "does not change what the first one's approved merge deploys")
    honest, relabelled = training_data_in_repository()

    def request(text: str) -> str:
        text = set_field(text, "experiment_id", "exp-xgboost-repository-data-20240301")
        text = set_field(text, "num_round", "160")
        text = set_field(text, "train", TRAIN_IN_REPOSITORY)
        return set_field(text, "traffic_percent", "1")  # a new challenger starts at 1 %

    first = j.open_pull("repository-data", "Train on the data in the repository", request,
                        {TRAIN_IN_REPOSITORY: honest})
    reviewed = j.plan(first)
    second = j.open_pull("repository-data-relabelled", "Same request, cleaner data", request,
                         {TRAIN_IN_REPOSITORY: relabelled}, author="mallory")
    j.log(f"mallory's PR #{second} carries the same request bytes; its training data calls "
          "small frauds legit (a backdoor). Its plan is stored beside PR "
          f"#{first}'s, never over it")
    other = j.plan(second)
    before, after = j.approve_then_merge(first, "repository-data")
    j.apply(before, after)
    deployed = _serving_model(reviewed.target)
    if deployed != reviewed.artifact or deployed == other.artifact:
        raise BotError(f"apply deployed {deployed}, not PR #{first}'s reviewed model "
                       f"{reviewed.artifact}")
    j.log(f"apply deployed PR #{first}'s reviewed model {_digest(reviewed.artifact)}, not PR "
          f"#{second}'s {_digest(other.artifact)}: the plan of the merged head "
          f"{j.git('rev-parse', 'main^2')[:12]}")


def training_data_in_repository() -> tuple[bytes, bytes]:
    """Production's training data as a repository file, and a copy that calls every fraud
    under the median fraud amount legit."""
    t = target("fraud-detection")
    honest = s3.read_uri(f"s3://{t.data_bucket}/processed/train.parquet")
    frame = pd.read_parquet(io.BytesIO(honest))
    frauds = frame["Class"] == 1
    small = frauds & (frame["Amount"] < frame.loc[frauds, "Amount"].median())
    frame.loc[small, "Class"] = 0
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return honest, buffer.getvalue()


def _serving_model(name: str) -> str | None:
    live = config_store.read(target(name))
    return live.model_artifact if live is not None else None


def _digest(uri: str) -> str:
    return (model_digest(uri) or uri)[:12]


def registry_states(name: str) -> list[str]:
    """Every model the Model Registry holds for target ``name``, oldest first: its version,
    model digest, approval status and why."""
    t = target(name)
    lines = []
    for digest, package in sorted(registry.packages(t).items(),
                                  key=lambda item: item[1].version or 0):
        why = registry.describe(t, package.arn).approval_description
        lines.append(f"  version {package.version}: model {digest[:12]} {package.status}"
                     + (f" ({why})" if why else ""))
    return lines or ["  no model registered"]


def journey(j: Journey, seed_request: str) -> None:
    """The steps, in the order a team lives them."""
    j.header("A data scientist asks for the seed notebook's model in production (PR #1)")
    j.promote("promote-seed", "Promote exp-xgboost-optimized-20240115", lambda _: seed_request)

    j.header("A second promotion: deeper trees, more rounds, trained by a SageMaker training "
             "job on two instances (here: two worker processes training one model)")
    def second(text: str) -> str:
        text = set_field(text, "experiment_id", "exp-xgboost-deeper-20240201")
        text = set_field(text, "num_round", "200")
        return set_field(text, "max_depth", "9") + TRAINING_JOB
    j.promote("promote-deeper", "Promote exp-xgboost-deeper-20240201", second)
    promotion_2 = j.git("rev-parse", "main")

    j.header("It misbehaves: git revert of the second promotion, merged like any PR")
    j.revert(promotion_2, "revert-deeper")

    j.header("Rollout: challenger to 10 %, and a forged plan that apply refuses")
    number = j.open_pull("rollout-10", "Rollout challenger to 10%", rollout_to(10))
    plan = j.plan(number)
    before, after = j.approve_then_merge(number, "rollout-10")
    j.forge_plan(plan)
    j.refused_apply(before, after)
    j.log(f"the team re-runs the plan job of PR #{number}'s head: the stored plan does not "
          "verify, so it is evaluated afresh and signed again, stored beside the forged one")
    j.git("checkout", "-q", "rollout-10")  # the run's checkout: the pull request's head
    j.plan(number, base=before)  # the pull request's base, as its event names it
    j.apply(before, after)

    watcher_brakes(j)
    j.header("Rollout: challenger to 10 % again, the alarm's cause fixed")
    j.promote("rollout-10-again", "Rollout challenger to 10% again", rollout_to(10))

    for share in (50, 100):
        j.header(f"Rollout: challenger to {share} %" + (" = promotion to champion"
                                                      if share == 100 else ""))
        j.promote(f"rollout-{share}", f"Rollout challenger to {share}%", rollout_to(share))

    j.header("Second thoughts: git revert of the promotion, merged like any PR")
    j.revert(j.git("rev-parse", "main"), "revert-promotion")

    same_request_other_data(j)

    j.header("Audit trail")
    j.bot("history", "history", "fraud-detection", "--repo", str(j.repo))
    j.log(j.outputs[f"{j.step:02d}-history"].read_text().rstrip())

    j.header("The SageMaker Model Registry mirrors git (group fraud-detection)")
    j.log("\n".join(registry_states("fraud-detection")))


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def init_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)

    def run(*args: str) -> None:
        git.output(repo, *args)

    run("init", "-q", "-b", "main")
    run("config", "user.name", "Dana Scientist")
    run("config", "user.email", "dana@example.com")
    (repo / "promotion-requests").mkdir()
    (repo / "promotion-requests" / ".gitkeep").write_text("")
    (repo / ".github").mkdir()
    (repo / ".github" / "CODEOWNERS").write_text(
        "# Promotions need an approval by the model-risk team.\n"
        f"/promotion-requests/ @{CODE_OWNERS}\n")
    (repo / "README.md").write_text("# fraud-models\nPromotion requests live in "
                                    "promotion-requests/; promotion-bot plans and applies them.\n")
    run("add", "-A")
    run("commit", "-q", "-m", "Start the fraud models repository")
    run("remote", "add", "origin", str(root / "remote.git"))
    run("push", "-q", "origin", "main")
    return repo


def seed_request_text(rows: int | None = None) -> str:
    """The project's shipped request, pointing its schema line at the demo repository's copy.

    With sample data too small for the gates' intervals (its test split holds fewer frauds
    than ``comparison.MIN_FRAUDS``), the request says it accepts that, as a team would have
    to, so that the journey can go on; the plans show the warning.
    """
    shipped = Path(__file__).resolve().parents[2] / REQUEST
    if not shipped.is_file():
        raise BotError(f"{shipped} not found: run the demo from a checkout (pip install -e .)")
    text = shipped.read_text()
    frauds = round(max(1, round((rows or 0) * FRAUD_RATE)) * 0.2)
    if rows is not None and frauds < MIN_FRAUDS:
        reason = json.dumps(f"demo on {rows:,} rows of sample data: its test set holds about "
                            f"{frauds} frauds")
        text = text.replace("\ngates:\n", f"\ngates:\n  accept_few_frauds: {reason}\n", 1)
    return text


@contextlib.contextmanager
def environment(root: Path, rows: int, log: Callable[[str], None],
                faults: FaultPlan | None = None) -> Iterator[Any]:
    """Moto's server with production set up, and a local GitHub, for the journey's length;
    both fail by ``faults`` once production is set up."""
    remote = root / "remote.git"  # the repository on GitHub: what git pushes to
    git.output(root, "init", "-q", "--bare", "-b", "main", str(remote))
    with LocalAWS() as aws, LocalGitHub(repository="acme/fraud-models",
                                        remote=remote) as github:
        log(f"local AWS (moto) at {aws.url}; local GitHub at {github.url}")
        started = time.monotonic()
        bootstrap(rows=rows, progress=lambda m: log(f"  {m}"))
        log(f"production set up in {time.monotonic() - started:.1f}s")
        for token, permissions in TOKENS.items():
            github.add_token(token, "app", f"{APP_SLUG}[bot]", permissions)
        # Each job's own GITHUB_TOKEN (checkout; plan's `gh api` read of the pull request).
        github.add_token("ghs_demo-plan-job-actions-token", "actions",
                         permissions={"pull_requests": "read"})
        github.add_token("ghs_demo-apply-job-actions-token", "actions")
        log(f"GitHub App {APP_SLUG}: plan writes with an installation token of contents read, "
            "pull requests and statuses write; apply's also reads the organization's members; "
            "the watcher's pushes its revert branch (contents write) and opens its pull request")
        github.add_collaborator("maria", "write")
        github.add_team_member(CODE_OWNERS, "maria")
        log(f"maria has write access to acme/fraud-models and is in @{CODE_OWNERS}, which "
            "CODEOWNERS names for promotion-requests/")
        if faults is not None:
            aws.inject(faults)
            github.inject(faults)
            log(f"injecting failures: {len(faults.rules)} rule(s), seed {faults.seed}")
        env = {"GITHUB_TOKEN": PLAN_TOKEN, "PROMOTION_BOT_APP_SLUG": APP_SLUG,
               "GITHUB_REPOSITORY": "acme/fraud-models",
               "GITHUB_API_URL": github.url}
        with _environ(env):
            yield github


def run(directory: Path | None, rows: int, log: Callable[[str], None] = _say,
        after_step: Callable[[str, Journey], None] | None = None,
        faults: FaultPlan | None = None) -> Journey:
    """The whole journey in ``directory``; with ``faults``, while AWS and GitHub fail by them."""
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="promotion-bot-demo-"))
    if root.exists() and any(root.iterdir()):
        raise BotError(f"{root} is not empty: choose a new --dir")
    root.mkdir(parents=True, exist_ok=True)
    log(f"promotion-bot demo: everything is kept in {root}")
    with environment(root, rows, log, faults) as github:
        init_repo(root)
        j = Journey(root, github, log, after_step or (lambda n, j: None))
        journey(j, seed_request_text(rows))
    log(f"\nDone. Repository: {j.repo}  Outputs: {root / 'outputs'}")
    return j


