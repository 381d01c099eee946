"""/pdf/convert/to/text: the text of a PDF, laid out like `pdftotext -layout`.

Words keep their places on a character grid (see `docmill.textlayout`), so that columns
and table rows line up as on the page; a form feed ends each page, as pdftotext writes.
"""

from __future__ import annotations

from pathlib import Path

from docmill.names import sanitize_name
from docmill.operation import CommonParams, Operation, OpResult, ResultShape, register
from docmill.pages import parse_page_ranges
from docmill.pdf import pdfium_document
from docmill.textlayout import page_layout_text

PAGE_END = "\f"


class Params(CommonParams):
    """The common parameters: `pages` picks the pages, `password` opens the PDF."""


def convert_pdf_to_text(inputs: list[Path], params: Params, out_dir: Path) -> OpResult:
    """Write the text of the selected pages of `inputs[0]` to one UTF-8 .txt file."""
    source = inputs[0]
    target = out_dir / sanitize_name(params.name, source.stem, "txt")
    with pdfium_document(source, params.password) as document:
        pages = parse_page_ranges(params.pages, len(document))
        with open(target, "w", encoding="utf-8", newline="\n") as out:
            for index in pages:
                out.write(page_layout_text(document, index))
                out.write(PAGE_END)
    return OpResult(files=[target], page_count=len(pages))


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
