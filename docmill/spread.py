"""Work on the pages of one document, shared out over this process and warm helpers.

PDFium is not thread-safe, so the pages of one document are spread over processes: this
process takes one share, helper processes the others. Starting a process per job costs
3-10 ms (a fork, or a fork server's when threads run), as much as the text of a few pages
takes, so helpers are started once and kept, as LibreOffice's listeners are. They die with
the process that started them, so a worker killed mid-job leaves none behind. A helper
that fails, dies, or may still be busy when a share elsewhere failed is replaced.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from docmill.errors import DamagedFileError, DocmillError, EngineError

MAX_PROCESSES = 4
# A helper is replaced after this many shares: whatever a damaged file made PDFium leak
# goes with it.
MAX_SHARES_PER_HELPER = 1000

T = TypeVar("T")
# `work(positions)` does the work at those positions, one result per position, in order.
Work = Callable[[list[int]], list[T]]


def process_count(count: int, min_per_process: int) -> int:
    """How many processes to share `count` positions over (1: this process alone)."""
    if multiprocessing.current_process().daemon:
        return 1  # a helper works on its share itself
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, MAX_PROCESSES, count // min_per_process))


def spread(work: Work[T], count: int, min_per_process: int) -> list[T]:
    """`work` on positions 0..count-1, shared out over processes; results in order.

    A process is only worth using for at least `min_per_process` positions. `work` must be
    picklable (a module-level function, or a partial of one).
    """
    processes = process_count(count, min_per_process)
    if processes <= 1:
        return work(list(range(count)))
    # Interleaved shares even out runs of heavy pages (a chapter of photos, say).
    shares = [list(range(first, count, processes)) for first in range(processes)]
    outputs: list[Any] = [None] * count
    for positions, results in zip(shares, _work_beside_helpers(work, shares), strict=True):
        for position, result in zip(positions, results, strict=True):
            outputs[position] = result
    return outputs


def warm(processes: int | None = None) -> None:
    """Start the helpers now rather than at the first long document."""
    wanted = process_count(10**9, 1) if processes is None else processes
    with _lock:
        _pool.helpers(wanted - 1)


def stop() -> None:
    """Stop every helper (they are started again when needed)."""
    with _lock:
        _pool.stop()


def _work_beside_helpers(work: Work[T], shares: list[list[int]]) -> list[list[T]]:
    with _lock:  # one spread at a time: a helper serves one share at a time
        helpers = _pool.helpers(len(shares) - 1)
        try:
            for helper, positions in zip(helpers, shares[1:], strict=True):
                helper.send(work, positions)
            own = work(shares[0])
            return [own, *(helper.result() for helper in helpers)]
        except BaseException:
            _pool.replace(helpers)  # one may still be busy: its late answer would mislead
            raise


class _Helper:
    """A warm helper process, serving one share of work at a time over a pipe."""

    def __init__(self) -> None:
        context = _process_context()
        self.connection, child_end = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child_end,), name="docmill-page-helper", daemon=True
        )
        self.process.start()
        child_end.close()
        self.shares = 0

    def send(self, work: Work[Any], positions: list[int]) -> None:
        self.connection.send((work, positions))
        self.shares += 1

    def result(self) -> list[Any]:
        try:
            status, payload = self.connection.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5)
            raise DamagedFileError(
                "The PDF could not be processed: a page helper stopped "
                f"(exit code {self.process.exitcode})."
            ) from None
        if status == "error":
            error_type, message, code = payload
            raise error_type(message, code)
        return payload

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.connection.close()


class _Pool:
    def __init__(self) -> None:
        self._helpers: list[_Helper] = []
        self._owner = os.getpid()

    def helpers(self, count: int) -> list[_Helper]:
        if self._owner != os.getpid():  # a forked copy of the pool: not our processes
            self._helpers, self._owner = [], os.getpid()
        worn = [h for h in self._helpers if h.shares >= MAX_SHARES_PER_HELPER or not h.alive()]
        self.replace(worn)
        while len(self._helpers) < count:
            self._helpers.append(_Helper())
        return self._helpers[:count]

    def replace(self, helpers: list[_Helper]) -> None:
        for helper in helpers:
            self._helpers.remove(helper)
            helper.stop()

    def stop(self) -> None:
        self.replace(list(self._helpers))


_pool = _Pool()
_lock = threading.Lock()


def _process_context() -> multiprocessing.context.BaseContext:
    # Forking is cheapest, but forking a process that runs other threads can copy a lock
    # one of them holds; then helpers come from a clean fork server instead.
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["docmill.raster", "docmill.ops"])
    return context


def _serve(connection: multiprocessing.connection.Connection) -> None:
    """A helper: do each share of work sent, answer with its results or its error."""
    _exit_with_parent()
    while True:
        try:
            work, positions = connection.recv()
        except (EOFError, OSError):
            return  # the pool closed our pipe
        try:
            answer: tuple[str, Any] = ("ok", work(positions))
        except DocmillError as exc:
            answer = ("error", (type(exc), exc.message, exc.status))
        except Exception as exc:  # reported to the caller, which raises it for the job
            answer = (
                "error",
                (EngineError, f"Processing a page failed: {exc}", EngineError.status),
            )
        connection.send(answer)


def _exit_with_parent() -> None:
    """Exit this helper as soon as the process that started it dies."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def wait_then_exit() -> None:
        parent.join()  # returns once the parent is gone
        os._exit(1)

    threading.Thread(target=wait_then_exit, name="exit-with-parent", daemon=True).start()
