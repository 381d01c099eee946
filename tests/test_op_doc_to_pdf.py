"""`/pdf/convert/from/doc` and `/xls/convert/to/pdf` with the real LibreOffice: type detection
from content, every office file of the corpus, plain text, refusals and ZIP bombs."""

from __future__ import annotations

import os
import random
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pypdfium2 as pdfium
import pytest

from docmill.engines.libreoffice import LibreOfficePool, get_pool, stop_pool
from docmill.errors import (
    DamagedFileError,
    PasswordError,
    TooLargeError,
    UnsupportedTypeError,
)
from docmill.operation import get_operation, operations
from docmill.ops import doc_to_pdf
from docmill.ops.doc_to_pdf import Params, convert_doc_to_pdf, detect_office_type
from tests.conftest import CORPUS, corpus_manifest

OFFICE_ROWS = [
    row for row in corpus_manifest() if row["kind"] in {"doc", "docx", "rtf", "odt", "xlsx", "pptx"}
]
DOCX_FILES = [CORPUS / row["file"] for row in OFFICE_ROWS if row["kind"] == "docx"]
SMALL_DOCX = CORPUS / "docling__word_sample.docx"
LONG_DOCX = CORPUS / "unstructured__handbook-872p.docx"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
WORD = re.compile(r"[^\W\d_]{4,}")


@pytest.fixture(scope="module", autouse=True)
def pool() -> Iterator[LibreOfficePool]:
    """The process-wide pool the op uses, warmed once and stopped after these tests."""
    yield get_pool()
    stop_pool()


def as_input(source: Path, folder: Path, name: str = "input") -> Path:
    """The source under a generic name, as inputs often arrive."""
    link = folder / name
    os.symlink(source, link)
    return link


def convert(source: Path, folder: Path, password: str = "") -> Path:
    out_dir = folder / "out"
    out_dir.mkdir(exist_ok=True)
    result = convert_doc_to_pdf([source], Params(password=password), out_dir)
    assert len(result.files) == 1 and result.files[0].parent == out_dir
    with pdfium.PdfDocument(str(result.files[0])) as document:
        assert result.page_count == len(document) >= 1
    return result.files[0]


def pdf_words(path: Path) -> set[str]:
    with pdfium.PdfDocument(str(path)) as document:
        text = " ".join(page.get_textpage().get_text_range() for page in document)
    return {word.casefold() for word in WORD.findall(text)}


def docx_words(path: Path) -> set[str]:
    """Words of the body of a DOCX, read from word/document.xml paragraph by paragraph."""
    with zipfile.ZipFile(path) as archive:
        root = ElementTree.fromstring(archive.read("word/document.xml"))
    words: set[str] = set()
    for paragraph in root.iter(f"{W}p"):
        text = "".join(_own_text(paragraph))
        words.update(word.casefold() for word in WORD.findall(text))
    return words


def _own_text(element: ElementTree.Element) -> Iterator[str]:
    """Text runs of a paragraph, leaving out paragraphs nested in it (text boxes)."""
    for child in element:
        if child.tag == f"{W}t":
            yield child.text or ""
        elif child.tag != f"{W}p":
            yield from _own_text(child)


def assert_holds_words(pdf: Path, source_words: set[str]) -> None:
    found = source_words & pdf_words(pdf)
    missing = sorted(source_words - found)[:20]
    assert len(found) >= 0.9 * len(source_words), f"words missing from the PDF: {missing}"


# -- conversions ----------------------------------------------------------------------------


def corpus_param(value: object, name: str) -> object:
    """A test parameter named after its corpus file; the long document gets more time."""
    marks = [pytest.mark.timeout(300)] if name == LONG_DOCX.name else []
    return pytest.param(value, id=name, marks=marks)


@pytest.mark.parametrize("row", [corpus_param(row, row["file"]) for row in OFFICE_ROWS])
def test_every_office_file_converts_under_a_generic_name(row: dict, tmp_path: Path) -> None:
    source = as_input(CORPUS / row["file"], tmp_path)
    assert detect_office_type(source).name == row["kind"]
    convert(source, tmp_path)


@pytest.mark.parametrize("source", [corpus_param(path, path.name) for path in DOCX_FILES])
def test_docx_pdf_holds_the_documents_words(source: Path, tmp_path: Path) -> None:
    words = docx_words(source)
    pdf = convert(as_input(source, tmp_path), tmp_path)
    if words:  # one sample holds pictures only
        assert_holds_words(pdf, words)


def test_docx_named_txt_is_converted_as_docx(tmp_path: Path) -> None:
    pdf = convert(as_input(SMALL_DOCX, tmp_path, "notes.txt"), tmp_path)
    assert_holds_words(pdf, docx_words(SMALL_DOCX))


@pytest.mark.parametrize(
    ("encoding", "options"),
    [("utf-8", "UTF8"), ("utf-16", "UNICODE"), ("cp1252", "MS_1252")],
)
def test_plain_text_converts_in_its_encoding(tmp_path: Path, encoding: str, options: str) -> None:
    text = "Café crème, déjà vu — naïve façade\nSecond line of the note\n"
    source = tmp_path / "input"
    source.write_bytes(text.encode(encoding))
    detected = detect_office_type(source)
    assert (detected.name, detected.import_options) == ("text", options)
    words = pdf_words(convert(source, tmp_path))
    assert {"café", "crème", "déjà", "naïve", "façade", "second"} <= words


