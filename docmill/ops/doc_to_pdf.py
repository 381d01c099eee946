"""`/pdf/convert/from/doc`: an office document (DOC, DOCX, RTF, ODT, TXT, XLS, XLSX, ODS, PPT,
PPTX, ODP) to PDF, through the warm LibreOffice pool.

The type comes from the content (magic bytes, ZIP members, OLE2 streams), never from the
name: inputs often arrive named `input`. PDFs, images and unknown binaries are refused (415),
ZIP bombs too (413), before LibreOffice sees them.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import Field

from docmill.engines.libreoffice import get_pool
from docmill.errors import DamagedFileError, PasswordError, TooLargeError, UnsupportedTypeError
from docmill.operation import CommonParams, Operation, OpResult, ResultShape, register
from docmill.pdf import pdfium_document

# ZIP-based documents (DOCX, XLSX, ODT...) are unpacked by LibreOffice: refuse archives that
# would inflate past these bounds. Real documents stay far below (the corpus: < 7 MB, < 12:1).
MAX_UNZIPPED_BYTES = 1024 * 1024 * 1024
MAX_ZIP_RATIO = 100
ZIP_RATIO_FLOOR = 50 * 1024 * 1024  # the ratio only matters past this many unzipped bytes
MAX_ZIP_MEMBERS = 10_000

_HEAD_BYTES = 64 * 1024
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE2_END = 0xFFFFFFFA  # sector numbers from here up mark chain ends and free sectors
_MAX_OLE_DIRECTORY_SECTORS = 4096


@dataclass(frozen=True)
class OfficeType:
    """What an input is, and how LibreOffice should be told to read it."""

    name: str  # "docx", "xls", "text"...
    extension: str  # the extension LibreOffice's type detection expects
    import_filter: str | None = None  # forced where detection would guess (plain text)
    import_options: str | None = None
    encrypted: bool = False  # needs a password before anything can be read


DOCX = OfficeType("docx", "docx")
XLSX = OfficeType("xlsx", "xlsx")
PPTX = OfficeType("pptx", "pptx")
ODT = OfficeType("odt", "odt")
ODS = OfficeType("ods", "ods")
ODP = OfficeType("odp", "odp")
DOC = OfficeType("doc", "doc")
XLS = OfficeType("xls", "xls")
PPT = OfficeType("ppt", "ppt")
RTF = OfficeType("rtf", "rtf")
# An encrypted DOCX/XLSX/PPTX is an OLE2 box whose inner type shows only once decrypted.
ENCRYPTED_OOXML = OfficeType("encrypted-ooxml", "docx", encrypted=True)
TEXT_UTF8 = OfficeType("text", "txt", "Text (encoded)", "UTF8")
TEXT_UTF16 = OfficeType("text", "txt", "Text (encoded)", "UNICODE")
TEXT_WINDOWS = OfficeType("text", "txt", "Text (encoded)", "MS_1252")

# Main part of an OOXML package → its type; `_rels/.rels` names the part when it is unusual.
_OOXML_FOLDERS = {"word": DOCX, "xl": XLSX, "ppt": PPTX}
_OOXML_MAIN_PARTS = {
    "word/document.xml": DOCX,
    "xl/workbook.xml": XLSX,
    "ppt/presentation.xml": PPTX,
}
_ODF_MIMETYPES = {
    "application/vnd.oasis.opendocument.text": ODT,
    "application/vnd.oasis.opendocument.text-template": ODT,
    "application/vnd.oasis.opendocument.spreadsheet": ODS,
    "application/vnd.oasis.opendocument.spreadsheet-template": ODS,
    "application/vnd.oasis.opendocument.presentation": ODP,
    "application/vnd.oasis.opendocument.presentation-template": ODP,
}
# OLE2 stream → type, in order: an encrypted package or a Word stream decides first.
_OLE2_STREAMS = (
    ("EncryptedPackage", ENCRYPTED_OOXML),
    ("WordDocument", DOC),
    ("Workbook", XLS),
    ("Book", XLS),
    ("PowerPoint Document", PPT),
)
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
_OFFICE_DOCUMENT_TARGET = re.compile(
    r'Type="[^"]*/officeDocument"[^>]*?Target="/?([^/"]+)/|'
    r'Target="/?([^/"]+)/[^"]*"[^>]*?Type="[^"]*/officeDocument"'
)


class Params(CommonParams):
    """Parameters of `/pdf/convert/from/doc`."""

    password: str = Field("", description="Password of a password-protected input document.")


def convert_doc_to_pdf(inputs: list[Path], params: Params, out_dir: Path) -> OpResult:
    """Convert the first input to one PDF in `out_dir`."""
    source = inputs[0]
    office_type = detect_office_type(source)
    if office_type.encrypted and not params.password:
        raise PasswordError("The document is password-protected: send its password in 'password'.")
    output = out_dir / "document.pdf"
    with _named_for_libreoffice(source, office_type, out_dir) as named:
        get_pool().convert_to_pdf(
            named,
            output,
            params.password or None,
            import_filter=office_type.import_filter,
            import_options=office_type.import_options,
        )
    with pdfium_document(output) as document:
        page_count = len(document)
    return OpResult(files=[output], page_count=page_count)


@contextlib.contextmanager
def _named_for_libreoffice(source: Path, office_type: OfficeType, folder: Path) -> Iterator[Path]:
    """`source` under a name whose extension matches its content (LibreOffice's detection
    weighs the extension: a DOCX named `.txt` would come out as text)."""
    if source.suffix.lower() == f".{office_type.extension}":
        yield source
        return
    link = folder / f"source.{office_type.extension}"
    link.unlink(missing_ok=True)
    os.symlink(source.absolute(), link)
    try:
        yield link
    finally:
        link.unlink(missing_ok=True)


# -- type detection -------------------------------------------------------------------------


def detect_office_type(path: Path) -> OfficeType:
    """The office type of `path` from its content; 415 for anything LibreOffice should not get."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
        if not head:
            raise DamagedFileError("The input file is empty (0 bytes).")
        if head.startswith(b"PK\x03\x04"):
            return _zip_type(path)
        if head.startswith(_OLE2_MAGIC):
            return _ole2_type(handle)
    if head.lstrip().startswith(b"{\\rtf"):
        return RTF
    _refuse_known_binaries(head)
    text_type = _text_type(head)
    if text_type is None:
        raise UnsupportedTypeError(
            "Unsupported file type: send a DOC, DOCX, RTF, ODT, TXT, XLS, XLSX, ODS, PPT or "
            "PPTX document."
        )
    return text_type


