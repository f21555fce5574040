"""Apply's outcome for people: the terminal block and the merged PR's comment."""

from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter

from bot.core.changes import variant_value
from bot.core.domain import Approval, Change, Outcome, ResourceOutcome
from bot.core.integrity import model_digest
from bot.report import markdown as md


def missed_line(path: str, sha: str) -> str:
    return f"{path} was changed in {sha[:12]} but never applied (a cancelled run?): applying it now"


_MODEL_URI = re.compile(
    r"(s3://[^\s/]+/)\S*?models/(?:sha256/)?([0-9a-f]{12})[0-9a-f]+/model\.tar\.gz")
_LONG_HEX = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{28,}\b")


def shorten(value: Any, width: int = 90) -> str:
    """A value for people: model URIs and hashes shortened, long text cut."""
    if value is None:
        return "(absent)"
    text = _LONG_HEX.sub(r"\1", _MODEL_URI.sub(r"\1…/\2…/model.tar.gz", str(value)))
    return text if len(text) <= width else text[: width - 1] + "…"


def variant_text(value: Any) -> Any:
    """An endpoint variant's value whole, for people: "model 09b508e6b295 at 1 % (1x
    ml.m5.xlarge)" (other values as they are)."""
    found = variant_value(value)
    if found is None:
        return value
    digest = model_digest(found.model)
    model = digest[:12] if digest else shorten(found.model, 60)
    return f"model {model} at {found.weight} % ({found.instances})"


