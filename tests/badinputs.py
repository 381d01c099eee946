"""Hostile input files, generated into a directory: what a careless or malicious client sends.

`generate(folder)` writes every generated case and returns them with the corpus's own bad
files, each a `BadInput`: its path, the password to send (if any), and the error codes an op
may answer with (any op may also succeed, if its result is sane). Generation is fast (< 5 s):
ZIP bombs are written as streamed zeros, deflated, and the big PDFs are built with pikepdf.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from PIL import Image

from tests.conftest import CORPUS

SOURCE_PDF = CORPUS / "pdfjs__tracemonkey.pdf"  # a real 14-page PDF to cut and fuzz
ENCRYPTED_PDF = CORPUS / "pdfplumber__password-example.pdf"  # password "test"
FUZZ_SEED = 20261124
BOMB_BYTES = 1024**3 + 64 * 1024**2  # what one ZIP-bomb member inflates to: > 1 GiB
_ZERO_CHUNK = bytes(8 * 1024 * 1024)

DAMAGED, PASSWORD, TOO_LARGE, UNSUPPORTED, PAGE_RANGE = 442, 441, 413, 415, 450
# Any input may be of the wrong type for some op: these codes are always acceptable refusals.
WRONG_TYPE = frozenset({DAMAGED, UNSUPPORTED})


@dataclass(frozen=True)
class BadInput:
    name: str
    path: Path
    refusals: frozenset[int] = WRONG_TYPE  # codes an op may answer with, besides success
    password: str = ""


def _codes(*codes: int) -> frozenset[int]:
    return WRONG_TYPE | frozenset(codes)


def write_zero_byte(path: Path) -> None:
    path.write_bytes(b"")


def write_truncated(fraction: float) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        data = SOURCE_PDF.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])

    return write


def write_fuzzed(path: Path) -> None:
    """The source PDF with 1 byte in 200 replaced by random bytes, reproducibly."""
    data = bytearray(SOURCE_PDF.read_bytes())
    rng = random.Random(FUZZ_SEED)
    for _ in range(len(data) // 200):
        data[rng.randrange(len(data))] = rng.randrange(256)
    path.write_bytes(bytes(data))


def write_png(path: Path) -> None:
    Image.new("RGB", (32, 32), "red").save(path, format="PNG")


def write_jpeg(path: Path) -> None:
    Image.new("RGB", (32, 32), "blue").save(path, format="JPEG")


def write_plain_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a document")


def write_text(path: Path) -> None:
    path.write_text("Just some text, no PDF at all.\n" * 20)


def write_huge_mediabox(path: Path) -> None:
    with pikepdf.new() as pdf:
        page = pdf.add_blank_page(page_size=(612, 792))
        page.obj.MediaBox = pikepdf.Array([0, 0, 200_000, 200_000])  # past pikepdf's own check
        pdf.save(path)


def write_many_pages(count: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with pikepdf.new() as pdf:
            for _ in range(count):
                pdf.add_blank_page(page_size=(612, 792))
            pdf.save(path)

    return write


def write_deeply_nested(path: Path, depth: int = 5000) -> None:
    """A valid-looking one-page PDF whose page holds an array nested `depth` levels deep."""
    nested = "[" * depth + "0" + "]" * depth
    _write_raw_pdf(path, [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Deep {nested} >>",
    ])


def write_cyclic_page_tree(path: Path) -> None:
    """A page tree whose /Kids lead back to its root, and a page that is its own /Parent."""
    _write_raw_pdf(path, [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
        "<< /Type /Pages /Parent 2 0 R /Kids [2 0 R 4 0 R] /Count 2 >>",
        "<< /Type /Page /Parent 4 0 R /MediaBox [0 0 612 792] /Kids [3 0 R] >>",
    ])


def _write_raw_pdf(path: Path, objects: list[str]) -> None:
    """A PDF with the given objects (numbered from 1) and a correct cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode())
    out.write(f"startxref\n{xref}\n%%EOF\n".encode())
    path.write_bytes(out.getvalue())


