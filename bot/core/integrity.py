"""What makes a stored model or plan trustworthy: content digests and signed statements (pure).

Models are stored under the sha256 of their bytes (``.../models/sha256/<hex>/model.tar.gz``),
so a URI names exactly one content and anyone can check it. Plans (and the index from a
model key to the model trained for it) are *statements* signed with a KMS key only the plan
role may use for signing: a statement is a small JSON object, signed in its canonical form
(sorted keys, no spaces); the envelope stored beside the plan carries the statement, the key
and algorithm that signed it and the signature. KMS calls live in
``bot.adapters.aws.signing``; this module only builds and reads the values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

#: ``kind`` of a signed plan statement, and of a model-index statement.
PLAN = "promotion-bot/plan"
MODEL = "promotion-bot/model"
#: ``kind`` of the statement that binds a training-data shard manifest to its shard key.
TRAINING_DATA = "promotion-bot/training-data"
ENVELOPE_FORMAT = 1
#: The layout of a signed plan statement. 1 (no ``format`` field): content, plan digest,
#: model and gates only, bound to no head, data, champion or time; never trusted now.
PLAN_STATEMENT_FORMAT = 2

_LONG_HEX = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")  # commit ids and sha256 digests
_MODEL_URI = re.compile(r"^s3://[^/]+/(?:.+/)?models/sha256/([0-9a-f]{64})/model\.tar\.gz$")


class BadEnvelope(ValueError):
    """A signature file that is not a signed statement of this bot's format."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_digest(uri: str) -> str | None:
    """The sha256 a content-addressed model URI names; None for any other URI."""
    found = _MODEL_URI.match(uri)
    return found.group(1) if found else None


def canonical(statement: dict[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def plan_statement(*, target: str, content_sha256: str, head: str, plan_sha256: str,
                   plan_format: int, model_sha256: str, model_uri: str, passed: bool,
                   gates: list[tuple[str, bool]], data_versions: dict[str, str],
                   champion: str, champion_model_sha256: str | None,
                   production_config_version: str | None, bot_version: str,
                   signed_at: str) -> dict[str, Any]:
    """What plan signs: the plan.json bytes (by digest), which are the plan's identity, and
    that identity spelled out: the target, the request content, the pull request's head, the
    data's versions, the model, the champion it was judged against (its identity, model
    digest and the production config's version), the bot's version, plan.json's format, the
    time of signing; and the decisions apply relies on."""
    return {"kind": PLAN, "format": PLAN_STATEMENT_FORMAT, "target": target,
            "content_sha256": content_sha256, "head": head, "plan_sha256": plan_sha256,
            "plan_format": plan_format, "model_sha256": model_sha256, "model": model_uri,
            "passed": passed, "gates": [[name, ok] for name, ok in gates],
            "data": dict(sorted(data_versions.items())),
            "champion": {"identity": champion, "model_sha256": champion_model_sha256,
                         "config_version": production_config_version},
            "bot_version": bot_version, "signed_at": signed_at}


def model_statement(*, target: str, model_key: str, model_sha256: str,
                    model_uri: str) -> dict[str, Any]:
    """What plan signs when it trains: the model stored for ``model_key`` (for reuse)."""
    return {"kind": MODEL, "target": target, "model_key": model_key,
            "model_sha256": model_sha256, "model": model_uri}


def training_data_statement(*, target: str, shard_key: str,
                            manifest_sha256: str) -> dict[str, Any]:
    """What plan signs when it writes training shards: the manifest (each shard's sha256) of
    the data its shard key names (source, version, layout), so a later plan reuses only
    shards the plan job wrote, not ones someone else put in their place."""
    return {"kind": TRAINING_DATA, "target": target, "shard_key": shard_key,
            "manifest_sha256": manifest_sha256}


@dataclass(frozen=True)
class Envelope:
    """A signed statement as stored: ``plan.sig`` or a model-index file."""

    statement: dict[str, Any]
    key_id: str  # the key that signed, as KMS named it (its ARN)
    algorithm: str
    signature: bytes

    def to_bytes(self) -> bytes:
        return json.dumps({
            "format": ENVELOPE_FORMAT, "statement": self.statement, "key_id": self.key_id,
            "algorithm": self.algorithm,
            "signature": base64.b64encode(self.signature).decode(),
        }, indent=2, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        try:
            value = json.loads(data)
        except ValueError:
            raise BadEnvelope("not JSON") from None
        if not isinstance(value, dict) or value.get("format") != ENVELOPE_FORMAT:
            raise BadEnvelope(f"not a format-{ENVELOPE_FORMAT} signature envelope")
        statement, key_id = value.get("statement"), value.get("key_id")
        algorithm, signature = value.get("algorithm"), value.get("signature")
        if not (isinstance(statement, dict) and isinstance(key_id, str)
                and isinstance(algorithm, str) and isinstance(signature, str)):
            raise BadEnvelope("statement, key_id, algorithm or signature missing")
        try:
            raw = base64.b64decode(signature, validate=True)
        except ValueError:
            raise BadEnvelope("the signature is not base64") from None
        return cls(statement, key_id, algorithm, raw)


def mismatch(statement: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """The first field where a verified ``statement`` says something else than ``expected``,
    as ``field: signed X, found Y``; None when all agree."""
    for name, value in expected.items():
        if statement.get(name) != value:
            return f"{name}: signed {_short(statement.get(name))}, found {_short(value)}"
    return None


def _short(value: object) -> str:
    if isinstance(value, str) and _LONG_HEX.match(value):
        return value[:12]
    return json.dumps(value)
