"""The whole journey on the embedded default, with real git, moto's server and a local GitHub.

Request PR → plan comment → approval → merge → apply → a second promotion → revert → apply →
staged rollout 1 % → 10 % → 50 % → promoted → history. Every step runs the same command a
GitHub Actions workflow runs; only the outside systems are local.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import cli
from bot.adapters import git
from bot.errors import BotError

REQUEST = "promotion-requests/fraud-detection.yaml"
DEMO_OVERRIDE = "demo: no live traffic to soak, so soak times are skipped"
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
    github: Any  # bot.local_github.LocalGitHub
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
        env = {}
        if event is not None:
            event_path = out.with_suffix(".event.json")
            event_path.write_text(json.dumps(event))
            env["GITHUB_EVENT_PATH"] = str(event_path)
        buffer = io.StringIO()
        with _environ(env), contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            code = cli.main(list(argv))
        out.write_text(buffer.getvalue())
        self.outputs[f"{self.step:02d}-{name}"] = out
        return code

    def open_pull(self, branch: str, title: str, edit: Callable[[str], str]) -> int:
        self.git("checkout", "-q", "-b", branch, "main")
        path = self.repo / REQUEST
        path.write_text(edit(path.read_text() if path.exists() else ""))
        self.git("add", REQUEST)
        self.git("commit", "-q", "-m", title, "--author", "Dana Scientist <dana@example.com>")
        number: int = self.github.open_pull(head_sha=self.git("rev-parse", "HEAD"),
                                            author="dana", title=title)
        self.log(f"PR #{number} '{title}' opened by dana (branch {branch})")
        return number

    def plan(self, number: int) -> dict[str, Any]:
        head = self.git("rev-parse", "HEAD")
        out = self.root / "outputs" / f"plan-pr{number}"
        started = time.monotonic()
        code = self.bot(f"plan-pr{number}", "plan", str(self.repo / REQUEST), "--out", str(out),
                        event={"pull_request": {"number": number, "head": {"sha": head}}})
        if code == 2:
            log_file = self.outputs[f"{self.step:02d}-plan-pr{number}"]
            raise BotError(f"plan of PR #{number} failed: see {log_file}")
        plan: dict[str, Any] = json.loads((out / "plan.json").read_text())
        gates = ", ".join(f"{g['name']} {'ok' if g['passed'] else 'FAILED'}" for g in plan["gates"])
        m = plan["metrics"]
        how = plan.get("training") or {}
        trained = ("trained by training job " + str(how.get("job")) + f" on "
                   f"{how.get('instance_count')} x {how.get('instance_type')}"
                   if how.get("backend") == "sagemaker" else "trained")
        self.log(
            f"plan ({time.monotonic() - started:.1f}s, "
            f"{trained if plan['trained'] else 'model reused'}): "
            f"PR AUC {m['pr_auc']:.3f}, ROC AUC {m['auc_roc']:.3f}, recall {m['recall']:.3f}; "
            f"gates: {gates}"
        )
        self.log(f"  merging would change {len(plan['changes'])} thing(s): "
                 + ", ".join(sorted({c['target'] for c in plan['changes']})))
        if plan.get("endpoint_comparison"):
            self.log(f"  live endpoints: {plan['endpoint_comparison'].get('verdict', '')}")
        comments = self.github.comments(number)
        self.log(f"  PR #{number} has {len(comments)} bot comment(s); status "
                 f"promotion-bot/plan = {self.github.statuses(head)[-1]['state']}"
                 f"; comment in {out / 'comment.md'}")
        self.after_step(f"plan-pr{number}", self)
        return plan

    def approve_and_merge(self, number: int, branch: str) -> str:
        self.github.review(number, "maria", "APPROVED")
        self.log(f"maria approves PR #{number}")
        before = self.git("rev-parse", "main")
        self.git("checkout", "-q", "main")
        self.git("merge", "-q", "--no-ff", branch, "-m", f"Merge pull request #{number}")
        after = self.git("rev-parse", "HEAD")
        self.github.merge_pull(number, after)
        self.log(f"PR #{number} merged as {after[:8]}")
        return self.apply(before, after)

    def apply(self, before: str, after: str) -> str:
        code = self.bot("apply", "apply", "--repo", str(self.repo), "--before", before,
                        "--after", after, event={"before": before, "after": after})
        log_file = self.outputs[f"{self.step:02d}-apply"]
        self.log("apply: " + ("ok" if code == 0 else f"FAILED (exit {code})")
                 + f"; full outcome in {log_file}")
        for line in summarize_apply(log_file.read_text()):
            self.log(f"  {line}")
        if code != 0:
            raise BotError(f"apply failed: see {self.outputs[f'{self.step:02d}-apply']}")
        self.after_step("apply", self)
        return after

    def promote(self, branch: str, title: str, edit: Callable[[str], str]) -> dict[str, Any]:
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


def summarize_apply(output: str) -> list[str]:
    """Apply's outcome in a few lines: what changed where, backup, pipeline, endpoint."""
    counts: dict[str, int] = {}
    kept = []
    for line in output.splitlines():
        words = line.split()
        if not words:
            continue
        if " → " in line and words[0] in ("ssm", "s3-config", "pipeline", "endpoint"):
            counts[words[0]] = counts.get(words[0], 0) + 1
        elif words[0] in ("approved", "DRIFT", "backup:", "pipeline:", "endpoint", "no",
                          "request") or "never applied" in line or line.startswith(
                              "promotion-bot"):
            kept.append(line.strip())
    if counts:
        kept.insert(0, "changed: " + ", ".join(f"{n} {where}" for where, n in counts.items()))
    return kept


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

    for share in (10, 50, 100):
        j.header(f"Rollout: challenger to {share} %" + (" = promotion to champion"
                                                      if share == 100 else ""))
        j.promote(f"rollout-{share}", f"Rollout challenger to {share}%", rollout_to(share))

    j.header("Second thoughts: git revert of the promotion, merged like any PR")
    j.revert(j.git("rev-parse", "main"), "revert-promotion")

    j.header("Audit trail")
    j.bot("history", "history", "fraud-detection", "--repo", str(j.repo))
    j.log(j.outputs[f"{j.step:02d}-history"].read_text().rstrip())


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
    (repo / "README.md").write_text("# fraud-models\nPromotion requests live in "
                                    "promotion-requests/; promotion-bot plans and applies them.\n")
    run("add", "-A")
    run("commit", "-q", "-m", "Start the fraud models repository")
    return repo