def _refuse_known_binaries(head: bytes) -> None:
    if head.lstrip().startswith(b"%PDF-"):
        raise UnsupportedTypeError("The input is already a PDF: nothing to convert.")
    is_webp = head.startswith(b"RIFF") and head[8:12] == b"WEBP"
    is_bmp = head.startswith(b"BM") and head[6:10] == b"\0\0\0\0"  # not text saying "BM..."
    if is_webp or is_bmp or head.startswith(_IMAGE_MAGIC):
        raise UnsupportedTypeError(
            "The input is an image: convert it with /pdf/convert/from/image."
        )


def _text_type(head: bytes) -> OfficeType | None:
    """Plain text in UTF-8, UTF-16 (with BOM) or a Windows code page; None for binary."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return TEXT_UTF16
    if b"\x00" in head:
        return None
    try:
        # Not final: the head may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return TEXT_UTF8
    except UnicodeDecodeError:
        pass
    controls = sum(1 for byte in head if byte < 0x20 and byte not in b"\t\n\r\f\x1a\x1b")
    return TEXT_WINDOWS if controls <= len(head) // 100 else None


def _zip_type(path: Path) -> OfficeType:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            check_zip_limits(infos)
            return _zip_office_type(archive)
    except zipfile.BadZipFile as error:
        raise DamagedFileError("The input is a damaged ZIP-based document.") from error


def check_zip_limits(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse archives that would inflate into a ZIP bomb (413)."""
    if len(infos) > MAX_ZIP_MEMBERS:
        raise TooLargeError(f"The document holds more than {MAX_ZIP_MEMBERS} parts.")
    unzipped = sum(info.file_size for info in infos)
    zipped = sum(info.compress_size for info in infos)
    if unzipped > MAX_UNZIPPED_BYTES:
        raise TooLargeError(f"The document unpacks to more than {MAX_UNZIPPED_BYTES // 2**20} MiB.")
    if unzipped > ZIP_RATIO_FLOOR and unzipped > MAX_ZIP_RATIO * max(zipped, 1):
        raise TooLargeError(
            "The document is compressed suspiciously well (a ZIP bomb?) and was refused."
        )


