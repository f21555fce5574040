"""The training data a training job reads: Parquet shards, one per instance, with a signed
manifest, written once per data version and reused only when still what the plan job wrote.

``training-data/<shard key>/`` holds ``manifest.json`` (the source, its version, each shard's
name, sha256, size and rows), ``manifest.sig`` (the manifest's sha256 and the shard key,
signed by the plan job) and the shards in a folder of their own. The plan role may write
there, so nothing there is trusted for being there: reuse needs the signature to verify for
this shard key, the manifest to have the signed digest and to describe this data, every
shard to hash to the manifest's sha256 with no other object beside them (SageMaker reads the
whole prefix) and, in a versioned bucket, each to have been written once; anything else is
written again, in a new folder. The manifest's sha256 goes into the plan's training info,
which the plan's signature covers.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow
import pyarrow.parquet as pq

from bot.adapters import data_files as data
from bot.adapters.aws import s3, signing
from bot.adapters.aws import training_jobs as jobs
from bot.adapters.aws.training_jobs import StoredObject
from bot.core import integrity, names, training
from bot.core.evaluation import only_zero_and_one
from bot.core.request import Request, sha256_of
from bot.errors import BotError
from bot.settings import Target

Progress = Callable[[str], None]
SHARD_LAYOUT = 2  # bump when the shard format changes, so old shards are not reused


@dataclass(frozen=True)
class Shards:
    """The training data as the algorithm reads it: one Parquet object per instance."""

    data_uri: str  # the channel's S3 prefix, ending in "/"
    features: list[str]
    rows: int
    manifest_sha256: str = ""  # of manifest.json, which lists each shard's sha256
    #: The objects under ``data_uri`` as they were checked (by name below it): a job read
    #: these only if they were there before it started and are unchanged when it ends.
    objects: Mapping[str, StoredObject] = field(default_factory=dict)


def prepare_data(t: Target, request: Request, repo_root: Path, progress: Progress,
                 train_version: str | None = None) -> Shards:
    """The training data split into ``instance_count`` Parquet objects: the ones written
    before for this data version, if they are still exactly what the plan job wrote, else
    written (again)."""

    uri, target_column = request.data.train, request.data.target_column
    count = request.training.instance_count
    version = train_version or data.data_version(uri, repo_root)
    described = {"source": uri, "version": version, "target_column": target_column,
                 "shards": count, "layout": SHARD_LAYOUT}
    key = sha256_of(described)
    prefix = names.training_data_prefix(t, key[:32])
    reused = _verified_shards(t, key, prefix, described, progress)
    if reused is not None:
        progress(f"reusing the training data shards in {reused.data_uri} (signed manifest "
                 f"{reused.manifest_sha256[:12]}, every shard's sha256 checked)")
        return reused
    return _write_shards(t, key, prefix, described, repo_root, progress)


def _verified_shards(t: Target, key: str, prefix: str, described: dict[str, Any],
                     progress: Progress) -> Shards | None:
    """The shards under ``prefix`` if the plan job wrote them for this shard key and they
    are unchanged; None when there are none, or (with a progress line saying why) when
    they cannot be trusted."""

    manifest_uri, signature_uri = f"{prefix}/manifest.json", f"{prefix}/manifest.sig"
    if not s3.exists_uri(manifest_uri):
        return None
    raw = s3.read_uri(manifest_uri)
    digest = integrity.sha256_hex(raw)

    def distrust(why: str) -> None:
        progress(f"not reusing the training data shards in {prefix}/: {why}; writing them again")

    if not s3.exists_uri(signature_uri):
        distrust("manifest.sig is missing")
        return None
    try:
        statement = signing.verify(t, s3.read_uri(signature_uri), signature_uri)
    except signing.BadSignature as error:
        distrust(error.message)
        return None
    expected = integrity.training_data_statement(target=t.name, shard_key=key,
                                                 manifest_sha256=digest)
    differs = integrity.mismatch(statement, expected)
    if differs is not None:
        distrust(f"manifest.sig does not sign this manifest for this data ({differs})")
        return None
    try:
        manifest = json.loads(raw)
        folder = str(manifest["folder"])
        listed = {str(s["name"]): s for s in manifest["shard_files"]}
        if any(manifest.get(name) != value for name, value in described.items()):
            raise ValueError("it describes other data")
        if len(listed) != described["shards"] or "/" in folder + "".join(listed):
            raise ValueError("its shards do not match the instance count")
    except (ValueError, KeyError, TypeError) as error:
        distrust(f"manifest.json cannot be used ({error})")
        return None
    data_uri = f"{prefix}/{folder}/"
    found = jobs.list_objects(data_uri)
    extra = sorted(set(found) - set(listed))
    missing = sorted(set(listed) - set(found))
    rewritten = sorted(name for name, stored in found.items() if stored.versions > 1)
    if extra or missing or rewritten:
        distrust("objects " + ", ".join(extra) + " are not in the manifest" if extra
                 else "shards " + ", ".join(missing) + " are missing" if missing
                 else "shards " + ", ".join(rewritten) + " were written more than once")
        return None
    for name, shard in sorted(listed.items()):
        sha, size = jobs.sha256_of_object(f"{data_uri}{name}")
        if (sha, size) != (shard.get("sha256"), shard.get("size")):
            distrust(f"shard {name} has sha256 {sha[:12]} ({size} bytes), the signed manifest "
                     f"says {str(shard.get('sha256'))[:12]} ({shard.get('size')} bytes)")
            return None
    # Listed again: a shard rewritten while it was hashed is not taken for the one hashed.
    if jobs.list_objects(data_uri) != found:
        distrust("the shards changed while they were checked")
        return None
    return Shards(data_uri, list(manifest["features"]), int(manifest["rows"]), digest, found)


def _write_shards(t: Target, key: str, prefix: str, described: dict[str, Any],
                  repo_root: Path, progress: Progress) -> Shards:
    """Write the shards in a new folder, then their manifest, then its signature."""

    uri, target_column, count = described["source"], described["target_column"], \
        described["shards"]
    # A folder nobody could know before: what anyone put in an earlier one is not read.
    folder = f"data-{uuid.uuid4().hex[:16]}"
    data_uri = f"{prefix}/{folder}/"
    progress(f"writing {uri} as {count} Parquet shard(s) to {data_uri} ...")
    with data.open_table(uri, repo_root, target_column) as table, \
            tempfile.TemporaryDirectory(prefix="promotion-bot-shards-") as directory:
        features = table.features(target_column)
        rows = write_shards(table, target_column, count, Path(directory))
        files = []
        for shard, shard_rows in zip(sorted(Path(directory).iterdir()), rows, strict=True):
            files.append({"name": shard.name, "sha256": _file_sha256(shard),
                          "size": shard.stat().st_size, "rows": shard_rows})
            jobs.upload(shard, f"{data_uri}{shard.name}")
    objects = jobs.list_objects(data_uri)
    manifest = {**described, "features": features, "rows": sum(rows), "folder": folder,
                "shard_files": files}
    raw = json.dumps(manifest, indent=2).encode()
    digest = integrity.sha256_hex(raw)
    s3.write_uri(f"{prefix}/manifest.json", raw)
    statement = integrity.training_data_statement(target=t.name, shard_key=key,
                                                  manifest_sha256=digest)
    s3.write_uri(f"{prefix}/manifest.sig", signing.sign(t, statement).to_bytes())
    return Shards(data_uri, features, sum(rows), digest, objects)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(8 * 2**20):
            digest.update(block)
    return digest.hexdigest()


def changed_since_checked(shards: Shards) -> str | None:
    """How the shard objects differ from when they were checked (None: they do not)."""

    if not shards.objects:
        return None
    now = jobs.list_objects(shards.data_uri)
    if now == shards.objects:
        return None
    names = sorted(n for n in {*now, *shards.objects} if now.get(n) != shards.objects.get(n))
    return f"the training data in {shards.data_uri} changed ({', '.join(names[:5])})"


def write_shards(table: Any, target_column: str, count: int, directory: Path) -> list[int]:
    """Write ``table`` as ``count`` Parquet files, label first, every column float32; each
    batch is split evenly, so every shard gets a like share of every part of the table.
    """
    features = table.features(target_column)
    schema = table.schema
    wrong = [f"{name} ({schema.field(name).type})" for name in features
             if not _numeric(schema.field(name).type)]
    if wrong:
        raise BotError(f"{table.uri}: the XGBoost algorithm reads numbers only; not numbers: "
                       f"{', '.join(wrong[:10])}")
    if table.rows < count:
        raise BotError(f"{table.uri}: {table.rows} rows cannot be split across "
                       f"{count} training instances")
    columns = [target_column, *features]
    out = pyarrow.schema([(name, pyarrow.float32()) for name in columns])
    paths = [directory / f"part-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
    rows = [0] * count
    writers = [pq.ParquetWriter(path, out) for path in paths]
    try:
        for batch in table.batches(columns, training.BATCH_ROWS):
            labels = batch.column(0).to_numpy(zero_copy_only=False)
            if not only_zero_and_one(labels):
                raise BotError(f"{table.uri}: the target column {target_column!r} must hold "
                               "0 (legit) and 1 (fraud) only")
            cast = pyarrow.RecordBatch.from_arrays(
                [batch.column(i).cast(pyarrow.float32()) for i in range(len(columns))],
                schema=out)
            bounds = np.linspace(0, cast.num_rows, count + 1).astype(int)
            for index in range(count):
                part = cast.slice(int(bounds[index]), int(bounds[index + 1] - bounds[index]))
                if part.num_rows:
                    writers[index].write_batch(part)
                    rows[index] += part.num_rows
    finally:
        for writer in writers:
            writer.close()
    return rows


def _numeric(kind: Any) -> bool:
    return bool(pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind)
                or pyarrow.types.is_boolean(kind))
