"""LibreOffice engine: a pool of warm `soffice.bin` instances that convert documents over UNO.

The only module that starts LibreOffice. Each instance runs headless with its own profile
directory and its own UNO pipe, and converts one document at a time. A conversion that
overruns its timeout gets its instance killed (408); an instance is restarted after N
conversions or when it dies, and a conversion whose instance died under it is retried once
on a fresh one. Instances die with the process that owns them, even on `kill -9`.

Use `get_pool()` (one warm instance per process, configured from `DOCMILL_*` settings) or
build a `LibreOfficePool` yourself.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import logging
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docmill.errors import (
    DamagedFileError,
    EngineError,
    PasswordError,
    TimeoutError_,
    UnsupportedTypeError,
)

log = logging.getLogger("docmill.libreoffice")

DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_CONVERSIONS = 200
DEFAULT_START_TIMEOUT = 60.0
PROGRAM_CANDIDATES = (
    Path("/usr/lib/libreoffice/program/soffice.bin"),
    Path("/opt/libreoffice/program/soffice.bin"),
)

_EXIT_RESTART = 81  # soffice.bin exits with 81 after creating a fresh profile: start it again
_LAUNCH_ATTEMPTS = 3
_STOP_GRACE = 3.0  # seconds a stopping instance gets to exit on SIGTERM before SIGKILL
_MAX_BACKOFF = 30.0
_PR_SET_PDEATHSIG = 1

# PDF export filter for each kind of document, tried in order (a web document is also a
# text document, so the more specific services come first).
_PDF_FILTERS = (
    ("com.sun.star.text.WebDocument", "writer_web_pdf_Export"),
    ("com.sun.star.text.GlobalDocument", "writer_globaldocument_pdf_Export"),
    ("com.sun.star.text.TextDocument", "writer_pdf_Export"),
    ("com.sun.star.sheet.SpreadsheetDocument", "calc_pdf_Export"),
    ("com.sun.star.presentation.PresentationDocument", "impress_pdf_Export"),
    ("com.sun.star.drawing.DrawingDocument", "draw_pdf_Export"),
    ("com.sun.star.formula.FormulaProperties", "math_pdf_Export"),
)
# Settings of each instance's own profile for work no conversion needs: lock files beside
# every input and output (created and deleted each time), and the word-completion list and
# online spelling that Writer keeps for loaded text.
_PROFILE_SETTINGS = (
    ("/org.openoffice.Office.Common/Misc", "UseLocking", False),
    ("/org.openoffice.Office.Writer/AutoFunction/Completion", "CollectWords", False),
    ("/org.openoffice.Office.Linguistic/SpellChecking", "IsSpellAuto", False),
)
_PASSWORD_CONTINUATIONS = {
    "com.sun.star.task.XInteractionPassword",
    "com.sun.star.task.XInteractionPassword2",
}
# Answers to LibreOffice's questions, best first: never wait, never repair, never ask again.
_REFUSALS = ("com.sun.star.task.XInteractionAbort", "com.sun.star.task.XInteractionDisapprove")
_NEVER_EXECUTE_MACROS = 0  # com.sun.star.document.MacroExecMode.NEVER_EXECUTE
_NO_LINK_UPDATE = 0  # com.sun.star.document.UpdateDocMode.NO_UPDATE


@dataclass(frozen=True)
class _Conversion:
    """One document to convert: from where, to where, and how."""

    src: Path
    dst: Path
    export_filter: str | None  # None: the PDF export filter for the loaded document
    password: str | None
    import_filter: str | None
    import_options: str | None
    export_password: str | None


class _InstanceLost(Exception):  # noqa: N818 - an event the pool handles, not a user error
    """The instance died (crash, kill) while working for us."""


# -- UNO helpers ----------------------------------------------------------------------------


def _uno() -> Any:
    """pyuno, imported on first use: it is heavy, and a forked worker must load its own."""
    try:
        import uno
    except ImportError as error:
        raise EngineError(
            "Python's UNO bridge is missing: install python3-uno and make it importable."
        ) from error
    return uno


@functools.cache
def _property_value_class() -> type:
    # Cached: pyuno's import hook searches all of sys.path before it asks UNO (~1 ms a call).
    _uno()
    from com.sun.star.beans import PropertyValue

    return PropertyValue


def _properties(**values: Any) -> tuple[Any, ...]:
    """A UNO `PropertyValue` sequence; `None` values are left out."""
    property_value = _property_value_class()
    return tuple(
        property_value(Name=name, Value=value)
        for name, value in values.items()
        if value is not None
    )


def _file_url(path: Path) -> str:
    # absolute(), not resolve(): a symlink's own name (its extension) guides type detection.
    return _uno().systemPathToFileUrl(str(path.absolute()))


def _encryption_properties(export_filter: str, password: str) -> dict[str, Any]:
    """Store properties that encrypt the output with `password`."""
    if "2007" in export_filter or "Office Open XML" in export_filter:
        # The OOXML filters ignore `Password`; they encrypt (ECMA-376) from EncryptionData.
        uno = _uno()
        from com.sun.star.beans import NamedValue

        data = (NamedValue("OOXPassword", password), NamedValue("CryptoType", "Standard"))
        return {"EncryptionData": uno.Any("[]com.sun.star.beans.NamedValue", data)}
    return {"Password": password}


def _error_text(error: BaseException) -> str:
    text = str(getattr(error, "Message", "") or error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


@functools.cache
def _refusing_handler_class() -> type:
    """The interaction handler class (built lazily: it derives from pyuno classes)."""
    _uno()
    import unohelper
    from com.sun.star.task import XInteractionHandler

    class RefusingHandler(unohelper.Base, XInteractionHandler):  # type: ignore[misc]
        """Says no to every question LibreOffice asks, and notes whether it asked for a password.

        The request itself is not read: pyuno cannot unpack UNO exceptions under Python 3.11,
        so the offered answers (continuations) tell what was asked.
        """

        def __init__(self) -> None:
            self.password_requested = False

        def handle(self, request: Any) -> None:
            offered = [
                (continuation, {t.typeName for t in continuation.getTypes()})
                for continuation in request.getContinuations()
            ]
            if any(_PASSWORD_CONTINUATIONS & names for _, names in offered):
                self.password_requested = True
            for refusal in _REFUSALS:
                for continuation, names in offered:
                    if refusal in names:
                        continuation.select()
                        return

    return RefusingHandler


# -- one instance ---------------------------------------------------------------------------


def find_program() -> Path:
    """Path of `soffice.bin`: the real process, not the shell wrapper that spawns it."""
    for candidate in PROGRAM_CANDIDATES:
        if candidate.is_file():
            return candidate
    for wrapper in ("soffice", "libreoffice"):
        found = shutil.which(wrapper)
        if found and (Path(found).resolve().parent / "soffice.bin").is_file():
            return Path(found).resolve().parent / "soffice.bin"
    raise EngineError(
        "LibreOffice is not installed: install the Debian packages libreoffice-writer-nogui, "
        "libreoffice-calc-nogui, libreoffice-impress-nogui and python3-uno."
    )


def _death_signal_setter(owner_pid: int) -> Callable[[], None]:
    """A preexec_fn that makes the child die with its owner, even when the owner gets kill -9."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, not in the child

    def set_death_signal() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != owner_pid:
            os._exit(127)  # the owner is already gone: do not start an orphan

    return set_death_signal