def change_lines(change: Change) -> list[tuple[str, str, Any, Any]]:
    """(where, what, before, after) for people: config fields by name, dicts key by key,
    endpoint variants as model and weight."""
    where, key, before, after = change.target, change.key, change.before, change.after
    if where == "endpoint":
        return [(where, key, variant_text(before), variant_text(after))]
    if where == "s3-config":
        key = key.rsplit("#", 1)[-1]
        if isinstance(before, dict) and isinstance(after, dict):
            return [(where, f"{key}.{k}", before.get(k), after.get(k))
                    for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    return [(where, key, before, after)]


def _approval_line(approval: Approval, escape: bool = False) -> str:
    how = {"github-reviews": "approving reviews on GitHub",
           "commit-author": "merge commit author: no GitHub context"}.get(
        approval.source, approval.source)
    if escape:  # a commit author's name is whatever the committer wrote
        return (f"approved by: {', '.join(md.text(a, 120) for a in approval.approvers)} "
                f"({md.text(how)})")
    return f"approved by: {', '.join(approval.approvers)} ({how})"


def describe(outcome: Outcome) -> str:
    """The outcome as the terminal shows it: one block per target."""
    o = outcome
    pr = f", PR #{o.pull_request}" if o.pull_request else ""
    head = f"{o.target}: {o.path} at {o.commit[:12]}{pr}"
    missed = [f"  {missed_line(o.path, o.caught_up)}"] if o.caught_up else []
    if o.noop:
        lines = [f"{o.target}: no changes: production already matches {o.path} at {o.commit[:12]}",
                 *missed]
        lines += [f"  {f.text}" for r in o.resources for f in r.facts if f.in_noop and f.text]
        return "\n".join(lines)
    lines = [head, *missed, f"  {_approval_line(o.approval)}"]
    if o.retired:
        lines.append("  request file deleted: challenger retired, champion left in place")
    for c in o.changes:
        lines += [f"  {where:<9} {what}: {shorten(before)} → {shorten(after)}"
                  for where, what, before, after in change_lines(c)]
    for c in o.drift:
        lines.append(f"  DRIFT {c.key}: live {shorten(c.before)} was changed outside git; "
                     f"overwritten with {shorten(c.after)} ({kept(c)})")
    for r in _acted(o):  # each resource's facts, in apply's order
        lines += [f"  {f.text}" for f in r.facts if f.text]
        lines += [f"    {line}" for line in r.lines]
    return "\n".join(lines)


def kept(change: Change) -> str:
    """Where the live value a drifted ``change`` overwrote is kept."""
    if change.target == "ssm":
        return "the old value is in the hyperparameters' backup"
    if change.target == "s3-config":
        return "the old config is archived"
    return "the old value is in the apply record"


def _acted(outcome: Outcome) -> tuple[ResourceOutcome, ...]:
    """The resources this apply changed: only what it did is told (a rollout step does not
    start the retraining pipeline, so its last execution is not shown as if it ran)."""
    return tuple(r for r in outcome.resources if r.changes)


def comment(outcome: Outcome) -> str:
    """The outcome as the merged PR's comment (Markdown)."""
    o = outcome
    if o.noop:
        return (f"### promotion-bot apply: {md.code(o.target)}\n\nNo changes: production "
                f"already matches {md.code(o.path)} at `{o.commit[:12]}`.")
    rows = [f"### ✅ promotion-bot applied {md.code(o.target)} at `{o.commit[:12]}`", ""]
    if o.caught_up:
        rows += [f"> ⏭️ {missed_line(md.code(o.path), o.caught_up)}", ""]
    rows += [_approval_line(o.approval, escape=True), ""]
    if o.retired:
        rows += ["The request file was deleted: challenger retired, champion left in place.", ""]
    rows += ["| where | what | before | after |", "| --- | --- | --- | --- |"]
    rows += [f"| {where}{' ⚠️ drift' if c.drift else ''} | {md.code(what, cell=True)} | "
             f"{md.code(shorten(before, 80), cell=True)} | "
             f"{md.code(shorten(after, 80), cell=True)} |"
             for c in o.changes for where, what, before, after in change_lines(c)]
    rows.append("")
    if o.drift:
        rows += [f"> ⚠️ **Drift:** {len(o.drift)} live value(s) had been changed outside git "
                 "(by hand, or by the watcher's brake); overwritten by the desired state: "
                 + "; ".join(sorted({kept(c) for c in o.drift})) + ".", ""]
    rows += [f"- **{f.label}:** {md.code(f.value)}"
             for r in _acted(o) for f in r.facts if f.label and f.value]
    return "\n".join(rows)


def status_note(failure: str | None) -> str:
    """A line for the outcome comment when the commit status could not be written."""
    if not failure:
        return ""
    return ("\n\n> ⚠️ The commit status `promotion-bot/apply` could not be set "
            f"({failure}); this comment is the outcome.")


def failure_comment(target: str, message: str, backup_keys: list[str]) -> str:
    """The merged PR's comment when apply stopped half-way."""
    return (f"### ❌ promotion-bot apply of {md.code(target)} stopped\n\n"
            f"{md.block(message)}\n\nProduction may be partly updated; every step is "
            "idempotent, so rerunning apply finishes the job. Backups made so far: "
            + (", ".join(md.code(k) for k in backup_keys) or "none"))


#: Said for programs beside each outcome (computed from its resources; ignored when read).
_DERIVED = ("changes", "drift", "noop")


def outcomes_to_json(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """What apply did, per target, for programs (``apply --outcomes``): each resource's
    changes and details, and all changes, drift and whether nothing changed."""
    dumped: list[dict[str, Any]] = _OUTCOMES.dump_python(outcomes, mode="json")
    changes = TypeAdapter(list[Change])
    for outcome, document in zip(outcomes, dumped, strict=True):
        document["changes"] = changes.dump_python(list(outcome.changes), mode="json")
        document["drift"] = changes.dump_python(list(outcome.drift), mode="json")
        document["noop"] = outcome.noop
    return dumped


def outcomes_from_json(data: object) -> list[Outcome]:
    if isinstance(data, list):
        data = [{k: v for k, v in d.items() if k not in _DERIVED} if isinstance(d, dict)
                else d for d in data]
    return _OUTCOMES.validate_python(data)


_OUTCOMES: TypeAdapter[list[Outcome]] = TypeAdapter(list[Outcome])
