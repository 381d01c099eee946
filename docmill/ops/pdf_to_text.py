"""/pdf/convert/to/text: the text of a PDF, laid out like `pdftotext -layout`.

Words keep their places on a character grid (see `docmill.textlayout`), so that columns
and table rows line up as on the page; a form feed ends each page, as pdftotext writes.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pypdfium2 as pdfium

from docmill.names import sanitize_name
from docmill.operation import CommonParams, Operation, OpResult, ResultShape, register
from docmill.pages import parse_page_ranges
from docmill.pdf import pdfium_document
from docmill.raster import render_process_count, render_spread
from docmill.textlayout import page_layout_text

PAGE_END = "\f"
# Text comes out ~600 pages/s in one process: a helper process pays off from ~50 pages.
MIN_PAGES_PER_PROCESS = 50


class Params(CommonParams):
    """The common parameters: `pages` picks the pages, `password` opens the PDF."""


def convert_pdf_to_text(inputs: list[Path], params: Params, out_dir: Path) -> OpResult:
    """Write the text of the selected pages of `inputs[0]` to one UTF-8 .txt file."""
    source = inputs[0]
    target = out_dir / sanitize_name(params.name, source.stem, "txt")
    with pdfium_document(source, params.password) as document:
        pages = parse_page_ranges(params.pages, len(document))
        if render_process_count(len(pages), MIN_PAGES_PER_PROCESS) <= 1:
            _write_pages(document, pages, target)
            return OpResult(files=[target], page_count=len(pages))
    # A long document: its pages are shared out over the cores, one text file per page.
    extract = functools.partial(
        _extract_pages, source, params.password, pages, out_dir / "pages"
    )
    (out_dir / "pages").mkdir()
    page_files = render_spread(extract, len(pages), MIN_PAGES_PER_PROCESS)
    with open(target, "wb") as out:
        for page_file in page_files:
            out.write(page_file.read_bytes())
    return OpResult(files=[target], page_count=len(pages))


def _write_pages(document: pdfium.PdfDocument, pages: list[int], target: Path) -> None:
    with open(target, "w", encoding="utf-8", newline="\n") as out:
        for index in pages:
            out.write(page_layout_text(document, index))
            out.write(PAGE_END)


def _extract_pages(
    source: Path, password: str, pages: list[int], folder: Path, positions: list[int]
) -> list[Path]:
    """In a child process: the text of `pages[p]` for each position p, one file each."""
    paths = []
    with pdfium_document(source, password) as document:
        for position in positions:
            path = folder / f"{position:06d}.txt"
            text = page_layout_text(document, pages[position]) + PAGE_END
            path.write_text(text, encoding="utf-8", newline="\n")
            paths.append(path)
    return paths


register(
    Operation(
        name="pdf_to_text",
        paths=("/pdf/convert/to/text",),
        params=Params,
        run=convert_pdf_to_text,
        result=ResultShape.ONE_FILE,
        extension="txt",
        summary="Convert PDF to plain text, keeping the layout of columns and tables.",
        inline_text=True,
    )
)
