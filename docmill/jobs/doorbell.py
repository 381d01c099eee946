"""Wake-ups between the processes of one machine: Unix datagram sockets in the data directory.

A worker rings when a job has finished (the API wakes the sync request waiting for it), the
embedded queue rings when a job is queued (idle workers wake and take it). Without them each
side polls every few milliseconds, which costs CPU and adds latency to every job.

A ring is only a hint: the job table and the queue stay the truth, and whoever waits still
looks on its own now and then, in case a ring was lost (a full socket buffer) or never sent
(a worker on another machine, a socket path too long to bind).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import uuid
from pathlib import Path

_SUFFIX = ".sock"
_MAX_MESSAGE = 1024
_MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with its NUL


class Doorbell:
    """A folder of listening sockets: a ring reaches every process listening there."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def ring(self, message: str = "") -> None:
        """Send `message` to every listener. Never raises: a lost ring only costs time."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return  # nobody ever listened here
        data = message.encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)
            for name in names:
                if name.endswith(_SUFFIX):
                    _send(sender, self.folder / name, data)

    def listen(self) -> DoorbellListener | None:
        """A socket that hears this doorbell; None where it cannot be bound."""
        path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{_SUFFIX}"
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            return None
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            receiver.bind(str(path))
        except OSError:
            receiver.close()
            return None
        receiver.setblocking(False)
        return DoorbellListener(path, receiver)


def _send(sender: socket.socket, path: Path, data: bytes) -> None:
    try:
        sender.sendto(data, str(path))
    except ConnectionRefusedError:
        # Nobody is bound to it: the socket of a process that is gone (names are never reused).
        with contextlib.suppress(OSError):
            path.unlink()
    except OSError:
        pass  # its queue is full or it just went away: that listener polls anyway


class DoorbellListener:
    """One process's socket on a doorbell."""

    def __init__(self, path: Path, receiver: socket.socket) -> None:
        self.path = path
        self._socket = receiver
        self._poller = select.poll()  # not select(): no limit on the descriptor's number
        self._poller.register(receiver, select.POLLIN)

    def fileno(self) -> int:
        return self._socket.fileno()

    def wait(self, timeout: float) -> list[str]:
        """The rings that arrive within `timeout` seconds (all pending ones once one came)."""
        self._poller.poll(timeout * 1000)
        return self.drain()

    def drain(self) -> list[str]:
        """Every ring already received, without waiting."""
        messages = []
        while True:
            try:
                messages.append(self._socket.recv(_MAX_MESSAGE).decode(errors="replace"))
            except (BlockingIOError, InterruptedError):
                return messages
            except OSError:  # closed meanwhile
                return messages

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def finished_jobs(data_dir: Path) -> Doorbell:
    """Rung with a job id when a worker has finished that job."""
    return Doorbell(data_dir / "run" / "finished")


def queued_jobs(data_dir: Path) -> Doorbell:
    """Rung when a job was put on the embedded (SQLite) queue."""
    return Doorbell(data_dir / "run" / "queued")
