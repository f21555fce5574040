"""The audit trail as the terminal shows it (``promotion-bot history``)."""

from __future__ import annotations

from typing import Any

from bot.core.apply_record import ApplyRecord
from bot.core.audit import Entry
from bot.core.changes import variant_value
from bot.core.domain import Change, Plan
from bot.report.apply_outcome import change_lines, kept, shorten


def _approval(record: ApplyRecord) -> str:
    who = ", ".join(record.approval.approvers) or "nobody recorded"
    return f"{who} ({record.approval.source})"


def _variant(value: Any) -> str:
    """An endpoint variant's value as its model's digest and share: "723f2a482657 99 %"."""
    found = variant_value(value)
    if found is None:
        return shorten(value, 70)
    return f"{found.model.rsplit('/', 2)[-2][:12]} {found.weight} %"


def _change(change: Change) -> list[str]:
    drift = " [drift overwritten]" if change.drift else ""
    if change.target == "endpoint":
        return [f"endpoint {change.key}: {_variant(change.before)} → "
                f"{_variant(change.after)}{drift}"]
    return [f"{where} {what}: {shorten(before, 70)} → {shorten(after, 70)}{drift}"
            for where, what, before, after in change_lines(change)]


def _summary(changes: tuple[Change, ...]) -> list[str]:
    """What an apply changed, one line per place: the PR comment and apply record hold all."""
    by_target: dict[str, list[Change]] = {}
    for change in changes:
        by_target.setdefault(change.target, []).append(change)
    lines = []
    for where, found in by_target.items():
        if where == "ssm":
            lines.append("ssm: " + ", ".join(line.split(" ", 1)[1].rsplit("/", 1)[-1]
                                            for c in found for line in _change(c)))
        elif where == "s3-config":
            lines.append(f"s3-config: {len(found)} field(s) rewritten")
        else:
            lines += [line for c in found for line in _change(c)]
    drifted = [c for c in changes if c.drift]
    if drifted:
        lines.append(f"drift: {len(drifted)} value(s) changed outside git overwritten ("
                     + "; ".join(sorted({kept(c) for c in drifted})) + ")")
    return lines


def _used(digest: object, reviewed: str | None) -> str:
    """Which plan an apply used, against the one the reviewers saw."""
    if not isinstance(digest, str):
        return "not recorded"
    if digest == reviewed:
        return f"{digest[:12]}, the reviewed plan"
    return f"{digest[:12]}, NOT the reviewed plan " + (
        f"{reviewed[:12]}" if reviewed else "(none found)")


def _metrics(plan: Plan) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in sorted(plan.metrics.items()))


def render(entries: list[Entry]) -> str:
    """The trail as the terminal shows it."""
    if not entries:
        return "no promotion requests in this history"
    out: list[str] = []
    current = None
    for e in entries:
        if e.path != current:
            current = e.path
            out += [""] if out else []
            out.append(f"{e.target} ({e.path})")
        c = e.commit
        pr = f"  PR #{e.pull_request}" if e.pull_request else ""
        out.append(f"  {c.date}  {c.sha[:12]}{pr}  {c.subject}")
        out.append(f"    requested by: {c.author} <{c.email}>")
        if e.reverts is not None:
            out.append(f"    reverts:      {e.reverts.sha[:12]} {e.reverts.subject}")
        elif c.reverts:
            out.append(f"    reverts:      {c.reverts[:12]}")
        if e.deleted:
            out.append("    request deleted: challenger retired")
        elif e.content_sha256 is not None:
            planned = "no stored plan"
            if e.plan is not None:
                verdict = "passed" if e.plan.passed else "FAILED"
                planned = f"plan {verdict}, evaluated {e.plan.evaluated_at}"
                if _metrics(e.plan):
                    planned += f" ({_metrics(e.plan)})"
            out.append(f"    content:      {e.content_sha256[:12]} {e.experiment_id}: {planned}")
            if e.plan is not None and e.plan_digest and e.plan.identity is not None:
                out.append(f"    reviewed:     plan {e.plan_digest[:12]} of head "
                           f"{e.plan.identity.head[:12]}, signed {e.plan.identity.signed_at}")
        if e.plan is not None and e.registry is not None:
            status, why = e.registry
            model = (e.plan.model_sha256 or "")[:12]
            out.append(f"    registry now: model {model} {status}" + (f" ({why})" if why else ""))
        if e.note:
            out.append(f"    note:         {e.note}")
        if not e.applies:
            out.append("    applied:      no apply recorded for this commit")
        for record in e.applies:
            status = record.status
            when = record.finished_at or record.updated_at
            out.append(f"    approved by:  {_approval(record)}")
            out.append(f"    applied:      {status} at {when} (commit {record.commit[:12]})")
            if record.content_sha256 is not None:
                out.append(f"      plan used: {_used(record.plan_digest, e.plan_digest)}")
            # An unfinished apply's changes are in its log (it stopped before its history).
            changes = record.changes + (() if record.finished else tuple(
                c for s in record.steps for c in s.changes if c not in record.changes))
            if not changes:
                out.append("      no changes: production already matched")
            out += [f"      {line}" for line in _summary(changes)]
            for key in record.backup_keys:
                out.append(f"      backup: {key}")
            if record.detail("execution_arn") and any(c.target == "pipeline" for c in changes):
                out.append(f"      pipeline: {record.detail('execution_arn')}")
            if record.error and status != "complete":
                out.append(f"      error: {record.error}")
    return "\n".join(out)
