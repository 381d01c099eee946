"""The LibreOffice pool with the real LibreOffice: conversions, passwords, crashes, hangs,
restarts, and no soffice process outliving its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.engines import libreoffice
from docmill.engines.libreoffice import LibreOfficePool, get_pool, pool_status, stop_pool
from docmill.errors import DamagedFileError, EngineError, PasswordError, TimeoutError_
from tests.conftest import CORPUS, corpus_manifest, page_count, pdf_text

OFFICE_KINDS = {"doc", "docx", "rtf", "odt", "xlsx", "pptx"}
OFFICE_FILES = [CORPUS / row["file"] for row in corpus_manifest() if row["kind"] in OFFICE_KINDS]
SMALL_DOCX = CORPUS / "docling__word_sample.docx"
# 462 pages once laid out by LibreOffice: a few seconds, so it gets a timeout of its own.
LONG_DOCX = CORPUS / "unstructured__handbook-872p.docx"
PICTURES_ONLY = {"pydocx__having-images.docx"}  # no text to find in its PDF


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LibreOfficePool]:
    """One warm instance shared by the tests that do not break it."""
    with LibreOfficePool(1, tmp_path_factory.mktemp("lo") / "profiles", timeout=120) as shared:
        yield shared


@pytest.fixture
def own_pool(tmp_path: Path) -> Iterator[LibreOfficePool]:
    """A pool of its own, for tests that kill, freeze or restart instances."""
    fresh = LibreOfficePool(1, tmp_path / "profiles", timeout=30, max_conversions=100)
    fresh.start()
    yield fresh
    fresh.stop()


def soffice_processes(profile_root: Path) -> set[int]:
    """Live (not zombie) soffice.bin processes whose profile is under `profile_root`."""
    marker = profile_root.absolute().as_uri().encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b"soffice.bin" in cmdline and marker in cmdline and state != "Z":
            found.add(int(entry.name))
    return found


def wait_for(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def encrypted_copy(pool: LibreOfficePool, export_filter: str, suffix: str, folder: Path) -> Path:
    locked = folder / f"locked.{suffix}"
    pool.convert(SMALL_DOCX, locked, export_filter, export_password="secret")
    return locked


# -- conversions ----------------------------------------------------------------------------


def test_start_warms_the_instances(pool: LibreOfficePool) -> None:
    status = pool.status()
    assert status["ready"] is True
    assert status["instances"] == 1 and len(status["pids"]) == 1
    assert soffice_processes(pool.profile_root) == set(status["pids"])


def office_param(path: Path) -> object:
    """A corpus file as a test parameter; the long one gets more time."""
    marks = [pytest.mark.timeout(300)] if path == LONG_DOCX else []
    return pytest.param(path, id=path.name, marks=marks)


@pytest.mark.parametrize("source", [office_param(path) for path in OFFICE_FILES])
def test_every_office_file_of_the_corpus_converts(
    pool: LibreOfficePool, source: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.pdf"
    pool.convert_to_pdf(source, output)
    assert output.read_bytes().startswith(b"%PDF")
    assert page_count(output) >= 1
    if source.name not in PICTURES_ONLY:
        assert pdf_text(output).strip(), "the PDF has no text"


def test_text_import_filter_reads_utf8(pool: LibreOfficePool, tmp_path: Path) -> None:
    text = tmp_path / "notes"
    text.write_text("Grüße aus Köln\nΚαλημέρα κόσμε\n", encoding="utf-8")
    output = tmp_path / "notes.pdf"
    pool.convert_to_pdf(text, output, import_filter="Text (encoded)", import_options="UTF8")
    extracted = pdf_text(output)
    assert "Grüße aus Köln" in extracted and "Καλημέρα" in extracted


@pytest.mark.parametrize(
    ("export_filter", "suffix"),
    [("writer8", "odt"), ("MS Word 2007 XML", "docx"), ("MS Word 97", "doc")],
)
def test_password_protected_document_fails_fast(
    pool: LibreOfficePool, tmp_path: Path, export_filter: str, suffix: str
) -> None:
    locked = encrypted_copy(pool, export_filter, suffix, tmp_path)
    timeouts = pool.status()["timeouts"]
    # A question LibreOffice waited on would end in the kill timeout, not in 441.
    with pytest.raises(PasswordError, match="send its password"):
        pool.convert_to_pdf(locked, tmp_path / "a.pdf")
    with pytest.raises(PasswordError, match="wrong"):
        pool.convert_to_pdf(locked, tmp_path / "b.pdf", password="not-it")
    pool.convert_to_pdf(locked, tmp_path / "c.pdf", password="secret")
    assert pdf_text(tmp_path / "c.pdf").strip()
    assert pool.status()["timeouts"] == timeouts


def test_damaged_document_is_refused_and_the_instance_lives_on(
    pool: LibreOfficePool, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.docx"
    broken.write_bytes(SMALL_DOCX.read_bytes()[:20000])
    pids = pool.status()["pids"]
    with pytest.raises(DamagedFileError):
        pool.convert_to_pdf(broken, tmp_path / "out.pdf")
    assert pool.status()["pids"] == pids
    pool.convert_to_pdf(SMALL_DOCX, tmp_path / "ok.pdf")


# -- crashes, hangs, restarts ---------------------------------------------------------------


def test_kill_9_mid_conversion_is_retried_on_a_fresh_instance(
    own_pool: LibreOfficePool, tmp_path: Path
) -> None:
    first_pid = own_pool.status()["pids"][0]
    output = tmp_path / "long.pdf"
    outcome: list[BaseException | None] = []

    def convert() -> None:
        try:
            own_pool.convert_to_pdf(LONG_DOCX, output)
            outcome.append(None)
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    worker = threading.Thread(target=convert)
    worker.start()
    assert wait_for(lambda: own_pool.status()["busy"] == 1)
    time.sleep(0.2)  # well inside a conversion that takes seconds
    os.kill(first_pid, signal.SIGKILL)
    worker.join(120)
    assert outcome == [None]
    assert page_count(output) > 100
    status = own_pool.status()
    assert status["crashes"] == 1 and status["restarts"] == 1
    assert status["pids"] and status["pids"][0] != first_pid


def test_hung_instance_is_killed_by_the_timeout_and_replaced(
    own_pool: LibreOfficePool, tmp_path: Path
) -> None:
    own_pool.timeout = 2.0
    frozen = own_pool.status()["pids"][0]
    os.kill(frozen, signal.SIGSTOP)
    with pytest.raises(TimeoutError_):
        own_pool.convert_to_pdf(SMALL_DOCX, tmp_path / "never.pdf")
    assert wait_for(lambda: frozen not in soffice_processes(own_pool.profile_root))
    own_pool.convert_to_pdf(SMALL_DOCX, tmp_path / "after.pdf")
    status = own_pool.status()
    assert status["timeouts"] == 1 and status["restarts"] == 1
    assert frozen not in status["pids"]


def test_instance_restarts_after_max_conversions(tmp_path: Path) -> None:
    with LibreOfficePool(1, tmp_path / "profiles", max_conversions=2) as pool:
        pids = []
        for index in range(3):
            pids.append(pool.status()["pids"][0] if pool.status()["pids"] else None)
            pool.convert_to_pdf(SMALL_DOCX, tmp_path / f"{index}.pdf")
        assert pids[0] == pids[1]
        assert wait_for(lambda: pool.status()["restarts"] == 1)
        assert pool.status()["pids"][0] != pids[0]
        assert pool.status()["conversions"] == 3


def test_instance_that_died_while_idle_is_replaced(
    own_pool: LibreOfficePool, tmp_path: Path
) -> None:
    dead = own_pool.status()["pids"][0]
    os.kill(dead, signal.SIGKILL)
    own_pool.convert_to_pdf(SMALL_DOCX, tmp_path / "out.pdf")
    assert dead not in own_pool.status()["pids"]


# -- processes ------------------------------------------------------------------------------


def test_two_instances_convert_side_by_side_and_stop_leaves_no_process(tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    pool = LibreOfficePool(2, root)
    pool.start()
    pids = set(pool.status()["pids"])
    assert len(pids) == 2 and soffice_processes(root) == pids
    sources = [SMALL_DOCX, CORPUS / "docling__xlsx_01.xlsx", CORPUS / "markitdown__test.pptx"]
    threads = [
        threading.Thread(target=pool.convert_to_pdf, args=(src, tmp_path / f"{i}.pdf"))
        for i, src in enumerate(sources)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(page_count(tmp_path / f"{i}.pdf") >= 1 for i in range(len(sources)))
    pool.stop()
    assert soffice_processes(root) == set()
    assert not root.exists(), "the pool removes the profiles it created"
    with pytest.raises(EngineError):
        pool.convert_to_pdf(SMALL_DOCX, tmp_path / "late.pdf")


_OWNER_SCRIPT = """
import sys, time
from pathlib import Path
from docmill.engines.libreoffice import LibreOfficePool
pool = LibreOfficePool(1, Path(sys.argv[1]))
pool.start()
print(pool.status()["pids"][0], flush=True)
time.sleep(120)
"""


def test_instances_die_with_their_owner_on_kill_9(tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        soffice_pid = int(owner.stdout.readline())
        assert soffice_processes(root) == {soffice_pid}
        owner.kill()  # SIGKILL: no atexit, no cleanup in the owner
        owner.wait(10)
        assert wait_for(lambda: not soffice_processes(root)), "soffice outlived its owner"
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()


def test_missing_program_fails_start_with_an_engine_error(tmp_path: Path) -> None:
    pool = LibreOfficePool(1, tmp_path / "profiles", program=tmp_path / "no-soffice.bin")
    with pytest.raises(EngineError, match="Could not run"):
        pool.start()
    assert pool.status()["ready"] is False


# -- the process-wide pool ------------------------------------------------------------------


def test_get_pool_starts_one_shared_pool_lazily(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop_pool()
    assert pool_status()["ready"] is False
    monkeypatch.setenv("DOCMILL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCMILL_LIBREOFFICE_TIMEOUT", "45")
    monkeypatch.setenv("DOCMILL_LIBREOFFICE_MAX_CONVERSIONS", "7")
    shared = get_pool()
    try:
        assert get_pool() is shared
        assert (shared.size, shared.timeout, shared.max_conversions) == (1, 45.0, 7)
        assert shared.profile_root.parent == tmp_path / "libreoffice"
        assert pool_status()["ready"] is True
        shared.convert_to_pdf(SMALL_DOCX, tmp_path / "out.pdf")
    finally:
        stop_pool()
    assert pool_status()["ready"] is False
    assert soffice_processes(tmp_path) == set()


def test_profiles_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / "999999999-deadbeef"  # beyond pid_max: no such process
    mine = tmp_path / f"{os.getpid()}-cafe"
    dead.mkdir()
    mine.mkdir()
    libreoffice.remove_stale_profiles(tmp_path)
    assert not dead.exists() and mine.exists()
