"""Timing: median of N runs after a warm-up, and reference tools run as subprocesses.

docmill and its reference are timed in alternation (ours, theirs, theirs, ours...) so that
a change in the machine's load during a measurement hits both alike.
"""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Work = Callable[[], object]


class OwnTime(float):
    """What a work returns to be timed by its own clock: the seconds of just the part that
    is compared (a reference whose setup and teardown are not part of the figure)."""


@dataclass
class Timing:
    """Seconds of each timed run (warm-ups are not kept)."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def runs(self) -> int:
        return len(self.samples)

    def quantile(self, share: float) -> float:
        """The `share` quantile (0..1) of the samples, by the nearest-rank method."""
        ordered = sorted(self.samples)
        rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
        return ordered[rank - 1]


def time_once(work: Work) -> float:
    started = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - started
    return float(result) if isinstance(result, OwnTime) else elapsed


def measure(work: Work, runs: int, warmup: Work | None = None) -> Timing:
    """Time `work` `runs` times after one warm-up run (`warmup`, or `work` itself)."""
    (warmup or work)()
    return Timing([time_once(work) for _ in range(runs)])


def measure_pair(
    ours: Work,
    reference: Work,
    runs: int,
    reference_runs: int | None = None,
    warm: bool = True,
) -> tuple[Timing, Timing]:
    """Time docmill and its reference in alternation; each is warmed up once first."""
    reference_runs = runs if reference_runs is None else reference_runs
    mine, theirs = measure_alternating([ours, reference], [runs, reference_runs], warm)
    return mine, theirs


def measure_alternating(works: list[Work], runs: list[int], warm: bool = True) -> list[Timing]:
    """Time several works in turns (the order rotates each round); `runs[i]` runs of each."""
    if warm:
        for work in works:
            work()
    timings = [Timing() for _ in works]
    for round_number in range(max(runs)):
        shift = round_number % len(works)
        for index in [*range(shift, len(works)), *range(shift)]:
            if timings[index].runs < runs[index]:
                timings[index].samples.append(time_once(works[index]))
    return timings


@dataclass
class ToolRun:
    """One run of an external program."""

    seconds: float
    returncode: int


class ToolError(RuntimeError):
    """A reference tool failed where the benchmark needs its output."""


def run_tool(
    argv: Sequence[str | Path], *, timeout: float = 900, check: bool = True
) -> ToolRun:
    """Run a program to its end and time it (to its exit, not to our noticing it)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(arg) for arg in argv], stdout=subprocess.DEVNULL, stderr=errors
        )
        _wait_for_exit(process, timeout)
        seconds = time.perf_counter() - started
        returncode = process.wait()
        if check and returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()[-500:]
            command = " ".join(map(str, argv))
            raise ToolError(f"{command} exited with {returncode}: {message}")
    return ToolRun(seconds, returncode)


def tool(argv: Sequence[str | Path], timeout: float = 900, check: bool = True) -> Work:
    """`run_tool(argv)` as a callable to time."""
    return lambda: run_tool(argv, timeout=timeout, check=check)


def _wait_for_exit(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Block until `process` exits (killing it after `timeout`), leaving it unreaped.

    A pidfd wakes us the moment it exits, with no helper thread: a thread alive in this
    process would change how docmill's renderer starts its own processes.
    """
    descriptor = os.pidfd_open(process.pid)
    try:
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)
        if not poller.poll(timeout * 1000):
            process.kill()
            process.wait()
            raise ToolError(f"{process.args[0]} ran past {timeout:g} s")  # type: ignore[index]
    finally:
        os.close(descriptor)
