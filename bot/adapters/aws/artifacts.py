"""The signed store: models, plans and apply records in S3, so what was reviewed is what
deploys (the key layout is ``bot.core.names``; object I/O is ``bot.adapters.aws.s3``).

- a model is content-addressed and written once (``If-None-Match: *``); an existing object
  is never overwritten, and whoever reads a model can check its bytes against its name
  (apply does, before deploying);
- a model key's index entry names the model trained for it (what plan reuses instead of
  retraining), a statement signed with the plan-signing key;
- signed plans, written once: ``bot.adapters.aws.plan_store``;
- an apply record says what apply did at a commit, step by step (``bot.core.apply_record``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bot.adapters.aws import s3, signing
from bot.core import apply_record, integrity, names
from bot.core.apply_record import ApplyRecord
from bot.errors import BotError
from bot.settings import Target


def _get(bucket: str, key: str, region: str | None = None) -> bytes | None:
    return s3.get(bucket, key, region)


def get_model(t: Target, model_key: str) -> bytes | None:
    """The model trained for ``model_key``, if a signed index names one whose bytes match;
    None otherwise (never trained, or the index or the bytes cannot be trusted: retrain)."""
    key = names.model_index_key(t, model_key)
    index = _get(t.artifacts_bucket, key, t.region)
    if index is None:
        return None
    try:
        statement = signing.verify(t, index, names.artifacts_uri(t, key))
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


def plan_models(t: Target, model_key: str, champion_uri: str | None
                ) -> tuple[bytes | None, bytes | None]:
    """The two models a plan compares, read together: the one trained before for
    ``model_key`` (``get_model``; None: train it) and the champion's at ``champion_uri``
    (``read_model``; None when production records no model)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        stored = pool.submit(get_model, t, model_key)
        champion = read_model(champion_uri) if champion_uri is not None else None
        return stored.result(), champion


def put_model(t: Target, model_key: str, data: bytes) -> str:
    """Store a trained model (once, by digest) and the signed index entry for ``model_key``."""
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
    uri = names.artifacts_uri(t, key)
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


def put_apply_record(t: Target, commit: str, record: ApplyRecord) -> str:
    """Store what apply did at ``commit`` (its write-ahead log; the audit trail ``history``
    prints)."""
    key = names.apply_record_key(t, commit)
    s3.put(t.artifacts_bucket, key, apply_record.to_bytes(record), t.region)
    return names.artifacts_uri(t, key)


def get_apply_record(t: Target, commit: str) -> ApplyRecord | None:
    key = names.apply_record_key(t, commit)
    data = s3.get(t.artifacts_bucket, key, t.region)
    return None if data is None else apply_record.from_bytes(
        data, names.artifacts_uri(t, key))


def apply_records(t: Target) -> list[ApplyRecord]:
    """Every stored apply record of ``t``, in no particular order."""
    records = []
    for key in s3.keys(t.artifacts_bucket, names.apply_records_prefix(t), t.region):
        data = s3.get(t.artifacts_bucket, key, t.region)
        if data is not None:
            records.append(apply_record.from_bytes(data, names.artifacts_uri(t, key)))
    return records
