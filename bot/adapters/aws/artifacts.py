"""The signed store: models, plans and apply records in S3, so what was reviewed is what
deploys (the key layout is ``bot.core.names``; object I/O is ``bot.adapters.aws.s3``).

- a model is content-addressed and written once (``If-None-Match: *``); an existing object
  is never overwritten, and whoever reads a model can check its bytes against its name
  (apply does, before deploying);
- a model key's index entry names the model trained for it (what plan reuses instead of
  retraining), a statement signed with the plan-signing key;
- a content's plan (plan.json, plan.sig, comment.md, PNGs) is the latest plan of that
  content and its signature. A re-plan of the same content rewrites them (a new champion
  means a new comparison); without the key nobody else can write a plan that verifies;
- an apply record says what apply did at a commit, step by step (``bot.core.apply_record``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.adapters.aws import s3
from bot.core import apply_record, integrity, names
from bot.core.apply_record import ApplyRecord
from bot.errors import BotError
from bot.settings import Target

if TYPE_CHECKING:
    from bot.core.domain import Plan

def _get(bucket: str, key: str, region: str | None = None) -> bytes | None:
    return s3.get(bucket, key, region)


def model_uri(t: Target, data: bytes) -> str:
    """Where the model ``data`` is (or would be) stored: named by the sha256 of its bytes."""
    return f"s3://{t.artifacts_bucket}/{names.model_key(t, integrity.sha256_hex(data))}"


def get_model(t: Target, model_key: str) -> bytes | None:
    """The model trained for ``model_key``, if a signed index names one whose bytes match;
    None otherwise (never trained, or the index or the bytes cannot be trusted: retrain)."""
    from bot.adapters.aws import signing

    key = names.model_index_key(t, model_key)
    index = _get(t.artifacts_bucket, key, t.region)
    if index is None:
        return None
    try:
        statement = signing.verify(t, index, f"s3://{t.artifacts_bucket}/{key}")
    except signing.BadSignature:
        return None
    digest = statement.get("model_sha256")
    if (statement.get("kind") != integrity.MODEL or statement.get("target") != t.name
            or statement.get("model_key") != model_key or not isinstance(digest, str)):
        return None
    data = _get(t.artifacts_bucket, names.model_key(t, digest), t.region)
    if data is None or integrity.sha256_hex(data) != digest:
        return None
    return data


def put_model(t: Target, model_key: str, data: bytes) -> str:
    """Store a trained model (once, by digest) and the signed index entry for ``model_key``."""
    from bot.adapters.aws import signing

    uri = store_model(t, data)
    statement = integrity.model_statement(target=t.name, model_key=model_key,
                                          model_sha256=integrity.sha256_hex(data), model_uri=uri)
    s3.put(t.artifacts_bucket, names.model_index_key(t, model_key),
           signing.sign(t, statement).to_bytes(), t.region)
    return uri


def store_model(t: Target, data: bytes) -> str:
    """Write ``data`` under its digest unless it is there already; never overwrite.

    An object already under that name with other bytes was written by someone else than
    the bot: refused, naming both digests.
    """
    digest = integrity.sha256_hex(data)
    key = names.model_key(t, digest)
    uri = f"s3://{t.artifacts_bucket}/{key}"
    if not s3.put_once(t.artifacts_bucket, key, data, t.region):
        verify_model(uri)
    return uri


def read_model(uri: str) -> bytes:
    """The model at ``uri``; when the URI names a digest, only if the bytes have it."""
    data = s3.read_uri(uri)
    expected = integrity.model_digest(uri)
    if expected is not None:
        found = integrity.sha256_hex(data)
        if found != expected:
            raise TamperedModel(uri, expected, found)
    return data


def verify_model(uri: str) -> str:
    """Recompute the sha256 of the model at ``uri`` and check it against the one its name
    records; return it. ``BotError`` for a URI that names no digest, ``TamperedModel`` for
    bytes that are not the reviewed ones."""
    if integrity.model_digest(uri) is None:
        raise BotError(f"{uri}: not a content-addressed model (models/sha256/<digest>/"
                       "model.tar.gz), so its bytes cannot be checked; re-run plan")
    return integrity.sha256_hex(read_model(uri))


class TamperedModel(BotError):
    """A stored model whose bytes are not the ones its name (and the signed plan) records."""

    def __init__(self, uri: str, expected: str, found: str) -> None:
        super().__init__(f"{uri}: the model's bytes have sha256 {found}, but the reviewed model "
                         f"has sha256 {expected}; it was replaced after review")
        self.uri, self.expected, self.found = uri, expected, found


def plan_prefix(t: Target, sha: str) -> str:
    """The S3 URI (no trailing slash) under which the plan of content ``sha`` is stored."""
    return f"s3://{t.artifacts_bucket}/{names.plan_key(t, sha)}"


def get_plan(t: Target, sha: str) -> Plan | None:
    """The stored plan of content ``sha``, once its signature verifies; None when that content
    was never planned.

    Raises ``bot.core.plan_json.UnreadablePlan`` for a plan.json it cannot read or trust:
    no plan.sig, a signature that does not verify with the plan-signing key, or a plan.json
    that is not the one signed.
    """
    from bot.adapters.aws import signing
    from bot.core import plan_json

    key = names.plan_key(t, sha, "plan.json")
    where = f"s3://{t.artifacts_bucket}/{key}"
    data = _get(t.artifacts_bucket, key, t.region)
    if data is None:
        return None
    sig_key = names.plan_key(t, sha, "plan.sig")
    envelope = _get(t.artifacts_bucket, sig_key, t.region)
    if envelope is None:
        raise plan_json.UnreadablePlan(
            f"{where} is not signed (no plan.sig beside it): it was not stored by the plan job")
    try:
        statement = signing.verify(t, envelope, f"s3://{t.artifacts_bucket}/{sig_key}")
    except signing.BadSignature as error:
        raise plan_json.UnreadablePlan(
            f"{where} is not signed by the plan job: {error.message}") from None
    differs = integrity.mismatch(statement, {
        "kind": integrity.PLAN, "target": t.name, "content_sha256": sha,
        "plan_sha256": integrity.sha256_hex(data)})
    if differs is not None:
        raise plan_json.UnreadablePlan(
            f"{where} is not the plan that was signed ({differs}): it was changed after plan")
    plan = plan_json.from_bytes(data, where)
    differs = integrity.mismatch(statement, _decisions(plan))
    if differs is not None:  # only a bug makes these differ: plan_sha256 covers them
        raise plan_json.UnreadablePlan(f"{where} disagrees with its signature ({differs})")
    return plan


def _decisions(plan: Plan) -> dict[str, Any]:
    return {"model_sha256": plan.model_sha256, "model": plan.artifact, "passed": plan.passed,
            "gates": [[g.name, g.passed] for g in plan.gates]}


def put_plan(t: Target, plan: Plan, files: dict[str, bytes]) -> str:
    """Store a plan: ``files`` (comment, plots), plan.json, and plan.sig last, so a plan is
    complete once its signature is visible. Returns the plan's prefix."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.adapters.aws import signing
    from bot.core import plan_json

    if plan.model_sha256 is None:
        raise ValueError(f"a stored plan needs a content-addressed model, not {plan.artifact}")
    body = plan_json.to_bytes(plan)
    statement = integrity.plan_statement(
        target=t.name, content_sha256=plan.content_sha256, plan_sha256=integrity.sha256_hex(body),
        model_sha256=plan.model_sha256, model_uri=plan.artifact, passed=plan.passed,
        gates=[(g.name, g.passed) for g in plan.gates])
    envelope = signing.sign(t, statement).to_bytes()
    named = {**files, "plan.json": body, "plan.sig": envelope}
    for name in sorted(files):
        if "/" in name or name in ("", ".", "..") or name in ("plan.json", "plan.sig"):
            raise ValueError(f"plan file name {name!r} must be a plain file name")
    def put(name: str) -> None:
        s3.put(t.artifacts_bucket, names.plan_key(t, plan.content_sha256, name), named[name],
               t.region)

    # The files side by side (a round trip each), then the signature once all are there.
    with ThreadPoolExecutor(max_workers=len(named) - 1) as pool:
        for done in [pool.submit(put, name) for name in [*sorted(files), "plan.json"]]:
            done.result()
    put("plan.sig")
    return plan_prefix(t, plan.content_sha256)


def put_apply_record(t: Target, commit: str, record: ApplyRecord) -> str:
    """Store what apply did at ``commit`` (its write-ahead log; the audit trail ``history``
    prints)."""
    key = names.apply_record_key(t, commit)
    s3.put(t.artifacts_bucket, key, apply_record.to_bytes(record), t.region)
    return f"s3://{t.artifacts_bucket}/{key}"


def get_apply_record(t: Target, commit: str) -> ApplyRecord | None:
    key = names.apply_record_key(t, commit)
    data = s3.get(t.artifacts_bucket, key, t.region)
    return None if data is None else apply_record.from_bytes(
        data, f"s3://{t.artifacts_bucket}/{key}")


def apply_records(t: Target) -> list[ApplyRecord]:
    """Every stored apply record of ``t``, in no particular order."""
    records = []
    for key in s3.keys(t.artifacts_bucket, names.apply_records_prefix(t), t.region):
        data = s3.get(t.artifacts_bucket, key, t.region)
        if data is not None:
            records.append(apply_record.from_bytes(data, f"s3://{t.artifacts_bucket}/{key}"))
    return records
