"""`docmill run`: one operation on local files, without a server."""

import json

from docmill.cli import main
from tests.conftest import CORPUS


def test_run_writes_outputs_and_reports_them(tmp_path, capsys):
    source = CORPUS / "pdfsamples__crazyones-pdfa.pdf"
    assert main(["run", "pdf_to_text", str(source), "--out", str(tmp_path),
                 "--param", "pages=0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pageCount"] == 1
    assert (tmp_path / "pdfsamples__crazyones-pdfa.txt").read_text().endswith("\f")


def test_run_reports_errors_with_their_code(tmp_path, capsys):
    assert main(["run", "pdf_to_text", str(CORPUS / "pdfplumber__empty.pdf"),
                 "--out", str(tmp_path)]) == 1
    assert json.loads(capsys.readouterr().err)["status"] == 442


def test_run_list_names_every_operation(capsys):
    assert main(["run", "list"]) == 0
    listed = capsys.readouterr().out
    for name in ("pdf_to_text", "pdf_to_png", "image_to_pdf", "doc_to_pdf", "optimize"):
        assert name in listed
