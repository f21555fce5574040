"""The audit trail as the terminal shows it (``promotion-bot history``)."""

from __future__ import annotations

from typing import Any

from bot.core.audit import Entry
from bot.core.domain import Plan
from bot.report.apply_outcome import change_lines, shorten


def _approval(record: dict[str, Any]) -> str:
    approval = record.get("approval") or {}
    who = ", ".join(approval.get("approvers") or []) or "nobody recorded"
    return f"{who} ({approval.get('source', 'unknown')})"


def _change(change: dict[str, Any]) -> list[str]:
    drift = " [drift overwritten]" if change.get("drift") else ""
    return [f"{where} {what}: {shorten(before, 70)} → {shorten(after, 70)}{drift}"
            for where, what, before, after in change_lines(change)]


def _summary(changes: list[dict[str, Any]]) -> list[str]:
    """What an apply changed, one line per place: the PR comment and apply record hold all."""
    by_target: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        by_target.setdefault(str(change.get("target")), []).append(change)
    lines = []
    for where, found in by_target.items():
        if where == "ssm":
            lines.append("ssm: " + ", ".join(line.split(" ", 1)[1].rsplit("/", 1)[-1]
                                            for c in found for line in _change(c)))
        elif where == "s3-config":
            lines.append(f"s3-config: {len(found)} field(s) rewritten")
        else:
            lines += [line for c in found for line in _change(c)]
    drifted = sum(1 for c in changes if c.get("drift"))
    if drifted:
        lines.append(f"drift: {drifted} hand-made value(s) overwritten (kept in the backup)")
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
        if e.note:
            out.append(f"    note:         {e.note}")
        if not e.applies:
            out.append("    applied:      no apply recorded for this commit")
        for record in e.applies:
            status = record.get("status", "?")
            when = record.get("finished_at") or record.get("updated_at") or "?"
            out.append(f"    approved by:  {_approval(record)}")
            applied_at = str(record.get("commit"))[:12]
            out.append(f"    applied:      {status} at {when} (commit {applied_at})")
            if record.get("content_sha256") is not None:
                out.append(f"      plan used: {_used(record.get('plan_digest'), e.plan_digest)}")
            changes = record.get("changes") or []
            if not changes:
                out.append("      no changes: production already matched")
            out += [f"      {line}" for line in _summary(changes)]
            for key in record.get("backup_keys") or []:
                out.append(f"      backup: {key}")
            if record.get("execution_arn"):
                out.append(f"      pipeline: {record['execution_arn']}")
            if record.get("error") and status != "complete":
                out.append(f"      error: {record['error']}")
    return "\n".join(out)
