"""docmill's operations called in-process, as a worker calls them (the engine-speed level)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.timing import OwnTime
from docmill.operation import Operation, OpResult, operations


class MissingOperation(LookupError):
    """The op is not registered (yet): its rows say so instead of failing the run."""


def operation(name: str) -> Operation:
    try:
        return operations()[name]
    except KeyError:
        raise MissingOperation(f"docmill has no operation {name!r}") from None


class OpRunner:
    """A callable that runs one op on fixed inputs, each call into a fresh directory.

    The previous call's outputs are removed when the next call starts, so a long series
    of runs does not fill the disk; the last call's outputs stay for checks.
    """

    def __init__(self, ctx: Context, name: str, inputs: list[Path], **params: Any) -> None:
        self.ctx = ctx
        self.op = operation(name)
        self.inputs = inputs
        self.params = self.op.params.model_validate(params)
        self.result: OpResult | None = None
        self._out_dir: Path | None = None

    def __call__(self) -> OwnTime:
        """Run the op; its time, without the removal of the last outputs and the new
        directory (a reference tool overwrites its output file in place)."""
        if self._out_dir is not None:
            shutil.rmtree(self._out_dir, ignore_errors=True)
        self._out_dir = self.ctx.fresh_dir(self.op.name)
        started = time.perf_counter()
        self.result = self.op.run(self.inputs, self.params, self._out_dir)
        return OwnTime(time.perf_counter() - started)

    @property
    def outputs(self) -> list[Path]:
        if self.result is None:
            self()
        assert self.result is not None
        return self.result.files

    def discard(self) -> None:
        if self._out_dir is not None:
            shutil.rmtree(self._out_dir, ignore_errors=True)
        self._out_dir, self.result = None, None