def seed_request_text() -> str:
    """The project's shipped request, pointing its schema line at the demo repository's copy."""
    shipped = Path(__file__).resolve().parents[2] / REQUEST
    if not shipped.is_file():
        raise BotError(f"{shipped} not found: run the demo from a checkout (pip install -e .)")
    return shipped.read_text()


@contextlib.contextmanager
def environment(root: Path, rows: int, log: Callable[[str], None]) -> Iterator[Any]:
    """Moto's server with production set up, and a local GitHub, for the journey's length."""
    from bot.local.aws_server import LocalAWS
    from bot.local.bootstrap import bootstrap
    from bot.local.github import LocalGitHub

    with LocalAWS() as aws, LocalGitHub(repository="acme/fraud-models") as github:
        log(f"local AWS (moto) at {aws.url}; local GitHub at {github.url}")
        started = time.monotonic()
        bootstrap(rows=rows, progress=lambda m: log(f"  {m}"))
        log(f"production set up in {time.monotonic() - started:.1f}s")
        env = {"GITHUB_TOKEN": github.token, "GITHUB_REPOSITORY": "acme/fraud-models",
               "GITHUB_API_URL": github.url}
        with _environ(env):
            yield github


def run(directory: Path | None, rows: int, log: Callable[[str], None] = _say,
        after_step: Callable[[str, Journey], None] | None = None) -> Journey:
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="promotion-bot-demo-"))
    if root.exists() and any(root.iterdir()):
        raise BotError(f"{root} is not empty: choose a new --dir")
    root.mkdir(parents=True, exist_ok=True)
    log(f"promotion-bot demo: everything is kept in {root}")
    with environment(root, rows, log) as github:
        init_repo(root)
        j = Journey(root, github, log, after_step or (lambda n, j: None))
        journey(j, seed_request_text())
    log(f"\nDone. Repository: {j.repo}  Outputs: {root / 'outputs'}")
    return j


