"""What every section is given: how many runs, whether this is a quick run, a scratch
directory, and one docmill server shared by the sections that go through HTTP."""

from __future__ import annotations

import itertools
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import RunningServer, start_server, stop_server


@dataclass
class Context:
    quick: bool
    runs: int  # timed runs of light work (after a warm-up)
    heavy_runs: int  # timed runs of work where one run of the reference takes many seconds
    scratch: Path
    full_reference: bool = False  # also run references that take minutes (pdftoppm, 600+ p.)
    _server: RunningServer | None = field(default=None, repr=False)
    _counter: itertools.count = field(default_factory=itertools.count, repr=False)

    def fresh_dir(self, prefix: str) -> Path:
        """A new empty directory under the scratch directory."""
        path = self.scratch / f"{prefix}-{next(self._counter)}"
        path.mkdir(parents=True)
        return path

    def server(self) -> RunningServer:
        """A `docmill serve` subprocess with 2 workers, started on first use."""
        if self._server is None:
            log(".. starting docmill serve (2 workers)")
            self._server = start_server(self.scratch / "server", workers=2)
        return self._server

    def close(self) -> None:
        if self._server is not None:
            stop_server(self._server)
            self._server = None


def clear(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def log(message: str) -> None:
    """Progress on stderr: the table alone goes to stdout."""
    print(message, file=sys.stderr, flush=True)
