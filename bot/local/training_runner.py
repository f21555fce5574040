"""SageMaker training jobs that really train, for the embedded default (moto only records them).

``CreateTrainingJob`` starts a runner thread that does what SageMaker does for the built-in
XGBoost algorithm in File mode: it lays out each instance's share of the S3 channels on disk
(``ShardedByS3Key``: object ``i`` goes to instance ``i mod n``), writes the container's
configuration files, runs one worker process per instance with data
(``python -m bot.local.training_worker``, the algorithm's own steps), joined by XGBoost's
tracker into one collective when there are several, and uploads what the first worker saved
as ``<S3OutputPath>/<job>/output/model.tar.gz``.

``DescribeTrainingJob`` reports it as SageMaker does: ``InProgress`` (Starting, Downloading,
Training, Uploading), then ``Completed``, ``Failed`` with the worker's ``FailureReason``, or
``Stopped`` (by ``StopTrainingJob``, or ``MaxRuntimeExceeded``). A job name can be used once,
and the role must exist, as on AWS.

``hold()`` keeps new jobs in Starting (as if instances were being provisioned) until
``release()``, so a test can act while a job is certainly running.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.iam.models import iam_backends
from moto.s3.models import s3_backends
from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
from moto.sagemaker.models import FakeTrainingJob
from moto.utilities.utils import get_partition

from bot.errors import first_line

_lock = threading.RLock()
_runs: dict[tuple[str, str, str], _Run] = {}
_gate = threading.Event()
_gate.set()
#: The algorithm images the workers stand in for: the XGBoost 3 algorithm (xgboost >= 3.0).
EMULATED_REPOSITORY = "sagemaker-xgboost"
WORKER = "bot.local.training_worker"
KILL_GRACE_SECONDS = 5.0


def hold() -> None:
    """New and starting jobs wait in ``Starting`` until ``release()``."""
    _gate.clear()


def release() -> None:
    _gate.set()


@contextlib.contextmanager
def held() -> Iterator[None]:
    hold()
    try:
        yield
    finally:
        release()


def shutdown(timeout: float = 30.0) -> None:
    """Stop every running job's workers and wait for the runners (server shutdown, tests)."""
    with _lock:
        runs = list(_runs.values())
        _runs.clear()
    for run in runs:
        run.stop_requested.set()
    for run in runs:
        run.join(timeout)


def peak_rss_mib(name: str) -> float | None:
    """The largest peak RSS of the named job's workers (what one instance needed), if known."""
    with _lock:
        for (_, _, job_name), run in _runs.items():
            if job_name == name:
                return run.peak_rss_mib
    return None


class TrainingJobActions:
    """Actions for moto's ``SageMakerResponse``: create, describe and stop that really train
    (a mixin: moto's class comes after it in the bases of ``moto_gaps``' response class)."""

    # Provided by moto's response class, which comes after this one.
    sagemaker_backend: Any
    current_account: str
    region: str
    _get_param: Callable[..., Any]

    def create_training_job(self) -> Any:
        name = self._get_param("TrainingJobName")
        with _lock:
            if name in self.sagemaker_backend.training_jobs:
                arn = FakeTrainingJob.arn_formatter(name, self.current_account, self.region)
                raise ResourceInUseException(
                    "Training job names must be unique within an AWS account and region, "
                    f"and a training job with this name already exists ({arn})")
            role = str(self._get_param("RoleArn") or "")
            if not _role_exists(self.current_account, self.region, role):
                raise ValidationError(
                    f"Could not assume role {role}. Please ensure that the role exists and "
                    "allows principal 'sagemaker.amazonaws.com' to assume the role.")
            result = super().create_training_job()  # type: ignore[misc]
            job = self.sagemaker_backend.training_jobs[name]
            _begin(job)
            run = _Run(self.current_account, self.region, job)
            _runs[(self.current_account, self.region, name)] = run
        run.start()
        return result

    def describe_training_job(self) -> Any:
        with _lock:
            return super().describe_training_job()  # type: ignore[misc]

    def stop_training_job(self) -> Any:
        name = self._get_param("TrainingJobName")
        with _lock:
            job = self.sagemaker_backend.training_jobs.get(name)
            if job is None:
                arn = FakeTrainingJob.arn_formatter(name, self.current_account, self.region)
                raise ValidationError(message=f"Could not find training job '{arn}'.")
            if job.training_job_status != "InProgress":
                raise ValidationError(
                    message="The request was rejected because the training job is in "
                    f"status {job.training_job_status}.")
            _transition(job, "Stopping", "Stopping", "Stopping the training job")
            run = _runs.get((self.current_account, self.region, name))
        if run is not None:
            run.stop_requested.set()
        return ActionResult({})