class _Instance:
    """One `soffice.bin` process, its profile directory and its UNO connection."""

    def __init__(self, index: int, profile_dir: Path, program: Path) -> None:
        self.index = index
        self.profile_dir = profile_dir
        self.program = program
        self.process: subprocess.Popen[bytes] | None = None
        self.conversions = 0  # since the last launch
        self.launches = 0
        self.broken: str | None = None  # why the last launch failed
        self._pipe_name = ""
        self._bridge: Any = None
        self._desktop: Any = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- start and stop
    def launch(self, start_timeout: float, stopping: threading.Event) -> None:
        """Start the process and connect to it; blocks until it answers over UNO."""
        deadline = time.monotonic() + start_timeout
        for _ in range(_LAUNCH_ATTEMPTS):
            self._spawn()
            if self._connect(deadline, stopping):
                self.conversions = 0
                self.launches += 1
                self.broken = None
                return
        raise EngineError("LibreOffice kept exiting while it started.")

    def _command(self) -> list[str]:
        return [
            str(self.program),
            "--headless",
            "--invisible",
            "--nodefault",
            "--nofirststartwizard",
            "--nolockcheck",
            "--nologo",
            "--norestore",
            f"-env:UserInstallation={self.profile_dir.absolute().as_uri()}",
            f"--accept=pipe,name={self._pipe_name};urp;StarOffice.ComponentContext",
        ]

    def _spawn(self) -> None:
        # A pipe (a Unix socket only this user may open) rather than a TCP port: no port
        # clashes between workers, and no other local user can drive the instance.
        self._pipe_name = f"docmill-{os.getpid()}-{self.index}-{uuid.uuid4().hex[:12]}"
        scratch = self.profile_dir / "tmp"  # LibreOffice's temp files go with its profile
        scratch.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(scratch), "SAL_USE_VCLPLUGIN": "svp"}
        try:
            with open(self.profile_dir / "soffice.log", "wb") as log_file:
                self.process = subprocess.Popen(
                    self._command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=scratch,
                    start_new_session=True,  # its own process group: killed as one
                    preexec_fn=_death_signal_setter(os.getpid()),
                )
        except OSError as error:
            raise EngineError(f"Could not run {self.program}: {error.strerror}.") from error

    def _connect(self, deadline: float, stopping: threading.Event) -> bool:
        """Connect to the new process; False if it exited asking to be started again."""
        uno = _uno()
        from com.sun.star.connection import NoConnectException

        local = uno.getComponentContext()
        connector = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.connection.Connector", local
        )
        while True:
            assert self.process is not None
            code = self.process.poll()
            if code == _EXIT_RESTART:
                return False
            if code is not None:
                raise EngineError(
                    f"LibreOffice exited with code {code} while starting "
                    f"(log: {self.profile_dir / 'soffice.log'})."
                )
            try:
                connection = connector.connect(f"pipe,name={self._pipe_name}")
                break
            except NoConnectException:
                if stopping.is_set() or time.monotonic() > deadline:
                    self.kill()
                    raise EngineError("LibreOffice did not answer while starting.") from None
                time.sleep(0.05)
        factory = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.BridgeFactory", local
        )
        self._bridge = factory.createBridge("", "urp", connection, None)
        remote = self._bridge.getInstance("StarOffice.ComponentContext")
        self._desktop = remote.ServiceManager.createInstanceWithContext(
            "com.sun.star.frame.Desktop", remote
        )
        _apply_profile_settings(remote)
        return True

    def kill(self) -> None:
        """SIGKILL the instance's process group."""
        if self.process is not None:
            _kill_process_group(self.process)

    def shut_down(self, graceful: bool) -> None:
        """End the process (SIGTERM first if `graceful`) and forget the connection."""
        process = self.process
        if process is not None and graceful and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(_STOP_GRACE)
        self.kill()
        self._desktop = None
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            with contextlib.suppress(Exception):
                bridge.dispose()
        with contextlib.suppress(OSError):  # the socket file a killed instance leaves behind
            Path(f"/tmp/OSL_PIPE_{os.getuid()}_{self._pipe_name}").unlink()

    # -- conversion
    def convert(self, job: _Conversion) -> Any:
        """Load and store; returns the document, which the caller closes with `close()`.

        Raises _InstanceLost if the process died under the call.
        """
        document = self._load(job)
        try:
            self._store(document, job)
        except BaseException:
            self.close(document)
            raise
        return document

    @staticmethod
    def close(document: Any) -> None:
        with contextlib.suppress(Exception):  # a stuck document goes with the next restart
            document.close(True)

    def _load(self, job: _Conversion) -> Any:
        document, handler = self._try_load(job, job.password)
        if document is not None:
            return document
        if handler.password_requested:
            raise _password_error(job.password)
        # Word/Excel formats do not ask again after a wrong password, they just fail:
        # whether the file wants a password at all tells a wrong password from damage.
        if job.password and self._try_load(job, None)[1].password_requested:
            raise _password_error(job.password)
        raise DamagedFileError(
            "LibreOffice could not open the document: it is damaged or not an office file."
        )

    def _try_load(self, job: _Conversion, password: str | None) -> tuple[Any, Any]:
        handler = _refusing_handler_class()()
        properties = _properties(
            Hidden=True,
            ReadOnly=True,
            InteractionHandler=handler,
            MacroExecutionMode=_NEVER_EXECUTE_MACROS,
            UpdateDocMode=_NO_LINK_UPDATE,
            FilterName=job.import_filter,
            FilterOptions=job.import_options,
            Password=password,
        )
        try:
            document = self._desktop.loadComponentFromURL(
                _file_url(job.src), "_blank", 0, properties
            )
        except Exception as error:
            self._raise_if_lost(error)
            document = None  # type detection or reading failed: the document's fault
        return document, handler

    def _store(self, document: Any, job: _Conversion) -> None:
        export_filter = job.export_filter or _pdf_filter_for(document)
        properties: dict[str, Any] = {"FilterName": export_filter, "Overwrite": True}
        if job.export_password:
            properties.update(_encryption_properties(export_filter, job.export_password))
        job.dst.unlink(missing_ok=True)
        try:
            document.storeToURL(_file_url(job.dst), _properties(**properties))
        except Exception as error:
            self._raise_if_lost(error)
            raise EngineError(
                f"LibreOffice could not write the document with {export_filter}: "
                f"{_error_text(error)}"
            ) from error
        if not job.dst.is_file() or job.dst.stat().st_size == 0:
            raise EngineError(f"LibreOffice wrote no output with {export_filter}.")

    def _raise_if_lost(self, error: Exception) -> None:
        """Tell an instance that died under a call from a call that failed on the document."""
        if not self._answers() or not self.alive():
            raise _InstanceLost(_error_text(error)) from error

    def _answers(self) -> bool:
        # A dying process closes its pipe before it turns into a zombie, so poll() may still
        # see it alive: a call over the bridge is the reliable test.
        try:
            self._desktop.getCurrentComponent()
        except Exception:
            return False
        return True