def test_xls_path_converts_a_spreadsheet(tmp_path: Path) -> None:
    operation = get_operation("xls_to_pdf")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    source = as_input(CORPUS / "unstructured__2023-half-year-analyses-by-segment.xlsx", tmp_path)
    result = operation.run([source], Params(), out_dir)
    assert result.page_count >= 1 and result.files[0].read_bytes().startswith(b"%PDF")


def test_operations_are_registered() -> None:
    registry = operations()
    assert registry["doc_to_pdf"].paths == ("/pdf/convert/from/doc",)
    assert registry["xls_to_pdf"].paths == ("/xls/convert/to/pdf",)
    assert all(registry[name].engines == ("libreoffice",) for name in ("doc_to_pdf", "xls_to_pdf"))


# -- passwords ------------------------------------------------------------------------------


def test_encrypted_docx_needs_its_password(pool: LibreOfficePool, tmp_path: Path) -> None:
    locked = tmp_path / "locked.docx"
    pool.convert(SMALL_DOCX, locked, "MS Word 2007 XML", export_password="secret")
    source = as_input(locked, tmp_path)
    assert detect_office_type(source).encrypted
    conversions = pool.status()["conversions"]
    with pytest.raises(PasswordError, match="password-protected"):
        convert(source, tmp_path)
    assert pool.status()["conversions"] == conversions, "refused before LibreOffice"
    with pytest.raises(PasswordError, match="wrong"):
        convert_doc_to_pdf([source], Params(password="guess"), tmp_path)
    assert_holds_words(convert(source, tmp_path, "secret"), docx_words(SMALL_DOCX))


def test_encrypted_odt_needs_its_password(pool: LibreOfficePool, tmp_path: Path) -> None:
    locked = tmp_path / "locked.odt"
    pool.convert(SMALL_DOCX, locked, "writer8", export_password="secret")
    source = as_input(locked, tmp_path)
    with pytest.raises(PasswordError):
        convert_doc_to_pdf([source], Params(), tmp_path)
    convert(source, tmp_path, "secret")


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "ocrmypdf__baiona_alpha.png",
        "pydocx__jpeg420exif.jpg",
        "pillow__chi.gif",
        "pillow__pport_g4.tif",
        "unstructured__bmp_24.bmp",
        "docling__webp-test.webp",
        "pdfsamples__habibi.pdf",
    ],
)
def test_images_and_pdfs_are_unsupported(name: str, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedTypeError) as raised:
        convert_doc_to_pdf([as_input(CORPUS / name, tmp_path)], Params(), tmp_path)
    assert raised.value.status == 415


def test_text_that_starts_like_a_magic_number_is_text(tmp_path: Path) -> None:
    source = tmp_path / "input"
    source.write_text("BMW annual report\nGIF: not a picture\n")
    assert detect_office_type(source).name == "text"


def test_unknown_binary_and_plain_zip_are_unsupported(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(random.Random(7).randbytes(8192))
    archive = tmp_path / "archive"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("readme.md", "not an office document")
    for source in (binary, archive):
        with pytest.raises(UnsupportedTypeError):
            detect_office_type(source)


def test_empty_and_damaged_files_are_442(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    truncated_zip = tmp_path / "truncated"
    truncated_zip.write_bytes(SMALL_DOCX.read_bytes()[:20000])
    truncated_ole = tmp_path / "ole"
    truncated_ole.write_bytes((CORPUS / "docling__greek_heading_styles.doc").read_bytes()[:300])
    for source in (empty, truncated_zip, truncated_ole):
        with pytest.raises(DamagedFileError):
            detect_office_type(source)


def test_ole2_directory_names_its_streams() -> None:
    with open(CORPUS / "unstructured__fake-doc-emphasized-text.doc", "rb") as handle:
        names = doc_to_pdf.ole2_stream_names(handle)
    assert {"Root Entry", "WordDocument"} <= names


# -- ZIP bombs ------------------------------------------------------------------------------


def test_zip_bomb_is_refused_before_libreoffice(tmp_path: Path) -> None:
    bomb = tmp_path / "input"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (64 * 1024 * 1024))
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(TooLargeError) as raised:
        convert_doc_to_pdf([bomb], Params(), tmp_path)
    assert raised.value.status == 413


def test_zip_limits_on_total_size_and_member_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = CORPUS / "docling__docx_rich_tables_01.docx"  # 6 MB unzipped, 29 members
    monkeypatch.setattr(doc_to_pdf, "MAX_UNZIPPED_BYTES", 1024 * 1024)
    with pytest.raises(TooLargeError, match="unpacks"):
        detect_office_type(source)
    monkeypatch.undo()
    monkeypatch.setattr(doc_to_pdf, "MAX_ZIP_MEMBERS", 10)
    with pytest.raises(TooLargeError, match="parts"):
        detect_office_type(source)