def _role_exists(account: str, region: str, arn: str) -> bool:
    try:
        iam_backends[account][get_partition(region)].get_role_by_arn(arn)
    except Exception:  # moto's IAMNotFoundException, or a malformed ARN
        return False
    return True


def _now() -> Any:
    return utcnow()


def _begin(job: Any) -> None:
    job.training_job_status = "InProgress"
    job.secondary_status = "Starting"
    job.secondary_status_transitions = []
    job.training_start_time = None
    job.training_end_time = None
    job.model_artifacts = None
    job.final_metric_data_list = None
    job.failure_reason = None
    _transition(job, "InProgress", "Starting", "Preparing the instances for training")


def _transition(job: Any, status: str, secondary: str, message: str) -> None:
    now = _now()
    with _lock:
        transitions = job.secondary_status_transitions
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now
        transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": message})
        job.training_job_status = status
        job.secondary_status = secondary
        job.last_modified_time = now


class _Run(threading.Thread):
    """One training job's life: start, download, train (worker processes), upload, end."""

    def __init__(self, account: str, region: str, job: Any) -> None:
        super().__init__(daemon=True, name=f"training-job-{job.training_job_name}")
        self.account, self.region, self.job = account, region, job
        self.stop_requested = threading.Event()
        self.peak_rss_mib: float | None = None
        self._began = time.monotonic()
        runtime = (job.stopping_condition or {}).get("MaxRuntimeInSeconds") or 86_400
        self._deadline = self._began + float(runtime)

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # the emulator's own failure: reported like AWS's
            self._end("Failed", "Failed", f"InternalServerError: {first_line(error)}")

    # -- the steps -------------------------------------------------------------------------

    def _run(self) -> None:
        while not _gate.wait(0.05):  # instances being provisioned
            if self._interrupted():
                return
        if self._interrupted():
            return
        job = self.job
        image = str((job.algorithm_specification or {}).get("TrainingImage", ""))
        if not emulated(image):
            self._end("Failed", "Failed", f"ClientError: local-aws runs the XGBoost 3 algorithm "
                      f"(sagemaker-xgboost:3.0-5 and later), not {image or '(no image)'}")
            return
        resources = job.resource_config or {}
        hosts = [f"algo-{i + 1}" for i in range(int(resources.get("InstanceCount") or 1))]
        with tempfile.TemporaryDirectory(prefix=f"local-training-{job.training_job_name}-") \
                as directory:
            root = Path(directory)
            _transition(job, "InProgress", "Downloading", "Downloading input data")
            job.training_start_time = _now()
            problem = self._download(root, hosts)
            if problem:
                self._end("Failed", "Failed", problem)
                return
            with_data = [h for h in hosts
                         if any(p.is_file() for p in (root / h / "input" / "data").rglob("*"))]
            if not with_data:
                self._end("Failed", "Failed", "ClientError: No data in training channel path "
                          "/opt/ml/input/data/train")
                return
            if self._interrupted():
                return
            _transition(job, "InProgress", "Training",
                        "Training image download completed. Training in progress.")
            outcome = self._train(root, hosts, with_data)
            if outcome is not None:
                if outcome:
                    self._end("Failed", "Failed", outcome)
                return
            _transition(job, "InProgress", "Uploading", "Uploading generated training model")
            url = self._upload(root / with_data[0] / "model")
        now = _now()
        with _lock:
            job.model_artifacts = {"S3ModelArtifacts": url}
            seconds = int(time.monotonic() - self._began)
            job.billable_time_in_seconds = max(seconds, 1)
            job.training_time_in_seconds = max(seconds, 1)
            job.training_end_time = now
            _transition(job, "Completed", "Completed", "Training job completed")

    def _interrupted(self) -> bool:
        """Whether the job was stopped or ran out of time; if so, it is ended as Stopped."""
        if self.stop_requested.is_set():
            self._end("Stopped", "Stopped", None)
            return True
        if time.monotonic() > self._deadline:
            self._end("Stopped", "MaxRuntimeExceeded", None)
            return True
        return False

    def _end(self, status: str, secondary: str, reason: str | None) -> None:
        message = {"Failed": "Training job failed", "Stopped": "Training job stopped"}.get(
            status, status)
        if secondary == "MaxRuntimeExceeded":
            message = "Training job stopped: it exceeded MaxRuntimeInSeconds"
        with _lock:
            self.job.failure_reason = reason
            self.job.training_end_time = _now()
            seconds = int(time.monotonic() - self._began)
            self.job.billable_time_in_seconds = max(seconds, 1)
            _transition(self.job, status, secondary, message)

    def _download(self, root: Path, hosts: list[str]) -> str | None:
        """Lay out each host's share of every channel, and the container's config files."""
        s3 = s3_backends[self.account][get_partition(self.region)]
        job = self.job
        channels: dict[str, dict[str, Any]] = {}
        for channel in job.input_data_config or []:
            source = channel.get("DataSource", {}).get("S3DataSource", {})
            uri = str(source.get("S3Uri", ""))
            bucket, _, prefix = uri.removeprefix("s3://").partition("/")
            try:
                names = sorted(k for k in list(s3.get_bucket(bucket).keys)
                               if k.startswith(prefix) and not k.endswith("/"))
            except Exception:  # moto's MissingBucket
                return f"ClientError: Could not access S3 location {uri}"
            if not names:
                return f"ClientError: No S3 objects found under S3 URL \"{uri}\""
            sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
            for index, name in enumerate(names):
                targets = [hosts[index % len(hosts)]] if sharded else hosts
                stored = s3.get_object(bucket, name)
                if stored is None:
                    continue
                relative = name[len(prefix):].lstrip("/") or Path(name).name
                for host in targets:
                    path = root / host / "input" / "data" / channel["ChannelName"] / relative
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(stored.value)
                del stored
            channels[channel["ChannelName"]] = {
                "ContentType": channel.get("ContentType"), "TrainingInputMode": "File",
                "S3DistributionType": source.get("S3DataDistributionType"),
                "RecordWrapperType": "None",
            }
        for host in hosts:
            config = root / host / "input" / "config"
            config.mkdir(parents=True, exist_ok=True)
            (config / "hyperparameters.json").write_text(json.dumps(job.hyper_parameters or {}))
            (config / "inputdataconfig.json").write_text(json.dumps(channels))
            (config / "resourceconfig.json").write_text(json.dumps(
                {"current_host": host, "hosts": hosts}))
            for name in ("model", "output/data"):
                (root / host / name).mkdir(parents=True, exist_ok=True)
        return None

    def _train(self, root: Path, hosts: list[str], with_data: list[str]) -> str | None:
        """Run the workers to the end. None: trained; "": stopped; else the failure reason."""
        tracker_args: dict[str, Any] = {}
        tracker = None
        if len(with_data) > 1:
            from xgboost.tracker import RabitTracker  # lazy: ~1.5 s; only for several instances

            tracker = RabitTracker(n_workers=len(with_data), host_ip="127.0.0.1",
                                   sortby="task", timeout=300)
            tracker.start()
            tracker_args = tracker.worker_args()
        threads = max(1, (os.cpu_count() or 1) // len(with_data))
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for rank, host in enumerate(with_data):
                environment = {
                    **os.environ, "OMP_NUM_THREADS": str(threads),
                    "SM_HOSTS": json.dumps(with_data), "SM_CURRENT_HOST": host,
                    "SM_INPUT_DIR": str(root / host / "input"),
                    "SM_CHANNEL_TRAIN": str(root / host / "input" / "data" / "train"),
                    "SM_MODEL_DIR": str(root / host / "model"),
                    "SM_OUTPUT_DIR": str(root / host / "output"),
                }
                if tracker is not None:
                    environment["LOCAL_TRAINING_COLLECTIVE"] = json.dumps(
                        {**tracker_args, "dmlc_task_id": str(rank)})
                log = (root / host / "output" / "log.txt").open("wb")
                processes[host] = subprocess.Popen(
                    [sys.executable, "-m", WORKER], env=environment, cwd=root / host,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
                log.close()
            return self._watch(root, processes)
        finally:
            for process in processes.values():
                _kill(process)
            if tracker is not None:
                with contextlib.suppress(Exception):  # a tracker whose workers were killed
                    tracker.free()

    def _watch(self, root: Path, processes: dict[str, subprocess.Popen[bytes]]) -> str | None:
        running = dict(processes)
        while running:
            if self.stop_requested.is_set() or time.monotonic() > self._deadline:
                for process in running.values():
                    _kill(process)
                self._interrupted()
                return ""
            for host, process in list(running.items()):
                self.peak_rss_mib = max(self.peak_rss_mib or 0.0,
                                        high_water_kib(process.pid) / 1024)
                pid, status, _ = os.wait4(process.pid, os.WNOHANG)
                if pid == 0:
                    continue
                process.returncode = os.waitstatus_to_exitcode(status)
                del running[host]
                if process.returncode != 0:
                    return _failure(root / host, process.returncode)
            time.sleep(0.05)
        return None

    def _upload(self, model_dir: Path) -> str:
        """``model.tar.gz`` of the model directory, at ``<S3OutputPath>/<job>/output/``."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(model_dir.iterdir()):
                tar.add(path, arcname=path.name)
        output = str((self.job.output_data_config or {}).get("S3OutputPath", "")).rstrip("/")
        bucket, _, prefix = output.removeprefix("s3://").partition("/")
        key = "/".join(p for p in (prefix, self.job.training_job_name, "output", "model.tar.gz")
                       if p)
        s3_backends[self.account][get_partition(self.region)].put_object(
            bucket, key, buffer.getvalue())
        return f"s3://{bucket}/{key}"


def high_water_kib(pid: int) -> int:
    """A live process's peak resident set so far (``VmHWM``, KiB; 0 once it has exited): what
    a worker's instance needed, or what a benchmarked command used.

    (``wait4``'s ``ru_maxrss`` would include this server's own size when it forked.)
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def emulated(image: str) -> bool:
    """Whether ``image`` is one local-aws stands in for: the XGBoost container, version 3 or
    later (what trains here, and what serves the endpoint's models in ``moto_gaps``)."""
    repository = image.rsplit("/", 1)[-1].split(":", 1)
    return repository[0] == EMULATED_REPOSITORY and _version_at_least(repository[-1], 3)


def _version_at_least(tag: str, major: int) -> bool:
    try:
        return int(tag.split(".", 1)[0]) >= major
    except ValueError:
        return False


def _failure(host_dir: Path, code: int) -> str:
    """What SageMaker reports: the algorithm's /opt/ml/output/failure, else its exit."""
    failure = host_dir / "output" / "failure"
    if failure.is_file() and failure.read_text().strip():
        return failure.read_text().strip()
    log = host_dir / "output" / "log.txt"
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    last = lines[-1] if lines else ""
    return f"AlgorithmError: the algorithm exited with code {code}" + (f": {last}" if last else "")


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period, as SageMaker stops an algorithm."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