def _apply_profile_settings(remote: Any) -> None:
    provider = remote.ServiceManager.createInstanceWithContext(
        "com.sun.star.configuration.ConfigurationProvider", remote
    )
    for node, name, value in _PROFILE_SETTINGS:
        try:
            access = provider.createInstanceWithArguments(
                "com.sun.star.configuration.ConfigurationUpdateAccess", _properties(nodepath=node)
            )
            access.setPropertyValue(name, value)
            access.commitChanges()
        except Exception as error:  # a LibreOffice without this setting converts as it is
            log.debug("LibreOffice setting %s/%s not applied: %s", node, name, _error_text(error))


def _kill_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process's group and reap the process (safe from any thread)."""
    # Only while the leader is unreaped: its pid (the group id) cannot be reused yet.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def _pdf_filter_for(document: Any) -> str:
    services = set(document.getSupportedServiceNames())  # one call over UNO, not one a kind
    for service, export_filter in _PDF_FILTERS:
        if service in services:
            return export_filter
    raise UnsupportedTypeError("LibreOffice opened the document but cannot export it to PDF.")


def _password_error(password: str | None) -> PasswordError:
    if password:
        return PasswordError("The password for this document is wrong.")
    return PasswordError("The document is password-protected: send its password in 'password'.")


class _Watchdog:
    """Kills an instance whose conversion runs past the timeout."""

    def __init__(self, instance: _Instance, timeout: float) -> None:
        self.fired = False
        # The process, not the instance: a late timer must not hit the instance's successor.
        self._process = instance.process
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        if self._process is not None:
            log.warning("LibreOffice pid %s overran its timeout: killing it", self._process.pid)
            _kill_process_group(self._process)

    @contextlib.contextmanager
    def running(self) -> Iterator[_Watchdog]:
        """Started; stopped if the body raises (otherwise the caller stops it later)."""
        self._timer.start()
        try:
            yield self
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._timer.cancel()