def _zip_office_type(archive: zipfile.ZipFile) -> OfficeType:
    names = set(archive.namelist())
    if "mimetype" in names:
        mimetype = archive.read("mimetype")[:200].decode("ascii", "replace").strip()
        if mimetype in _ODF_MIMETYPES:
            return _ODF_MIMETYPES[mimetype]
    for part, office_type in _OOXML_MAIN_PARTS.items():
        if part in names:
            return office_type
    if "_rels/.rels" in names:
        relationships = archive.read("_rels/.rels")[:_HEAD_BYTES].decode("utf-8", "replace")
        match = _OFFICE_DOCUMENT_TARGET.search(relationships)
        folder = match and (match.group(1) or match.group(2))
        if folder in _OOXML_FOLDERS:
            return _OOXML_FOLDERS[folder]
    raise UnsupportedTypeError(
        "The input is a ZIP archive, not a DOCX, XLSX, PPTX or OpenDocument file."
    )


def _ole2_type(handle: BinaryIO) -> OfficeType:
    try:
        streams = ole2_stream_names(handle)
    except (struct.error, ValueError) as error:
        raise DamagedFileError("The input is a damaged OLE2 (binary Office) file.") from error
    for stream, office_type in _OLE2_STREAMS:
        if stream in streams:
            return office_type
    raise UnsupportedTypeError(
        "The input is an OLE2 file that is not a Word, Excel or PowerPoint document."
    )


def ole2_stream_names(handle: BinaryIO) -> set[str]:
    """Names in the directory of an OLE2 compound file (DOC, XLS, PPT, encrypted OOXML)."""
    handle.seek(0)
    header = handle.read(512)
    sector_size = 1 << struct.unpack_from("<H", header, 0x1E)[0]
    if sector_size not in (512, 4096):
        raise ValueError("bad OLE2 sector size")
    first_directory_sector = struct.unpack_from("<I", header, 0x30)[0]
    fat_sectors = _ole2_fat_sectors(handle, header, sector_size)

    def read_sector(number: int) -> bytes:
        handle.seek((number + 1) * sector_size)
        data = handle.read(sector_size)
        if len(data) < sector_size:
            raise ValueError("OLE2 sector past the end of the file")
        return data

    def next_sector(number: int) -> int:
        per_sector = sector_size // 4
        fat_index, slot = divmod(number, per_sector)
        if fat_index >= len(fat_sectors):
            raise ValueError("OLE2 chain leaves the FAT")
        return struct.unpack_from("<I", read_sector(fat_sectors[fat_index]), slot * 4)[0]

    names: set[str] = set()
    sector, visited = first_directory_sector, 0
    while sector < _OLE2_END and visited < _MAX_OLE_DIRECTORY_SECTORS:
        entries = read_sector(sector)
        for offset in range(0, sector_size, 128):
            length = struct.unpack_from("<H", entries, offset + 64)[0]  # bytes, with the NUL
            if 2 <= length <= 64:
                names.add(entries[offset : offset + length - 2].decode("utf-16-le", "replace"))
        sector, visited = next_sector(sector), visited + 1
    return names


def _ole2_fat_sectors(handle: BinaryIO, header: bytes, sector_size: int) -> list[int]:
    """Sector numbers of the FAT: 109 listed in the header, the rest in DIFAT sectors."""
    fat_sectors = [s for s in struct.unpack_from("<109I", header, 0x4C) if s < _OLE2_END]
    difat_sector, difat_count = struct.unpack_from("<II", header, 0x44)
    per_sector = sector_size // 4
    for _ in range(min(difat_count, _MAX_OLE_DIRECTORY_SECTORS)):
        if difat_sector >= _OLE2_END:
            break
        handle.seek((difat_sector + 1) * sector_size)
        values = struct.unpack(f"<{per_sector}I", handle.read(sector_size))
        fat_sectors.extend(s for s in values[:-1] if s < _OLE2_END)
        difat_sector = values[-1]
    return fat_sectors


register(
    Operation(
        name="doc_to_pdf",
        paths=("/pdf/convert/from/doc",),
        params=Params,
        run=convert_doc_to_pdf,
        result=ResultShape.ONE_FILE,
        extension="pdf",
        summary="Convert an office document (DOC, DOCX, RTF, ODT, TXT, XLS, XLSX, PPT, PPTX...) "
        "to PDF.",
        engines=("libreoffice",),
    )
)
