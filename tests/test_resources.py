"""Resources as modules: a kind registered by a test (no other file touched) is planned,
applied, logged in the apply record and described like the built-in ones; and apply
records stored in format 1 are still read."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from conftest import GitRepo, request_yaml

from bot.adapters.aws import artifacts, clients
from bot.adapters.aws import s3 as s3_io
from bot.core import apply_record, names
from bot.core.domain import Approval, Change, Fact, LiveState, Plan
from bot.flows import resources
from bot.flows.apply import apply
from bot.flows.resources.base import Context, Step
from bot.report.apply_outcome import comment, describe
from bot.report.plan_comment import changes_section
from bot.settings import Target

PATH = "promotion-requests/fraud-detection.yaml"

pytestmark = pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")


class Note:
    """A tiny resource: an SSM parameter naming the experiment production serves."""

    kind = "note"

    @staticmethod
    def _name(t: Target) -> str:
        return f"/{t.name}/serving-experiment"

    def read(self, context: Context) -> str | None:
        ssm = clients.client("ssm", context.target.region)
        try:
            return str(ssm.get_parameter(Name=self._name(context.target))["Parameter"]["Value"])
        except ssm.exceptions.ParameterNotFound:
            return None

    def desired(self, context: Context, live: LiveState, earlier: dict[str, Any]
                ) -> str | None:
        config = earlier.get("s3-config")  # builds on a kind registered before it
        return None if config is None else str(config.experiment_id)

    def changes(self, context: Context, want: str | None, live: LiveState) -> list[Change]:
        now = live.get(self.kind)
        if want is None or want == now:
            return []
        return [Change(self.kind, self._name(context.target), now, want)]

    def intend(self, step: Step) -> dict[str, Any]:
        return {}

    def apply(self, step: Step) -> dict[str, Any]:
        if not step.planned:
            return {}
        step.guard()
        clients.client("ssm", step.target.region).put_parameter(
            Name=self._name(step.target), Value=step.want, Type="String", Overwrite=True)
        return {"note": step.want}

    def describe(self, details: dict[str, Any]) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
        note = details.get("note")
        return ((Fact("serving note", note, f"note: {note}"),) if note else ()), ()


def test_a_registered_kind_is_planned_applied_logged_and_described(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan]) -> None:
    text = request_yaml("exp-note-1")
    plan = store_plan(text)
    note = Note()
    with resources.registered(note):
        context = Context(aws, resources_request(text), plan, "c" * 40,
                          approval=Approval(("dana",), "commit-author"))
        live = resources.read_live(context)
        planned = resources.changes(context, resources.desired_state(context, live), live)
        assert planned[-1] == Change("note", "/fraud-detection/serving-experiment", None,
                                     "exp-note-1")
        # The plan comment shows a kind the report has never heard of, by its name.
        shown = changes_section(dataclasses.replace(plan, changes=planned)).splitlines()
        at = shown.index("**note**")
        assert "/fraud-detection/serving-experiment" in "\n".join(shown[at:at + 5])

        start = git_repo.head()
        commit = git_repo.commit({PATH: text}, "Promote exp-note-1")
        [outcome] = apply(git_repo.path, start, commit, None)

        kinds = [r.kind for r in outcome.resources]
        assert kinds[:5] == ["ssm", "s3-config", "pipeline", "alarms", "endpoint"]
        assert kinds == [r.kind for r in resources.registry()] and kinds[-1] == "note"
        [made] = outcome.resource("note").changes  # type: ignore[union-attr]
        assert (made.before, made.after) == (None, "exp-note-1")
        text = describe(outcome)
        assert "  note      /fraud-detection/serving-experiment: (absent) → exp-note-1" in text
        assert text.endswith("\n  note: exp-note-1")
        assert "- **serving note:** `exp-note-1`" in comment(outcome)
        record = artifacts.get_apply_record(aws, commit)
        assert record is not None and record.finished
        step = record.step("note")
        assert step is not None and step.changes == (made,) and step.details == {
            "note": "exp-note-1"}
        assert made in record.changes
        assert boto3.client("ssm", region_name=aws.region).get_parameter(
            Name="/fraud-detection/serving-experiment")["Parameter"]["Value"] == "exp-note-1"
        assert apply(git_repo.path, start, commit, None)[0].noop  # converged
    assert note not in resources.registry()


def resources_request(text: str) -> Any:
    from bot.adapters.request_files import parse_request_text

    return parse_request_text(text, PATH)[0]


#: An apply record as format 1 stored it (a flat dict; ``run_changes`` and
#: ``resumable_backup`` for the run that resumes it): what S3 holds from before format 2.
FORMAT_1 = {
    "target": "fraud-detection", "path": PATH, "commit": "a" * 40, "before": "b" * 40,
    "request_commit": "a" * 40, "requested_by": "Dana Scientist <dana@example.com>",
    "content_sha256": "c" * 64, "experiment_id": "exp-xgboost-2",
    "model_artifact": "s3://fraud-detection-models/m/model.tar.gz", "pull_request": 7,
    "approval": {"approvers": ["dana"], "source": "github-reviews"}, "retired": False,
    "caught_up": None, "started_at": "2026-11-30T10:00:00+00:00",
    "updated_at": "2026-11-30T10:00:05+00:00", "status": "in-progress",
    "changes": [{"target": "ssm", "key": "/fraud-detection/hyperparameters/eta",
                 "before": "0.1", "after": "0.2", "drift": False}],
    "drift": [], "backup_keys": ["/fraud-detection/backups/hyperparameters/20261130T100000Z"],
    "commented": False,
    "resumable_backup": "/fraud-detection/backups/hyperparameters/20261130T100000Z",
    "run_changes": [{"target": "ssm", "key": "/fraud-detection/hyperparameters/eta",
                     "before": "0.1", "after": "0.2", "drift": False}],
    "config_version": "v1", "execution_arn": "arn:aws:states:us-east-1:1:execution:m:e",
}


def test_a_format_1_record_is_read_as_the_log_it_was(aws: Target) -> None:
    key = names.apply_record_key(aws, "a" * 40)
    s3_io.put(aws.artifacts_bucket, key, json.dumps(FORMAT_1).encode())
    record = artifacts.get_apply_record(aws, "a" * 40)
    assert record is not None and record.status == "in-progress" and not record.finished
    assert record.approval.approvers == ("dana",) and record.pull_request == 7
    ssm_step = record.step("ssm")
    assert ssm_step is not None and ssm_step.state == "intent"
    assert ssm_step.details["backup_key"] == FORMAT_1["resumable_backup"]
    assert [c.after for c in ssm_step.changes] == ["0.2"]
    assert record.detail("execution_arn") == FORMAT_1["execution_arn"]
    assert record.tag == "20261130T100000.000000Z-" + "a" * 12
    # Written back, it is format 2, and reads back the same.
    again = apply_record.from_bytes(apply_record.to_bytes(record), "again")
    assert again == record and json.loads(apply_record.to_bytes(record))["format"] == 2


@pytest.mark.parametrize(("document", "reason"), [
    ([], "must be a JSON object"),
    ({"format": 9}, "format 9 is not one this bot reads"),
    ({"format": 2, "target": "x"}, "not a valid apply record: path: Field required"),
])
def test_an_unreadable_record_is_one_clear_line(document: object, reason: str) -> None:
    with pytest.raises(Exception, match=reason) as caught:
        apply_record.from_json(document, "s3://b/applies/x.json")
    assert str(caught.value).startswith("s3://b/applies/x.json: ")
