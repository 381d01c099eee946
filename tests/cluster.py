"""Real backends and cluster nodes for the distributed-mode tests and the cluster benchmark.

`redis-server` (the Debian package) and moto's S3 server (`moto_server`, from PyPI) start on
free loopback ports; docmill API nodes (`serve --no-workers`) and worker machines
(`docmill worker`) start as real subprocesses that share them, as on separate machines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import requests

from tests.conftest import RunningServer, free_port, start_server

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
MOTO_SERVER = Path(sys.executable).with_name("moto_server")


@dataclass
class Backend:
    """A backend server process (Redis or S3) on a loopback port."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    restart_args: list[str] = field(default_factory=list)

    def stop(self) -> None:
        _terminate(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _terminate(process: subprocess.Popen, grace: float = 20) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _wait_for_port(
    port: int, process: subprocess.Popen, log_path: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited early:\n{log_path.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{process.args[0]} did not listen on port {port}")


def _popen_logged(args: list[str], log_path: Path, **kwargs: object) -> subprocess.Popen:
    with open(log_path, "ab") as log_file:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, **kwargs)


def start_redis(workdir: Path, port: int | None = None) -> Backend:
    """redis-server on loopback, appending every write to disk so a restart keeps the jobs."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is missing: `make install` installs it")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(workdir)]
    log_path = workdir / "redis.log"
    process = _popen_logged(args, log_path)
    _wait_for_port(port, process, log_path)
    return Backend(f"redis://127.0.0.1:{port}/0", port, process, log_path, args)


def restart_backend(backend: Backend) -> None:
    """Start a stopped backend again on the same port (and, for Redis, the same data)."""
    backend.process = _popen_logged(backend.restart_args, backend.log_path)
    _wait_for_port(backend.port, backend.process, backend.log_path)


def start_s3(workdir: Path, bucket: str = "docmill-test") -> Backend:
    """moto's S3-compatible server on loopback, with `bucket` created."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)]
    log_path = workdir / "moto.log"
    process = _popen_logged(args, log_path, env={**os.environ, **AWS_ENV})
    _wait_for_port(port, process, log_path)
    endpoint = f"http://127.0.0.1:{port}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return Backend(f"s3://{bucket}?endpoint={endpoint}&region=us-east-1", port, process,
                   log_path, args)


def s3_client(endpoint: str):  # noqa: ANN201 - boto3 clients have no importable type
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def cluster_env(redis: Backend, s3: Backend) -> dict[str, str]:
    """What every node of the cluster is told: the shared queue and the shared bucket."""
    return {"DOCMILL_QUEUE": redis.url, "DOCMILL_STORAGE": s3.url, **AWS_ENV}


# -- nodes ----------------------------------------------------------------------------------
@dataclass
class RunningWorker:
    """A `docmill worker` process: one "worker machine" with its own data directory."""

    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_api_node(data_dir: Path, env: dict[str, str]) -> RunningServer:
    """`docmill serve --no-workers`: an API node behind the (imagined) load balancer."""
    return start_server(data_dir, workers=0, extra_env=env, extra_args=["--no-workers"])


def start_worker(
    data_dir: Path, env: dict[str, str], concurrency: int = 1, cpus: str | None = None
) -> RunningWorker:
    """`docmill worker`; `cpus` ("0", "1-3") pins it to those cores, like a smaller machine."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "worker.log"
    full_env = {**os.environ, "DOCMILL_ALLOW_PRIVATE_URLS": "1", "DOCMILL_LEASE_SECONDS": "6",
                **env}
    pin = ["taskset", "-c", cpus] if cpus else []
    process = _popen_logged(
        [*pin, sys.executable, "-m", "docmill", "worker", "--data-dir", str(data_dir),
         "--concurrency", str(concurrency)],
        log_path, env=full_env, start_new_session=True,  # its own group: killable as a machine
    )
    return RunningWorker(data_dir, process, log_path)


def stop_worker(worker: RunningWorker) -> None:
    _terminate(worker.process, grace=30)


def kill_worker_machine(worker: RunningWorker) -> None:
    """SIGKILL the worker and every process it started, as if its machine lost power."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(10)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_workers(api: RunningServer, count: int, timeout: float = 120) -> list[dict]:
    """Wait until the cluster's health lists `count` live workers with ready engines.

    A killed machine's workers stay listed until their heartbeat is old (nobody is left to
    remove them): here, where every "machine" is a local process, those are left out.
    """
    deadline = time.monotonic() + timeout
    summary: dict = {}
    while time.monotonic() < deadline:
        answer = requests.get(api.url + "/health", timeout=10)
        summary = answer.json()
        listed = summary.get("workers", {}).get("list", [])
        workers = [worker for worker in listed if _process_exists(worker["pid"])]
        engines_ready = all(engine.get("ready", False) for worker in workers
                            for engine in worker.get("engines", {}).values())
        if answer.status_code == 200 and len(workers) == count == len(listed) and engines_ready:
            return workers
        time.sleep(0.3)
    raise RuntimeError(f"the cluster did not get {count} ready worker(s): {summary}")


