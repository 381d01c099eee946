"""Opening PDFs, once for every op: password handling and error codes live here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium

from docmill.errors import DamagedFileError, PasswordError

_PDFIUM_ERR_PASSWORD = 4


def open_pdfium(path: Path, password: str | None = None) -> pdfium.PdfDocument:
    """Open a PDF with PDFium; wrong or missing password → 441, damaged or not a PDF → 442."""
    _refuse_non_pdf(path)
    try:
        return pdfium.PdfDocument(str(path), password=password or None)
    except pdfium.PdfiumError as exc:
        if exc.err_code == _PDFIUM_ERR_PASSWORD:
            if password:  # a needless password on a file that opens without one is no error
                with contextlib.suppress(pdfium.PdfiumError):
                    return pdfium.PdfDocument(str(path))
            raise _password_error(password) from exc
        raise DamagedFileError(
            "The input is damaged or is not a PDF file, and could not be opened."
        ) from exc


@contextmanager
def pdfium_document(path: Path, password: str | None = None) -> Iterator[pdfium.PdfDocument]:
    """`open_pdfium` as a context manager that always closes the document."""
    document = open_pdfium(path, password)
    try:
        yield document
    finally:
        document.close()


def open_pikepdf(path: Path, password: str | None = None) -> pikepdf.Pdf:
    """Open a PDF with qpdf (pikepdf), with the same error codes as `open_pdfium`."""
    _refuse_non_pdf(path)
    try:
        return pikepdf.open(path, password=password or "")
    except pikepdf.PasswordError as exc:
        if password:
            with contextlib.suppress(pikepdf.PasswordError, pikepdf.PdfError):
                return pikepdf.open(path)
        raise _password_error(password) from exc
    except (pikepdf.PdfError, ValueError, OSError) as exc:
        raise DamagedFileError(
            "The input is damaged or is not a PDF file, and could not be opened."
        ) from exc


def _refuse_non_pdf(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if not head:
        raise DamagedFileError("The input file is empty (0 bytes).")
    if b"%PDF" not in head:
        raise DamagedFileError("The input is not a PDF file (no %PDF header).")


def _password_error(password: str | None) -> PasswordError:
    if password:
        return PasswordError("The password for this encrypted PDF is wrong.")
    return PasswordError("The PDF is encrypted: send its password in 'password'.")