# -- the pool -------------------------------------------------------------------------------

_LIVE_POOLS: weakref.WeakSet[LibreOfficePool] = weakref.WeakSet()


class LibreOfficePool:
    """Warm LibreOffice instances, each converting one document at a time.

    `start()` launches them and blocks until each answers; `convert_to_pdf()` borrows an idle
    instance (waiting for one if all are busy). Restarts run on a keeper thread, which is
    also the thread that starts every instance (PR_SET_PDEATHSIG fires when the *thread*
    that forked the child ends, so that thread must live as long as the pool).
    """

    def __init__(
        self,
        size: int = 1,
        profile_root: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_conversions: int = DEFAULT_MAX_CONVERSIONS,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        program: Path | None = None,
    ) -> None:
        if size < 1 or timeout <= 0 or max_conversions < 1:
            raise ValueError("size and max_conversions must be >= 1, timeout > 0")
        self.size = size
        self.timeout = timeout
        self.max_conversions = max_conversions
        self.start_timeout = start_timeout
        self._program = program
        self._requested_root = profile_root
        self.profile_root: Path | None = None
        self._created_root = False
        self._instances: list[_Instance] = []
        self._idle: queue.Queue[_Instance] = queue.Queue()
        self._to_launch: queue.Queue[_Instance | None] = queue.Queue()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None
        self._state = "new"  # new → running → stopped
        self._owner_pid = os.getpid()  # a forked child inherits the object, not the instances
        self._started = False
        self._busy = 0
        self._conversions = 0
        self._restarts = 0
        self._timeouts = 0
        self._crashes = 0
        self._last_error: str | None = None

    def __enter__(self) -> LibreOfficePool:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- lifecycle
    def start(self) -> None:
        """Launch every instance and wait until each answers. Idempotent."""
        with self._lock:
            if self._state == "running":
                return
            if self._state == "stopped":
                raise EngineError("This LibreOffice pool was stopped; create a new one.")
            self._prepare()
            self._owner_pid = os.getpid()
            self._state = "running"
            _LIVE_POOLS.add(self)
            self._keeper = threading.Thread(
                target=self._keep_instances, name="libreoffice-keeper", daemon=True
            )
            self._keeper.start()
            for instance in self._instances:
                self._to_launch.put(instance)
        try:
            self._wait_until_started()
        except BaseException:
            self.stop()
            raise

    def _prepare(self) -> None:
        program = self._program or find_program()
        _uno()  # fail now, not on the keeper thread, if pyuno is missing
        root = self._requested_root
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="docmill-libreoffice-"))
            self._created_root = True
        else:
            self._created_root = not root.exists()
            root.mkdir(parents=True, exist_ok=True)
        self.profile_root = root.absolute()
        self._instances = [
            _Instance(index, self.profile_root / f"instance-{index}", program)
            for index in range(self.size)
        ]

    def _wait_until_started(self) -> None:
        deadline = time.monotonic() + self.start_timeout * _LAUNCH_ATTEMPTS
        with self._changed:
            while True:
                if any(instance.broken for instance in self._instances):
                    raise EngineError(f"LibreOffice did not start: {self._last_error}")
                if all(instance.launches for instance in self._instances):
                    self._started = True
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EngineError("LibreOffice did not start in time.")
                self._changed.wait(min(remaining, 1.0))

    def stop(self) -> None:
        """Stop every instance (busy ones too) and remove profiles this pool created."""
        with self._lock:
            if self._state == "stopped":
                return
            # In a forked child the instances are the parent's: leave them alone.
            was_running = self._state == "running" and self._owner_pid == os.getpid()
            self._state = "stopped"
            self._stopping.set()
        if was_running:
            self._to_launch.put(None)
            if self._keeper is not None and self._keeper is not threading.current_thread():
                self._keeper.join(self.start_timeout + 10)
            for instance in self._instances:
                instance.shut_down(graceful=True)
        _LIVE_POOLS.discard(self)
        if self._created_root and self.profile_root is not None:
            shutil.rmtree(self.profile_root, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        """Counters for /health: `ready` is true once started and while an instance can work."""
        with self._lock:
            running = self._state == "running"
            return {
                "engine": "libreoffice",
                "instances": self.size,
                "ready": running
                and self._started
                and not all(instance.broken for instance in self._instances),
                "idle": self._idle.qsize() if running else 0,
                "busy": self._busy,
                "conversions": self._conversions,
                "restarts": self._restarts,
                "timeouts": self._timeouts,
                "crashes": self._crashes,
                "pids": [instance.pid for instance in self._instances if instance.alive()],
                "last_error": self._last_error,
            }

    # -- conversions
    def convert_to_pdf(
        self,
        src: Path,
        dst: Path,
        password: str | None = None,
        *,
        import_filter: str | None = None,
        import_options: str | None = None,
    ) -> None:
        """Convert an office document to PDF; the export filter follows the document's kind."""
        self.convert(
            src, dst, password=password, import_filter=import_filter, import_options=import_options
        )

    def convert(
        self,
        src: Path,
        dst: Path,
        export_filter: str | None = None,
        *,
        password: str | None = None,
        import_filter: str | None = None,
        import_options: str | None = None,
        export_password: str | None = None,
    ) -> None:
        """Load `src` (with `password`, or a forced import filter) and store it as `dst`.

        `export_filter` is a LibreOffice filter name ("writer8", "MS Word 2007 XML"...);
        None picks the PDF export filter for the document. `export_password` encrypts the
        output. Raises PasswordError, DamagedFileError, TimeoutError_ or EngineError.
        """
        if not src.is_file():
            raise FileNotFoundError(src)
        job = _Conversion(
            src, dst, export_filter, password, import_filter, import_options, export_password
        )
        for attempt in (1, 2):
            instance = self._acquire()
            watchdog = _Watchdog(instance, self.timeout)
            try:
                with watchdog.running():
                    document = instance.convert(job)
            except _InstanceLost as lost:
                self._after_loss(instance, watchdog.fired)
                if watchdog.fired:
                    raise TimeoutError_(
                        f"The document took longer than {self.timeout:g} s to convert; "
                        "LibreOffice was stopped."
                    ) from None
                if attempt == 2:
                    raise EngineError(
                        "LibreOffice crashed twice while converting this document."
                    ) from lost
                log.warning("LibreOffice died during a conversion (%s); retrying once", lost)
                dst.unlink(missing_ok=True)
            except BaseException:
                self._count_conversion()
                self._release(instance, fired=watchdog.fired)
                raise
            else:
                self._close_later(instance, document, watchdog)
                return

    def _close_later(self, instance: _Instance, document: Any, watchdog: _Watchdog) -> None:
        """Close the document on a thread and only then give the instance back.

        The output is complete once stored; closing takes LibreOffice a few milliseconds
        more, which overlap the rest of the job (page count, storing the result, the
        answer) instead of delaying it. The watchdog keeps guarding the close.
        """
        self._count_conversion()

        def close_and_release() -> None:
            try:
                instance.close(document)
            finally:
                watchdog.stop()
                self._release(instance, fired=watchdog.fired)

        closer = threading.Thread(target=close_and_release, name="libreoffice-close", daemon=True)
        try:
            closer.start()
        except RuntimeError:  # no thread to be had: close here, as before
            close_and_release()

    def _acquire(self) -> _Instance:
        while True:
            with self._lock:
                if self._state != "running":
                    raise EngineError("The LibreOffice pool is not running.")
                if all(instance.broken for instance in self._instances):
                    raise EngineError(f"LibreOffice is not available: {self._last_error}")
                if self._keeper is None or not self._keeper.is_alive():
                    raise EngineError("LibreOffice's keeper thread is gone; restart docmill.")
            try:
                instance = self._idle.get(timeout=0.5)
            except queue.Empty:
                continue
            if instance.alive():
                with self._lock:
                    self._busy += 1
                return instance
            log.warning("LibreOffice instance pid %s died while idle; restarting it", instance.pid)
            self._relaunch_later(instance)

    def _count_conversion(self) -> None:
        with self._lock:
            self._conversions += 1

    def _release(self, instance: _Instance, fired: bool) -> None:
        with self._lock:
            self._busy -= 1
        instance.conversions += 1
        if fired or not instance.alive() or instance.conversions >= self.max_conversions:
            self._relaunch_later(instance)
        else:
            self._idle.put(instance)

    def _after_loss(self, instance: _Instance, fired: bool) -> None:
        with self._lock:
            self._busy -= 1
            self._conversions += 1
            if fired:
                self._timeouts += 1
            else:
                self._crashes += 1
        self._relaunch_later(instance)

    def _relaunch_later(self, instance: _Instance) -> None:
        with self._lock:
            if self._state == "running":
                self._to_launch.put(instance)
                return
        instance.shut_down(graceful=False)

    # -- the keeper thread: every launch and restart happens here
    def _keep_instances(self) -> None:
        while True:
            instance = self._to_launch.get()
            if instance is None or self._stopping.is_set():
                return
            self._launch_until_up(instance)

    def _launch_until_up(self, instance: _Instance) -> None:
        backoff = 1.0
        first = instance.launches == 0
        while not self._stopping.is_set():
            healthy = instance.alive()
            instance.shut_down(graceful=healthy)
            try:
                instance.launch(self.start_timeout, self._stopping)
            except Exception as error:  # whatever happens, the keeper thread must live on
                if self._stopping.is_set():
                    break
                self._note_failure(instance, error)
                # A profile left damaged by a crash is a common cause: start the next try anew.
                shutil.rmtree(instance.profile_dir, ignore_errors=True)
                if self._stopping.wait(backoff):
                    break
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            with self._changed:
                if not first:
                    self._restarts += 1
                self._changed.notify_all()
            log.info("LibreOffice instance %d up (pid %s)", instance.index, instance.pid)
            self._idle.put(instance)
            return
        instance.shut_down(graceful=False)

    def _note_failure(self, instance: _Instance, error: Exception) -> None:
        message = error.message if isinstance(error, EngineError) else _error_text(error)
        log.error("LibreOffice instance %d did not start: %s", instance.index, message)
        with self._changed:
            instance.broken = message
            self._last_error = message
            self._changed.notify_all()


# -- the process-wide pool ------------------------------------------------------------------

_POOL: LibreOfficePool | None = None
_POOL_PID = 0
_POOL_LOCK = threading.Lock()


def get_pool() -> LibreOfficePool:
    """This process's pool (one instance), created and warmed on first use."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is not None and os.getpid() != _POOL_PID:
            _POOL = None  # inherited through fork: its instances belong to the parent
        if _POOL is None:
            pool = _pool_from_settings()
            pool.start()  # on failure nothing is kept: the next call tries again
            _POOL, _POOL_PID = pool, os.getpid()
        return _POOL


def stop_pool() -> None:
    """Stop this process's pool, if it was started."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None and os.getpid() == _POOL_PID:
        pool.stop()


def pool_status() -> dict[str, Any]:
    """Status of this process's pool, without starting it."""
    with _POOL_LOCK:
        pool = _POOL if os.getpid() == _POOL_PID else None
    if pool is None:
        return {
            "engine": "libreoffice",
            "instances": 0,
            "ready": False,
            "conversions": 0,
            "restarts": 0,
        }
    return pool.status()


def _pool_from_settings() -> LibreOfficePool:
    from docmill.config import Settings

    settings = Settings.from_env()
    if "DOCMILL_DATA_DIR" in os.environ:
        base = settings.data_dir.absolute() / "libreoffice"
    else:
        base = Path(tempfile.gettempdir()) / "docmill-libreoffice"
    remove_stale_profiles(base)
    return LibreOfficePool(
        size=1,
        profile_root=base / f"{os.getpid()}-{uuid.uuid4().hex[:8]}",
        timeout=settings.libreoffice_timeout,
        max_conversions=settings.libreoffice_max_conversions,
    )


def remove_stale_profiles(base: Path) -> None:
    """Remove `<pid>-<token>` profile folders whose process is gone (it was killed)."""
    if not base.is_dir():
        return
    for folder in base.iterdir():
        pid_text = folder.name.split("-", 1)[0]
        if folder.is_dir() and pid_text.isdigit() and not _process_exists(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@atexit.register
def _stop_live_pools() -> None:
    for pool in list(_LIVE_POOLS):
        with contextlib.suppress(Exception):
            pool.stop()
