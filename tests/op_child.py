"""Run docmill ops in a child process, one request at a time, so that an op that hangs or
crashes fails the one test that called it instead of blocking or killing the session.

The child (`python -m tests.op_child`) reads one JSON request per line on stdin and answers
one JSON line on a private copy of its stdout (the op's own output goes to stderr). The
parent side, `OpChild`, gives each call a time limit and restarts the child after a hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class OpOutcome:
    """What one op call did: an error code and message, or output files; and its cost."""

    status: int  # 200 on success, else the DocmillError's code; 0: not a DocmillError
    message: str
    files: list[tuple[str, int]]  # (name, size in bytes) of each output file
    page_count: int
    seconds: float
    max_rss_mb: float


class OpHang(Exception):  # noqa: N818 - the name says what happened
    """The op did not answer within its time limit (the child was killed)."""


class OpChild:
    """The parent's handle on one op child; restarts it after a hang or a crash."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.op_child"], cwd=REPO, env=self.env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                start_new_session=True,  # its own group: a hang is killed with every helper
            )
        return self.process

    def run(self, op: str, path: Path, params: dict[str, Any], timeout: float) -> OpOutcome:
        process = self._start()
        assert process.stdin and process.stdout
        process.stdin.write(json.dumps({"op": op, "path": str(path), "params": params}) + "\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else ""
        if not line:
            crashed = process.poll() is not None
            self.stop(kill=True)
            if crashed:
                raise RuntimeError(f"the op child died running {op} on {path.name}")
            raise OpHang(f"{op} on {path.name} did not finish in {timeout} s")
        return OpOutcome(**json.loads(line))

    def call(self, command: str, **arguments: Any) -> Any:
        """Run a helper command in the child (e.g. make an encrypted DOCX with its pool)."""
        process = self._start()
        assert process.stdin and process.stdout
        process.stdin.write(json.dumps({"command": command, **arguments}) + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    def stop(self, kill: bool = False) -> None:
        """Let the child stop its engines and exit; `kill` (after a hang) kills its group."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None and not kill and process.stdin:
            process.stdin.close()  # the child stops its engines and exits at EOF
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)
        # Its helpers (render processes, soffice) share its process group: end them too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


# -- the child side -------------------------------------------------------------------------


def _run_op(request: dict[str, Any]) -> dict[str, Any]:
    from docmill.errors import DocmillError
    from docmill.operation import get_operation

    op = get_operation(request["op"])
    out_dir = Path(tempfile.mkdtemp(prefix="docmill-op-"))
    started = time.monotonic()
    answer: dict[str, Any] = {"status": 200, "message": "", "files": [], "page_count": 0}
    try:
        params = op.params.model_validate(request["params"])
        result = op.run([Path(request["path"])], params, out_dir)
        answer["files"] = [(path.name, path.stat().st_size) for path in result.files]
        answer["page_count"] = result.page_count
    except DocmillError as error:
        answer.update(status=error.status, message=error.message)
    except Exception as error:  # what the test is looking for: not a DocmillError
        answer.update(status=0, message=f"{type(error).__name__}: {error}")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    answer["seconds"] = time.monotonic() - started
    answer["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return answer


def _run_command(request: dict[str, Any]) -> Any:
    if request["command"] == "encrypt_office":
        from docmill.engines.libreoffice import get_pool

        get_pool().convert(Path(request["source"]), Path(request["target"]),
                           request["filter"], export_password=request["password"])
        return True
    raise ValueError(f"unknown command {request['command']!r}")


def main() -> None:
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever an op or engine prints goes to stderr, never into the answers
    sys.stdout = sys.stderr
    try:
        for line in sys.stdin:
            request = json.loads(line)
            answer = _run_command(request) if "command" in request else _run_op(request)
            answers.write(json.dumps(answer) + "\n")
            answers.flush()
    finally:
        from docmill.engines.libreoffice import stop_pool

        stop_pool()


if __name__ == "__main__":
    main()
