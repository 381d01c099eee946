"""/pdf/convert/to/text: the text of a PDF, laid out like `pdftotext -layout`.

Words keep their places on a character grid (see `docmill.textlayout`), so that columns
and table rows line up as on the page; a form feed ends each page, as pdftotext writes.
"""

from __future__ import annotations

import functools
from pathlib import Path

from docmill.names import sanitize_name
from docmill.operation import CommonParams, Operation, OpResult, ResultShape, register
from docmill.pages import parse_page_ranges
from docmill.pdf import pdfium_document
from docmill.spread import process_count, spread
from docmill.textlayout import page_layout_text

PAGE_END = "\f"
# A page takes 1-4 ms; handing a share to a warm page helper and back costs well under a
# millisecond, and this process takes a share too: a helper pays off from about 4 pages.
MIN_PAGES_PER_PROCESS = 4


class Params(CommonParams):
    """The common parameters: `pages` picks the pages, `password` opens the PDF."""


def convert_pdf_to_text(inputs: list[Path], params: Params, out_dir: Path) -> OpResult:
    """Write the text of the selected pages of `inputs[0]` to one UTF-8 .txt file."""
    source = inputs[0]
    target = out_dir / sanitize_name(params.name, source.stem, "txt")
    with pdfium_document(source, params.password) as document:
        pages = parse_page_ranges(params.pages, len(document))
        shared_out = process_count(len(pages), MIN_PAGES_PER_PROCESS) > 1
        texts = [] if shared_out else [page_layout_text(document, index) for index in pages]
    if shared_out:  # a longer document: its pages are shared out over the cores
        extract = functools.partial(_page_texts, source, params.password, pages)
        texts = spread(extract, len(pages), MIN_PAGES_PER_PROCESS)
    with open(target, "w", encoding="utf-8", newline="\n") as out:
        for text in texts:
            out.write(text)
            out.write(PAGE_END)
    return OpResult(files=[target], page_count=len(pages))


def _page_texts(source: Path, password: str, pages: list[int], positions: list[int]) -> list[str]:
    """The text of `pages[p]` for each position p (in a helper process, or this one)."""
    with pdfium_document(source, password) as document:
        return [page_layout_text(document, pages[position]) for position in positions]


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
