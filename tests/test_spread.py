"""Work shared out over this process and warm helper processes (docmill.spread)."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from docmill import spread
from docmill.errors import DamagedFileError, PasswordError


def _in_helper() -> bool:
    return multiprocessing.parent_process() is not None


def _pids_and_positions(positions: list[int]) -> list[tuple[int, int]]:
    return [(os.getpid(), position) for position in positions]


def _fail_here_slowly_there(positions: list[int]) -> list[int]:
    if not _in_helper():
        raise PasswordError("raised in the calling process")
    time.sleep(0.3)  # still busy when the caller gives up
    return [-1 for _ in positions]


def _wrong_password_in_helper(positions: list[int]) -> list[int]:
    if _in_helper():
        raise PasswordError("raised in a helper")
    return positions


def _crash_in_helper(positions: list[int]) -> list[int]:
    if _in_helper():
        os._exit(3)  # as if PDFium had crashed
    return positions


def _positions(positions: list[int]) -> list[int]:
    return positions


@pytest.fixture(autouse=True)
def two_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})


def test_results_come_back_in_order_from_this_process_and_a_helper() -> None:
    results = spread.spread(_pids_and_positions, 9, 2)
    assert [position for _, position in results] == list(range(9))
    pids = {pid for pid, _ in results}
    assert os.getpid() in pids and len(pids) == 2


def test_helpers_stay_warm_between_calls() -> None:
    first = {pid for pid, _ in spread.spread(_pids_and_positions, 4, 2)}
    second = {pid for pid, _ in spread.spread(_pids_and_positions, 4, 2)}
    assert first == second


def test_few_positions_stay_in_this_process() -> None:
    results = spread.spread(_pids_and_positions, 3, 2)
    assert {pid for pid, _ in results} == {os.getpid()}


def test_an_error_in_a_helper_reaches_the_caller_with_its_status() -> None:
    with pytest.raises(PasswordError, match="in a helper") as caught:
        spread.spread(_wrong_password_in_helper, 6, 2)
    assert caught.value.status == PasswordError.status
    assert spread.spread(_positions, 6, 2) == list(range(6))


def test_a_crashed_helper_is_a_damaged_file_and_is_replaced() -> None:
    with pytest.raises(DamagedFileError, match="helper stopped"):
        spread.spread(_crash_in_helper, 6, 2)
    assert spread.spread(_positions, 6, 2) == list(range(6))


def test_a_helper_still_busy_after_a_failure_gives_no_late_answer() -> None:
    before = {pid for pid, _ in spread.spread(_pids_and_positions, 4, 2)}
    with pytest.raises(PasswordError):
        spread.spread(_fail_here_slowly_there, 6, 2)
    # The busy helper was replaced: the next call gets its own answers, not the late ones.
    assert spread.spread(_positions, 6, 2) == list(range(6))
    after = {pid for pid, _ in spread.spread(_pids_and_positions, 4, 2)}
    assert before != after


def test_stop_ends_the_helpers() -> None:
    helpers = {pid for pid, _ in spread.spread(_pids_and_positions, 4, 2)} - {os.getpid()}
    spread.stop()
    for pid in helpers:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already reaped: gone
    assert spread.spread(_positions, 4, 2) == list(range(4))


def test_a_helper_is_replaced_after_many_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spread, "MAX_SHARES_PER_HELPER", 2)
    spread.stop()  # a fresh helper, with no shares yet
    seen = [{pid for pid, _ in spread.spread(_pids_and_positions, 4, 2)} for _ in range(3)]
    assert seen[0] == seen[1] != seen[2]