def write_zip_bomb(main_part: str, content_type: str) -> Callable[[Path], None]:
    """An OOXML package whose main part inflates to more than 1 GiB (a few MB on disk)."""

    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.writestr("[Content_Types].xml", _content_types(main_part, content_type))
            with archive.open(main_part, "w", force_zip64=True) as member:
                for _ in range(BOMB_BYTES // len(_ZERO_CHUNK)):
                    member.write(_ZERO_CHUNK)

    return write


def write_lying_zip_bomb(path: Path) -> None:
    """A DOCX whose main part says it holds 1000 bytes but inflates to 512 MiB: the sizes
    in the ZIP headers, which the bomb check reads, lie."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", _content_types("word/document.xml", DOCX_MAIN))
        with archive.open("word/document.xml", "w") as member:
            for _ in range(512 * 1024**2 // len(_ZERO_CHUNK)):
                member.write(_ZERO_CHUNK)
    data = bytearray(path.read_bytes())
    _declare_size(data, b"word/document.xml", 1000)
    path.write_bytes(bytes(data))


# ZIP header signature → (offset of the name length, of the name, of the uncompressed size)
_ZIP_HEADERS = {b"PK\x03\x04": (26, 30, 22), b"PK\x01\x02": (28, 46, 24)}


def _declare_size(data: bytearray, member: bytes, size: int) -> None:
    """Overwrite the uncompressed size of `member` in its local and central headers."""
    for signature, (name_length_at, name_at, size_at) in _ZIP_HEADERS.items():
        start = data.find(signature)
        while start >= 0:
            length = struct.unpack_from("<H", data, start + name_length_at)[0]
            if data[start + name_at:start + name_at + length] == member:
                struct.pack_into("<I", data, start + size_at, size)
            start = data.find(signature, start + 4)


def _content_types(main_part: str, content_type: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        f'package/2006/content-types"><Override PartName="/{main_part}" '
        f'ContentType="{content_type}"/></Types>'
    )


DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"

# name → (writer, acceptable refusals, password)
GENERATED: dict[str, tuple[Callable[[Path], None], frozenset[int], str]] = {
    "zero-byte.pdf": (write_zero_byte, WRONG_TYPE, ""),
    "truncated-10.pdf": (write_truncated(0.10), WRONG_TYPE, ""),
    "truncated-50.pdf": (write_truncated(0.50), WRONG_TYPE, ""),
    "fuzzed.pdf": (write_fuzzed, WRONG_TYPE, ""),
    "png-named.pdf": (write_png, WRONG_TYPE, ""),
    "jpeg-named.pdf": (write_jpeg, WRONG_TYPE, ""),
    "zip-named.pdf": (write_plain_zip, WRONG_TYPE, ""),
    "text-named.pdf": (write_text, WRONG_TYPE, ""),
    "huge-mediabox.pdf": (write_huge_mediabox, _codes(TOO_LARGE), ""),
    "5000-pages.pdf": (write_many_pages(5000), _codes(TOO_LARGE), ""),
    "deeply-nested.pdf": (write_deeply_nested, WRONG_TYPE, ""),
    "cyclic-page-tree.pdf": (write_cyclic_page_tree, WRONG_TYPE, ""),
    "bomb.docx": (write_zip_bomb("word/document.xml", DOCX_MAIN), _codes(TOO_LARGE), ""),
    "bomb.xlsx": (write_zip_bomb("xl/workbook.xml", XLSX_MAIN), _codes(TOO_LARGE), ""),
    "lying-bomb.docx": (write_lying_zip_bomb, _codes(TOO_LARGE), ""),
}

# Corpus files that are bad inputs as they are: name → (refusals, password).
CORPUS_CASES: dict[str, tuple[frozenset[int], str]] = {
    "pdfplumber__empty.pdf": (WRONG_TYPE, ""),
    "pdfjs__poppler-742-0-fuzzed.pdf": (WRONG_TYPE, ""),
    "pillow__reallybig.bmp": (_codes(TOO_LARGE), ""),
    "pdfplumber__password-example.pdf": (_codes(PASSWORD), ""),
    "pypdf__r6-user-password.pdf": (_codes(PASSWORD), "wrong-password"),
}


def case_name(name: str, password: str) -> str:
    return f"{name}[pw]" if password else name


# Every case's name, known before any file is written (for test parametrisation).
CASE_NAMES = [*GENERATED, *(case_name(n, pw) for n, (_, pw) in CORPUS_CASES.items())]


def generate(folder: Path) -> list[BadInput]:
    """Write every generated hostile file into `folder`; return them and the corpus cases."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, (write, refusals, password) in GENERATED.items():
        path = folder / name
        if not path.exists():
            write(path)
        cases.append(BadInput(name, path, refusals, password))
    for name, (refusals, password) in CORPUS_CASES.items():
        cases.append(BadInput(case_name(name, password), CORPUS / name, refusals, password))
    return cases
