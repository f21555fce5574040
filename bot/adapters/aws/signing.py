"""Sign and verify statements with the target's KMS asymmetric key (``kms:Sign``,
``kms:Verify``).

The statement's canonical JSON is sent as a RAW message (KMS hashes it with SHA-256), so
the same bytes verify with KMS or with the key's public half anywhere. Verification always
uses the key and algorithm of the settings, never the ones an envelope names: an envelope
signed with any other key is refused.
"""

from __future__ import annotations

from typing import Any

from bot.adapters.aws.clients import client, error_code
from bot.core.integrity import BadEnvelope, Envelope, canonical
from bot.errors import AwsError, BotError
from bot.settings import Target

#: KMS signs messages of at most 4096 bytes; statements are a few hundred.
MAX_MESSAGE = 4096


class BadSignature(BotError):
    """A signature that is missing, malformed, made with another key, or does not verify."""


def sign(t: Target, statement: dict[str, Any]) -> Envelope:
    """``statement`` signed with the target's key (only the plan role may do this)."""
    message = canonical(statement)
    if len(message) > MAX_MESSAGE:
        raise ValueError(f"a signed statement must be at most {MAX_MESSAGE} bytes")
    try:
        answer = client("kms", t.region).sign(
            KeyId=t.signing_key, Message=message, MessageType="RAW",
            SigningAlgorithm=t.signing_algorithm)
    except AwsError as error:
        if not error_code(error):  # no answer from KMS: not a refusal to explain
            raise
        raise BotError(_explain(t, "sign with", error)) from None
    return Envelope(statement, str(answer["KeyId"]), str(answer["SigningAlgorithm"]),
                    bytes(answer["Signature"]))


def verify(t: Target, data: bytes, where: str) -> dict[str, Any]:
    """The statement in the envelope ``data`` (stored at ``where``) once KMS confirms that the
    target's key signed it; ``BadSignature`` saying why otherwise."""
    try:
        envelope = Envelope.from_bytes(data)
    except BadEnvelope as error:
        raise BadSignature(f"{where} is not a signature: {error}") from None
    if envelope.algorithm != t.signing_algorithm:
        raise BadSignature(f"{where} was signed with {envelope.algorithm}, not "
                           f"{t.signing_algorithm}")
    try:
        answer = client("kms", t.region).verify(
            KeyId=t.signing_key, Message=canonical(envelope.statement), MessageType="RAW",
            Signature=envelope.signature, SigningAlgorithm=t.signing_algorithm)
    except AwsError as error:
        if error_code(error) == "KMSInvalidSignatureException":
            answer = {"SignatureValid": False}
        elif not error_code(error):  # no answer from KMS: not a refusal to explain
            raise
        else:
            raise BotError(_explain(t, "verify with", error)) from None
    if answer.get("SignatureValid") is not True:
        raise BadSignature(f"{where}: the signature does not verify with {t.signing_key} "
                           f"(it says it was made by {envelope.key_id})")
    return envelope.statement


def _explain(t: Target, what: str, error: Exception) -> str:
    code = error_code(error)
    if code == "NotFoundException":
        return (f"KMS key {t.signing_key} not found in {t.region}: create the plan-signing key "
                "(asymmetric, SIGN_VERIFY) or set PROMOTION_BOT_SIGNING_KEY")
    if code in ("AccessDeniedException", "AccessDenied"):
        return (f"not allowed to {what} KMS key {t.signing_key} ({code}): only the plan role "
                "may sign, plan and apply may verify")
    if code in ("DisabledException", "KMSInvalidStateException"):
        return f"KMS key {t.signing_key} cannot be used now ({code}); enable it"
    return f"KMS refused to {what} key {t.signing_key}: {code or error}"
