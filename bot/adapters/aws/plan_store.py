"""Plans stored in S3, written once, so that nothing a later plan does changes what an
earlier one says.

Layout under ``s3://<target>-models/promotion-bot/plans/``:

- ``sha256/<sha256 of plan.json>/{plan.json,plan.sig,comment.md,*.png}``: one plan, written
  once (``If-None-Match: *``) under the digest of its plan.json, which the signature in
  plan.sig covers together with the plan's identity (its pull request head, request content,
  data versions, model, champion, bot version, plan format and signing time);
- ``heads/<head commit>/<plan digest>.json`` and ``contents/<content_sha256>/<plan
  digest>.json``: the same signature again, written once, listing the plans of a pull
  request head (apply deploys the last signed one) and of a request content (a re-plan may
  reuse the evaluation of the last signed one). Without the plan-signing key nobody can add
  an entry that verifies; an entry is chosen by the time it was signed, never by when it was
  written.

Before plans were bound to heads, a plan was stored at ``<content_sha256>/plan.json`` and
rewritten by each plan of that content: such a plan is never trusted, only named.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.adapters.aws import s3, signing
from bot.adapters.aws.clients import client
from bot.core import integrity, names, plan_json
from bot.errors import BotError
from bot.settings import Target

_get = s3.get
exists = s3.exists_uri


def _put(bucket: str, key: str, data: bytes, region: str | None = None, *,
         once: bool = False) -> bool:
    """Write an object; with ``once``, only if none exists (False: one was there already)."""
    return s3.put(bucket, key, data, region, once=once) is not None

if TYPE_CHECKING:
    from bot.core.domain import Plan

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def legacy_plan(t: Target, sha: str) -> str | None:
    """The URI of a plan of content ``sha`` in the layout before plans were bound to a head
    (``plans/<content_sha256>/plan.json``) when one is there; None otherwise. Never trusted:
    only named, so that a refusal can say "re-plan"."""
    uri = names.artifacts_uri(t, names.legacy_plan_key(t, sha))
    return uri if exists(uri) else None


@dataclass(frozen=True)
class StoredPlan:
    """A stored plan whose signature verified, where it is, and when it was signed."""

    plan: Plan
    digest: str  # sha256 of its plan.json: the name it is stored under
    uri: str  # s3:// URI of its plan.json
    signed_at: str


def put_plan(t: Target, plan: Plan, files: dict[str, bytes]) -> StoredPlan:
    """Store a plan once, under the digest of its plan.json: ``files`` (comment, plots) and
    plan.json side by side, then its signature (plan.sig) and the signed entries that find
    it by its pull request head and by its request content. Every object is written with
    ``If-None-Match: *``: nothing a later plan stores changes what this one says."""
    identity = plan.identity
    if plan.model_sha256 is None or identity is None:
        raise ValueError(f"a stored plan needs a content-addressed model and an identity, "
                         f"not {plan.artifact} and {identity}")
    for name in sorted(files):
        if "/" in name or name in ("", ".", "..") or name in ("plan.json", "plan.sig"):
            raise ValueError(f"plan file name {name!r} must be a plain file name")
    body = plan_json.to_bytes(plan)
    digest = integrity.sha256_hex(body)
    statement = integrity.plan_statement(
        target=t.name, content_sha256=plan.content_sha256, head=identity.head,
        plan_sha256=digest, plan_format=plan_json.FORMAT, model_sha256=plan.model_sha256,
        model_uri=plan.artifact, passed=plan.passed,
        gates=[(g.name, g.passed) for g in plan.gates], data_versions=identity.data_versions,
        champion=plan.champion_identity, champion_model_sha256=identity.champion_model_sha256,
        production_config_version=identity.production_config_version,
        bot_version=identity.bot_version, signed_at=identity.signed_at)
    envelope = signing.sign(t, statement).to_bytes()
    first = {names.plan_key(t, digest, name): data
             for name, data in {**files, "plan.json": body}.items()}
    then = {names.plan_key(t, digest, "plan.sig"): envelope,
            names.plan_entry_key(t, "heads", identity.head, digest): envelope,
            names.plan_entry_key(t, "contents", plan.content_sha256, digest): envelope}

    def put(key: str, data: bytes) -> None:
        if not _put(t.artifacts_bucket, key, data, t.region, once=True) and key.endswith(
                "/plan.json"):
            # The same plan stored already (its name is its digest); other bytes never are.
            found = _get(t.artifacts_bucket, key, t.region) or b""
            if integrity.sha256_hex(found) != digest:
                raise BotError(f"s3://{t.artifacts_bucket}/{key} exists with other bytes "
                               f"(sha256 {integrity.sha256_hex(found)[:12]}): not stored by "
                               "the plan job; the plan was not stored")

    # The files side by side (a round trip each), then what finds and vouches for them.
    with ThreadPoolExecutor(max_workers=max(len(first), len(then))) as pool:
        for round_ in (first, then):
            for done in [pool.submit(put, key, data) for key, data in round_.items()]:
                done.result()
    return StoredPlan(plan, digest, f"{names.plan_prefix(t, digest)}/plan.json", identity.signed_at)


def get_plan(t: Target, digest: str) -> Plan | None:
    """The stored plan whose plan.json has sha256 ``digest``, once plan.sig beside it verifies;
    None when no such plan was stored.

    Raises ``bot.core.plan_json.UnreadablePlan`` for a plan it cannot trust: no plan.sig, a
    signature that does not verify with the plan-signing key, a statement of another plan, or
    a plan.json that is not the one signed.
    """
    where = f"{names.plan_prefix(t, digest)}/plan.json"
    if _get(t.artifacts_bucket, names.plan_key(t, digest, "plan.json"),
            t.region) is None:
        return None
    sig = f"{names.plan_prefix(t, digest)}/plan.sig"
    envelope = _get(t.artifacts_bucket, names.plan_key(t, digest, "plan.sig"),
                    t.region)
    if envelope is None:
        raise plan_json.UnreadablePlan(
            f"{where} is not signed (no plan.sig beside it): it was not stored by the plan job")
    try:
        statement = signing.verify(t, envelope, sig)
    except signing.BadSignature as error:
        raise plan_json.UnreadablePlan(
            f"{where} is not signed by the plan job: {error.message}") from None
    return _signed_plan(t, digest, statement).plan


def plan_of_head(t: Target, head: str) -> StoredPlan | None:
    """The plan of pull request head ``head``: of the signed entries listed for it, the one
    signed last (never the one written last); None when that head was never planned.

    Entries that do not verify, or that were signed for another head, target or plan, are
    passed over; ``UnreadablePlan`` says why when no entry is left, or when the plan the last
    signed entry names is not the plan that was signed.
    """
    return _latest(t, names.plan_entry_key(t, "heads", head), {"head": head})


def plan_of_content(t: Target, sha: str) -> StoredPlan | None:
    """The last signed plan of request content ``sha``, whichever head it was made at: what
    a re-plan may reuse the evaluation of. ``UnreadablePlan`` as for ``plan_of_head``."""
    return _latest(t, names.plan_entry_key(t, "contents", sha), {"content_sha256": sha})


def _latest(t: Target, prefix: str, expected: dict[str, str]) -> StoredPlan | None:
    """The verified entry under ``prefix`` with the latest signing time, and its plan.

    Entries are tried newest first by the time they claim, so the first one that verifies is
    the latest signed of those that do: one KMS call in the usual case, however many there are.
    """
    entries = []
    for page in client("s3", t.region).get_paginator("list_objects_v2").paginate(
            Bucket=t.artifacts_bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            digest = item["Key"][len(prefix):].removesuffix(".json")
            if _HEX64.match(digest) and item["Key"].endswith(".json"):
                data = _get(t.artifacts_bucket, item["Key"], t.region)
                if data is not None:
                    entries.append((_claimed_time(data), digest, item["Key"], data))
    passed_over = []
    for _, digest, key, data in sorted(entries, reverse=True):
        where = names.artifacts_uri(t, key)
        try:
            statement = signing.verify(t, data, where)
        except signing.BadSignature as error:
            passed_over.append(error.message)
            continue
        differs = integrity.mismatch(statement, {
            "kind": integrity.PLAN, "format": integrity.PLAN_STATEMENT_FORMAT,
            "target": t.name, **expected, "plan_sha256": digest})
        if differs is not None:
            passed_over.append(f"{where} is signed for another plan ({differs})")
            continue
        # The newest signed plan whose bytes were changed is refused, not passed over for an
        # older one: a store someone tampered with deploys nothing.
        return _signed_plan(t, digest, statement)
    if passed_over:
        raise plan_json.UnreadablePlan(
            f"no plan listed under s3://{t.artifacts_bucket}/{prefix} can be trusted: "
            f"{passed_over[0]}" + (f" (and {len(passed_over) - 1} more)"
                                   if len(passed_over) > 1 else ""))
    return None


def _claimed_time(envelope: bytes) -> str:
    """The signing time an entry claims, before it is verified (only to order the tries)."""
    try:
        claimed = integrity.Envelope.from_bytes(envelope).statement.get("signed_at")
    except integrity.BadEnvelope:
        return ""
    return claimed if isinstance(claimed, str) else ""


def _signed_plan(t: Target, digest: str, statement: dict[str, Any]) -> StoredPlan:
    """The plan stored under ``digest``, which the verified ``statement`` vouches for."""
    uri = f"{names.plan_prefix(t, digest)}/plan.json"
    if statement.get("format") != integrity.PLAN_STATEMENT_FORMAT:
        raise plan_json.UnreadablePlan(
            f"{uri} is signed in an older format that names no pull request head, data or "
            "champion; re-run plan")
    differs = integrity.mismatch(statement, {"kind": integrity.PLAN, "target": t.name,
                                             "plan_sha256": digest})
    if differs is not None:
        raise plan_json.UnreadablePlan(f"{uri} is not the plan that was signed ({differs})")
    data = _get(t.artifacts_bucket, names.plan_key(t, digest, "plan.json"), t.region)
    if data is None:
        raise plan_json.UnreadablePlan(f"{uri} is missing, although a signed entry names it")
    differs = integrity.mismatch(statement, {"plan_sha256": integrity.sha256_hex(data)})
    if differs is not None:
        raise plan_json.UnreadablePlan(
            f"{uri} is not the plan that was signed ({differs}): it was changed after plan")
    plan = plan_json.from_bytes(data, uri)
    differs = integrity.mismatch(statement, _decisions(plan))
    if differs is not None:  # only a bug makes these differ: plan_sha256 covers them
        raise plan_json.UnreadablePlan(f"{uri} disagrees with its signature ({differs})")
    return StoredPlan(plan, digest, uri, str(statement["signed_at"]))


def _decisions(plan: Plan) -> dict[str, Any]:
    """What the statement says of ``plan``, as plan.json says it."""
    identity = plan.identity
    return {"content_sha256": plan.content_sha256, "model_sha256": plan.model_sha256,
            "model": plan.artifact, "passed": plan.passed,
            "gates": [[g.name, g.passed] for g in plan.gates],
            "head": identity.head if identity else None,
            "data": dict(sorted(identity.data_versions.items())) if identity else None,
            "champion": {"identity": plan.champion_identity,
                         "model_sha256": identity.champion_model_sha256,
                         "config_version": identity.production_config_version}
            if identity else None,
            "bot_version": identity.bot_version if identity else None,
            "signed_at": identity.signed_at if identity else None}
