"""Hostile files through every op: a clear PDF.co error or a sane result, in bounded time
and memory, never a crash or a hang; and through HTTP, the worker survives them.

Every file of `tests/badinputs.py` goes through every registered op (an op refuses what is
not its type with 415/442), in a child process with a time limit (`tests/op_child.py`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from docmill.operation import operations
from tests.badinputs import CASE_NAMES, PASSWORD, WRONG_TYPE, BadInput, generate
from tests.conftest import CORPUS, upload
from tests.op_child import OpChild, OpOutcome

CALL_TIMEOUT = 60.0  # seconds one op may take on one hostile file
MAX_RSS_MB = 3072  # peak memory of the op child: a bomb must not be inflated in memory
MAX_PAGES_IN_TEST = 1000  # DOCMILL_MAX_PAGES of the op child: the 5000-page PDF is refused
SMALL_DOCX = CORPUS / "docling__word_sample.docx"

OPS = sorted(operations())


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BadInput]:
    cases = generate(tmp_path_factory.mktemp("badinputs"))
    return {case.name: case for case in cases}


@pytest.fixture(scope="module")
def op_child() -> Iterator[OpChild]:
    child = OpChild({"DOCMILL_MAX_PAGES": str(MAX_PAGES_IN_TEST)})
    yield child
    child.stop()


@pytest.fixture(scope="module")
def encrypted_docx(op_child: OpChild, tmp_path_factory: pytest.TempPathFactory) -> BadInput:
    """A password-protected DOCX, made by LibreOffice in the op child."""
    target = tmp_path_factory.mktemp("locked") / "locked.docx"
    op_child.call("encrypt_office", source=str(SMALL_DOCX), target=str(target),
                  filter="MS Word 2007 XML", password="secret")
    return BadInput("locked.docx", target, WRONG_TYPE | {PASSWORD})


def assert_refused_or_sane(case: BadInput, op: str, outcome: OpOutcome) -> None:
    label = f"{op} on {case.name}"
    assert outcome.status != 0, f"{label} crashed: {outcome.message}"
    assert outcome.status in case.refusals | {200}, (
        f"{label} answered {outcome.status} ({outcome.message}); "
        f"expected one of {sorted(case.refusals)} or success"
    )
    if outcome.status == 200:
        assert outcome.files, f"{label} succeeded without output"
        assert all(size > 0 for _, size in outcome.files), f"{label} wrote an empty file"
    else:
        assert outcome.message and "Traceback" not in outcome.message
    assert outcome.max_rss_mb < MAX_RSS_MB, f"{label} peaked at {outcome.max_rss_mb:.0f} MB"


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_bad_file_through_every_op(
    op_child: OpChild, bad_inputs: dict[str, BadInput], name: str, op: str
) -> None:
    case = bad_inputs[name]
    outcome = op_child.run(op, case.path, {"password": case.password}, CALL_TIMEOUT)
    assert_refused_or_sane(case, op, outcome)


@pytest.mark.parametrize("op", OPS)
def test_password_protected_docx(op_child: OpChild, encrypted_docx: BadInput, op: str) -> None:
    outcome = op_child.run(op, encrypted_docx.path, {}, CALL_TIMEOUT)
    assert_refused_or_sane(encrypted_docx, op, outcome)
    if op in ("doc_to_pdf", "xls_to_pdf"):
        assert outcome.status == PASSWORD
        wrong = op_child.run(op, encrypted_docx.path, {"password": "guess"}, CALL_TIMEOUT)
        assert wrong.status == PASSWORD


# Exact answers where one is right, not just "some refusal".
EXPECTED = [
    ("pdf_to_text", "zero-byte.pdf", 442),
    ("pdf_to_png", "truncated-10.pdf", 442),
    ("pdf_to_text", "png-named.pdf", 442),
    ("image_to_pdf", "text-named.pdf", 415),
    ("doc_to_pdf", "png-named.pdf", 415),
    ("doc_to_pdf", "bomb.docx", 413),
    ("xls_to_pdf", "bomb.xlsx", 413),
    ("image_to_pdf", "pillow__reallybig.bmp", 413),
    ("pdf_to_text", "pdfplumber__password-example.pdf", 441),
    ("pdf_to_text", "pypdf__r6-user-password.pdf[pw]", 441),
    ("pdf_to_png", "5000-pages.pdf", 413),
]


@pytest.mark.parametrize(("op", "name", "code"), EXPECTED)
def test_exact_error_codes(
    op_child: OpChild, bad_inputs: dict[str, BadInput], op: str, name: str, code: int
) -> None:
    case = bad_inputs[name]
    outcome = op_child.run(op, case.path, {"password": case.password}, CALL_TIMEOUT)
    assert outcome.status == code, outcome.message


# -- through HTTP: the worker answers every one of them and stays alive ----------------------

HTTP_CASES = [
    ("/pdf/convert/to/text", "fuzzed.pdf"),
    ("/pdf/convert/to/png", "huge-mediabox.pdf"),
    ("/pdf/convert/to/png", "cyclic-page-tree.pdf"),
    ("/pdf/optimize", "deeply-nested.pdf"),
    ("/pdf/convert/from/doc", "bomb.docx"),
    ("/pdf/convert/from/doc", "lying-bomb.docx"),
    ("/pdf/convert/from/image", "pillow__reallybig.bmp"),
    ("/pdf/convert/to/text", "pdfjs__poppler-742-0-fuzzed.pdf"),
]


def _job_outcome(server, path: str, url: str) -> dict:
    answer = requests.post(server.url + path, json={"url": url, "async": True}, timeout=30)
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["jobId"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        check = requests.get(server.url + "/job/check", params={"jobid": job_id}, timeout=30)
        status = check.json()
        if status["status"] != "working":
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} on {url} still working after 120 s")


def test_workers_survive_hostile_files_over_http(
    server, bad_inputs: dict[str, BadInput]
) -> None:
    for path, name in HTTP_CASES:
        status = _job_outcome(server, path, upload(server, bad_inputs[name].path))
        assert status["status"] in ("success", "failed"), status
        if status["status"] == "failed":
            assert "Internal error" not in status.get("message", ""), (name, status)
    good = requests.post(server.url + "/pdf/convert/to/text",
                         json={"url": upload(server, CORPUS / "pdfjs__tracemonkey.pdf"),
                               "pages": "0"}, timeout=120)
    assert good.status_code == 200 and good.json()["pageCount"] == 1
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
